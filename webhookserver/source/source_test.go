package source_test

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/leadhook/leadhook/webhookserver/source"
)

// fixture reads one of the shared real-shaped samples in webhookserver/testdata.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", name))
	if err != nil {
		t.Fatalf("reading fixture: %v", err)
	}
	return b
}

// decodeErr checks that err is a *source.Error with the given status and a message
// containing want, and returns it.
func decodeErr(t *testing.T, err error, status int, want string) *source.Error {
	t.Helper()
	var se *source.Error
	if !errors.As(err, &se) {
		t.Fatalf("error = %v (%T), want a *source.Error", err, err)
	}
	if se.Status != status {
		t.Errorf("status = %d, want %d (message %q)", se.Status, status, se.Message)
	}
	if !strings.Contains(se.Message, want) {
		t.Errorf("message = %q, want it to contain %q", se.Message, want)
	}
	return se
}

// goodText is UTF-8 without control characters other than tab, CR and LF, within MaxValueBytes.
func goodText(s string) bool {
	if !utf8.ValidString(s) || len(s) > source.MaxValueBytes {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r' {
			return false
		}
	}
	return true
}

// decodedProblem names the first string of d that is not good text (goodText), or returns "".
func decodedProblem(d *source.Decoded) string {
	f := d.Fields
	for name, s := range map[string]string{
		"client_name": f.ClientName, "phone": f.Phone, "email": f.Email, "url": f.URL,
		"form_id": f.FormID, "comment": f.Comment, "created_at": f.CreatedAt, "source id": d.SourceID,
	} {
		if !goodText(s) {
			return "field " + name
		}
	}
	for _, n := range d.Notes {
		for _, s := range []string{n.Type, n.Idx, n.Title, n.Value} {
			if !goodText(s) {
				return "a note"
			}
		}
	}
	for k, v := range d.Extras {
		if !goodText(k) || !goodText(v) {
			return "an extra"
		}
	}
	return ""
}

func TestFor(t *testing.T) {
	if d, ok := source.For("Generic"); !ok || d != (source.Generic{}) {
		t.Errorf("For(Generic) = %v, %v", d, ok)
	}
	if d, ok := source.For("Taplink"); !ok || d != (source.Taplink{}) {
		t.Errorf("For(Taplink) = %v, %v", d, ok)
	}
	if d, ok := source.For("Tilda"); ok || d != nil {
		t.Errorf("For(Tilda) = %v, %v, want none", d, ok)
	}
}

func TestErrMalformedIsTheContract(t *testing.T) {
	if source.ErrMalformed.Status != http.StatusBadRequest || source.ErrMalformed.Error() != "Malformed payload" {
		t.Errorf("ErrMalformed = %d %q", source.ErrMalformed.Status, source.ErrMalformed.Error())
	}
}
