package webhookserver_test

// Hostile input through the real handler and store: whatever a sender (or anyone who found
// the URL) posts, the answer is one of the contract's 4xx with its JSON body, never a 5xx or
// a panic; no lead is stored; and what was sent is kept in the intake log (size-capped).

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"mime/multipart"
	"strings"
	"testing"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"

	"github.com/leadhook/leadhook/api/v1alpha1"
	"github.com/leadhook/leadhook/webhookserver/source"
	"github.com/leadhook/leadhook/webhookserver/store"
)

// The contract's messages for the rows these tests hit.
const (
	errMalformed     = "Malformed payload"
	errTooLarge      = "Payload too large"
	errTooManyFields = "Too many fields"
	errPhoneRequired = "Phone is required"
)

// hostileMultipart is a multipart form of n fields f0..f(n-1) plus a phone.
func hostileMultipart(t *testing.T, n int, extra ...string) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	_ = w.WriteField("phone", "+972501234567")
	for i := range n {
		_ = w.WriteField(fmt.Sprintf("f%d", i), "v")
	}
	for i := 0; i+1 < len(extra); i += 2 {
		_ = w.WriteField(extra[i], extra[i+1])
	}
	_ = w.Close()
	return buf.Bytes(), w.FormDataContentType()
}

// gzipBomb is a small gzip stream that expands to n zero bytes.
func gzipBomb(t *testing.T, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	chunk := make([]byte, 1<<20)
	for ; n > 0; n -= len(chunk) {
		_, _ = zw.Write(chunk[:min(n, len(chunk))])
	}
	_ = zw.Close()
	return buf.Bytes()
}

