package verify_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/leadhook/leadhook/webhookserver/verify"
)

// The Standard Webhooks specification's published example (also in every reference library).
const (
	swSpecSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	swSpecID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	swSpecTimestamp = "1614265330"
	swSpecBody      = `{"test": 2432232314}`
	swSpecSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

// Vectors derived once with openssl (see the comment at each) and hard-coded, so that the code
// under test is not its own oracle.
const (
	// The taplink fixture (Cyrillic name, as sent) with id msg_2NfQ7taplink at 1774353600, under
	// the spec's secret:
	// { printf 'msg_2NfQ7taplink.1774353600.'; cat taplink-leads-created.json; } |
	//   openssl dgst -sha256 -mac HMAC -macopt hexkey:$(echo -n MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw | base64 -d | xxd -p) -binary | base64
	swFixtureSignature = "v1,ulGEByod+sk9n1mnY1rCaENvPFI0DqFpBfFD85vj0zs="
	// printf 'msg_raw.1774353600.{"client_name":"Дана","phone":"+972501234567"}' | openssl dgst -sha256 -hmac raw-secret -binary | base64
	swRawSignature = "v1,3DjD8+WwjmLZQtfFZeQVuqhaJEFjVafYb7EtTf1MrQU="
	// printf '%s' '{"phone":"+972507654321","client_name":"Дана"}' | openssl dgst -sha256 -hmac k1
	hmacSHA256Vector = "11148b7f5a1a0e54046415a40d028b6bd5564206a1cc400a061946b3753f69c7"
)

func decodedKey(t *testing.T, secret string) []byte {
	t.Helper()
	k, err := verify.DecodeStandardWebhooksKey([]byte(secret))
	if err != nil {
		t.Fatalf("decoding %s: %v", secret, err)
	}
	return k
}

func TestSignVectors(t *testing.T) {
	if got := verify.SignTaplinkSHA1([]byte(taplinkSecret), taplinkFixture(t)); got != taplinkSignature {
		t.Errorf("SignTaplinkSHA1 = %s, want %s", got, taplinkSignature)
	}
	if got := verify.SignHMACSHA256([]byte("k1"), []byte(`{"phone":"+972507654321","client_name":"Дана"}`)); got != "sha256="+hmacSHA256Vector {
		t.Errorf("SignHMACSHA256 = %s", got)
	}
	if got := verify.SignStandardWebhooks(decodedKey(t, swSpecSecret), swSpecID, 1614265330, []byte(swSpecBody)); got != swSpecSignature {
		t.Errorf("SignStandardWebhooks (spec example) = %s, want %s", got, swSpecSignature)
	}
	if got := verify.SignStandardWebhooks(decodedKey(t, swSpecSecret), "msg_2NfQ7taplink", 1774353600, taplinkFixture(t)); got != swFixtureSignature {
		t.Errorf("SignStandardWebhooks (fixture) = %s, want %s", got, swFixtureSignature)
	}
	if got := verify.SignStandardWebhooks(decodedKey(t, "raw-secret"), "msg_raw", 1774353600, []byte(`{"client_name":"Дана","phone":"+972501234567"}`)); got != swRawSignature {
		t.Errorf("SignStandardWebhooks (raw key) = %s, want %s", got, swRawSignature)
	}
}

func TestHMACSHA256Vector(t *testing.T) {
	body := []byte(`{"phone":"+972507654321","client_name":"Дана"}`)
	for name, c := range map[string]struct {
		body []byte
		want error
	}{
		"known vector":      {body, nil},
		"same JSON escaped": {asciiEscape(body), verify.ErrBadSignature},
	} {
		t.Run(name, func(t *testing.T) {
			err := verify.HMACSHA256{}.Verify(c.body, header("X-Signature", "sha256="+hmacSHA256Vector), keys("k1"), time.Time{})
			if !errors.Is(err, c.want) {
				t.Errorf("Verify = %v, want %v", err, c.want)
			}
		})
	}
}

func TestDecodeStandardWebhooksKey(t *testing.T) {
	tests := []struct {
		name, secret string
		want         []byte
		wantErr      bool
	}{
		{"whsec form", swSpecSecret, []byte{0x31, 0xf2, 0x90, 0xf6, 0xbf, 0x06, 0x29, 0x8a, 0xab, 0x4f, 0x08, 0xd4, 0x3c, 0x3f, 0x08, 0x2c, 0xf6, 0x48, 0xa3, 0x62, 0xda, 0x2d, 0xa4, 0xb0}, false},
		{"whsec without padding", "whsec_YWJjZA", []byte("abcd"), false},
		{"whsec with padding", "whsec_YWJjZA==", []byte("abcd"), false},
		{"raw bytes", "plain secret with spaces", []byte("plain secret with spaces"), false},
		{"prefix in another case is raw", "WHSEC_YWJjZA==", []byte("WHSEC_YWJjZA=="), false},
		{"bad base64", "whsec_not*base64", nil, true},
		{"url alphabet", "whsec_-_8=", nil, true},
		{"empty after the prefix", "whsec_", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := verify.DecodeStandardWebhooksKey([]byte(tt.secret))
			if (err != nil) != tt.wantErr || !bytes.Equal(got, tt.want) {
				t.Fatalf("DecodeStandardWebhooksKey = %x, %v; want %x, error %v", got, err, tt.want, tt.wantErr)
			}
			if rest := strings.TrimPrefix(tt.secret, "whsec_"); err != nil && rest != "" && strings.Contains(err.Error(), rest) {
				t.Errorf("error %q shows the secret", err)
			}
		})
	}
}

