package source_test

import (
	"bytes"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"

	"github.com/leadhook/leadhook/webhookserver/source"
)

// jsonFields is a JSON object of n fields f0..f(n-1) plus a phone.
func jsonFields(n int) string {
	var b strings.Builder
	b.WriteString(`{"phone":"+972501234567"`)
	for i := range n {
		fmt.Fprintf(&b, `,"f%d":"v"`, i)
	}
	b.WriteString("}")
	return b.String()
}

// formFields is a urlencoded form of n pairs plus a phone.
func formFields(n int) string {
	var b strings.Builder
	b.WriteString("phone=%2B972501234567")
	for i := range n {
		fmt.Fprintf(&b, "&f%d=v", i)
	}
	return b.String()
}

// multipartParts is a multipart form of the given parts (header lines, value) and its type.
func multipartParts(t testing.TB, boundary string, parts ...[2]string) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	if err := w.SetBoundary(boundary); err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		for _, line := range strings.Split(p[0], "\n") {
			k, v, _ := strings.Cut(line, ": ")
			h.Add(k, v)
		}
		pw, err := w.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = pw.Write([]byte(p[1]))
	}
	_ = w.Close()
	return buf.Bytes(), w.FormDataContentType()
}

func field(name, value string) [2]string {
	return [2]string{`Content-Disposition: form-data; name="` + name + `"`, value}
}

