package verify_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // the scheme under test
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/leadhook/leadhook/webhookserver/verify"
)

// The fixtures README's vector: HMAC-SHA1 of taplink-leads-created.json under "test-secret".
const (
	taplinkSecret    = "test-secret"
	taplinkSignature = "f0c516ae690148af65bccf8a168a479acc2edba6"
)

func taplinkFixture(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "taplink-leads-created.json"))
	if err != nil {
		t.Fatalf("reading fixture: %v", err)
	}
	return b
}

func header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func keys(ks ...string) [][]byte {
	out := make([][]byte, len(ks))
	for i, k := range ks {
		out[i] = []byte(k)
	}
	return out
}

// macHex is the hex HMAC of body under key, with SHA-1 or SHA-256.
func macHex(alg, key string, body []byte) string {
	h := sha256.New
	if alg == "sha1" {
		h = sha1.New
	}
	m := hmac.New(h, []byte(key))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// asciiEscape re-encodes a JSON text with every non-ASCII character as a \u escape, as some
// JSON encoders do: the same JSON value, other bytes.
func asciiEscape(b []byte) []byte {
	var out bytes.Buffer
	for _, r := range string(b) {
		switch {
		case r < utf8.RuneSelf:
			out.WriteRune(r)
		case r > 0xffff:
			r -= 0x10000
			fmt.Fprintf(&out, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
		default:
			fmt.Fprintf(&out, `\u%04x`, r)
		}
	}
	return out.Bytes()
}

func TestTaplinkSHA1(t *testing.T) {
	body := taplinkFixture(t)
	if got := macHex("sha1", taplinkSecret, body); got != taplinkSignature {
		t.Fatalf("fixture changed: its HMAC-SHA1 is %s, the README says %s", got, taplinkSignature)
	}
	tampered := bytes.Replace(body, []byte("79001234567"), []byte("79001234568"), 1)
	reencoded := asciiEscape(body)
	var a, b any
	if json.Unmarshal(body, &a) != nil || json.Unmarshal(reencoded, &b) != nil || !reflect.DeepEqual(a, b) || bytes.Equal(body, reencoded) {
		t.Fatal("asciiEscape must give the same JSON in other bytes")
	}

	tests := []struct {
		name    string
		body    []byte
		h       http.Header
		keys    [][]byte
		wantErr error
	}{
		{"known vector", body, header("taplink-signature", taplinkSignature), keys(taplinkSecret), nil},
		{"upper-case hex", body, header("taplink-signature", strings.ToUpper(taplinkSignature)), keys(taplinkSecret), nil},
		{"surrounding space", body, header("Taplink-Signature", " "+taplinkSignature+" "), keys(taplinkSecret), nil},
		{"rotation, new key second", body, header("taplink-signature", taplinkSignature), keys("old-secret", taplinkSecret), nil},
		{"rotation, new key first", body, header("taplink-signature", taplinkSignature), keys(taplinkSecret, "old-secret"), nil},
		{"missing header", body, header(), keys(taplinkSecret), verify.ErrMissingSignature},
		{"blank header", body, header("taplink-signature", "  "), keys(taplinkSecret), verify.ErrMissingSignature},
		{"signature in another header", body, header("X-Signature", taplinkSignature), keys(taplinkSecret), verify.ErrMissingSignature},
		{"wrong key", body, header("taplink-signature", taplinkSignature), keys("test-secret2"), verify.ErrBadSignature},
		{"no keys", body, header("taplink-signature", taplinkSignature), nil, verify.ErrBadSignature},
		{"rotation, no key matches", body, header("taplink-signature", taplinkSignature), keys("a", "b"), verify.ErrBadSignature},
		{"tampered body", tampered, header("taplink-signature", taplinkSignature), keys(taplinkSecret), verify.ErrBadSignature},
		{"trailing newline added", append(append([]byte(nil), body...), '\n'), header("taplink-signature", taplinkSignature), keys(taplinkSecret), verify.ErrBadSignature},
		{"same JSON re-encoded", reencoded, header("taplink-signature", taplinkSignature), keys(taplinkSecret), verify.ErrBadSignature},
		{"not hex", body, header("taplink-signature", "z"+taplinkSignature[1:]), keys(taplinkSecret), verify.ErrBadSignature},
		{"odd length", body, header("taplink-signature", taplinkSignature[1:]), keys(taplinkSecret), verify.ErrBadSignature},
		{"truncated", body, header("taplink-signature", taplinkSignature[:20]), keys(taplinkSecret), verify.ErrBadSignature},
		{"with a sha1= prefix", body, header("taplink-signature", "sha1="+taplinkSignature), keys(taplinkSecret), verify.ErrBadSignature},
		{"SHA-256 of the body", body, header("taplink-signature", macHex("sha256", taplinkSecret, body)), keys(taplinkSecret), verify.ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := verify.TaplinkSHA1{}.Verify(tt.body, tt.h, tt.keys, time.Time{})
			if !errors.Is(err, tt.wantErr) { // errors.Is(err, nil) is err == nil
				t.Errorf("Verify = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestHMACSHA256(t *testing.T) {
	body := []byte(`{"phone":"+972507654321","client_name":"Дана"}`)
	sig := macHex("sha256", "k1", body)

	tests := []struct {
		name    string
		signer  verify.HMACSHA256
		h       http.Header
		keys    [][]byte
		wantErr error
	}{
		{"X-Signature by default", verify.HMACSHA256{}, header("X-Signature", "sha256="+sig), keys("k1"), nil},
		{"prefix and hex in upper case", verify.HMACSHA256{}, header("x-signature", "SHA256="+strings.ToUpper(sig)), keys("k1"), nil},
		{"custom header", verify.HMACSHA256{Header: "X-Hub-Signature-256"}, header("X-Hub-Signature-256", "sha256="+sig), keys("k1"), nil},
		{"rotation", verify.HMACSHA256{}, header("X-Signature", "sha256="+sig), keys("k0", "k1"), nil},
		{"custom header ignores X-Signature", verify.HMACSHA256{Header: "X-Hub-Signature-256"}, header("X-Signature", "sha256="+sig), keys("k1"), verify.ErrMissingSignature},
		{"missing header", verify.HMACSHA256{}, header(), keys("k1"), verify.ErrMissingSignature},
		{"missing prefix", verify.HMACSHA256{}, header("X-Signature", sig), keys("k1"), verify.ErrBadSignature},
		{"other prefix", verify.HMACSHA256{}, header("X-Signature", "sha1="+sig), keys("k1"), verify.ErrBadSignature},
		{"prefix only", verify.HMACSHA256{}, header("X-Signature", "sha256="), keys("k1"), verify.ErrBadSignature},
		{"shorter than the prefix", verify.HMACSHA256{}, header("X-Signature", "sha"), keys("k1"), verify.ErrBadSignature},
		{"wrong key", verify.HMACSHA256{}, header("X-Signature", "sha256="+sig), keys("k2"), verify.ErrBadSignature},
		{"SHA-1 MAC", verify.HMACSHA256{}, header("X-Signature", "sha256="+macHex("sha1", "k1", body)), keys("k1"), verify.ErrBadSignature},
		{"not hex", verify.HMACSHA256{}, header("X-Signature", "sha256=xyz"), keys("k1"), verify.ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.signer.Verify(body, tt.h, tt.keys, time.Time{})
			if !errors.Is(err, tt.wantErr) { // errors.Is(err, nil) is err == nil
				t.Errorf("Verify = %v, want %v", err, tt.wantErr)
			}
		})
	}
	// Tampering with the body breaks the signature.
	if err := (verify.HMACSHA256{}).Verify(append([]byte(" "), body...), header("X-Signature", "sha256="+sig), keys("k1"), time.Time{}); !errors.Is(err, verify.ErrBadSignature) {
		t.Errorf("tampered body: %v, want ErrBadSignature", err)
	}
}

// Errors are shown to senders: they must say nothing about the secret or the expected MAC.
func TestErrorsAreSafeToShow(t *testing.T) {
	for _, err := range []error{verify.ErrMissingSignature, verify.ErrBadSignature} {
		if msg := err.Error(); msg == "" || strings.Contains(strings.ToLower(msg), "secret") || strings.Contains(msg, taplinkSignature) {
			t.Errorf("error text %q", msg)
		}
	}
}

func TestAllowed(t *testing.T) {
	prefixes := func(ss ...string) []netip.Prefix {
		out := make([]netip.Prefix, len(ss))
		for i, s := range ss {
			out[i] = netip.MustParsePrefix(s)
		}
		return out
	}
	tests := []struct {
		name     string
		addr     string // "" is the zero Addr (no address known)
		prefixes []netip.Prefix
		want     bool
	}{
		{"empty list allows IPv4", "198.51.100.23", nil, true},
		{"empty list allows IPv6", "2001:db8::1", nil, true},
		{"empty list allows an unknown address", "", nil, true},
		{"IPv4 inside", "203.0.113.7", prefixes("203.0.113.0/24"), true},
		{"IPv4 first address", "203.0.113.0", prefixes("203.0.113.0/24"), true},
		{"IPv4 last address", "203.0.113.255", prefixes("203.0.113.0/24"), true},
		{"IPv4 outside", "203.0.114.1", prefixes("203.0.113.0/24"), false},
		{"single host", "198.51.100.23", prefixes("198.51.100.23/32"), true},
		{"next to a single host", "198.51.100.24", prefixes("198.51.100.23/32"), false},
		{"second prefix matches", "10.1.2.3", prefixes("203.0.113.0/24", "10.0.0.0/8"), true},
		{"IPv6 inside", "2001:db8:1::5", prefixes("2001:db8::/32"), true},
		{"IPv6 outside", "2001:db9::1", prefixes("2001:db8::/32"), false},
		{"IPv4-mapped IPv6 matches its IPv4 prefix", "::ffff:203.0.113.7", prefixes("203.0.113.0/24"), true},
		{"IPv4-mapped IPv6 outside", "::ffff:203.0.114.7", prefixes("203.0.113.0/24"), false},
		{"IPv4 against IPv6 prefixes", "203.0.113.7", prefixes("2001:db8::/32", "::/0"), false},
		{"IPv6 against IPv4 prefixes", "2001:db8::1", prefixes("0.0.0.0/0"), false},
		{"any IPv4", "192.0.2.1", prefixes("0.0.0.0/0"), true},
		{"unknown address denied when a list is set", "", prefixes("0.0.0.0/0", "::/0"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var addr netip.Addr
			if tt.addr != "" {
				addr = netip.MustParseAddr(tt.addr)
			}
			if got := verify.Allowed(addr, tt.prefixes); got != tt.want {
				t.Errorf("Allowed(%s, %v) = %v, want %v", tt.addr, tt.prefixes, got, tt.want)
			}
		})
	}
}
