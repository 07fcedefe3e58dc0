package verify_test

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // the scheme under test
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

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
			if err := (verify.TaplinkSHA1{}).Verify(body, h, keys, time.Time{}); err != nil {
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
		if err := (verify.TaplinkSHA1{}).Verify(changed, h, keys, time.Time{}); !errors.Is(err, verify.ErrBadSignature) {
			t.Fatalf("body with byte %d changed: %v, want ErrBadSignature", pos%uint(len(changed)), err)
		}
	})
}

// FuzzHMACSHA256Verify: "sha256=<hex>" of (key, body) always verifies, in either case and among
// other keys; with one byte of the body changed it never does.
func FuzzHMACSHA256Verify(f *testing.F) {
	f.Add([]byte("k1"), []byte(`{"phone":"+972507654321","client_name":"Дана"}`), uint(0), byte(1))
	f.Add([]byte(""), []byte(""), uint(0), byte(0))
	f.Add([]byte("\xff\x00"), []byte("phone=%2B1&name=\xd0\x94"), uint(7), byte(0x80))
	f.Fuzz(func(t *testing.T, key, body []byte, pos uint, mask byte) {
		m := hmac.New(sha256.New, key)
		m.Write(body)
		sig := "sha256=" + hex.EncodeToString(m.Sum(nil))
		keys := [][]byte{[]byte("another key"), key}
		for _, s := range []string{sig, strings.ToUpper(sig)} {
			if err := (verify.HMACSHA256{}).Verify(body, http.Header{"X-Signature": {s}}, keys, time.Time{}); err != nil {
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
		if err := (verify.HMACSHA256{}).Verify(changed, http.Header{"X-Signature": {sig}}, keys, time.Time{}); !errors.Is(err, verify.ErrBadSignature) {
			t.Fatalf("body with byte %d changed: %v, want ErrBadSignature", pos%uint(len(changed)), err)
		}
	})
}

// swSign is the Standard Webhooks signature computed here, independently of the package.
func swSign(key []byte, id, ts string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// FuzzStandardWebhooksVerify: a correctly signed delivery verifies whenever its timestamp is
// inside the window (either way), among other signatures and keys, and is refused as outside
// the window otherwise; with one byte of the body changed it never verifies.
func FuzzStandardWebhooksVerify(f *testing.F) {
	specKey, _ := base64.StdEncoding.DecodeString("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	f.Add(specKey, "msg_p5jXN8AQM9LWM0D4loKWxJek", uint32(1614265330), int64(0), []byte(`{"test": 2432232314}`), uint(0), byte(1))
	f.Add([]byte("k"), "1", uint32(0), int64(300), []byte(""), uint(0), byte(0))
	f.Add([]byte(""), "msg.with.dots", uint32(1774353600), int64(-301), []byte("{\"name\":\"Дана\"}"), uint(9), byte(0x80))
	f.Fuzz(func(t *testing.T, key []byte, id string, ts uint32, skew int64, body []byte, pos uint, mask byte) {
		id = strings.TrimSpace(id) // HTTP trims header values
		if id == "" || strings.ContainsAny(id, "\r\n") {
			return
		}
		const window = 5 * time.Minute
		skew %= int64(2 * window / time.Second) // up to ±10 minutes
		tss := strconv.FormatUint(uint64(ts), 10)
		now := time.Unix(int64(ts)+skew, 0)
		sig := swSign(key, id, tss, body)
		h := http.Header{}
		h.Set(verify.HeaderWebhookID, id)
		h.Set(verify.HeaderWebhookTimestamp, tss)
		h.Set(verify.HeaderWebhookSignature, swSign([]byte("old key"), id, tss, body)+" "+sig)
		keys := [][]byte{[]byte("another key"), key}
		err := verify.StandardWebhooks{Window: window}.Verify(body, h, keys, now)
		inside := skew >= -int64(window/time.Second) && skew <= int64(window/time.Second)
		switch {
		case inside && err != nil:
			t.Fatalf("correct signature, skew %ds: %v", skew, err)
		case !inside && !errors.Is(err, verify.ErrTimestampWindow):
			t.Fatalf("skew %ds: %v, want ErrTimestampWindow", skew, err)
		}
		if len(body) == 0 || !inside {
			return
		}
		if mask == 0 {
			mask = 1
		}
		changed := append([]byte(nil), body...)
		changed[pos%uint(len(changed))] ^= mask
		if err := (verify.StandardWebhooks{Window: window}).Verify(changed, h, keys, now); !errors.Is(err, verify.ErrBadSignature) {
			t.Fatalf("body with byte %d changed: %v, want ErrBadSignature", pos%uint(len(changed)), err)
		}
	})
}

// FuzzStandardWebhooksHeaders: whatever the three headers hold, Verify does not panic, and it
// passes only when webhook-signature really holds the signature of what arrived.
func FuzzStandardWebhooksHeaders(f *testing.F) {
	key := []byte("fuzz key")
	good := swSign(key, "msg_1", "1774353600", []byte("{}"))
	f.Add("msg_1", "1774353600", good, []byte("{}"))
	f.Add("msg_1", "1774353600", "v1,"+strings.Repeat("A", 43)+"=", []byte("{}"))
	f.Add("msg_1", "1774353600", "v1, v1,,v1,=== ,,", []byte("{}"))
	f.Add("", "", "", []byte(nil))
	f.Add("msg_1", "+1774353600", good, []byte("{}"))
	f.Add("msg_1", "1774353600.0", good, []byte("{}"))
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		h := http.Header{}
		h.Set(verify.HeaderWebhookID, id)
		h.Set(verify.HeaderWebhookTimestamp, ts)
		h.Set(verify.HeaderWebhookSignature, sig)
		err := verify.StandardWebhooks{Window: 100 * 365 * 24 * time.Hour}.Verify(body, h, [][]byte{key}, time.Unix(1774353600, 0))
		if err != nil {
			return
		}
		// Accepted: one v1 entry must hold the MAC of what arrived (compared decoded, as base64
		// has more than one spelling of some byte strings).
		m := hmac.New(sha256.New, key)
		m.Write([]byte(strings.TrimSpace(id) + "." + strings.TrimSpace(ts) + "."))
		m.Write(body)
		want := m.Sum(nil)
		for _, entry := range strings.Fields(sig) {
			if b64, ok := strings.CutPrefix(entry, "v1,"); ok {
				if got, err := base64.StdEncoding.DecodeString(b64); err == nil && hmac.Equal(got, want) {
					return
				}
			}
		}
		t.Fatalf("accepted id %q ts %q sig %q, which holds no valid signature", id, ts, sig)
	})
}

// FuzzTokenVerify: the configured token passes in Authorization (with or without Bearer) and
// in a custom header; any other token fails.
func FuzzTokenVerify(f *testing.F) {
	f.Add("tok-1", "tok-2")
	f.Add("ключ", "ключ ")
	f.Add("Bearer x", "x")
	f.Add("a", "")
	f.Fuzz(func(t *testing.T, token, other string) {
		if token != strings.TrimSpace(token) || token == "" || strings.ContainsAny(token, "\r\n") {
			return // HTTP cannot carry it as a header value
		}
		keys := [][]byte{[]byte(token)}
		if err := (verify.Token{Header: "X-Api-Key"}).Verify(nil, http.Header{"X-Api-Key": {token}}, keys, time.Time{}); err != nil {
			t.Fatalf("token %q in X-Api-Key rejected: %v", token, err)
		}
		if err := (verify.Token{}).Verify(nil, http.Header{"Authorization": {"Bearer " + token}}, keys, time.Time{}); err != nil {
			t.Fatalf("Bearer %q rejected: %v", token, err)
		}
		other = strings.TrimSpace(other)
		if other == token || other == "" {
			return
		}
		if err := (verify.Token{Header: "X-Api-Key"}).Verify(nil, http.Header{"X-Api-Key": {other}}, keys, time.Time{}); !errors.Is(err, verify.ErrBadToken) {
			t.Fatalf("token %q accepted for %q: %v", other, token, err)
		}
	})
}
