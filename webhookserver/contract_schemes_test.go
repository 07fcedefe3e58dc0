package webhookserver_test

// The contract's 401 row for every signature scheme, key rotation, and replay protection,
// through the real handler and store.

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/leadhook/leadhook/api/v1alpha1"
	"github.com/leadhook/leadhook/webhookserver/verify"
)

const hooksPath = "/api/hooks"

// signedBy returns a change signing an integration with scheme and the Secret named secret.
func signedBy(scheme v1alpha1.SignatureScheme, secret string, change ...func(*v1alpha1.SignatureSpec)) func(*v1alpha1.LeadIntegrationSpec) {
	return func(s *v1alpha1.LeadIntegrationSpec) {
		s.Signature = &v1alpha1.SignatureSpec{Scheme: scheme, SecretRef: v1alpha1.SecretKeyRef{Name: secret}}
		for _, c := range change {
			c(s.Signature)
		}
	}
}

// hooks is a Generic integration on /api/hooks signed the Standard Webhooks way.
func hooks(change ...func(*v1alpha1.SignatureSpec)) v1alpha1.LeadIntegration {
	return integration("hooks", v1alpha1.SourceGeneric, func(s *v1alpha1.LeadIntegrationSpec) { s.Path = hooksPath },
		signedBy(v1alpha1.SchemeStandardWebhooks, "webhooks-signing", change...))
}

