package webhookserver_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/leadhook/leadhook/api/v1alpha1"
	"github.com/leadhook/leadhook/webhookserver"
	"github.com/leadhook/leadhook/webhookserver/lead"
	"github.com/leadhook/leadhook/webhookserver/registry"
	"github.com/leadhook/leadhook/webhookserver/store"
	"github.com/leadhook/leadhook/webhookserver/store/storetest"
)

var mongo *storetest.Server

func TestMain(m *testing.M) {
	var err error
	if mongo, err = storetest.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "starting MongoDB-compatible server:", err)
		os.Exit(1)
	}
	code := m.Run()
	mongo.Stop()
	os.Exit(code)
}

const (
	// webhooksSecret is the Standard Webhooks specification's example secret.
	webhooksSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	jsonType       = "application/json"
	formType       = "application/x-www-form-urlencoded"
	taplinkKey     = "test-secret"
	genericPath    = "/api/lead"
	taplinkPath    = "/api/taplink/lead"
)

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// integration returns a LeadIntegration; website (Generic, IL, Asia/Jerusalem) unless changed.
func integration(name string, src v1alpha1.Source, change ...func(*v1alpha1.LeadIntegrationSpec)) v1alpha1.LeadIntegration {
	li := v1alpha1.LeadIntegration{Spec: v1alpha1.LeadIntegrationSpec{
		Source: src, DefaultRegion: "IL", TimeZone: "Asia/Jerusalem",
	}}
	li.Name, li.Namespace = name, "clinic"
	for _, c := range change {
		c(&li.Spec)
	}
	return li
}

func signedWith(secret string) func(*v1alpha1.LeadIntegrationSpec) {
	return func(s *v1alpha1.LeadIntegrationSpec) {
		s.Signature = &v1alpha1.SignatureSpec{SecretRef: v1alpha1.SecretKeyRef{Name: secret}}
	}
}

// defaultIntegrations are the two sample integrations: website on /api/lead and taplink on
// /api/taplink/lead, signed with the secret phrase "test-secret".
func defaultIntegrations() []v1alpha1.LeadIntegration {
	return []v1alpha1.LeadIntegration{
		integration("website", v1alpha1.SourceGeneric),
		integration("taplink", v1alpha1.SourceTaplink, signedWith("taplink-signing")),
	}
}

// env is a leadhook HTTP server on a real store with a database of its own.
type env struct {
	t     *testing.T
	url   string
	store *store.Store
	clock *clock
	live  *registry.Live
	// handler is what the server serves, for requests from a chosen peer (see from).
	handler http.Handler
	// secrets are the values of key "secret" of the Secrets in namespace clinic, by name.
	secrets map[string]string
}

// defaultSecrets are the Secrets test integrations may reference (key "secret", namespace clinic).
func defaultSecrets() map[string]string {
	return map[string]string{
		"taplink-signing":  taplinkKey,
		"webhooks-signing": webhooksSecret,
		"rotated-signing":  "old-key\nnew-key\n",
		"token-signing":    "tok-old\r\ntok-new\r\n",
	}
}

type options struct {
	items   []v1alpha1.LeadIntegration
	store   webhookserver.LeadStore
	timeout time.Duration
	trusted []netip.Prefix
	log     *slog.Logger                // default: discarded
	ready   func(context.Context) error // default: always ready
}

func newEnv(t *testing.T, items ...v1alpha1.LeadIntegration) *env {
	if items == nil {
		items = defaultIntegrations()
	}
	return newEnvWith(t, options{items: items})
}

