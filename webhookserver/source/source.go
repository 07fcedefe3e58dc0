// Package source decodes the request bodies of each lead sender into lead fields. Decoders
// see the exact bytes received and never touch the network or the store.
package source

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/htmlindex"

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
// converts a declared charset to UTF-8, drops a leading byte-order mark and rejects bytes that
// are not UTF-8. Form bodies are left to their decoder, which converts what the escapes hide.
func readBody(r Request) (*body, error) {
	b := &body{}
	ct := strings.TrimSpace(r.ContentType)
	if ct == "" {
		if !looksLikeJSON(r.Body) {
			return nil, unsupportedMedia("Content-Type is required")
		}
		b.mediaType = mediaJSON
	} else {
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
		text = bytes.TrimPrefix(text, []byte("\xef\xbb\xbf"))
	default:
		var err error
		if text, err = toUTF8(text, b.params["charset"]); err != nil {
			return nil, err
		}
		text = bytes.TrimPrefix(text, []byte("\xef\xbb\xbf"))
		if !utf8.Valid(text) {
			return nil, ErrMalformed
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
	b = bytes.TrimLeft(bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")), " \t\r\n")
	return len(b) > 0 && (b[0] == '{' || b[0] == '[')
}

// toUTF8 converts text in a declared charset to UTF-8.
func toUTF8(text []byte, charset string) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(charset)) {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
		return text, nil
	}
	enc, err := htmlindex.Get(charset)
	if err != nil {
		return nil, unsupportedMedia("Unsupported charset %q", charset)
	}
	out, err := enc.NewDecoder().Bytes(text)
	if err != nil {
		return nil, ErrMalformed
	}
	return out, nil
}

// decodeJSONObject reads text as exactly one JSON object, keeping numbers as their text.
func decodeJSONObject(text []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return nil, ErrMalformed
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, ErrMalformed // trailing data after the object
	}
	return obj, nil
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
	s, ok := scalarText(v)
	if !ok {
		return "", invalid("Field %s must be a string", name)
	}
	return s, nil
}

func utf8Valid(s string) bool { return utf8.ValidString(s) }

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