// swHeaders are the Standard Webhooks headers of a delivery signed with secret at ts.
func swHeaders(t *testing.T, secret, id string, ts time.Time, body []byte) []string {
	t.Helper()
	key, err := verify.DecodeStandardWebhooksKey([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return []string{
		"webhook-id", id,
		"webhook-timestamp", strconv.FormatInt(ts.Unix(), 10),
		"webhook-signature", verify.SignStandardWebhooks(key, id, ts.Unix(), body),
	}
}

// without drops a header (and its value) from a header list.
func without(headers []string, name string) []string {
	var out []string
	for i := 0; i+1 < len(headers); i += 2 {
		if !strings.EqualFold(headers[i], name) {
			out = append(out, headers[i], headers[i+1])
		}
	}
	return out
}

// with sets a header in a header list.
func with(headers []string, name, value string) []string {
	return append(without(headers, name), name, value)
}

// Row 401 for StandardWebhooks: a clear message, nothing about the secret, no lead.
func TestContractStandardWebhooks(t *testing.T) {
	body := []byte(`{"client_name":"Дана Коэн","phone":"054-771-2345","comment":"שלום"}`)
	now := time.Date(2026, 3, 24, 12, 0, 0, 0, time.UTC) // the env's clock
	good := swHeaders(t, webhooksSecret, "msg_1", now, body)

	t.Run("signed delivery stored as sent", func(t *testing.T) {
		e := newEnv(t, hooks())
		e.post(hooksPath, jsonType, body, good...).expectStored(t)
		l := e.onlyLead()
		if l.ClientName != "Дана Коэн" || l.Raw.Body != string(body) {
			t.Errorf("lead = %q, raw %q", l.ClientName, l.Raw.Body)
		}
		if !strings.HasPrefix(l.DedupKey, "delivery:") {
			t.Errorf("dedup key %q is not the delivery id's", l.DedupKey)
		}
	})
	t.Run("timestamps inside the window either way", func(t *testing.T) {
		e := newEnv(t, hooks())
		e.post(hooksPath, jsonType, body, swHeaders(t, webhooksSecret, "msg_old", now.Add(-299*time.Second), body)...).expectStored(t)
		e.post(hooksPath, jsonType, body, swHeaders(t, webhooksSecret, "msg_new", now.Add(299*time.Second), body)...).expectStored(t)
	})

	stale := swHeaders(t, webhooksSecret, "msg_1", now.Add(-6*time.Minute), body)
	future := swHeaders(t, webhooksSecret, "msg_1", now.Add(6*time.Minute), body)
	cases := []struct {
		name    string
		body    []byte
		headers []string
		want    string
	}{
		{"unsigned", body, nil, "Signature required"},
		{"no webhook-id", body, without(good, "webhook-id"), "Headers webhook-id and webhook-timestamp required"},
		{"no webhook-timestamp", body, without(good, "webhook-timestamp"), "Headers webhook-id and webhook-timestamp required"},
		{"timestamp not a number", body, with(good, "webhook-timestamp", "2026-03-24T12:00:00Z"), "Invalid webhook-timestamp"},
		{"stale timestamp", body, stale, "Timestamp outside the allowed window"},
		{"future timestamp", body, future, "Timestamp outside the allowed window"},
		{"wrong key", body, swHeaders(t, "whsec_b3RoZXIga2V5", "msg_1", now, body), "Invalid signature"},
		{"tampered body", bytes.Replace(body, []byte("2345"), []byte("2346"), 1), good, "Invalid signature"},
		{"same JSON re-encoded", []byte(`{"client_name":"\u0414\u0430\u043d\u0430 \u041a\u043e\u044d\u043d","phone":"054-771-2345","comment":"\u05e9\u05dc\u05d5\u05dd"}`), good, "Invalid signature"},
		{"other id", body, with(good, "webhook-id", "msg_2"), "Invalid signature"},
		{"malformed base64", body, with(good, "webhook-signature", "v1,not*base64"), "Invalid signature"},
		{"Taplink header instead", body, []string{"taplink-signature", taplinkSignature(taplinkKey, body)}, "Signature required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, hooks())
			r := e.post(hooksPath, jsonType, c.body, c.headers...)
			r.expect(t, http.StatusUnauthorized, false, c.want)
			if strings.Contains(r.Raw, "whsec") || strings.Contains(r.Raw, "MfKQ9r8G") {
				t.Errorf("answer %s shows the secret", r.Raw)
			}
			e.expectNoLeads()
		})
	}
	t.Run("undecodable secret fails closed", func(t *testing.T) {
		e := newEnv(t)
		e.secrets["webhooks-signing"] = "whsec_***"
		e.setIntegrations(hooks())
		r := e.post(hooksPath, jsonType, body, good...)
		r.expect(t, http.StatusServiceUnavailable, false, "Integration not ready, retry later")
		e.expectNoLeads()
	})
}

// Replay protection: inside the window a replayed delivery id is a duplicate (one lead, and
// a 200 the sender stops retrying on); outside it the same bytes are refused.
func TestContractStandardWebhooksReplay(t *testing.T) {
	body := []byte(`{"client_name":"Dana","phone":"+972501234567"}`)
	e := newEnv(t, hooks())
	sent := e.clock.Now()
	first := swHeaders(t, webhooksSecret, "msg_replayed", sent, body)
	id := e.post(hooksPath, jsonType, body, first...).expectStored(t)

	e.clock.Advance(2 * time.Minute)
	// The captured request, byte for byte.
	e.post(hooksPath, jsonType, body, first...).expectDuplicate(t, id)
	// An unsigned Idempotency-Key added to it does not make it a new delivery.
	e.post(hooksPath, jsonType, body, append(first, "Idempotency-Key", "fresh-key")...).expectDuplicate(t, id)
	// The sender's own retry: same id, fresh timestamp and signature.
	e.post(hooksPath, jsonType, body, swHeaders(t, webhooksSecret, "msg_replayed", e.clock.Now(), body)...).expectDuplicate(t, id)
	e.onlyLead()

	// Past the window, the captured request is refused.
	e.clock.Advance(3*time.Minute + time.Second) // 5m1s after it was signed
	e.post(hooksPath, jsonType, body, first...).expect(t, http.StatusUnauthorized, false, "Timestamp outside the allowed window")
	e.onlyLead()

	// A new delivery id with the same content is a new delivery.
	e.post(hooksPath, jsonType, body, swHeaders(t, webhooksSecret, "msg_other", e.clock.Now(), body)...).expectStored(t)
	if n := len(e.leads()); n != 2 {
		t.Errorf("stored %d leads, want 2", n)
	}

	t.Run("replay window from the spec", func(t *testing.T) {
		e := newEnv(t, hooks(func(s *v1alpha1.SignatureSpec) { s.ReplayWindow = &metav1.Duration{Duration: time.Minute} }))
		hdr := swHeaders(t, webhooksSecret, "msg_1", e.clock.Now(), body)
		id := e.post(hooksPath, jsonType, body, hdr...).expectStored(t)
		e.clock.Advance(time.Minute)
		e.post(hooksPath, jsonType, body, hdr...).expectDuplicate(t, id)
		e.clock.Advance(time.Second)
		e.post(hooksPath, jsonType, body, hdr...).expect(t, http.StatusUnauthorized, false, "Timestamp outside the allowed window")
		e.onlyLead()
	})
}

// Row 401 for Token: a shared token in Authorization (Bearer optional) or a named header.
func TestContractToken(t *testing.T) {
	body := []byte(`{"client_name":"Dana","phone":"+972501234567"}`)
	tokenIntegration := func(header string) v1alpha1.LeadIntegration {
		return integration("website", v1alpha1.SourceGeneric, signedBy(v1alpha1.SchemeToken, "token-signing",
			func(s *v1alpha1.SignatureSpec) { s.Header = header }))
	}
	cases := []struct {
		name, header string
		headers      []string
		code         int
		want         string
	}{
		{"bearer, new token", "", []string{"Authorization", "Bearer tok-new"}, http.StatusOK, ""},
		{"bearer, old token still configured", "", []string{"Authorization", "Bearer tok-old"}, http.StatusOK, ""},
		{"bare token", "", []string{"Authorization", "tok-new"}, http.StatusOK, ""},
		{"custom header", "X-Api-Key", []string{"X-Api-Key", "tok-new"}, http.StatusOK, ""},
		{"missing", "", nil, http.StatusUnauthorized, "Token required"},
		{"wrong token", "", []string{"Authorization", "Bearer tok-wrong"}, http.StatusUnauthorized, "Invalid token"},
		{"custom header ignores Authorization", "X-Api-Key", []string{"Authorization", "Bearer tok-new"}, http.StatusUnauthorized, "Token required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, tokenIntegration(c.header))
			r := e.post(genericPath, jsonType, body, c.headers...)
			r.expect(t, c.code, c.code == http.StatusOK, c.want)
			if strings.Contains(r.Raw, "tok-") {
				t.Errorf("answer %s shows a token", r.Raw)
			}
		})
	}
}

