package verify_test

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // the scheme under test
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/leadhook/leadhook/webhookserver/verify"
)

// FuzzTaplinkVerify: the right signature of (key, body) always verifies, in either hex case and
// among other keys; the body with one byte changed never does.
func FuzzTaplinkVerify(f *testing.F) {
	f.Add([]byte(taplinkSecret), taplinkFixture(f), uint(0), byte(1))
	f.Add([]byte(taplinkSecret), taplinkFixture(f), uint(1<<20), byte(0x80))
	f.Add([]byte(""), []byte(""), uint(0), byte(0))
	f.Add([]byte("k"), []byte("{}"), uint(1), byte(0xff))
	f.Add([]byte("\x00\xff"), []byte("phone=%2B1"), uint(3), byte(0x20))
	f.Fuzz(func(t *testing.T, key, body []byte, pos uint, mask byte) {
		m := hmac.New(sha1.New, key)
		m.Write(body)
		sig := hex.EncodeToString(m.Sum(nil))
		keys := [][]byte{[]byte("another key"), key}
		for _, s := range []string{sig, strings.ToUpper(sig)} {
			h := http.Header{}
			h.Set(verify.HeaderTaplink, s)
			if err := (verify.TaplinkSHA1{}).Verify(body, h, keys); err != nil {
				t.Fatalf("correct signature %s rejected: %v", s, err)
			}
		}
		if len(body) == 0 {
			return
		}
		if mask == 0 {
			mask = 1
		}
		changed := append([]byte(nil), body...)
		changed[pos%uint(len(changed))] ^= mask
		h := http.Header{}
		h.Set(verify.HeaderTaplink, sig)
		if err := (verify.TaplinkSHA1{}).Verify(changed, h, keys); !errors.Is(err, verify.ErrBadSignature) {
			t.Fatalf("body with byte %d changed: %v, want ErrBadSignature", pos%uint(len(changed)), err)
		}
	})
}