func repeatJSONFields(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"phone":"+972501234567"`)
	for i := range n {
		fmt.Fprintf(&b, `,"f%d":1`, i)
	}
	b.WriteString("}")
	return []byte(b.String())
}

// bigLimit lets bodies up to 1 MiB reach the decoder.
func bigLimit(s *v1alpha1.LeadIntegrationSpec) { s.MaxBodyBytes = 1 << 20 }

type hostileCase struct {
	name    string
	path    string
	ct      string
	body    []byte
	headers []string
	big     bool // the integration takes 1 MiB bodies (else the default 64 KiB)
	code    int
	err     string // the exact error, or a prefix ending in "…"
}

func TestHostileInput(t *testing.T) {
	jsonHuge := []byte(`{"phone":"+972501234567","comment":"` + strings.Repeat("x", 70<<10) + `"}`)
	formHuge := []byte("phone=%2B972501234567&comment=" + strings.Repeat("x", 70<<10))
	mpHuge, mpHugeType := hostileMultipart(t, 0, "comment", strings.Repeat("x", 70<<10))
	mpMany, mpManyType := hostileMultipart(t, 2000)
	mpLong, mpLongType := hostileMultipart(t, 0, "comment", strings.Repeat("я", source.MaxValueBytes))
	utf16, _ := unicode.UTF16(unicode.LittleEndian, unicode.UseBOM).NewEncoder().Bytes([]byte(`{"phone":"+972501234567"}`))
	longPhone := []byte(`{"phone":"+972` + strings.Repeat("5", 200) + `"}`)
	records := func(n int) []byte {
		return []byte(`{"action":"leads.created","data":{"phone":"+79001234567","records":[` +
			strings.Repeat(`{"type":"1","idx":"1","title":"t","value":"v"},`, n) + `{"type":"1","value":"v"}]}}`)
	}

	cases := []hostileCase{
		// Bytes that are not UTF-8 text, or text with NUL and control characters: 400.
		{name: "json invalid utf-8", ct: jsonType, body: []byte("{\"phone\":\"+972501234567\",\"comment\":\"\xc3\x28\"}"), code: 400, err: errMalformed},
		{name: "json overlong utf-8", ct: jsonType, body: []byte("{\"phone\":\"+972501234567\",\"comment\":\"\xc0\xaf\"}"), code: 400, err: errMalformed},
		{name: "json utf-8 surrogate bytes", ct: jsonType, body: []byte("{\"phone\":\"+972501234567\",\"comment\":\"\xed\xa0\x80\"}"), code: 400, err: errMalformed},
		{name: "form invalid utf-8", ct: formType, body: []byte("phone=%2B972501234567&comment=%C3%28"), code: 400, err: errMalformed},
		{name: "multipart invalid utf-8", ct: "multipart/form-data; boundary=b", body: []byte("--b\r\nContent-Disposition: form-data; name=\"phone\"\r\n\r\n+972501234567\xff\r\n--b--\r\n"), code: 400, err: errMalformed},
		{name: "json nul escape", ct: jsonType, body: []byte(`{"phone":"+972501234567\u0000"}`), code: 400, err: errMalformed},
		{name: "json escape sequence in a key", ct: jsonType, body: []byte(`{"phone":"+972501234567","\u001b]0;pwned\u0007":"x"}`), code: 400, err: errMalformed},
		{name: "form nul", ct: formType, body: []byte("phone=%2B972501234567%00"), code: 400, err: errMalformed},
		{name: "raw nul in json", ct: jsonType, body: []byte("{\"phone\":\"+972501234567\"}\x00"), code: 400, err: errMalformed},
		// Declared charsets.
		{name: "unknown charset", ct: jsonType + "; charset=x-klingon", body: []byte(`{"phone":"+972501234567"}`), code: 415, err: `Unsupported charset "x-klingon"`},
		{name: "charset that decodes to nothing", ct: jsonType + "; charset=hz-gb-2312", body: []byte(`{"phone":"+972501234567"}`), code: 415, err: `Unsupported charset "hz-gb-2312"`},
		{name: "form unknown charset", ct: formType + "; charset=ebcdic-cp-us", body: []byte("phone=1"), code: 415, err: `Unsupported charset "ebcdic-cp-us"`},
		{name: "bytes invalid in the charset", ct: jsonType + "; charset=shift_jis", body: []byte("{\"phone\":\"+972501234567\",\"comment\":\"\x81\"}"), code: 400, err: errMalformed},
		{name: "utf-16 odd length", ct: jsonType, body: append(append([]byte{}, utf16...), 'x'), code: 400, err: errMalformed},
		// Nesting: never deeper than 32, never more than the stack or linear time.
		{name: "deep nesting over the body limit", ct: jsonType, body: bytes.Repeat([]byte("["), 100000), code: 413, err: errTooLarge},
		{name: "100k brackets", ct: jsonType, body: bytes.Repeat([]byte("["), 100000), big: true, code: 400, err: errMalformed},
		{name: "100k brackets in a field", ct: jsonType, body: append([]byte(`{"phone":"+972501234567","x":`), bytes.Repeat([]byte("["), 100000)...), big: true, code: 400, err: errMalformed},
		{name: "100k objects", ct: "", body: bytes.Repeat([]byte(`{"a":`), 100000), big: true, code: 400, err: errMalformed},
		{name: "33 levels", ct: jsonType, body: []byte(`{"phone":"+972501234567","x":` + strings.Repeat("[", 32) + strings.Repeat("]", 32) + `}`), code: 400, err: errMalformed},
		// Over the integration's limit: 413 before any parsing, for every media type.
		{name: "huge json", ct: jsonType, body: jsonHuge, code: 413, err: errTooLarge},
		{name: "huge form", ct: formType, body: formHuge, code: 413, err: errTooLarge},
		{name: "huge multipart", ct: mpHugeType, body: mpHuge, code: 413, err: errTooLarge},
		{name: "huge body, no content type", body: bytes.Repeat([]byte("A"), 1<<20), code: 413, err: errTooLarge},
		// Thousands of fields within the byte limit: 413 Too many fields.
		{name: "thousands of json fields", ct: jsonType, body: repeatJSONFields(3000), code: 413, err: errTooManyFields},
		{name: "thousands of json values", ct: jsonType, body: []byte(`{"phone":"+972501234567","x":[` + strings.Repeat("[1,1,1,1,1,1,1,1],", 600) + `1]}`), code: 413, err: errTooManyFields},
		{name: "thousands of form pairs", ct: formType, body: []byte("phone=%2B972501234567" + strings.Repeat("&a=1", 5000)), code: 413, err: errTooManyFields},
		{name: "thousands of multipart parts", ct: mpManyType, body: mpMany, big: true, code: 413, err: errTooManyFields},
		// Long values: kept to the limit, else a 422 naming the field; a phone is never cut.
		{name: "phone too long", ct: jsonType, body: longPhone, code: 422, err: "Field phone is too long (at most 128 bytes)"},
		{name: "comment too long", ct: mpLongType, body: mpLong, code: 422, err: "Field comment is too long (at most 16384 bytes)"},
		// Empty bodies, nulls, wrong shapes and types.
		{name: "empty json", ct: jsonType, body: nil, code: 400, err: errMalformed},
		{name: "empty, no content type", body: nil, code: 400, err: errMalformed},
		{name: "empty form", ct: formType, body: nil, code: 400, err: errMalformed},
		{name: "empty multipart", ct: "multipart/form-data; boundary=b", body: nil, code: 400, err: errMalformed},
		{name: "multipart body without boundaries", ct: "multipart/form-data; boundary=b", body: []byte("phone=+972501234567"), code: 400, err: errMalformed},
		{name: "null", ct: jsonType, body: []byte(`null`), code: 400, err: errMalformed},
		{name: "top-level array", ct: jsonType, body: []byte(`[{"phone":"+972501234567"}]`), code: 400, err: errMalformed},
		{name: "top-level string", ct: jsonType, body: []byte(`"+972501234567"`), code: 400, err: errMalformed},
		{name: "top-level number", ct: jsonType, body: []byte(`972501234567`), code: 400, err: errMalformed},
		{name: "null phone", ct: jsonType, body: []byte(`{"phone":null,"client_name":null}`), code: 422, err: errPhoneRequired},
		{name: "phone array", ct: jsonType, body: []byte(`{"phone":["+972501234567"]}`), code: 422, err: "Field phone must be a string"},
		{name: "phone object", ct: jsonType, body: []byte(`{"phone":{"$gt":""}}`), code: 422, err: "Field phone must be a string"},
		{name: "duplicate keys", ct: jsonType, body: []byte(`{"phone":"+972501234567","phone":"+972507654321"}`), code: 422, err: `Field "phone" is sent twice`},
		// Content-Type and Content-Encoding.
		{name: "garbage content type", ct: "(((;;=\"", body: []byte(`{"phone":"+972501234567"}`), code: 415, err: "Unsupported media type"},
		{name: "no content type, not json", body: []byte("phone=%2B972501234567"), code: 415, err: "Content-Type is required"},
		{name: "content type with duplicate parameters", ct: "application/json; charset=utf-8; Charset=koi8-r", body: []byte(`{"phone":"+972501234567"}`), code: 415, err: "Unsupported media type"},
		{name: "gzip bomb", ct: jsonType, headers: []string{"Content-Encoding", "gzip"}, body: gzipBomb(t, 64<<20), code: 415, err: `Unsupported Content-Encoding "gzip"…`},
		{name: "gzip, odd case", ct: jsonType, headers: []string{"Content-Encoding", "GZip"}, body: gzipBomb(t, 100), code: 415, err: `Unsupported Content-Encoding "GZip"…`},

		// Taplink (signed: the decoder is reached only after the signature is checked).
		{name: "taplink invalid utf-8", path: taplinkPath, ct: jsonType, body: []byte("{\"data\":{\"phone\":\"+79001234567\",\"fullname\":\"\xff\"}}"), code: 400, err: errMalformed},
		{name: "taplink nul in a record", path: taplinkPath, ct: jsonType, body: []byte(`{"data":{"phone":"+79001234567","records":[{"title":"\u0000","value":"x"}]}}`), code: 400, err: errMalformed},
		{name: "taplink 100k brackets", path: taplinkPath, ct: jsonType, body: append([]byte(`{"data":`), bytes.Repeat([]byte("["), 100000)...), big: true, code: 400, err: errMalformed},
		{name: "taplink deep data over the limit", path: taplinkPath, ct: jsonType, body: bytes.Repeat([]byte(`{"data":`), 20000), code: 413, err: errTooLarge},
		{name: "taplink too many records", path: taplinkPath, ct: jsonType, body: records(300), big: true, code: 413, err: errTooManyFields},
		{name: "taplink duplicate data", path: taplinkPath, ct: jsonType, body: []byte(`{"data":{"phone":"+79001234567"},"data":{"phone":"+79001234568"}}`), code: 422, err: `Field "data" is sent twice`},
		{name: "taplink data null", path: taplinkPath, ct: jsonType, body: []byte(`{"action":"leads.created","data":null}`), code: 422, err: "Field data must be an object"},
		{name: "taplink phone number type", path: taplinkPath, ct: jsonType, body: []byte(`{"data":{"phone":["+79001234567"]}}`), code: 422, err: "Field data.phone must be a string"},
		{name: "taplink top-level array", path: taplinkPath, ct: jsonType, body: []byte(`[{"data":{"phone":"+79001234567"}}]`), code: 400, err: errMalformed},
		{name: "taplink empty body", path: taplinkPath, ct: jsonType, body: nil, code: 400, err: errMalformed},
		{name: "taplink form", path: taplinkPath, ct: formType, body: []byte("data[phone]=%2B79001234567"), code: 415, err: "Unsupported media type…"},
		{name: "taplink gzip", path: taplinkPath, ct: jsonType, headers: []string{"Content-Encoding", "gzip"}, body: gzipBomb(t, 1<<20), code: 415, err: "Unsupported Content-Encoding…"},
		{name: "taplink unknown charset", path: taplinkPath, ct: jsonType + "; charset=klingon", body: []byte(`{"data":{"phone":"+79001234567"}}`), code: 415, err: `Unsupported charset "klingon"`},
		{name: "taplink huge body", path: taplinkPath, ct: jsonType, body: append([]byte(`{"data":{"phone":"+79001234567","x":"`), bytes.Repeat([]byte("x"), 1<<20)...), code: 413, err: errTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runHostile(t, c) })
	}
}

// runHostile posts one hostile delivery and checks answer, store and intake log.
func runHostile(t *testing.T, c hostileCase) {
	path := c.path
	if path == "" {
		path = genericPath
	}
	var e *env
	switch {
	case c.big:
		e = newEnv(t, integration("website", v1alpha1.SourceGeneric, bigLimit),
			integration("taplink", v1alpha1.SourceTaplink, signedWith("taplink-signing"), bigLimit))
	default:
		e = newEnv(t)
	}
	headers := append([]string{"taplink-signature", taplinkSignature(taplinkKey, c.body)}, c.headers...)
	r := e.post(path, c.ct, c.body, headers...)
	if r.Code >= 500 {
		t.Fatalf("hostile input answered %d: %s", r.Code, r.Raw)
	}
	r.expect(t, c.code, false, "")
	if _, extra := r.Body["lead_id"]; extra || len(r.Body) != 2 {
		t.Errorf("answer %s: want exactly status and error", r.Raw)
	}
	got, _ := r.Body["error"].(string)
	if want, prefix := strings.CutSuffix(c.err, "…"); prefix && !strings.HasPrefix(got, want) || !prefix && got != c.err {
		t.Errorf("error = %q, want %q", got, c.err)
	}
	e.expectNoLeads()
	entry := e.intake(1)[0]
	if entry.Status != c.code || entry.Outcome != "rejected" || entry.Error != got {
		t.Errorf("intake entry: status %d outcome %q error %q", entry.Status, entry.Outcome, entry.Error)
	}
	checkKept(t, entry, c.body)
}

// checkKept checks the intake log kept what was sent: all of it up to MaxIntakeBody (as text
// when UTF-8, else as bytes), marked truncated when it kept less.
func checkKept(t *testing.T, entry store.IntakeEntry, body []byte) {
	t.Helper()
	kept := []byte(entry.Body)
	if entry.BodyBinary != nil {
		kept = entry.BodyBinary
	}
	if len(body) <= store.MaxIntakeBody {
		if !bytes.Equal(kept, body) || entry.Truncated {
			t.Errorf("intake log kept %d of %d bytes (truncated %v), want all", len(kept), len(body), entry.Truncated)
		}
		return
	}
	if !bytes.HasPrefix(body, kept) || len(kept) != store.MaxIntakeBody || !entry.Truncated {
		t.Errorf("intake log kept %d of %d bytes (truncated %v), want the first %d", len(kept), len(body), entry.Truncated, store.MaxIntakeBody)
	}
}

// Hostile-looking bodies that are real leads: decoded, not rejected.
func TestHostileInputAccepted(t *testing.T) {
	koi8, _ := charmap.KOI8R.NewEncoder().Bytes([]byte(`{"phone":"+79001234567","client_name":"Иван"}`))
	cp1251, _ := charmap.Windows1251.NewEncoder().Bytes([]byte(`{"phone":"+79001234567","client_name":"Иван"}`))
	utf16, _ := unicode.UTF16(unicode.LittleEndian, unicode.UseBOM).NewEncoder().Bytes([]byte(`{"phone":"+79001234567","client_name":"Иван"}`))
	utf16be, _ := unicode.UTF16(unicode.BigEndian, unicode.UseBOM).NewEncoder().Bytes([]byte(`{"phone":"+79001234567","client_name":"Иван"}`))
	mpFile := func() ([]byte, string) {
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		_ = w.WriteField("phone", "+79001234567")
		_ = w.WriteField("client_name", "Иван")
		fw, _ := w.CreateFormFile("cv", "cv.bin")
		_, _ = fw.Write(bytes.Repeat([]byte{0, 0xff}, 20<<10)) // binary file bytes are not a field
		_ = w.Close()
		return buf.Bytes(), w.FormDataContentType()
	}
	mp, mpType := mpFile()
	cases := []struct {
		name, ct string
		body     []byte
		headers  []string
	}{
		{"koi8-r", "application/json; charset=koi8-r", koi8, nil},
		{"windows-1251, odd case", "Application/JSON;Charset=\"Windows-1251\"", cp1251, nil},
		{"utf-16 with bom, declared utf-16", "application/json; charset=utf-16", utf16, nil},
		{"utf-16 with bom, undeclared", "application/json", utf16, nil},
		{"utf-16be with bom, no content type", "", utf16be, nil},
		{"utf-8 bom", "application/json", append([]byte("\xef\xbb\xbf"), `{"phone":"+79001234567","client_name":"Иван"}`...), nil},
		{"form koi8-r", formType + "; charset=koi8-r", []byte("phone=%2B79001234567&client_name=%E9%D7%C1%CE"), nil},
		{"multipart with a binary file", mpType, mp, nil},
		{"identity encoding", jsonType, []byte(`{"phone":"+79001234567","client_name":"Иван"}`), []string{"Content-Encoding", "identity"}},
		{"255 extra fields", jsonType, []byte(strings.Replace(string(repeatJSONFields(254)), `"phone":"+972501234567"`, `"phone":"+79001234567","client_name":"Иван"`, 1)), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			e.post(genericPath, c.ct, c.body, c.headers...).expectStored(t)
			if l := e.onlyLead(); l.Phone.E164 != "+79001234567" || l.ClientName != "Иван" {
				t.Errorf("lead phone %q name %q", l.Phone.E164, l.ClientName)
			}
		})
	}
}