// swHeader is a Standard Webhooks header set; an empty value leaves that header out.
func swHeader(id, ts, sig string) http.Header {
	h := http.Header{}
	for k, v := range map[string]string{"webhook-id": id, "webhook-timestamp": ts, "webhook-signature": sig} {
		if v != "" {
			h.Set(k, v)
		}
	}
	return h
}

func TestStandardWebhooks(t *testing.T) {
	specKey := decodedKey(t, swSpecSecret)
	specBody := []byte(swSpecBody)
	specTime := time.Unix(1614265330, 0)
	fixture := taplinkFixture(t)
	fixtureTime := time.Unix(1774353600, 0)
	otherKey := []byte("an older key")
	otherSig := verify.SignStandardWebhooks(otherKey, swSpecID, 1614265330, specBody)
	flipped := []byte(swSpecSignature)
	flipped[5] ^= 0x01 // still base64, another MAC

	tests := []struct {
		name    string
		body    []byte
		h       http.Header
		keys    [][]byte
		now     time.Time
		window  time.Duration
		wantErr error
	}{
		{"spec example", specBody, swHeader(swSpecID, swSpecTimestamp, swSpecSignature), [][]byte{specKey}, specTime, 0, nil},
		{"non-ASCII body as sent", fixture, swHeader("msg_2NfQ7taplink", "1774353600", swFixtureSignature), [][]byte{specKey}, fixtureTime, 0, nil},
		{"non-ASCII body re-encoded", asciiEscape(fixture), swHeader("msg_2NfQ7taplink", "1774353600", swFixtureSignature), [][]byte{specKey}, fixtureTime, 0, verify.ErrBadSignature},
		{"raw key", []byte(`{"client_name":"Дана","phone":"+972501234567"}`), swHeader("msg_raw", "1774353600", swRawSignature), keys("raw-secret"), fixtureTime, 0, nil},

		// Key rotation, both ways: several keys configured, or several signatures sent.
		{"rotation: old key still configured", specBody, swHeader(swSpecID, swSpecTimestamp, swSpecSignature), [][]byte{otherKey, specKey}, specTime, 0, nil},
		{"rotation: signed with the old key", specBody, swHeader(swSpecID, swSpecTimestamp, otherSig), [][]byte{otherKey, specKey}, specTime, 0, nil},
		{"rotation: old key removed", specBody, swHeader(swSpecID, swSpecTimestamp, otherSig), [][]byte{specKey}, specTime, 0, verify.ErrBadSignature},
		{"several signatures, valid one last", specBody, swHeader(swSpecID, swSpecTimestamp, otherSig+" "+swSpecSignature), [][]byte{specKey}, specTime, 0, nil},
		{"several signatures, valid one first", specBody, swHeader(swSpecID, swSpecTimestamp, swSpecSignature+"  "+otherSig), [][]byte{specKey}, specTime, 0, nil},
		{"unknown version beside v1", specBody, swHeader(swSpecID, swSpecTimestamp, "v1a,AAAA "+swSpecSignature), [][]byte{specKey}, specTime, 0, nil},
		{"broken entry beside v1", specBody, swHeader(swSpecID, swSpecTimestamp, "v1,*** "+swSpecSignature), [][]byte{specKey}, specTime, 0, nil},

		// The timestamp window, both directions, edges included.
		{"4m59s old", specBody, swHeader(swSpecID, swSpecTimestamp, swSpecSignature), [][]byte{specKey}, specTime.Add(299 * time.Second), 0, nil},
		{"exactly 5m old", specBody, swHeader(swSpecID, swSpecTimestamp, swSpecSignature), [][]byte{specKey}, specTime.Add(5 * time.Minute), 0, nil},
		{"stale", specBody, swHeader(swSpecID, swSpecTimestamp, swSpecSignature), [][]byte{specKey}, specTime.Add(5*time.Minute + time.Second), 0, verify.ErrTimestampWindow},
		{"years stale", specBody, swHeader(swSpecID, swSpecTimestamp, swSpecSignature), [][]byte{specKey}, fixtureTime, 0, verify.ErrTimestampWindow},
		{"exactly 5m ahead", specBody, swHeader(swSpecID, swSpecTimestamp, swSpecSignature), [][]byte{specKey}, specTime.Add(-5 * time.Minute), 0, nil},
		{"future", specBody, swHeader(swSpecID, swSpecTimestamp, swSpecSignature), [][]byte{specKey}, specTime.Add(-5*time.Minute - time.Second), 0, verify.ErrTimestampWindow},
		{"wider window", specBody, swHeader(swSpecID, swSpecTimestamp, swSpecSignature), [][]byte{specKey}, specTime.Add(time.Hour), 2 * time.Hour, nil},
		{"narrower window", specBody, swHeader(swSpecID, swSpecTimestamp, swSpecSignature), [][]byte{specKey}, specTime.Add(2 * time.Second), time.Second, verify.ErrTimestampWindow},
		{"stale and badly signed says stale", specBody, swHeader(swSpecID, swSpecTimestamp, otherSig), [][]byte{specKey}, fixtureTime, 0, verify.ErrTimestampWindow},
		{"huge timestamp", specBody, swHeader(swSpecID, "999999999999999999", swSpecSignature), [][]byte{specKey}, specTime, 0, verify.ErrTimestampWindow},
		{"zero timestamp", specBody, swHeader(swSpecID, "0", swSpecSignature), [][]byte{specKey}, specTime, 0, verify.ErrTimestampWindow},

		// What was signed must be what arrived.
		{"tampered body", append([]byte(" "), specBody...), swHeader(swSpecID, swSpecTimestamp, swSpecSignature), [][]byte{specKey}, specTime, 0, verify.ErrBadSignature},
		{"other id", specBody, swHeader("msg_other", swSpecTimestamp, swSpecSignature), [][]byte{specKey}, specTime, 0, verify.ErrBadSignature},
		{"other timestamp", specBody, swHeader(swSpecID, "1614265331", swSpecSignature), [][]byte{specKey}, specTime, 0, verify.ErrBadSignature},
		{"same instant, leading zero", specBody, swHeader(swSpecID, "0"+swSpecTimestamp, swSpecSignature), [][]byte{specKey}, specTime, 0, verify.ErrBadSignature},
		{"wrong key", specBody, swHeader(swSpecID, swSpecTimestamp, swSpecSignature), keys("wrong"), specTime, 0, verify.ErrBadSignature},
		{"whsec secret used undecoded", specBody, swHeader(swSpecID, swSpecTimestamp, swSpecSignature), keys(swSpecSecret), specTime, 0, verify.ErrBadSignature},
		{"no keys", specBody, swHeader(swSpecID, swSpecTimestamp, swSpecSignature), nil, specTime, 0, verify.ErrBadSignature},
		{"one bit flipped", specBody, swHeader(swSpecID, swSpecTimestamp, string(flipped)), [][]byte{specKey}, specTime, 0, verify.ErrBadSignature},
		{"truncated MAC", specBody, swHeader(swSpecID, swSpecTimestamp, swSpecSignature[:20]), [][]byte{specKey}, specTime, 0, verify.ErrBadSignature},

		// Malformed or missing headers.
		{"malformed base64", specBody, swHeader(swSpecID, swSpecTimestamp, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE"), [][]byte{specKey}, specTime, 0, verify.ErrBadSignature},
		{"URL-safe base64", specBody, swHeader(swSpecID, swSpecTimestamp, strings.NewReplacer("+", "-", "/", "_").Replace(swSpecSignature)), [][]byte{specKey}, specTime, 0, verify.ErrBadSignature},
		{"no version", specBody, swHeader(swSpecID, swSpecTimestamp, strings.TrimPrefix(swSpecSignature, "v1,")), [][]byte{specKey}, specTime, 0, verify.ErrBadSignature},
		{"v2 only", specBody, swHeader(swSpecID, swSpecTimestamp, "v2,"+strings.TrimPrefix(swSpecSignature, "v1,")), [][]byte{specKey}, specTime, 0, verify.ErrBadSignature},
		{"hex instead of base64", specBody, swHeader(swSpecID, swSpecTimestamp, "v1,"+hmacSHA256Vector), [][]byte{specKey}, specTime, 0, verify.ErrBadSignature},
		{"missing signature", specBody, swHeader(swSpecID, swSpecTimestamp, ""), [][]byte{specKey}, specTime, 0, verify.ErrMissingSignature},
		{"missing everything", specBody, http.Header{}, [][]byte{specKey}, specTime, 0, verify.ErrMissingSignature},
		{"missing id", specBody, swHeader("", swSpecTimestamp, swSpecSignature), [][]byte{specKey}, specTime, 0, verify.ErrMissingWebhookHeaders},
		{"missing timestamp", specBody, swHeader(swSpecID, "", swSpecSignature), [][]byte{specKey}, specTime, 0, verify.ErrMissingWebhookHeaders},
		{"timestamp in milliseconds", specBody, swHeader(swSpecID, swSpecTimestamp+"000", swSpecSignature), [][]byte{specKey}, specTime, 0, verify.ErrTimestampWindow},
		{"fractional timestamp", specBody, swHeader(swSpecID, swSpecTimestamp+".5", swSpecSignature), [][]byte{specKey}, specTime, 0, verify.ErrBadTimestamp},
		{"signed timestamp", specBody, swHeader(swSpecID, "+"+swSpecTimestamp, swSpecSignature), [][]byte{specKey}, specTime, 0, verify.ErrBadTimestamp},
		{"negative timestamp", specBody, swHeader(swSpecID, "-1", swSpecSignature), [][]byte{specKey}, specTime, 0, verify.ErrBadTimestamp},
		{"RFC 3339 timestamp", specBody, swHeader(swSpecID, "2021-02-25T15:02:10Z", swSpecSignature), [][]byte{specKey}, specTime, 0, verify.ErrBadTimestamp},
		{"timestamp beyond int64", specBody, swHeader(swSpecID, "99999999999999999999", swSpecSignature), [][]byte{specKey}, specTime, 0, verify.ErrBadTimestamp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := verify.StandardWebhooks{Window: tt.window}.Verify(tt.body, tt.h, tt.keys, tt.now)
			if !errors.Is(err, tt.wantErr) { // errors.Is(err, nil) is err == nil
				t.Errorf("Verify = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestStandardWebhooksDeliveryID(t *testing.T) {
	var s verify.Signer = verify.StandardWebhooks{}
	d, ok := s.(verify.DeliveryIdentifier)
	if !ok {
		t.Fatal("StandardWebhooks does not name its delivery id")
	}
	if got := d.DeliveryID(swHeader(swSpecID, swSpecTimestamp, swSpecSignature)); got != swSpecID {
		t.Errorf("DeliveryID = %q, want %q", got, swSpecID)
	}
	for _, other := range []verify.Signer{verify.TaplinkSHA1{}, verify.HMACSHA256{}, verify.Token{}} {
		if _, ok := other.(verify.DeliveryIdentifier); ok {
			t.Errorf("%T signs no delivery id but claims one", other)
		}
	}
}

func TestToken(t *testing.T) {
	body := []byte(`{"phone":"+972501234567"}`)
	tests := []struct {
		name    string
		signer  verify.Token
		h       http.Header
		keys    [][]byte
		wantErr error
	}{
		{"bearer", verify.Token{}, header("Authorization", "Bearer tok-1"), keys("tok-1"), nil},
		{"bearer in lower case", verify.Token{}, header("authorization", "bearer tok-1"), keys("tok-1"), nil},
		{"bare token in Authorization", verify.Token{}, header("Authorization", "tok-1"), keys("tok-1"), nil},
		{"explicit Authorization header", verify.Token{Header: "authorization"}, header("Authorization", "Bearer tok-1"), keys("tok-1"), nil},
		{"custom header", verify.Token{Header: "X-Api-Key"}, header("X-Api-Key", "tok-1"), keys("tok-1"), nil},
		{"non-ASCII token", verify.Token{}, header("Authorization", "Bearer ключ-1"), keys("ключ-1"), nil},
		{"token with inner space", verify.Token{Header: "X-Api-Key"}, header("X-Api-Key", "two words"), keys("two words"), nil},
		{"rotation: old token", verify.Token{}, header("Authorization", "Bearer tok-old"), keys("tok-old", "tok-new"), nil},
		{"rotation: new token", verify.Token{}, header("Authorization", "Bearer tok-new"), keys("tok-old", "tok-new"), nil},
		{"rotation: old token removed", verify.Token{}, header("Authorization", "Bearer tok-old"), keys("tok-new"), verify.ErrBadToken},
		{"custom header keeps Bearer", verify.Token{Header: "X-Api-Key"}, header("X-Api-Key", "Bearer tok-1"), keys("tok-1"), verify.ErrBadToken},
		{"custom header ignores Authorization", verify.Token{Header: "X-Api-Key"}, header("Authorization", "Bearer tok-1"), keys("tok-1"), verify.ErrMissingToken},
		{"wrong token", verify.Token{}, header("Authorization", "Bearer tok-2"), keys("tok-1"), verify.ErrBadToken},
		{"prefix of the token", verify.Token{}, header("Authorization", "Bearer tok-"), keys("tok-1"), verify.ErrBadToken},
		{"token plus more", verify.Token{}, header("Authorization", "Bearer tok-10"), keys("tok-1"), verify.ErrBadToken},
		{"other auth scheme", verify.Token{}, header("Authorization", "Basic dG9rLTE="), keys("tok-1"), verify.ErrBadToken},
		{"no keys", verify.Token{}, header("Authorization", "Bearer tok-1"), nil, verify.ErrBadToken},
		{"missing header", verify.Token{}, header(), keys("tok-1"), verify.ErrMissingToken},
		{"Bearer alone", verify.Token{}, header("Authorization", "Bearer "), keys("tok-1"), verify.ErrMissingToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.signer.Verify(body, tt.h, tt.keys, time.Time{})
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Verify = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestSetToken(t *testing.T) {
	for _, tt := range []struct{ header, wantName, wantValue string }{
		{"", "Authorization", "Bearer tok"},
		{"authorization", "Authorization", "Bearer tok"},
		{"X-Api-Key", "X-Api-Key", "tok"},
	} {
		h := http.Header{}
		verify.SetToken(h, tt.header, "tok")
		if got := h.Get(tt.wantName); got != tt.wantValue {
			t.Errorf("SetToken(%q): %s = %q, want %q", tt.header, tt.wantName, got, tt.wantValue)
		}
		if err := (verify.Token{Header: tt.header}).Verify(nil, h, keys("tok"), time.Time{}); err != nil {
			t.Errorf("SetToken(%q) does not verify: %v", tt.header, err)
		}
	}
}

// Every error a verifier returns is safe to show: no secret, no expected MAC or token.
func TestSchemeErrorsAreSafeToShow(t *testing.T) {
	for _, err := range []error{verify.ErrMissingWebhookHeaders, verify.ErrBadTimestamp, verify.ErrTimestampWindow,
		verify.ErrMissingToken, verify.ErrBadToken} {
		msg := err.Error()
		if msg == "" || strings.Contains(strings.ToLower(msg), "secret") || strings.Contains(msg, "whsec") {
			t.Errorf("error text %q", msg)
		}
	}
	// The MAC's base64 must not appear in what the sender is told.
	mac := strings.TrimPrefix(swSpecSignature, "v1,")
	if _, err := base64.StdEncoding.DecodeString(mac); err != nil {
		t.Fatal(err)
	}
	err := verify.StandardWebhooks{}.Verify([]byte("x"), swHeader(swSpecID, swSpecTimestamp, "v1,AAAA"), [][]byte{decodedKey(t, swSpecSecret)}, time.Unix(1614265330, 0))
	if err == nil || strings.Contains(err.Error(), mac) {
		t.Errorf("Verify error %v", err)
	}
}
