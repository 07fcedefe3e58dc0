// Package source decodes the request bodies of each lead sender into lead fields. Decoders
// see the exact bytes received and never touch the network or the store.
package source

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/unicode"

	"github.com/leadhook/leadhook/api/v1alpha1"
	"github.com/leadhook/leadhook/webhookserver/lead"
)

// Request is what a decoder may look at.
type Request struct {
	Body        []byte
	ContentType string
	Header      http.Header
}

// Decoded is a decoder's reading of one delivery.
type Decoded struct {
	// Probe is true for a sender's test delivery, which is acknowledged but not stored.
	Probe  bool
	Fields lead.Fields
	Notes  []lead.Note
	// Extras are the other scalar fields the sender sent (page, UTM tags, ids).
	Extras map[string]string
	// SourceID is the sender's own id of the lead, when it has one.
	SourceID string
}

// Decoder reads one source's deliveries.
type Decoder interface {
	Decode(Request) (*Decoded, error)
}

// Error is a delivery the decoder rejects, with the HTTP status and message for the sender.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

// ErrMalformed is a body that cannot be parsed at all.
var ErrMalformed = &Error{Status: http.StatusBadRequest, Message: "Malformed payload"}

func unsupportedMedia(format string, args ...any) *Error {
	return &Error{Status: http.StatusUnsupportedMediaType, Message: fmt.Sprintf(format, args...)}
}

func invalid(format string, args ...any) *Error {
	return &Error{Status: http.StatusUnprocessableEntity, Message: fmt.Sprintf(format, args...)}
}

// Media types a decoder can be asked to read.
const (
	mediaJSON      = "application/json"
	mediaForm      = "application/x-www-form-urlencoded"
	mediaMultipart = "multipart/form-data"
)

// body is a request body in UTF-8 with its media type resolved.
type body struct {
	mediaType string
	params    map[string]string
	text      []byte
}

// readBody resolves the media type (case-insensitively, sniffing JSON when none is declared),
// converts a declared charset to UTF-8, honours a leading byte-order mark and rejects bytes
// that are not UTF-8. Form bodies are left to their decoder, which converts what the escapes
// hide. A compressed body (Content-Encoding) is refused: 415.
func readBody(r Request) (*body, error) {
	for _, ce := range r.Header.Values("Content-Encoding") {
		if v := strings.TrimSpace(ce); v != "" && !strings.EqualFold(v, "identity") {
			return nil, unsupportedMedia("Unsupported Content-Encoding %s: send the body uncompressed", quoteShort(v))
		}
	}
	if len(bytes.TrimSpace(r.Body)) == 0 {
		return nil, ErrMalformed
	}
	b := &body{}
	ct := strings.TrimSpace(r.ContentType)
	if ct != "" {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter) {
			return nil, unsupportedMedia("Unsupported media type")
		}
		b.mediaType, b.params = canonicalMedia(mt), params
	}
	text := r.Body
	switch b.mediaType {
	case mediaMultipart: // multipart parts carry their own charsets
	case mediaForm: // the charset applies to the names and values once percent-decoded (formToUTF8)
		if _, err := toUTF8(nil, b.params["charset"]); err != nil {
			return nil, err
		}
		text = bytes.TrimPrefix(text, utf8BOM)
	default:
		var err error
		if text, err = decodeText(text, b.params["charset"]); err != nil {
			return nil, err
		}
		if !utf8.Valid(text) {
			return nil, ErrMalformed
		}
		if b.mediaType == "" {
			if !looksLikeJSON(text) {
				return nil, unsupportedMedia("Content-Type is required")
			}
			b.mediaType = mediaJSON
		}
	}
	if len(bytes.TrimSpace(text)) == 0 {
		return nil, ErrMalformed
	}
	b.text = text
	return b, nil
}

// canonicalMedia folds JSON aliases into application/json.
func canonicalMedia(mt string) string {
	switch {
	case mt == "text/json", strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"):
		return mediaJSON
	}
	return mt
}

func looksLikeJSON(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && (b[0] == '{' || b[0] == '[')
}

