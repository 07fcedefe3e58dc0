package source_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/leadhook/leadhook/webhookserver/lead"
	"github.com/leadhook/leadhook/webhookserver/source"
)

// checkDecodeResult holds for every decoder: an error is a *source.Error the handler can
// answer with (400, 413, 415 or 422, with a message); a success carries only UTF-8 text
// without control characters, within the limits.
func checkDecodeResult(t *testing.T, d *source.Decoded, err error) {
	t.Helper()
	if err != nil {
		var se *source.Error
		if !errors.As(err, &se) {
			t.Fatalf("error %v is %T, not *source.Error", err, err)
		}
		switch se.Status {
		case 400, 413, 415, 422:
		default:
			t.Fatalf("status %d (%q), want 400, 413, 415 or 422", se.Status, se.Message)
		}
		if se.Status == 400 && se.Message != "Malformed payload" {
			t.Fatalf("400 with message %q", se.Message)
		}
		if se.Status == 413 && se.Message != "Too many fields" {
			t.Fatalf("413 with message %q", se.Message)
		}
		if len(se.Message) > 200 {
			t.Fatalf("message of %d bytes", len(se.Message))
		}
		if se.Message == "" {
			t.Fatal("error without a message")
		}
		if d != nil {
			t.Fatalf("error %v with a result %+v", err, d)
		}
		return
	}
	if d == nil {
		t.Fatal("nil result without an error")
	}
	if p := decodedProblem(d); p != "" {
		t.Fatalf("%s is not UTF-8 text without controls: %+v", p, d)
	}
	if len(d.Fields.Phone) > source.MaxPhoneBytes {
		t.Fatalf("phone of %d bytes", len(d.Fields.Phone))
	}
	if len(d.Extras) > 64 || len(d.Notes) > source.MaxFields {
		t.Fatalf("%d extras, %d notes", len(d.Extras), len(d.Notes))
	}
	for k, v := range d.Extras {
		if len(k) > source.MaxExtraKeyBytes || len(v) > source.MaxExtraBytes {
			t.Fatalf("extra %.20q of %d bytes", k, len(v))
		}
	}
	if d.Probe && (d.Fields != lead.Fields{} || d.Notes != nil || d.Extras != nil) {
		t.Fatalf("probe carries a lead: %+v", d)
	}
}

func addSeeds(f *testing.F) {
	f.Add(fixture(f, "generic-seed.json"), "application/json")
	f.Add(fixture(f, "generic-form.txt"), "application/x-www-form-urlencoded")
	f.Add(fixture(f, "taplink-seed.json"), "application/json")
	f.Add(fixture(f, "taplink-leads-created.json"), "")
	f.Add(fixture(f, "taplink-leads-created.json"), "Application/JSON; Charset=UTF-8")
	f.Add([]byte("\xef\xbb\xbf{\"Phone\":79001234567,\"is_test\":false}"), "text/json")
	f.Add([]byte("phone=1&client_name=%C8%E2%E0%ED"), "application/x-www-form-urlencoded; charset=windows-1251")
	f.Add([]byte("test=test"), "application/x-www-form-urlencoded")
	f.Add([]byte("--b\r\nContent-Disposition: form-data; name=\"phone\"\r\n\r\n1\r\n--b--\r\n"), "multipart/form-data; boundary=b")
	f.Add([]byte(`{"data":{"records":[{"type":"7","value":["1",2]}]}}`), "application/json")
	f.Add([]byte(`[1]`), "")
	f.Add([]byte{0xff, 0xfe, '{', 0}, "application/json; charset=utf-16")
}

func FuzzGenericDecode(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		d, err := source.Generic{}.Decode(source.Request{Body: body, ContentType: contentType})
		checkDecodeResult(t, d, err)
		if err == nil && (d.Notes != nil || d.SourceID != "") {
			t.Fatalf("generic lead with notes or a source id: %+v", d)
		}
	})
}

func FuzzTaplinkDecode(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		d, err := source.Taplink{}.Decode(source.Request{Body: body, ContentType: contentType})
		checkDecodeResult(t, d, err)
		if err != nil {
			return
		}
		if d.Probe {
			t.Fatal("Taplink has no probes")
		}
		if d.SourceID != "" && !strings.HasPrefix(d.SourceID, "taplink:") {
			t.Fatalf("SourceID = %q", d.SourceID)
		}
	})
}
