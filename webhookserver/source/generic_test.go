package source_test

import (
	"bytes"
	"maps"
	"mime/multipart"
	"net/http"
	"net/url"
	"testing"

	"golang.org/x/text/encoding/charmap"

	"github.com/leadhook/leadhook/webhookserver/lead"
	"github.com/leadhook/leadhook/webhookserver/source"
)

const (
	ctJSON = "application/json"
	ctForm = "application/x-www-form-urlencoded"
)

// multipartBody encodes fields (name, value pairs) as multipart/form-data, plus one file part
// that a decoder must ignore.
func multipartBody(t *testing.T, fields ...string) (body []byte, contentType string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for i := 0; i+1 < len(fields); i += 2 {
		if err := w.WriteField(fields[i], fields[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	fw, err := w.CreateFormFile("attachment", "phone.txt")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fw.Write([]byte("+70000000000"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), w.FormDataContentType()
}

// cp1251 encodes s in windows-1251.
func cp1251(t *testing.T, s string) string {
	t.Helper()
	b, err := charmap.Windows1251.NewEncoder().String(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGenericDecode(t *testing.T) {
	seed := fixture(t, "generic-seed.json")
	seedFields := lead.Fields{
		ClientName: "John Doe", Phone: "+972501234567", Email: "john@example.com",
		URL: "https://example.com/form", FormID: "contact_form_123",
		Comment: "Patient interested in consultation", CreatedAt: "2023-08-23 06:49:51",
	}
	mp, mpType := multipartBody(t, "client_name", "Test Patient", "Phone", "+972501234567", "utm_source", "google", "phone", "")

	tests := []struct {
		name       string
		ct         string
		body       string
		want       lead.Fields
		wantExtras map[string]string
	}{
		{name: "seed JSON", ct: ctJSON, body: string(seed), want: seedFields},
		{name: "seed JSON, media type case and charset", ct: "Application/JSON; Charset=UTF-8", body: string(seed), want: seedFields},
		{name: "seed JSON, no content type (sniffed)", ct: "", body: string(seed), want: seedFields},
		{name: "JSON suffix media type", ct: "application/vnd.api+json", body: `{"phone":"1"}`, want: lead.Fields{Phone: "1"}},
		{name: "text/json", ct: "text/json", body: `{"phone":"1"}`, want: lead.Fields{Phone: "1"}},
		{name: "leading UTF-8 BOM", ct: ctJSON, body: "\xef\xbb\xbf" + `{"phone":"1","name":"Иван"}`, want: lead.Fields{Phone: "1", ClientName: "Иван"}},
		{name: "BOM and no content type", ct: "", body: "\xef\xbb\xbf" + ` {"phone":"1"}`, want: lead.Fields{Phone: "1"}},
		{
			name: "numbers, booleans and null as text",
			ct:   ctJSON,
			body: `{"phone":79001234567,"form_id":17,"comment":true,"email":null,"url":1.5e3}`,
			want: lead.Fields{Phone: "79001234567", FormID: "17", Comment: "true", URL: "1.5e3"},
		},
		{
			name: "JSON in windows-1251",
			ct:   "application/json; charset=windows-1251",
			body: cp1251(t, `{"phone":"1","client_name":"Иван Тестов"}`),
			want: lead.Fields{Phone: "1", ClientName: "Иван Тестов"},
		},
		{
			name: "aliases, any case, surrounding space in names",
			ct:   ctJSON,
			body: `{"Phone":"+1","Name":"John","E-Mail":"j@example.com","PAGE_URL":"https://x","FormId":"f","Message":"hi"," created_at ":"1692773391"}`,
			want: lead.Fields{Phone: "+1", ClientName: "John", Email: "j@example.com", URL: "https://x", FormID: "f", Comment: "hi", CreatedAt: "1692773391"},
		},
		{
			name:       "preferred alias wins, the other kept as extra",
			ct:         ctJSON,
			body:       `{"client_name":"John","name":"Johnny","tel":"2","phone":"1"}`,
			want:       lead.Fields{ClientName: "John", Phone: "1"},
			wantExtras: map[string]string{"name": "Johnny", "tel": "2"},
		},
		{
			name: "empty preferred alias falls through to the next",
			ct:   ctJSON,
			body: `{"client_name":"","fullname":"Jane","phone":" ","telephone":"3","text":"note"}`,
			want: lead.Fields{ClientName: "Jane", Phone: "3", Comment: "note"},
		},
		{
			name:       "extras: other scalars kept, blanks and structures dropped",
			ct:         ctJSON,
			body:       `{"phone":"1","utm_source":"google","Page":"/ru","n":5,"ok":false,"blank":" ","none":null,"obj":{"a":1},"list":[1]}`,
			want:       lead.Fields{Phone: "1"},
			wantExtras: map[string]string{"utm_source": "google", "Page": "/ru", "n": "5", "ok": "false"},
		},
		{
			name: "urlencoded fixture",
			ct:   ctForm,
			body: string(fixture(t, "generic-form.txt")),
			want: lead.Fields{ClientName: "Test Patient", Phone: "+972501234567", Email: "test@example.com", Comment: "call me after 5", FormID: "footer_form"},
		},
		{
			name:       "urlencoded, media type case and charset, extras",
			ct:         "Application/X-WWW-Form-URLEncoded; Charset=UTF-8",
			body:       "Phone=%2B79001234567&Name=%D0%98%D0%B2%D0%B0%D0%BD&utm_source=vk",
			want:       lead.Fields{Phone: "+79001234567", ClientName: "Иван"},
			wantExtras: map[string]string{"utm_source": "vk"},
		},
		{
			name: "urlencoded, repeated key: first non-blank value",
			ct:   ctForm,
			body: "phone=&phone=+&phone=123&phone=456",
			want: lead.Fields{Phone: "123"},
		},
		{
			// Old form pages send their own charset's bytes, percent-encoded as browsers do.
			name:       "urlencoded windows-1251, percent-encoded",
			ct:         ctForm + "; charset=windows-1251",
			body:       "phone=1&client_name=" + url.QueryEscape(cp1251(t, "Иван Тестов")) + "&" + url.QueryEscape(cp1251(t, "город")) + "=" + url.QueryEscape(cp1251(t, "Хайфа")),
			want:       lead.Fields{Phone: "1", ClientName: "Иван Тестов"},
			wantExtras: map[string]string{"город": "Хайфа"},
		},
		{
			name: "urlencoded windows-1251, raw bytes",
			ct:   ctForm + "; charset=cp1251",
			body: "phone=1&client_name=" + cp1251(t, "Иван"),
			want: lead.Fields{Phone: "1", ClientName: "Иван"},
		},
		{
			name:       "multipart, file part ignored",
			ct:         mpType,
			body:       string(mp),
			want:       lead.Fields{ClientName: "Test Patient", Phone: "+972501234567"},
			wantExtras: map[string]string{"utm_source": "google"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := source.Generic{}.Decode(source.Request{Body: []byte(tt.body), ContentType: tt.ct, Header: http.Header{}})
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if d.Probe {
				t.Error("decoded as a probe")
			}
			if d.Fields != tt.want {
				t.Errorf("Fields = %+v\nwant     %+v", d.Fields, tt.want)
			}
			if !maps.Equal(d.Extras, tt.wantExtras) {
				t.Errorf("Extras = %q, want %q", d.Extras, tt.wantExtras)
			}
			if d.SourceID != "" || d.Notes != nil {
				t.Errorf("generic lead has source id %q, notes %v", d.SourceID, d.Notes)
			}
		})
	}
}

func TestGenericDecodeRejects(t *testing.T) {
	const malformed = "Malformed payload"
	badName, badNameType := []byte("--b\r\nContent-Disposition: form-data; name=\"\xff\"\r\n\r\nv\r\n"+
		"--b\r\nContent-Disposition: form-data; name=\"phone\"\r\n\r\n1\r\n--b--\r\n"), "multipart/form-data; boundary=b"
	badValue, badValueType := multipartBody(t, "phone", "1\xff")

	tests := []struct {
		name   string
		ct     string
		body   string
		status int
		msg    string // contained in the message
	}{
		// Not parseable: 400 with the contract's text.
		{"bad JSON", ctJSON, `{"phone":`, 400, malformed},
		{"empty body", ctJSON, "", 400, malformed},
		{"blank body", ctJSON, " \r\n\t", 400, malformed},
		{"BOM only", ctJSON, "\xef\xbb\xbf", 400, malformed},
		{"empty form", ctForm, "", 400, malformed},
		{"invalid UTF-8 in JSON", ctJSON, "{\"phone\":\"1\",\"name\":\"\xff\"}", 400, malformed},
		{"trailing object", ctJSON, `{"phone":"1"} {"phone":"2"}`, 400, malformed},
		{"trailing garbage", ctJSON, `{"phone":"1"}x`, 400, malformed},
		{"top-level array", ctJSON, `[{"phone":"1"}]`, 400, malformed},
		{"top-level array, sniffed", "", `[{"phone":"1"}]`, 400, malformed},
		{"top-level null", ctJSON, `null`, 400, malformed},
		{"top-level string", ctJSON, `"phone"`, 400, malformed},
		{"form bad escape", ctForm, "phone=%zz", 400, malformed},
		{"form invalid UTF-8, raw", ctForm, "phone=1&name=\xff", 400, malformed},
		{"form invalid UTF-8, percent-encoded", ctForm, "phone=1&name=%FF", 400, malformed},
		{"form invalid UTF-8 in a name", ctForm, "phone=1&%C3=x", 400, malformed},
		{"multipart without boundary", "multipart/form-data", "--b\r\n\r\n--b--", 400, malformed},
		{"multipart truncated", "multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"phone\"\r\n\r\n1", 400, malformed},
		{"multipart invalid UTF-8 value", badValueType, string(badValue), 400, malformed},
		{"multipart invalid UTF-8 name", badNameType, string(badName), 400, malformed},
		// Not a media type or charset we read: 415.
		{"text/plain", "text/plain", `{"phone":"1"}`, 415, "text/plain"},
		{"XML", "application/xml", `<phone>1</phone>`, 415, "application/xml"},
		{"unparseable media type", "json", `{"phone":"1"}`, 415, "Unsupported media type"},
		{"no content type, not JSON", "", "phone=1", 415, "Content-Type is required"},
		{"unknown charset", "application/json; charset=x-klingon", `{"phone":"1"}`, 415, "x-klingon"},
		{"unknown charset, form", ctForm + "; charset=x-klingon", "phone=1", 415, "x-klingon"},
		// Lead fields that are not text: 422 naming the field.
		{"phone array", ctJSON, `{"phone":["1","2"]}`, 422, "phone"},
		{"phone object, any case", ctJSON, `{"Phone":{"number":"1"}}`, 422, "phone"},
		{"phone alias array", ctJSON, `{"tel":[1]}`, 422, "phone"},
		{"email array", ctJSON, `{"phone":"1","email":["a@b.c"]}`, 422, "email"},
		{"client name object", ctJSON, `{"phone":"1","name":{"first":"J"}}`, 422, "client_name"},
		{"created_at array", ctJSON, `{"phone":"1","created_at":[2023]}`, 422, "created_at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := source.Generic{}.Decode(source.Request{Body: []byte(tt.body), ContentType: tt.ct})
			if err == nil {
				t.Fatalf("Decode succeeded: %+v", d)
			}
			se := decodeErr(t, err, tt.status, tt.msg)
			if tt.status == 400 && se.Message != malformed {
				t.Errorf("message = %q, want exactly %q", se.Message, malformed)
			}
		})
	}
}

func TestGenericProbes(t *testing.T) {
	tests := []struct {
		name  string
		ct    string
		body  string
		probe bool
	}{
		{"Tilda form test=test", ctForm, "test=test", true},
		{"Tilda JSON test", ctJSON, `{"test":"test"}`, true},
		{"Google is_test true", ctJSON, `{"is_test":true,"phone":"1"}`, true},
		{"Google is_test \"true\"", ctJSON, `{"is_test":"true"}`, true},
		{"is_test any case", ctJSON, `{"is_test":"TRUE"}`, true},
		{"is_test in a form", ctForm, "is_test=true&phone=1", true},
		{"is_test false", ctJSON, `{"is_test":false,"phone":"1"}`, false},
		{"test with another value", ctForm, "test=yes&phone=1", false},
		{"a field merely named test", ctJSON, `{"test":"","phone":"1"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := source.Generic{}.Decode(source.Request{Body: []byte(tt.body), ContentType: tt.ct})
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if d.Probe != tt.probe {
				t.Errorf("Probe = %v, want %v", d.Probe, tt.probe)
			}
			if tt.probe && d.Fields != (lead.Fields{}) {
				t.Errorf("probe carries fields %+v", d.Fields)
			}
			if !tt.probe && d.Fields.Phone != "1" {
				t.Errorf("Phone = %q, want 1", d.Fields.Phone)
			}
		})
	}
}

// The same field sent twice in different case: the non-empty one is the lead's.
func TestGenericDecodeCaseVariants(t *testing.T) {
	for _, body := range []string{`{"Phone":"","phone":"+972507654321"}`, `{"phone":"","Phone":"+972507654321"}`} {
		d, err := source.Generic{}.Decode(source.Request{Body: []byte(body), ContentType: ctJSON})
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if d.Fields.Phone != "+972507654321" {
			t.Errorf("%s: phone %q", body, d.Fields.Phone)
		}
	}
}
