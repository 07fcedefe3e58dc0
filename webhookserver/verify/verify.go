// Package verify checks who sent a delivery: signatures over the exact bytes received and
// source-address allowlists. Functions here are pure and compare secrets in constant time.
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
)

// Errors a verifier returns; their text is safe to show the sender.
var (
	ErrMissingSignature = errors.New("Signature required") //nolint:staticcheck // shown to senders
	ErrBadSignature     = errors.New("Invalid signature")  //nolint:staticcheck // shown to senders
)

// Headers used by the schemes.
const (
	HeaderTaplink   = "Taplink-Signature"
	HeaderSignature = "X-Signature"
)

// Signer checks a delivery's signature over its raw body.
type Signer interface {
	Verify(body []byte, h http.Header, keys [][]byte) error
}

// TaplinkSHA1 is Taplink's scheme: lowercase hex HMAC-SHA1 of the body in taplink-signature.
type TaplinkSHA1 struct{}

// Verify implements Signer.
func (TaplinkSHA1) Verify(body []byte, h http.Header, keys [][]byte) error {
	return verifyHex(sha1.New, body, h.Get(HeaderTaplink), "", keys)
}

// HMACSHA256 carries "sha256=<hex HMAC-SHA256 of the body>" in a header (X-Signature unless set).
type HMACSHA256 struct {
	Header string
}

// Verify implements Signer.
func (s HMACSHA256) Verify(body []byte, h http.Header, keys [][]byte) error {
	name := s.Header
	if name == "" {
		name = HeaderSignature
	}
	return verifyHex(sha256.New, body, h.Get(name), "sha256=", keys)
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
		mac := hmac.New(alg, key)
		mac.Write(body)
		// Check every key, so the time taken does not tell which one matched.
		if hmac.Equal(got, mac.Sum(nil)) {
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
