package source

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// FuzzDecodeJSONObject compares the limited, token-by-token JSON reader with encoding/json:
// what it accepts is valid JSON and reads the same; what it rejects is a *Error.
func FuzzDecodeJSONObject(f *testing.F) {
	for _, s := range []string{
		`{"a":1}`, `{"a":[1,{"b":null}],"c":"\u00e9"}`, `{"a":1,}`, `{"a" 1}`, `{,}`, `{"a":1}}`,
		`{"a":[1,]}`, `{"a":"\ud800"}`, `{"a":1e999}`, `{"a":{"a":{"a":{}}}}`, `{"":""}`, `{"a":-0.0E+1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		obj, err := decodeJSONObject(text)
		if err != nil {
			var se *Error
			if !errors.As(err, &se) || se.Status < 400 || se.Status > 499 {
				t.Fatalf("error %v (%T)", err, err)
			}
			return
		}
		if !json.Valid(text) {
			t.Fatalf("accepted invalid JSON %q", text)
		}
		dec := json.NewDecoder(bytes.NewReader(text))
		dec.UseNumber()
		var want map[string]any
		if err := dec.Decode(&want); err != nil {
			t.Fatalf("encoding/json: %v", err)
		}
		if !reflect.DeepEqual(obj, want) {
			t.Fatalf("read %#v, encoding/json %#v", obj, want)
		}
	})
}