// Byte-order marks.
var (
	utf8BOM    = []byte("\xef\xbb\xbf")
	utf16LEBOM = []byte("\xff\xfe")
	utf16BEBOM = []byte("\xfe\xff")
)

// decodeText converts a text body to UTF-8. A byte-order mark decides the encoding, whatever
// the declared charset says (as browsers do): UTF-8's is dropped, UTF-16's (little or big
// endian) is decoded. Without one, the declared charset is used.
func decodeText(text []byte, charset string) ([]byte, error) {
	switch {
	case bytes.HasPrefix(text, utf8BOM):
		return text[len(utf8BOM):], nil
	case bytes.HasPrefix(text, utf16LEBOM):
		return transcode(unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM), text[len(utf16LEBOM):])
	case bytes.HasPrefix(text, utf16BEBOM):
		return transcode(unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM), text[len(utf16BEBOM):])
	}
	out, err := toUTF8(text, charset)
	if err != nil {
		return nil, err
	}
	return bytes.TrimPrefix(out, utf8BOM), nil
}

// toUTF8 converts text in a declared charset to UTF-8. An unknown charset, or one that
// cannot carry text (WHATWG's "replacement", "x-user-defined"), is a 415; bytes that are
// not valid in the charset are a 400.
func toUTF8(text []byte, charset string) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(charset)) {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
		return text, nil
	}
	enc, err := htmlindex.Get(charset)
	if err != nil {
		return nil, unsupportedMedia("Unsupported charset %s", quoteShort(charset))
	}
	switch name, _ := htmlindex.Name(enc); name {
	case "utf-8":
		return text, nil
	case "replacement", "x-user-defined":
		return nil, unsupportedMedia("Unsupported charset %s", quoteShort(charset))
	}
	return transcode(enc, text)
}

// transcode decodes text to UTF-8. Decoders write U+FFFD for bytes they cannot read: a
// delivery whose text would be changed that way is rejected rather than silently altered.
func transcode(enc encoding.Encoding, text []byte) ([]byte, error) {
	out, err := enc.NewDecoder().Bytes(text)
	if err != nil || bytes.Contains(out, []byte("\uFFFD")) {
		return nil, ErrMalformed
	}
	return out, nil
}

// scalarText is a JSON value where a string is expected: strings as they are, numbers and
// booleans as their text, null as empty. Arrays and objects are not text.
func scalarText(v any) (string, bool) {
	switch v := v.(type) {
	case nil:
		return "", true
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case bool:
		return strconv.FormatBool(v), true
	}
	return "", false
}

// fieldText reads a named field that must be text, or reports a 422 naming it.
func fieldText(obj map[string]any, key, name string) (string, error) {
	v, ok := obj[key]
	if !ok {
		return "", nil
	}
	if _, over := v.(tooLongValue); over {
		return "", tooLong(name, MaxValueBytes)
	}
	s, ok := scalarText(v)
	if !ok {
		return "", invalid("Field %s must be a string", name)
	}
	if len(s) > MaxValueBytes {
		return "", tooLong(name, MaxValueBytes)
	}
	return s, nil
}

// tooLongValue stands for a form value that was longer than MaxValueBytes and was not read.
type tooLongValue struct{}

// extraText is a value kept as an extra: scalar text within MaxExtraBytes, not blank.
func extraText(key string, v any) (string, bool) {
	s, ok := scalarText(v)
	if !ok || len(key) > MaxExtraKeyBytes || len(s) > MaxExtraBytes || strings.TrimSpace(s) == "" {
		return "", false
	}
	return s, true
}

// checkPhone rejects a phone longer than MaxPhoneBytes: a phone is never truncated.
func checkPhone(phone string) error {
	if len(phone) > MaxPhoneBytes {
		return tooLong("phone", MaxPhoneBytes)
	}
	return nil
}

// For returns the decoder of a source.
func For(s v1alpha1.Source) (Decoder, bool) {
	switch s {
	case v1alpha1.SourceGeneric:
		return Generic{}, true
	case v1alpha1.SourceTaplink:
		return Taplink{}, true
	}
	return nil, false
}
