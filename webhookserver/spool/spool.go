// Package spool keeps leads on local disk while MongoDB cannot take them. Each batch of
// records is one file, written, fsynced and renamed into place before any of its leads is
// acknowledged, and removed only once the batch is in MongoDB. It knows nothing of leads or
// MongoDB: records are opaque bytes.
package spool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrFull is returned by Append when the batch would take the spool over its size limit.
var ErrFull = errors.New("spool is full")

// ErrCorrupt is returned by Read for a batch file that fails its checksum or does not parse.
var ErrCorrupt = errors.New("spool batch is corrupt")

const (
	magic      = "LHSPOOL1"
	batchExt   = ".batch"
	tmpPrefix  = ".tmp-"
	corruptDir = "corrupt"
	// MaxRecord bounds one record, so a damaged length cannot make Read allocate wildly.
	MaxRecord = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Batch names one spooled batch file.
type Batch struct {
	Name    string    // file name within the spool directory
	Records int       // how many records it holds
	Bytes   int64     // its size on disk
	Created time.Time // when it was written
}

// Stats describe what the spool holds.
type Stats struct {
	Batches  int
	Records  int
	Bytes    int64
	MaxBytes int64
	// Oldest is when the oldest batch still held was written; zero when empty.
	Oldest time.Time
}

// Spool is a directory of batch files, bounded in bytes. It is safe for concurrent use.
type Spool struct {
	dir string
	max int64

	mu      sync.Mutex
	batches map[string]Batch
	bytes   int64
	records int
	seq     uint64
}

// Open opens (creating it if needed) the spool in dir, holding at most maxBytes. Batches left
// by an earlier run are kept for draining; half-written temporary files, which were never
// acknowledged, are removed.
func Open(dir string, maxBytes int64) (*Spool, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("spool %s: size limit must be positive, got %d", dir, maxBytes)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating spool directory: %w", err)
	}
	s := &Spool{dir: dir, max: maxBytes, batches: map[string]Batch{}}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading spool directory: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case e.IsDir():
		case strings.HasPrefix(name, tmpPrefix):
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return nil, fmt.Errorf("removing unfinished spool file: %w", err)
			}
		case strings.HasSuffix(name, batchExt):
			b, ok := parseName(name)
			if !ok {
				continue
			}
			info, err := e.Info()
			if err != nil {
				return nil, fmt.Errorf("reading spool file %s: %w", name, err)
			}
			b.Bytes = info.Size()
			s.add(b)
		}
	}
	return s, nil
}

// Dir is the spool's directory.
func (s *Spool) Dir() string { return s.dir }

// Append writes records as one batch and returns once it is on stable storage (file and
// directory fsynced). It returns ErrFull, writing nothing, when the batch does not fit.
func (s *Spool) Append(records [][]byte) (Batch, error) {
	if len(records) == 0 {
		return Batch{}, errors.New("spool: empty batch")
	}
	var buf bytes.Buffer
	buf.WriteString(magic)
	var n [4]byte
	for _, r := range records {
		if len(r) > MaxRecord {
			return Batch{}, fmt.Errorf("spool: record of %d bytes is over the limit of %d", len(r), MaxRecord)
		}
		binary.BigEndian.PutUint32(n[:], uint32(len(r)))
		buf.Write(n[:])
		buf.Write(r)
	}
	binary.BigEndian.PutUint32(n[:], crc32.Checksum(buf.Bytes(), castagnoli))
	buf.Write(n[:])

	s.mu.Lock()
	if s.bytes+int64(buf.Len()) > s.max {
		s.mu.Unlock()
		return Batch{}, ErrFull
	}
	s.seq++
	b := Batch{Records: len(records), Bytes: int64(buf.Len()), Created: time.Now()}
	b.Name = fmt.Sprintf("%020d-%08d-%d%s", b.Created.UnixNano(), s.seq%1e8, b.Records, batchExt)
	s.add(b) // reserve the space while writing
	s.mu.Unlock()

	if err := s.write(b.Name, buf.Bytes()); err != nil {
		s.mu.Lock()
		s.remove(b.Name)
		s.mu.Unlock()
		return Batch{}, err
	}
	return b, nil
}