func TestDecodeLimits(t *testing.T) {
	long := strings.Repeat("x", source.MaxValueBytes+1)
	longPhone := "+972" + strings.Repeat("5", source.MaxPhoneBytes)
	manyParts := make([][2]string, source.MaxFields+1)
	for i := range manyParts {
		manyParts[i] = field(fmt.Sprintf("f%d", i), "v")
	}
	manyPartsBody, manyPartsType := multipartParts(t, "b0undary", manyParts...)
	fileParts := [][2]string{field("phone", "+972501234567")}
	for range source.MaxFields {
		fileParts = append(fileParts, [2]string{`Content-Disposition: form-data; name="f"; filename="a.txt"`, "x"})
	}
	filePartsBody, filePartsType := multipartParts(t, "b", fileParts...)
	longPart, longPartType := multipartParts(t, "b", field("phone", "+972501234567"), field("comment", long))
	longExtraPart, longExtraPartType := multipartParts(t, "b", field("phone", "+972501234567"), field("signature", long))
	cp1251Part, cp1251PartType := multipartParts(t, "b", field("phone", "1"),
		[2]string{"Content-Disposition: form-data; name=\"client_name\"\nContent-Type: text/plain; charset=windows-1251", "\xc8\xe2\xe0\xed"})
	klingonPart, klingonPartType := multipartParts(t, "b", field("phone", "1"),
		[2]string{"Content-Disposition: form-data; name=\"client_name\"\nContent-Type: text/plain; charset=x-klingon", "x"})
	nulPart, nulPartType := multipartParts(t, "b", field("phone", "1\x00"))
	bigFile, bigFileType := multipartParts(t, "b", field("phone", "+972501234567"),
		[2]string{`Content-Disposition: form-data; name="cv"; filename="cv.pdf"`, strings.Repeat("%PDF", 1<<18)})
	utf16le, _ := unicode.UTF16(unicode.LittleEndian, unicode.UseBOM).NewEncoder().String(`{"phone":"1","name":"Иван"}`)
	utf16be, _ := unicode.UTF16(unicode.BigEndian, unicode.UseBOM).NewEncoder().String(`{"phone":"1"}`)
	koi8, _ := charmap.KOI8R.NewEncoder().String(`{"phone":"1","name":"Иван"}`)

	type result struct {
		status int    // 0: decoded
		msg    string // contained in the error message
		phone  string // when decoded
		name   string
	}
	tests := []struct {
		name   string
		ct     string
		header http.Header
		body   string
		want   result
	}{
		// Structure limits.
		{name: "JSON at the field limit", ct: ctJSON, body: jsonFields(source.MaxFields - 1), want: result{phone: "+972501234567"}},
		{name: "JSON over the field limit", ct: ctJSON, body: jsonFields(source.MaxFields), want: result{413, "Too many fields", "", ""}},
		{name: "JSON array over the element limit", ct: ctJSON, body: `{"phone":"1","l":[` + strings.Repeat("1,", source.MaxFields) + `1]}`, want: result{413, "Too many fields", "", ""}},
		{name: "JSON over the value limit", ct: ctJSON, body: `{"phone":"1","l":[` + strings.Repeat(`[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],`, source.MaxJSONValues/16) + `1]}`, want: result{413, "Too many fields", "", ""}},
		{name: "JSON at the nesting limit", ct: ctJSON, body: `{"phone":"1","x":` + strings.Repeat("[", source.MaxDepth-1) + strings.Repeat("]", source.MaxDepth-1) + "}", want: result{phone: "1"}},
		{name: "JSON nested too deep", ct: ctJSON, body: `{"phone":"1","x":` + strings.Repeat("[", source.MaxDepth) + strings.Repeat("]", source.MaxDepth) + "}", want: result{400, "Malformed payload", "", ""}},
		{name: "JSON 100k brackets", ct: ctJSON, body: `{"x":` + strings.Repeat("[", 100000), want: result{400, "Malformed payload", "", ""}},
		{name: "top-level 100k brackets", ct: ctJSON, body: strings.Repeat("[", 100000), want: result{400, "Malformed payload", "", ""}},
		{name: "JSON 100k objects", ct: ctJSON, body: strings.Repeat(`{"a":`, 100000), want: result{400, "Malformed payload", "", ""}},
		{name: "duplicate JSON key", ct: ctJSON, body: `{"phone":"+972501234567","phone":"+972507654321"}`, want: result{422, `Field "phone" is sent twice`, "", ""}},
		{name: "duplicate JSON key, escaped", ct: ctJSON, body: `{"phone":"1","ph\u006fne":"2"}`, want: result{422, "sent twice", "", ""}},
		{name: "duplicate nested key", ct: ctJSON, body: `{"phone":"1","x":{"a":1,"a":2}}`, want: result{422, "sent twice", "", ""}},
		{name: "form at the pair limit", ct: ctForm, body: formFields(source.MaxFields - 1), want: result{phone: "+972501234567"}},
		{name: "form over the pair limit", ct: ctForm, body: formFields(source.MaxFields), want: result{413, "Too many fields", "", ""}},
		{name: "form of ampersands", ct: ctForm, body: "phone=1" + strings.Repeat("&", 10000), want: result{413, "Too many fields", "", ""}},
		{name: "multipart over the part limit", ct: manyPartsType, body: string(manyPartsBody), want: result{413, "Too many fields", "", ""}},
		{name: "multipart file parts count too", ct: filePartsType, body: string(filePartsBody), want: result{413, "Too many fields", "", ""}},
		{name: "multipart big file skipped", ct: bigFileType, body: string(bigFile), want: result{phone: "+972501234567"}},
		{name: "multipart without its boundary", ct: "multipart/form-data; boundary=b", body: "phone=1", want: result{400, "Malformed payload", "", ""}},
		{name: "multipart, other boundary", ct: "multipart/form-data; boundary=b", body: "--zzz\r\nContent-Disposition: form-data; name=\"phone\"\r\n\r\n1\r\n--zzz--\r\n", want: result{400, "Malformed payload", "", ""}},
		{name: "multipart, closing boundary only", ct: "multipart/form-data; boundary=b", body: "--b--\r\n", want: result{}},
		// Long values: kept up to the limit, else rejected naming the field; never truncated.
		{name: "comment at the limit", ct: ctJSON, body: `{"phone":"1","comment":"` + long[1:] + `"}`, want: result{phone: "1"}},
		{name: "comment too long", ct: ctJSON, body: `{"phone":"1","comment":"` + long + `"}`, want: result{422, "Field comment is too long", "", ""}},
		{name: "phone too long", ct: ctJSON, body: `{"phone":"` + longPhone + `"}`, want: result{422, "Field phone is too long", "", ""}},
		{name: "phone too long as a number", ct: ctJSON, body: `{"phone":` + strings.Repeat("9", source.MaxPhoneBytes+1) + `}`, want: result{422, "Field phone is too long", "", ""}},
		{name: "phone too long in a form", ct: ctForm, body: "phone=" + longPhone, want: result{422, "Field phone is too long", "", ""}},
		{name: "name too long in a form", ct: ctForm, body: "phone=1&name=" + long, want: result{422, "Field client_name is too long", "", ""}},
		{name: "comment too long in multipart", ct: longPartType, body: string(longPart), want: result{422, "Field comment is too long", "", ""}},
		{name: "long extra not kept", ct: longExtraPartType, body: string(longExtraPart), want: result{phone: "+972501234567"}},
		{name: "taplink-shaped record in generic", ct: ctJSON, body: `{"phone":"1","records":[{"value":"` + long + `"}]}`, want: result{phone: "1"}},
		// Control characters and NUL: 400.
		{name: "NUL escape in JSON", ct: ctJSON, body: `{"phone":"1\u0000"}`, want: result{400, "Malformed payload", "", ""}},
		{name: "NUL escape in an ignored JSON field", ct: ctJSON, body: `{"phone":"1","x":{"y":["\u0000"]}}`, want: result{400, "Malformed payload", "", ""}},
		{name: "escape char in a JSON key", ct: ctJSON, body: `{"phone":"1","\u001b[31m":"x"}`, want: result{400, "Malformed payload", "", ""}},
		{name: "C1 control in JSON", ct: ctJSON, body: "{\"phone\":\"1\",\"name\":\"\u0085\"}", want: result{400, "Malformed payload", "", ""}},
		{name: "raw NUL in JSON", ct: ctJSON, body: "{\"phone\":\"1\x00\"}", want: result{400, "Malformed payload", "", ""}},
		{name: "NUL in a form", ct: ctForm, body: "phone=1%00", want: result{400, "Malformed payload", "", ""}},
		{name: "DEL in a form name", ct: ctForm, body: "phone=1&a%7F=b", want: result{400, "Malformed payload", "", ""}},
		{name: "NUL in multipart", ct: nulPartType, body: string(nulPart), want: result{400, "Malformed payload", "", ""}},
		{name: "tabs and newlines are text", ct: ctJSON, body: `{"phone":"1","comment":"a\tb\r\nc"}`, want: result{phone: "1"}},
		// Charsets and byte-order marks.
		{name: "koi8-r JSON", ct: ctJSON + "; charset=KOI8-R", body: koi8, want: result{phone: "1", name: "Иван"}},
		{name: "UTF-16LE with BOM, declared", ct: ctJSON + "; charset=utf-16", body: utf16le, want: result{phone: "1", name: "Иван"}},
		{name: "UTF-16LE with BOM, undeclared", ct: ctJSON, body: utf16le, want: result{phone: "1", name: "Иван"}},
		{name: "UTF-16LE with BOM, no content type", ct: "", body: utf16le, want: result{phone: "1", name: "Иван"}},
		{name: "UTF-16BE with BOM, declared utf-8", ct: ctJSON + "; charset=utf-8", body: utf16be, want: result{phone: "1"}},
		{name: "UTF-16 odd length", ct: ctJSON, body: utf16le + "x", want: result{400, "Malformed payload", "", ""}},
		{name: "UTF-16 lone surrogate", ct: ctJSON, body: "\xff\xfe{\x00\"\x00a\x00\"\x00:\x00\"\x00\x00\xd8\"\x00}\x00", want: result{400, "Malformed payload", "", ""}},
		{name: "shift_jis invalid bytes", ct: ctJSON + "; charset=shift_jis", body: "{\"phone\":\"1\",\"n\":\"\x81\"}", want: result{400, "Malformed payload", "", ""}},
		{name: "replacement charset", ct: ctJSON + "; charset=iso-2022-kr", body: `{"phone":"1"}`, want: result{415, "Unsupported charset", "", ""}},
		{name: "x-user-defined charset", ct: ctJSON + "; charset=x-user-defined", body: `{"phone":"1"}`, want: result{415, "Unsupported charset", "", ""}},
		{name: "unknown charset, long", ct: ctJSON + "; charset=" + strings.Repeat("k", 5000), body: `{"phone":"1"}`, want: result{415, "Unsupported charset", "", ""}},
		{name: "multipart part in windows-1251", ct: cp1251PartType, body: string(cp1251Part), want: result{phone: "1", name: "Иван"}},
		{name: "multipart part in an unknown charset", ct: klingonPartType, body: string(klingonPart), want: result{415, "x-klingon", "", ""}},
		// Media types and encodings.
		{name: "gzip", ct: ctJSON, header: http.Header{"Content-Encoding": {"gzip"}}, body: "\x1f\x8b\x08\x00", want: result{415, "Content-Encoding", "", ""}},
		{name: "deflate, odd case", ct: ctJSON, header: http.Header{"Content-Encoding": {"Deflate"}}, body: `{"phone":"1"}`, want: result{415, "Content-Encoding", "", ""}},
		{name: "identity encoding", ct: ctJSON, header: http.Header{"Content-Encoding": {"identity"}}, body: `{"phone":"1"}`, want: result{phone: "1"}},
		{name: "empty body without content type", ct: "", body: "", want: result{400, "Malformed payload", "", ""}},
		{name: "duplicate media type parameter", ct: "application/json; charset=utf-8; charset=koi8-r", body: `{"phone":"1"}`, want: result{415, "Unsupported media type", "", ""}},
		{name: "media type odd case and spacing", ct: "  APPLICATION/Json ;  CHARSET=\"UTF-8\" ", body: `{"phone":"1"}`, want: result{phone: "1"}},
		{name: "garbage content type", ct: "\x00\xff;;;", body: `{"phone":"1"}`, want: result{415, "Unsupported media type", "", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			d, err := source.Generic{}.Decode(source.Request{Body: []byte(tt.body), ContentType: tt.ct, Header: tt.header})
			if elapsed := time.Since(start); elapsed > 2*time.Second {
				t.Errorf("decoding took %s", elapsed)
			}
			checkDecodeResult(t, d, err)
			if tt.want.status != 0 {
				if err == nil {
					t.Fatalf("decoded %+v, want %d %q", d, tt.want.status, tt.want.msg)
				}
				decodeErr(t, err, tt.want.status, tt.want.msg)
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if d.Fields.Phone != tt.want.phone || d.Fields.ClientName != tt.want.name {
				t.Errorf("phone %q name %q, want %q %q", d.Fields.Phone, d.Fields.ClientName, tt.want.phone, tt.want.name)
			}
			for k, v := range d.Extras {
				if len(k) > source.MaxExtraKeyBytes || len(v) > source.MaxExtraBytes {
					t.Errorf("extra %.20q of %d bytes kept", k, len(v))
				}
			}
		})
	}
}

func TestTaplinkDecodeLimits(t *testing.T) {
	long := strings.Repeat("я", source.MaxValueBytes/2+1)
	half := strings.Repeat("я", source.MaxValueBytes/4)
	records := func(n int) string {
		return `{"data":{"phone":"1","records":[` + strings.Repeat(`{"type":"1","value":"v"},`, n-1) + `{"type":"1","value":"v"}]}}`
	}
	tests := []struct {
		name, body string
		status     int
		msg        string
	}{
		{"records at the limit", records(source.MaxFields), 0, ""},
		{"too many records", records(source.MaxFields + 1), 413, "Too many fields"},
		{"record value too long", `{"data":{"phone":"1","records":[{"type":"1","value":"` + long + `"}]}}`, 422, "data.records.value is too long"},
		{"record list value too long", `{"data":{"phone":"1","records":[{"value":["` + half + `","` + half + `"]}]}}`, 422, "data.records.value is too long"},
		{"name too long", `{"data":{"phone":"1","fullname":"` + long + `"}}`, 422, "data.fullname is too long"},
		{"phone too long", `{"data":{"phone":"` + strings.Repeat("7", source.MaxPhoneBytes+1) + `"}}`, 422, "phone is too long"},
		{"record phone too long", `{"data":{"records":[{"type":"7","value":"` + strings.Repeat("7", source.MaxPhoneBytes+1) + `"}]}}`, 422, "phone is too long"},
		{"duplicate data", `{"data":{"phone":"1"},"data":{"phone":"2"}}`, 422, `Field "data" is sent twice`},
		{"duplicate phone in data", `{"data":{"phone":"1","phone":"2"}}`, 422, "sent twice"},
		{"deep data", `{"data":` + strings.Repeat(`{"a":`, 50000) + `}`, 400, "Malformed payload"},
		{"NUL in a record title", `{"data":{"phone":"1","records":[{"title":"\u0000"}]}}`, 400, "Malformed payload"},
		{"top-level array", `[{"data":{"phone":"1"}}]`, 400, "Malformed payload"},
		{"top-level string", `"data"`, 400, "Malformed payload"},
		{"top-level number", `12`, 400, "Malformed payload"},
		{"data null", `{"data":null}`, 422, "data must be an object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := source.Taplink{}.Decode(source.Request{Body: []byte(tt.body), ContentType: ctJSON})
			checkDecodeResult(t, d, err)
			if tt.status == 0 {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("decoded %+v", d)
			}
			decodeErr(t, err, tt.status, tt.msg)
		})
	}
	t.Run("long extras not kept", func(t *testing.T) {
		d := decodeTaplink(t, `{"data":{"phone":"1","page_title":"`+strings.Repeat("x", source.MaxExtraBytes+1)+`","utm_source":"vk"}}`)
		if _, ok := d.Extras["page_title"]; ok || d.Extras["utm_source"] != "vk" {
			t.Errorf("extras = %v", d.Extras)
		}
	})
}

// Hostile bodies at the largest maxBodyBytes (10 MiB) cost linear time.
func TestDecodeHostileTime(t *testing.T) {
	const size = 10 << 20
	for name, body := range map[string]string{
		"brackets":      strings.Repeat("[", size),
		"nested object": `{"a":` + strings.Repeat(`{"a":`, size/5),
		"one string":    `{"phone":"1","comment":"` + strings.Repeat("x", size) + `"}`,
		"many values":   `{"phone":"1","l":[` + strings.Repeat("1,", size/2) + `1]}`,
		"many pairs":    strings.Repeat("a=1&", size/4),
		"many parts":    strings.Repeat("--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n", size/48) + "--b--\r\n",
	} {
		for _, ct := range []string{ctJSON, ctForm, "multipart/form-data; boundary=b"} {
			start := time.Now()
			d, err := source.Generic{}.Decode(source.Request{Body: []byte(body), ContentType: ct})
			checkDecodeResult(t, d, err)
			if elapsed := time.Since(start); elapsed > 5*time.Second {
				t.Errorf("%s as %s: %s", name, ct, elapsed)
			}
		}
	}
}
