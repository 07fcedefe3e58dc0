package source

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/url"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/leadhook/leadhook/webhookserver/lead"
)

// Generic decodes leadhook's own format, sent as JSON, a urlencoded form or a multipart form.
// Field names are matched case-insensitively, with the aliases form builders use.
type Generic struct{}

// genericAliases lists, per lead field, the names senders use for it, preferred first.
var genericAliases = []struct {
	field   string
	aliases []string
}{
	{"client_name", []string{"client_name", "name", "fullname", "full_name"}},
	{"phone", []string{"phone", "tel", "telephone", "phone_number"}},
	{"email", []string{"email", "e-mail"}},
	{"url", []string{"url", "page_url"}},
	{"form_id", []string{"form_id", "formid"}},
	{"comment", []string{"comment", "message", "text"}},
	{"created_at", []string{"created_at"}},
}

// maxExtras bounds how many other fields are kept with a lead.
const maxExtras = 64

// Decode implements Decoder.
func (Generic) Decode(r Request) (*Decoded, error) {
	b, err := readBody(r)
	if err != nil {
		return nil, err
	}
	var values map[string]any
	switch b.mediaType {
	case mediaJSON:
		if values, err = decodeJSONObject(b.text); err != nil {
			return nil, err
		}
	case mediaForm:
		// Counted before parsing: ParseQuery would allocate every pair first.
		if bytes.Count(b.text, []byte("&"))+1 > MaxFields {
			return nil, ErrTooManyFields
		}
		form, err := url.ParseQuery(string(b.text))
		if err != nil {
			return nil, ErrMalformed
		}
		if form, err = formToUTF8(form, b.params["charset"]); err != nil {
			return nil, err
		}
		values = formValues(form)
	case mediaMultipart:
		if values, err = decodeMultipart(b); err != nil {
			return nil, err
		}
	default:
		return nil, unsupportedMedia("Unsupported media type %s", quoteShort(b.mediaType))
	}
	return genericFromValues(values)
}

// formToUTF8 converts a urlencoded form's names and values from its charset to UTF-8, after
// percent-decoding (browsers percent-encode the bytes of the page's charset), and rejects
// what is then not UTF-8.
func formToUTF8(form url.Values, charset string) (url.Values, error) {
	text := func(s string) (string, error) {
		b, err := toUTF8([]byte(s), charset)
		if err != nil {
			return "", err
		}
		if !utf8.Valid(b) {
			return "", ErrMalformed
		}
		if err := checkText(string(b)); err != nil {
			return "", err
		}
		return string(b), nil
	}
	out := make(url.Values, len(form))
	for k, vs := range form {
		key, err := text(k)
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			s, err := text(v)
			if err != nil {
				return nil, err
			}
			out[key] = append(out[key], s)
		}
	}
	return out, nil
}

// formValues takes, for each form key, its first non-empty value.
func formValues(form url.Values) map[string]any {
	values := make(map[string]any, len(form))
	for k, vs := range form {
		v := ""
		for _, s := range vs {
			if strings.TrimSpace(s) != "" {
				v = s
				break
			}
		}
		values[k] = v
	}
	return values
}

// decodeMultipart reads a multipart form part by part (no temporary files, no copy of a
// file's bytes): at most MaxFields parts; file parts are skipped; a value part is read up
// to MaxValueBytes (a longer one is a 422 if it is a lead field, else not kept), converted
// from the part's own charset and checked like any text.
func decodeMultipart(b *body) (map[string]any, error) {
	boundary := b.params["boundary"]
	if boundary == "" {
		return nil, ErrMalformed
	}
	mr := multipart.NewReader(bytes.NewReader(b.text), boundary)
	form := url.Values{}
	over := map[string]bool{} // names whose value was too long to read
	for parts := 0; ; parts++ {
		p, err := mr.NextPart()
		if err == io.EOF { //nolint:errorlint // only the bare io.EOF is the closing boundary; a wrapped one is a body without any
			break
		}
		if err != nil {
			return nil, ErrMalformed
		}
		if parts >= MaxFields {
			return nil, ErrTooManyFields
		}
		name := p.FormName()
		if name == "" || p.FileName() != "" { // files (and parts without a name) are not lead fields
			if _, err := io.Copy(io.Discard, p); err != nil {
				return nil, ErrMalformed
			}
			continue
		}
		if err := checkText(name); err != nil {
			return nil, err
		}
		v, err := io.ReadAll(io.LimitReader(p, MaxValueBytes+1))
		if err != nil {
			return nil, ErrMalformed
		}
		if len(v) > MaxValueBytes {
			if _, err := io.Copy(io.Discard, p); err != nil {
				return nil, ErrMalformed
			}
			over[name] = true
			continue
		}
		if v, err = partText(p, v); err != nil {
			return nil, err
		}
		form[name] = append(form[name], string(v))
	}
	values := formValues(form)
	for name := range over {
		if s, _ := values[name].(string); strings.TrimSpace(s) == "" {
			values[name] = tooLongValue{}
		}
	}
	return values, nil
}

// partText converts a multipart value from the charset its Content-Type declares to UTF-8
// and checks it.
func partText(p *multipart.Part, v []byte) ([]byte, error) {
	if ct := p.Header.Get("Content-Type"); ct != "" {
		_, params, err := mime.ParseMediaType(ct)
		if err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter) {
			return nil, ErrMalformed
		}
		if v, err = toUTF8(v, params["charset"]); err != nil {
			return nil, err
		}
	}
	if !utf8.Valid(v) {
		return nil, ErrMalformed
	}
	if err := checkText(string(v)); err != nil {
		return nil, err
	}
	return v, nil
}

func genericFromValues(values map[string]any) (*Decoded, error) {
	if isProbe(values) {
		return &Decoded{Probe: true}, nil
	}
	byLower := make(map[string][]string, len(values)) // lower-case name -> names as sent
	for k := range values {
		lk := strings.ToLower(strings.TrimSpace(k))
		byLower[lk] = append(byLower[lk], k)
	}
	d := &Decoded{}
	used := map[string]bool{}
	found := map[string]string{}
	for _, f := range genericAliases {
	aliases:
		for _, alias := range f.aliases {
			keys := byLower[alias]
			sort.Strings(keys) // "Phone" and "phone" both sent: the same choice every time
			for _, key := range keys {
				s, err := fieldText(values, key, f.field)
				if err != nil {
					return nil, err
				}
				used[key] = true
				if strings.TrimSpace(s) != "" {
					found[f.field] = s
					break aliases
				}
			}
		}
	}
	d.Fields = lead.Fields{
		ClientName: found["client_name"],
		Phone:      found["phone"],
		Email:      found["email"],
		URL:        found["url"],
		FormID:     found["form_id"],
		Comment:    found["comment"],
		CreatedAt:  found["created_at"],
	}
	if err := checkPhone(d.Fields.Phone); err != nil {
		return nil, err
	}
	for k, v := range values {
		if used[k] || len(d.Extras) >= maxExtras {
			continue
		}
		if s, ok := extraText(k, v); ok {
			if d.Extras == nil {
				d.Extras = map[string]string{}
			}
			d.Extras[k] = s
		}
	}
	return d, nil
}

// isProbe recognises senders' test deliveries: Tilda's test=test and Google's is_test.
func isProbe(values map[string]any) bool {
	if s, ok := scalarText(values["test"]); ok && s == "test" {
		return true
	}
	s, ok := scalarText(values["is_test"])
	return ok && strings.EqualFold(s, "true")
}