func newEnvWith(t *testing.T, o options) *env {
	t.Helper()
	e := &env{t: t, clock: &clock{now: time.Date(2026, 3, 24, 12, 0, 0, 0, time.UTC)}, live: &registry.Live{}, secrets: defaultSecrets()}
	var st webhookserver.LeadStore = o.store
	if st == nil {
		e.store = mongo.Open(t)
		st = e.store
	}
	e.setIntegrations(o.items...)
	if o.log == nil {
		o.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	h := webhookserver.NewHandler(webhookserver.Config{
		Registry:     e.live,
		Store:        st,
		Log:          o.log,
		Now:          e.clock.Now,
		StoreTimeout: o.timeout,
		Ready:        o.ready,

		TrustedProxies: o.trusted,
	})
	e.handler = h
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	e.url = srv.URL
	return e
}

// setIntegrations replaces what the server serves, with e.secrets (the "taplink-signing"
// Secret holds "test-secret").
func (e *env) setIntegrations(items ...v1alpha1.LeadIntegration) {
	secrets := func(ns, name, key string) ([]byte, bool) {
		v, ok := e.secrets[name]
		if ns != "clinic" || key != v1alpha1.DefaultSecretKey || !ok {
			return nil, false
		}
		return []byte(v), true
	}
	table, _ := registry.Build(items, secrets, e.live.Table())
	e.live.Set(table)
}

// reply is a decoded answer.
type reply struct {
	Code   int
	Header http.Header
	Body   map[string]any
	Raw    string
}

// post sends body and checks that the answer is JSON with the contract's content type.
func (e *env) post(path, contentType string, body []byte, headers ...string) reply {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return e.do(req)
}

// from sends body as if from the socket peer remoteAddr ("203.0.113.7:4711", "[2001:db8::1]:4711"),
// straight to the handler.
func (e *env) from(remoteAddr, path, contentType string, body []byte, headers ...string) reply {
	e.t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.RemoteAddr = remoteAddr
	req.Header.Set("Content-Type", contentType)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	r := reply{Code: rec.Code, Header: rec.Header(), Raw: rec.Body.String()}
	if err := json.Unmarshal(rec.Body.Bytes(), &r.Body); err != nil {
		e.t.Fatalf("answer %q is not a JSON object: %v", r.Raw, err)
	}
	return r
}

func (e *env) do(req *http.Request) reply {
	e.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{Code: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		e.t.Errorf("Content-Type = %q, want application/json; charset=utf-8", ct)
	}
	if err := json.Unmarshal(raw, &r.Body); err != nil {
		e.t.Fatalf("answer %q is not a JSON object: %v", raw, err)
	}
	return r
}

// expect checks the status code and the status/error keys of an answer.
func (r reply) expect(t *testing.T, code int, status bool, errMsg string) {
	t.Helper()
	if r.Code != code {
		t.Fatalf("code = %d, want %d (body %s)", r.Code, code, r.Raw)
	}
	if got, _ := r.Body["status"].(bool); got != status {
		t.Errorf("status = %v, want %v (body %s)", r.Body["status"], status, r.Raw)
	}
	if errMsg != "" {
		if got, _ := r.Body["error"].(string); got != errMsg {
			t.Errorf("error = %q, want %q", got, errMsg)
		}
	}
}

// expectStored checks a 200 {"status":true,"lead_id":...} for a new lead and returns its id.
func (r reply) expectStored(t *testing.T) string {
	t.Helper()
	r.expect(t, http.StatusOK, true, "")
	if _, dup := r.Body["duplicate"]; dup {
		t.Errorf("answer %s marks a new lead as duplicate", r.Raw)
	}
	id, _ := r.Body["lead_id"].(string)
	if id == "" {
		t.Errorf("answer %s has no lead_id", r.Raw)
	}
	return id
}

// expectDuplicate checks a 200 {"status":true,"duplicate":true} naming the earlier lead.
func (r reply) expectDuplicate(t *testing.T, firstID string) {
	t.Helper()
	r.expect(t, http.StatusOK, true, "")
	if r.Body["duplicate"] != true {
		t.Errorf("answer %s is not marked duplicate", r.Raw)
	}
	if firstID != "" && r.Body["lead_id"] != firstID {
		t.Errorf("duplicate names lead %v, want %s", r.Body["lead_id"], firstID)
	}
}

// leads returns the stored leads, oldest first.
func (e *env) leads() []lead.Lead {
	e.t.Helper()
	cur, err := e.store.Leads().Find(context.Background(), bson.D{})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []lead.Lead
	if err := cur.All(context.Background(), &out); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// onlyLead checks exactly one lead is stored and returns it.
func (e *env) onlyLead() lead.Lead {
	e.t.Helper()
	ls := e.leads()
	if len(ls) != 1 {
		e.t.Fatalf("stored %d leads, want 1", len(ls))
	}
	return ls[0]
}

func (e *env) expectNoLeads() {
	e.t.Helper()
	if ls := e.leads(); len(ls) != 0 {
		e.t.Fatalf("stored %d leads, want none", len(ls))
	}
}

// intake waits for the intake log to hold n entries and returns them, oldest first.
func (e *env) intake(n int) []store.IntakeEntry {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		cur, err := e.store.Intake().Find(context.Background(), bson.D{})
		if err != nil {
			e.t.Fatal(err)
		}
		var out []store.IntakeEntry
		if err := cur.All(context.Background(), &out); err != nil {
			e.t.Fatal(err)
		}
		if len(out) >= n || time.Now().After(deadline) {
			if len(out) != n {
				e.t.Fatalf("intake log has %d entries, want %d", len(out), n)
			}
			return out
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// taplinkSignature is Taplink's header value for body under key.
func taplinkSignature(key string, body []byte) string {
	mac := hmac.New(sha1.New, []byte(key))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}