// Key rotation: with "old\nnew" in the Secret both keys pass; once the old key is removed
// from the Secret, deliveries signed with it fail.
func TestContractKeyRotation(t *testing.T) {
	tapl := fixture(t, "taplink-leads-created.json")
	seed := fixture(t, "taplink-seed.json")
	body := []byte(`{"client_name":"Dana","phone":"+972501234567"}`)
	schemes := []struct {
		name    string
		item    v1alpha1.LeadIntegration
		path    string
		bodies  [2][]byte
		headers func(key string, body []byte) []string
	}{
		{"TaplinkSHA1", integration("taplink", v1alpha1.SourceTaplink, signedBy(v1alpha1.SchemeTaplinkSHA1, "rotated-signing")), taplinkPath,
			[2][]byte{tapl, seed},
			func(key string, body []byte) []string {
				return []string{"taplink-signature", taplinkSignature(key, body)}
			}},
		{"HMACSHA256", integration("website", v1alpha1.SourceGeneric, signedBy(v1alpha1.SchemeHMACSHA256, "rotated-signing")), genericPath,
			[2][]byte{body, []byte(`{"client_name":"Noa","phone":"+972501234568"}`)},
			func(key string, body []byte) []string {
				return []string{"X-Signature", verify.SignHMACSHA256([]byte(key), body)}
			}},
		{"StandardWebhooks", integration("hooks", v1alpha1.SourceGeneric, signedBy(v1alpha1.SchemeStandardWebhooks, "rotated-signing")), genericPath,
			[2][]byte{body, []byte(`{"client_name":"Noa","phone":"+972501234568"}`)},
			func(key string, body []byte) []string {
				id := "msg_" + strconv.Itoa(len(body)) + key
				ts := time.Date(2026, 3, 24, 12, 0, 0, 0, time.UTC).Unix()
				return []string{"webhook-id", id, "webhook-timestamp", strconv.FormatInt(ts, 10),
					"webhook-signature", verify.SignStandardWebhooks([]byte(key), id, ts, body)}
			}},
	}
	for _, s := range schemes {
		t.Run(s.name, func(t *testing.T) {
			e := newEnv(t, s.item)
			e.post(s.path, jsonType, s.bodies[0], s.headers("old-key", s.bodies[0])...).expectStored(t)
			e.post(s.path, jsonType, s.bodies[1], s.headers("new-key", s.bodies[1])...).expectStored(t)
			e.post(s.path, jsonType, s.bodies[1], s.headers("other-key", s.bodies[1])...).expect(t, http.StatusUnauthorized, false, "Invalid signature")

			e.secrets["rotated-signing"] = "new-key\n" // the old key is removed
			e.setIntegrations(s.item)
			e.post(s.path, jsonType, s.bodies[0], s.headers("old-key", s.bodies[0])...).expect(t, http.StatusUnauthorized, false, "Invalid signature")
			if n := len(e.leads()); n != 2 {
				t.Errorf("stored %d leads, want 2", n)
			}
		})
	}
}
