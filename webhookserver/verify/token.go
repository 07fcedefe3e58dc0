package verify

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
	"time"
)

// Token is a shared token in a header: Authorization by default, where a "Bearer " prefix is
// optional, or Header. The token does not cover the body; it only proves the sender knows it.
type Token struct {
	Header string
}

// Verify implements Signer. The token is compared with every key in constant time; both are
// hashed first so that not even their lengths show in the time taken.
func (s Token) Verify(_ []byte, h http.Header, keys [][]byte, _ time.Time) error {
	v := TokenFrom(h, s.Header)
	if v == "" {
		return ErrMissingToken
	}
	got := sha256.Sum256([]byte(v))
	ok := false
	for _, key := range keys {
		want := sha256.Sum256(key)
		if subtle.ConstantTimeCompare(got[:], want[:]) == 1 {
			ok = true
		}
	}
	if !ok {
		return ErrBadToken
	}
	return nil
}

// TokenFrom is the token a request carries in header (Authorization if empty): the header's
// value, less a "Bearer " prefix (any case) when the header is Authorization.
func TokenFrom(h http.Header, header string) string {
	if header == "" {
		header = HeaderAuthorization
	}
	v := strings.TrimSpace(h.Get(header))
	if !strings.EqualFold(header, HeaderAuthorization) {
		return v
	}
	const bearer = "bearer"
	switch {
	case strings.EqualFold(v, bearer): // "Bearer " with nothing after it (the space is trimmed)
		return ""
	case len(v) > len(bearer) && strings.EqualFold(v[:len(bearer)], bearer) && v[len(bearer)] == ' ':
		return strings.TrimSpace(v[len(bearer)+1:])
	}
	return v
}

// SetToken puts token into header (Authorization if empty, as "Bearer <token>").
func SetToken(h http.Header, header, token string) {
	if header == "" || strings.EqualFold(header, HeaderAuthorization) {
		h.Set(HeaderAuthorization, "Bearer "+token)
		return
	}
	h.Set(header, token)
}
