package verify

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// StandardWebhooksSecretPrefix starts a secret in the Standard Webhooks form whsec_<base64>.
const StandardWebhooksSecretPrefix = "whsec_"

// DefaultReplayWindow is how far a signed timestamp may lie from the clock when
// StandardWebhooks.Window is not set.
const DefaultReplayWindow = 5 * time.Minute

// StandardWebhooks is the Standard Webhooks scheme (https://www.standardwebhooks.com): the
// sender signs "<webhook-id>.<webhook-timestamp>.<body>" with HMAC-SHA256 and sends
// webhook-signature as a space-separated list of "v1,<base64 MAC>" (several during a key
// rotation; any one valid signature passes). A timestamp further than Window from the clock,
// either way, is refused; webhook-id identifies the delivery.
type StandardWebhooks struct {
	// Window bounds the skew between webhook-timestamp and the clock; DefaultReplayWindow if 0.
	Window time.Duration
}

// Verify implements Signer. keys are decoded keys (see DecodeKey).
func (s StandardWebhooks) Verify(body []byte, h http.Header, keys [][]byte, now time.Time) error {
	id := strings.TrimSpace(h.Get(HeaderWebhookID))
	ts := strings.TrimSpace(h.Get(HeaderWebhookTimestamp))
	sigs := strings.TrimSpace(h.Get(HeaderWebhookSignature))
	switch {
	case sigs == "":
		return ErrMissingSignature
	case id == "" || ts == "":
		return ErrMissingWebhookHeaders
	}
	sec, err := parseUnixSeconds(ts)
	if err != nil {
		return ErrBadTimestamp
	}
	window := s.Window
	if window <= 0 {
		window = DefaultReplayWindow
	}
	// Both directions: a stale delivery may be a replay, a future one a pre-signed replay.
	// (Sub saturates, so absurd timestamps still compare correctly.)
	signed := time.Unix(sec, 0)
	if now.Sub(signed) > window || signed.Sub(now) > window {
		return ErrTimestampWindow
	}
	var got [][]byte
	for _, entry := range strings.Fields(sigs) {
		version, b64, found := strings.Cut(entry, ",")
		if !found || version != "v1" {
			continue // another version (e.g. v1a, asymmetric): not ours to check
		}
		if mac, err := base64.StdEncoding.DecodeString(b64); err == nil {
			got = append(got, mac)
		}
	}
	if len(got) == 0 {
		return ErrBadSignature
	}
	ok := false
	for _, key := range keys {
		want := standardWebhooksMAC(key, id, ts, body)
		for _, g := range got {
			// Every key against every signature: the time taken does not tell which matched.
			if hmac.Equal(g, want) {
				ok = true
			}
		}
	}
	if !ok {
		return ErrBadSignature
	}
	return nil
}

// DeliveryID implements DeliveryIdentifier: the signed webhook-id.
func (StandardWebhooks) DeliveryID(h http.Header) string {
	return strings.TrimSpace(h.Get(HeaderWebhookID))
}

// DecodeKey implements KeyDecoder with DecodeStandardWebhooksKey.
func (StandardWebhooks) DecodeKey(secret []byte) ([]byte, error) {
	return DecodeStandardWebhooksKey(secret)
}

// DecodeStandardWebhooksKey turns a configured secret into the HMAC key: a secret in the
// spec's form whsec_<base64> is the base64-decoded bytes after the prefix; any other value is
// used as its raw bytes. The error never contains the secret.
func DecodeStandardWebhooksKey(secret []byte) ([]byte, error) {
	rest, ok := bytes.CutPrefix(secret, []byte(StandardWebhooksSecretPrefix))
	if !ok {
		return secret, nil
	}
	s := string(rest)
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		// Some tools drop the padding.
		if key, err = base64.RawStdEncoding.DecodeString(s); err != nil {
			return nil, errors.New("a whsec_ secret must be followed by standard base64")
		}
	}
	if len(key) == 0 {
		return nil, errors.New("a whsec_ secret must not be empty after the prefix")
	}
	return key, nil
}

// SignStandardWebhooks is the webhook-signature value "v1,<base64>" of a delivery with id,
// timestamp (unix seconds) and body, under key (already decoded: see
// DecodeStandardWebhooksKey).
func SignStandardWebhooks(key []byte, id string, timestamp int64, body []byte) string {
	mac := standardWebhooksMAC(key, id, strconv.FormatInt(timestamp, 10), body)
	return "v1," + base64.StdEncoding.EncodeToString(mac)
}

// standardWebhooksMAC is HMAC-SHA256 of "id.timestamp.body", over the timestamp's text as sent.
func standardWebhooksMAC(key []byte, id, timestamp string, body []byte) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return mac.Sum(nil)
}

// parseUnixSeconds reads a whole, unsigned number of seconds (no sign, fraction or exponent).
func parseUnixSeconds(s string) (int64, error) {
	if s == "" || len(s) > 18 {
		return 0, fmt.Errorf("timestamp of %d characters", len(s))
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("timestamp is not a number of seconds")
		}
	}
	return strconv.ParseInt(s, 10, 64)
}
