package spool

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func records(n int, prefix string) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = []byte(fmt.Sprintf("%s-%d", prefix, i))
	}
	return out
}

func TestAppendReadRemove(t *testing.T) {
	s, err := Open(t.TempDir(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	first, err := s.Append(records(3, "a"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(records(2, "b")); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Batches != 2 || st.Records != 5 || st.Bytes <= 0 || st.Oldest.IsZero() {
		t.Fatalf("stats after two appends: %+v", st)
	}
	batches := s.Batches()
	if len(batches) != 2 || batches[0].Name != first.Name {
		t.Fatalf("batches not oldest first: %+v (first %s)", batches, first.Name)
	}
	got, err := s.Read(batches[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || !bytes.Equal(got[2], []byte("a-2")) {
		t.Fatalf("read back %q", got)
	}
	if err := s.Remove(batches[0]); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Batches != 1 || st.Records != 2 {
		t.Fatalf("stats after remove: %+v", st)
	}
}

func TestReopenKeepsBatchesAndDropsUnfinishedFiles(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Append(records(4, "x"))
	if err != nil {
		t.Fatal(err)
	}
	// A crash in the middle of an Append leaves a temporary file that was never acknowledged.
	tmp := filepath.Join(dir, tmpPrefix+"00000000000000000001-00000001-1"+batchExt)
	if err := os.WriteFile(tmp, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if st := s2.Stats(); st.Batches != 1 || st.Records != 4 || st.Bytes != b.Bytes {
		t.Fatalf("reopened stats %+v, want the one batch %+v", st, b)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("unfinished file still there: %v", err)
	}
	got, err := s2.Read(s2.Batches()[0])
	if err != nil || len(got) != 4 {
		t.Fatalf("read after reopen: %d records, %v", len(got), err)
	}
}

func TestFullRefusesWithoutWriting(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, 200)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append([][]byte{bytes.Repeat([]byte("y"), 100)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append([][]byte{bytes.Repeat([]byte("z"), 100)}); !errors.Is(err, ErrFull) {
		t.Fatalf("second append: got %v, want ErrFull", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("a refused batch left files: %d entries", len(entries))
	}
	if err := s.Remove(s.Batches()[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append([][]byte{bytes.Repeat([]byte("z"), 100)}); err != nil {
		t.Fatalf("append after room was made: %v", err)
	}
}

func TestCorruptBatchIsDetectedAndQuarantined(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Append(records(2, "c"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, b.Name)
	data, _ := os.ReadFile(path)
	data[len(magic)+5] ^= 0xff
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(b); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read of a damaged file: got %v, want ErrCorrupt", err)
	}
	if err := s.Quarantine(b); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Batches != 0 {
		t.Fatalf("quarantined batch still counted: %+v", st)
	}
	if _, err := os.Stat(filepath.Join(dir, corruptDir, b.Name)); err != nil {
		t.Fatalf("quarantined file not kept: %v", err)
	}
}

func TestOpenRejectsNonPositiveLimit(t *testing.T) {
	if _, err := Open(t.TempDir(), 0); err == nil {
		t.Fatal("Open accepted a zero size limit")
	}
}

// FuzzDecode: no input makes decoding panic or return records that were not in it, and
// what Append writes always decodes to the same records.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(magic+"\x00\x00\x00\x01a\x00\x00\x00\x00"), []byte("lead"))
	f.Add([]byte(magic), []byte(""))
	f.Add([]byte("\xff\xff\xff\xff"), []byte("\x00"))
	f.Fuzz(func(t *testing.T, data, record []byte) {
		if recs, err := decode(data); err == nil {
			total := 0
			for _, r := range recs {
				total += len(r)
			}
			if total > len(data) {
				t.Fatalf("decoded %d bytes of records from %d bytes", total, len(data))
			}
		}
		s, err := Open(t.TempDir(), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		b, err := s.Append([][]byte{record, data})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Read(b)
		if err != nil || len(got) != 2 || !bytes.Equal(got[0], record) || !bytes.Equal(got[1], data) {
			t.Fatalf("round trip: %q, %v", got, err)
		}
	})
}
