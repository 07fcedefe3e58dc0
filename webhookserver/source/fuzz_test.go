package source_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime/multipart"
	"net/textproto"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/encoding/htmlindex"

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
	// The limits (limits.go): nesting, fields, values, long text, controls, charsets.
	f.Add([]byte(`{"phone":"1","x":`+strings.Repeat("[", 40)+strings.Repeat("]", 40)+`}`), "application/json")
	f.Add([]byte(strings.Repeat(`{"a":`, 300)), "")
	f.Add([]byte(`{"phone":"1","l":[`+strings.Repeat("1,", 300)+`1]}`), "application/json")
	f.Add([]byte(`{"phone":"1","phone":"2"}`), "application/json")
	f.Add([]byte(`{"data":{"phone":"1\u0000","records":[{"title":"\u001b"}]}}`), "application/json")
	f.Add([]byte(`{"phone":"`+strings.Repeat("7", 130)+`"}`), "application/json")
	f.Add([]byte("phone=1"+strings.Repeat("&a=1", 260)), "application/x-www-form-urlencoded")
	f.Add([]byte("phone=1%00&a%7F=b"), "application/x-www-form-urlencoded; charset=koi8-r")
	f.Add([]byte("\xfe\xff\x00{\x00}"), "application/json; charset=utf-8")
	f.Add([]byte(`{"phone":"1"}`), "application/json; charset=iso-2022-kr")
	f.Add([]byte("{\"phone\":\"\x81\"}"), "application/json; charset=shift_jis")
	f.Add([]byte("--b\r\nContent-Disposition: form-data; name=\"phone\"\r\nContent-Type: text/plain; charset=windows-1251\r\n\r\n\xc8\r\n--b--\r\n"), "multipart/form-data; boundary=b")
	f.Add([]byte("--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a\"\r\n\r\n\x00\x01\r\n--b--\r\n"), "multipart/form-data; boundary=\"b\"")
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

// FuzzGenericForm decodes urlencoded forms in a declared charset: what decodes is good text,
// a form over MaxFields pairs is a 413, and a plain phone pair always reaches the lead.
func FuzzGenericForm(f *testing.F) {
	f.Add([]byte("client_name=%C8%E2%E0%ED&comment=hi"), "windows-1251")
	f.Add([]byte("name=%E9%D7%C1%CE"), "koi8-r")
	f.Add([]byte("a=1&&&b=%zz"), "")
	f.Add([]byte("x=%00"), "utf-8")
	f.Add([]byte(strings.Repeat("a=1&", 300)), "")
	f.Add([]byte("name=\xff"), "iso-8859-1")
	f.Fuzz(func(t *testing.T, body []byte, charset string) {
		ct := "application/x-www-form-urlencoded"
		if charset != "" {
			ct += "; charset=" + charset
		}
		d, err := source.Generic{}.Decode(source.Request{Body: body, ContentType: ct})
		checkDecodeResult(t, d, err)
		if bytes.Count(body, []byte("&"))+1 > source.MaxFields && err == nil {
			t.Fatalf("%d pairs decoded", bytes.Count(body, []byte("&"))+1)
		}
		// The same form with a phone in front: the phone is found unless the rest is rejected.
		withPhone := append([]byte("phone=%2B972501234567&"), body...)
		d, err = source.Generic{}.Decode(source.Request{Body: withPhone, ContentType: ct})
		checkDecodeResult(t, d, err)
		if err == nil && !d.Probe && d.Fields.Phone != "+972501234567" {
			t.Fatalf("phone = %q", d.Fields.Phone)
		}
	})
}

