package source

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"unicode/utf8"
)

// Limits on what one delivery may carry. The handler bounds the body's bytes (the
// integration's maxBodyBytes, 413) before a decoder runs; these bound its structure, so that
// no body within that size costs more than linear time or a small multiple of its size in
// memory, and each value of a lead stays small.
const (
	// MaxFields is the most members one JSON object, elements one JSON array, pairs one
	// urlencoded form or parts one multipart form may have: 413 "Too many fields".
	MaxFields = 256
	// MaxJSONValues is the most values (objects, arrays, strings, numbers, ...) one JSON
	// body may hold in all: 413 "Too many fields".
	MaxJSONValues = 4096
	// MaxDepth is the deepest JSON nesting read (the top-level object is depth 1); deeper
	// is no lead: 400 "Malformed payload".
	MaxDepth = 32
	// MaxValueBytes is the longest text a lead field (name, email, url, form id, comment,
	// created_at, a Taplink record) may have: 422 naming the field. Never truncated.
	MaxValueBytes = 16 << 10
	// MaxPhoneBytes is the longest phone text: 422 "Field phone is too long". A phone is
	// never truncated.
	MaxPhoneBytes = 128
	// MaxExtraBytes and MaxExtraKeyBytes bound the other fields kept as a lead's extras;
	// longer ones are not copied there (they stay in the lead's raw body).
	MaxExtraBytes    = 1 << 10
	MaxExtraKeyBytes = 128
)

// ErrTooManyFields is a body with more fields, parts or values than the limits allow.
var ErrTooManyFields = &Error{Status: http.StatusRequestEntityTooLarge, Message: "Too many fields"}

// tooLong is a lead field longer than its limit.
func tooLong(name string, limit int) *Error {
	return invalid("Field %s is too long (at most %d bytes)", name, limit)
}

// duplicateField is a JSON object naming one member twice: which of the two a sender meant
// (or a signature covered, or a proxy read) is unknowable, so neither is guessed.
func duplicateField(key string) *Error {
	return invalid("Field %s is sent twice", quoteShort(key))
}

// quoteShort quotes sender-controlled text for an error message, at most 64 bytes of it.
func quoteShort(s string) string {
	const limit = 64
	if len(s) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return fmt.Sprintf("%q…", s[:cut])
	}
	return fmt.Sprintf("%q", s)
}

// checkText accepts UTF-8 text without control characters other than tab, CR and LF (no NUL,
// no escape sequences, no C1 controls): anything else is a 400 "Malformed payload".
func checkText(s string) error {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f {
				return ErrMalformed
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || (r >= 0x80 && r <= 0x9f) {
			return ErrMalformed
		}
		i += size
	}
	return nil
}

// decodeJSONObject reads text as exactly one JSON object, keeping numbers as their text. It
// reads token by token, so the limits hold while parsing: nesting (MaxDepth), members and
// elements (MaxFields), values (MaxJSONValues), duplicate member names and control
// characters in strings are rejected before the rest of the body is looked at.
func decodeJSONObject(text []byte) (map[string]any, error) {
	jr := &jsonReader{dec: json.NewDecoder(bytes.NewReader(text))}
	jr.dec.UseNumber()
	tok, err := jr.dec.Token()
	if err != nil {
		return nil, ErrMalformed
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, ErrMalformed // top-level arrays, strings, numbers, null
	}
	jr.values = 1
	obj, err := jr.object(1)
	if err != nil {
		return nil, err
	}
	if _, err := jr.dec.Token(); !errors.Is(err, io.EOF) {
		return nil, ErrMalformed // trailing data after the object
	}
	return obj, nil
}

type jsonReader struct {
	dec    *json.Decoder
	values int
}

// value reads the value that starts with tok, inside a container at depth.
func (jr *jsonReader) value(tok json.Token, depth int) (any, error) {
	jr.values++
	if jr.values > MaxJSONValues {
		return nil, ErrTooManyFields
	}
	switch t := tok.(type) {
	case json.Delim:
		if depth+1 > MaxDepth {
			return nil, ErrMalformed
		}
		switch t {
		case '{':
			return jr.object(depth + 1)
		case '[':
			return jr.array(depth + 1)
		}
		return nil, ErrMalformed
	case string:
		if err := checkText(t); err != nil {
			return nil, err
		}
		return t, nil
	case json.Number, bool, nil:
		return t, nil
	}
	return nil, ErrMalformed
}

// object reads the members of an object whose '{' was read, through its '}'.
func (jr *jsonReader) object(depth int) (map[string]any, error) {
	obj := map[string]any{}
	for {
		tok, err := jr.dec.Token()
		if err != nil {
			return nil, ErrMalformed
		}
		if d, ok := tok.(json.Delim); ok && d == '}' {
			return obj, nil
		}
		key, ok := tok.(string)
		if !ok {
			return nil, ErrMalformed
		}
		if err := checkText(key); err != nil {
			return nil, err
		}
		if _, dup := obj[key]; dup {
			return nil, duplicateField(key)
		}
		if len(obj) >= MaxFields {
			return nil, ErrTooManyFields
		}
		if tok, err = jr.dec.Token(); err != nil {
			return nil, ErrMalformed
		}
		v, err := jr.value(tok, depth)
		if err != nil {
			return nil, err
		}
		obj[key] = v
	}
}

// array reads the elements of an array whose '[' was read, through its ']'.
func (jr *jsonReader) array(depth int) ([]any, error) {
	list := []any{}
	for {
		tok, err := jr.dec.Token()
		if err != nil {
			return nil, ErrMalformed
		}
		if d, ok := tok.(json.Delim); ok && d == ']' {
			return list, nil
		}
		if len(list) >= MaxFields {
			return nil, ErrTooManyFields
		}
		v, err := jr.value(tok, depth)
		if err != nil {
			return nil, err
		}
		list = append(list, v)
	}
}