// write puts data in place under name atomically: a temporary file, fsynced, renamed, and
// the directory fsynced so the rename survives a crash.
func (s *Spool) write(name string, data []byte) error {
	tmp := filepath.Join(s.dir, tmpPrefix+name)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("creating spool file: %w", err)
	}
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, filepath.Join(s.dir, name))
	}
	if werr == nil {
		werr = syncDir(s.dir)
	}
	if werr != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("writing spool file %s: %w", name, werr)
	}
	return nil
}

// Batches lists the batches held, oldest first.
func (s *Spool) Batches() []Batch {
	s.mu.Lock()
	out := make([]Batch, 0, len(s.batches))
	for _, b := range s.batches {
		out = append(out, b)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Read returns a batch's records. A file that fails its checksum gives ErrCorrupt.
func (s *Spool) Read(b Batch) ([][]byte, error) {
	data, err := os.ReadFile(filepath.Join(s.dir, b.Name))
	if err != nil {
		return nil, fmt.Errorf("reading spool file %s: %w", b.Name, err)
	}
	records, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("spool file %s: %w", b.Name, err)
	}
	return records, nil
}

// decode parses a batch file's bytes.
func decode(data []byte) ([][]byte, error) {
	if len(data) < len(magic)+4 || string(data[:len(magic)]) != magic {
		return nil, ErrCorrupt
	}
	body, sum := data[:len(data)-4], binary.BigEndian.Uint32(data[len(data)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, ErrCorrupt
	}
	var records [][]byte
	for rest := body[len(magic):]; len(rest) > 0; {
		if len(rest) < 4 {
			return nil, ErrCorrupt
		}
		n := binary.BigEndian.Uint32(rest)
		if n > MaxRecord || int(n) > len(rest)-4 {
			return nil, ErrCorrupt
		}
		records = append(records, rest[4:4+n])
		rest = rest[4+n:]
	}
	return records, nil
}

// Remove deletes a batch that has been drained.
func (s *Spool) Remove(b Batch) error {
	if err := os.Remove(filepath.Join(s.dir, b.Name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing spool file %s: %w", b.Name, err)
	}
	s.mu.Lock()
	s.remove(b.Name)
	s.mu.Unlock()
	return nil
}

// Quarantine moves a batch that cannot be drained (corrupt, or refused by the store) into the
// corrupt/ subdirectory, where it stays for a person to look at; it no longer counts.
func (s *Spool) Quarantine(b Batch) error {
	dst := filepath.Join(s.dir, corruptDir)
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dst, err)
	}
	if err := os.Rename(filepath.Join(s.dir, b.Name), filepath.Join(dst, b.Name)); err != nil {
		return fmt.Errorf("quarantining spool file %s: %w", b.Name, err)
	}
	s.mu.Lock()
	s.remove(b.Name)
	s.mu.Unlock()
	return nil
}

// Stats says what the spool holds now.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Batches: len(s.batches), Records: s.records, Bytes: s.bytes, MaxBytes: s.max}
	for _, b := range s.batches {
		if st.Oldest.IsZero() || b.Created.Before(st.Oldest) {
			st.Oldest = b.Created
		}
	}
	return st
}

// add and remove keep the totals; the caller holds mu.
func (s *Spool) add(b Batch) {
	s.batches[b.Name] = b
	s.bytes += b.Bytes
	s.records += b.Records
}

func (s *Spool) remove(name string) {
	if b, ok := s.batches[name]; ok {
		delete(s.batches, name)
		s.bytes -= b.Bytes
		s.records -= b.Records
	}
}

// parseName reads the creation time and record count from a batch file's name:
// <unix nanoseconds>-<sequence>-<records>.batch.
func parseName(name string) (Batch, bool) {
	parts := strings.Split(strings.TrimSuffix(name, batchExt), "-")
	if len(parts) != 3 {
		return Batch{}, false
	}
	nanos, err1 := strconv.ParseInt(parts[0], 10, 64)
	records, err2 := strconv.Atoi(parts[2])
	if err1 != nil || err2 != nil || records <= 0 {
		return Batch{}, false
	}
	return Batch{Name: name, Records: records, Created: time.Unix(0, nanos)}, true
}

// syncDir fsyncs a directory, making renames and removals in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
