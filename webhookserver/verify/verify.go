// Package verify checks who sent a delivery: signatures over the exact bytes received, shared
// tokens, signed timestamps and source-address allowlists. It also signs deliveries the same
// way (the Sign* functions), for tests and `leadhook send`. Functions here are pure: the time
// comes from the caller, and secrets are compared in constant time, against every configured
// key, so the time taken says nothing about which key (if any) matched.
package verify

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // Taplink's scheme is HMAC-SHA1; HMAC keeps SHA-1 safe here
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// Errors a verifier returns; their text is safe to show the sender: none of them says
// anything about the secret or the expected value.
var (
	ErrMissingSignature = errors.New("Signature required") //nolint:staticcheck // shown to senders
	ErrBadSignature     = errors.New("Invalid signature")  //nolint:staticcheck // shown to senders
	// ErrMissingWebhookHeaders: a Standard Webhooks delivery lacks its id or timestamp.
	ErrMissingWebhookHeaders = errors.New("Headers webhook-id and webhook-timestamp required") //nolint:staticcheck // shown to senders
	// ErrBadTimestamp: webhook-timestamp is not a whole number of unix seconds.
	ErrBadTimestamp = errors.New("Invalid webhook-timestamp") //nolint:staticcheck // shown to senders
	// ErrTimestampWindow: the signed timestamp is too old, or too far in the future.
	ErrTimestampWindow = errors.New("Timestamp outside the allowed window") //nolint:staticcheck // shown to senders
	ErrMissingToken    = errors.New("Token required")                       //nolint:staticcheck // shown to senders
	ErrBadToken        = errors.New("Invalid token")                        //nolint:staticcheck // shown to senders
)

// Headers used by the schemes.
const (
	HeaderTaplink          = "Taplink-Signature"
	HeaderSignature        = "X-Signature"
	HeaderAuthorization    = "Authorization"
	HeaderWebhookID        = "Webhook-Id"
	HeaderWebhookTimestamp = "Webhook-Timestamp"
	HeaderWebhookSignature = "Webhook-Signature"
)

// Signer checks a delivery's signature (or token) over its raw body and headers. keys are
// the configured keys (several during a rotation: any one of them may have signed); now is
// the receiving server's clock, used by schemes that sign a timestamp.
type Signer interface {
	Verify(body []byte, h http.Header, keys [][]byte, now time.Time) error
}

// KeyDecoder is a Signer whose configured secrets are encoded (Standard Webhooks'
// whsec_<base64>): DecodeKey turns one into the bytes Verify expects.
type KeyDecoder interface {
	DecodeKey(secret []byte) ([]byte, error)
}

// DeliveryIdentifier is a Signer whose signature covers a delivery id. That id, not an
// unsigned header, is the delivery's de-duplication key, so a replay inside the time window
// is answered as a duplicate of the lead it first made.
type DeliveryIdentifier interface {
	DeliveryID(h http.Header) string
}

// TaplinkSHA1 is Taplink's scheme: lowercase hex HMAC-SHA1 of the body in taplink-signature.
type TaplinkSHA1 struct{}

// Verify implements Signer.
func (TaplinkSHA1) Verify(body []byte, h http.Header, keys [][]byte, _ time.Time) error {
	return verifyHex(sha1.New, body, h.Get(HeaderTaplink), "", keys)
}

// SignTaplinkSHA1 is the taplink-signature value of body under key.
func SignTaplinkSHA1(key, body []byte) string {
	return hex.EncodeToString(macOf(sha1.New, key, body))
}

// HMACSHA256 carries "sha256=<hex HMAC-SHA256 of the body>" in a header (X-Signature unless set).
type HMACSHA256 struct {
	Header string
}

// Verify implements Signer.
func (s HMACSHA256) Verify(body []byte, h http.Header, keys [][]byte, _ time.Time) error {
	name := s.Header
	if name == "" {
		name = HeaderSignature
	}
	return verifyHex(sha256.New, body, h.Get(name), "sha256=", keys)
}

// SignHMACSHA256 is the HMACSHA256 header value of body under key: "sha256=<hex>".
func SignHMACSHA256(key, body []byte) string {
	return "sha256=" + hex.EncodeToString(macOf(sha256.New, key, body))
}

// macOf is the HMAC of body under key.
func macOf(alg func() hash.Hash, key, body []byte) []byte {
	mac := hmac.New(alg, key)
	mac.Write(body)
	return mac.Sum(nil)
}

// verifyHex checks a hex MAC (after an optional prefix) against the MAC of body under each key.
func verifyHex(alg func() hash.Hash, body []byte, header, prefix string, keys [][]byte) error {
	header = strings.TrimSpace(header)
	if header == "" {
		return ErrMissingSignature
	}
	if prefix != "" {
		if len(header) < len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
			return ErrBadSignature
		}
		header = header[len(prefix):]
	}
	got, err := hex.DecodeString(header)
	if err != nil {
		return ErrBadSignature
	}
	ok := false
	for _, key := range keys {
		// Check every key, so the time taken does not tell which one matched.
		if hmac.Equal(got, macOf(alg, key, body)) {
			ok = true
		}
	}
	if !ok {
		return ErrBadSignature
	}
	return nil
}

// Allowed reports whether addr lies in one of the prefixes; an empty list allows every address.
func Allowed(addr netip.Addr, prefixes []netip.Prefix) bool {
	if len(prefixes) == 0 {
		return true
	}
	addr = addr.Unmap()
	for _, p := range prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