// FuzzGenericMultipart decodes multipart forms with random boundaries, field names, part
// charsets and trailing bytes. A well-formed form whose phone is good text always yields it.
func FuzzGenericMultipart(f *testing.F) {
	f.Add("b", "client_name", []byte("Dana"), "", false, []byte(nil))
	f.Add("----WebKitFormBoundary7MA4YWxkTrZu0gW", "name", []byte("\xc8\xe2\xe0\xed"), "windows-1251", false, []byte(nil))
	f.Add("x", "comment", []byte("hi"), "x-klingon", true, []byte("--x\r\n"))
	f.Add("'()+_,-./:=? ", "\xff", []byte("\x00"), "utf-16", false, []byte("garbage"))
	f.Add(strings.Repeat("z", 70), "cv", bytes.Repeat([]byte("%PDF"), 100), "", true, []byte(nil))
	f.Fuzz(func(t *testing.T, boundary, name string, value []byte, charset string, file bool, trailer []byte) {
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		if err := w.SetBoundary(boundary); err != nil {
			return // not a boundary a sender's library writes; the raw targets cover those
		}
		if strings.ContainsFunc(name+charset, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			file = false // a header with control characters is malformed: no promise for it
		}
		_ = w.WriteField("phone", "+972501234567")
		h := textproto.MIMEHeader{}
		disp := `form-data; name="` + strings.NewReplacer(`"`, `\"`, "\r", "", "\n", "").Replace(name) + `"`
		if file {
			disp += `; filename="f.bin"`
		}
		h.Set("Content-Disposition", disp)
		if charset != "" {
			h.Set("Content-Type", "text/plain; charset="+strings.NewReplacer("\r", "", "\n", "").Replace(charset))
		}
		if pw, err := w.CreatePart(h); err == nil {
			_, _ = pw.Write(value)
		}
		_ = w.Close()
		body := buf.Bytes()
		d, err := source.Generic{}.Decode(source.Request{Body: body, ContentType: w.FormDataContentType()})
		checkDecodeResult(t, d, err)
		if err == nil && !d.Probe && d.Fields.Phone != "+972501234567" {
			t.Fatalf("phone = %q", d.Fields.Phone)
		}
		if file && err != nil {
			// A file part is never read as a field, whatever it holds.
			t.Fatalf("form with a file part rejected: %v", err)
		}
		body = append(body, trailer...)
		d, err = source.Generic{}.Decode(source.Request{Body: body, ContentType: w.FormDataContentType()})
		checkDecodeResult(t, d, err)
	})
}

// FuzzCharsets encodes a lead in a charset and decodes it: text the charset can carry comes
// back unchanged; anything else is a clear 4xx.
func FuzzCharsets(f *testing.F) {
	for _, c := range []string{"windows-1251", "koi8-r", "utf-16", "utf-16be", "shift_jis", "gb18030", "iso-8859-8", "latin1", "x-klingon", "replacement"} {
		f.Add("Иван Тестов", c, []byte(nil))
	}
	f.Add("שלום", "windows-1255", []byte("\x81\xff"))
	f.Add("\u0085", "windows-1252", []byte(nil))
	f.Fuzz(func(t *testing.T, name, charset string, raw []byte) {
		ct := "application/json; charset=" + charset
		d, err := source.Generic{}.Decode(source.Request{Body: raw, ContentType: ct})
		checkDecodeResult(t, d, err)
		enc, err := htmlindex.Get(charset)
		if err != nil {
			return
		}
		js, _ := json.Marshal(map[string]string{"phone": "1", "client_name": name})
		body, err := enc.NewEncoder().Bytes(js)
		if err != nil {
			return // the charset cannot carry this text
		}
		d, err = source.Generic{}.Decode(source.Request{Body: body, ContentType: ct})
		checkDecodeResult(t, d, err)
		back, _ := enc.NewDecoder().Bytes(body)
		// (json.Marshal writes invalid UTF-8 as U+FFFD: such a name cannot come back.)
		carried := string(back) == string(js) && strings.TrimSpace(name) != "" && utf8.ValidString(name)
		if err == nil && carried && d.Fields.ClientName != name {
			t.Fatalf("name %q came back as %q", name, d.Fields.ClientName)
		}
		canonical, _ := htmlindex.Name(enc)
		refused := canonical == "replacement" || canonical == "x-user-defined" // 415 on purpose: they carry no text
		if err != nil && carried && !refused && goodText(name) && !strings.ContainsRune(name, utf8.RuneError) {
			t.Fatalf("name %q in %s rejected: %v", name, charset, err)
		}
	})
}
