package webhookserver_test

// One test per row of the HTTP contract (../shared/DESIGN.md, "The HTTP contract").

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/leadhook/leadhook/api/v1alpha1"
	"github.com/leadhook/leadhook/webhookserver/lead"
	"github.com/leadhook/leadhook/webhookserver/spool"
	"github.com/leadhook/leadhook/webhookserver/store"
	"github.com/leadhook/leadhook/webhookserver/store/storetest"
)

// Row: lead stored (durably) → 200 {"status":true}, and the lead is in the store.
func TestContractStored(t *testing.T) {
	e := newEnv(t)
	id := e.post(genericPath, jsonType, []byte(`{"client_name":"Dana","phone":"054-771-2345","comment":"call me"}`)).expectStored(t)
	l := e.onlyLead()
	if l.ID.Hex() != id {
		t.Errorf("answer names lead %s, store has %s", id, l.ID.Hex())
	}
	if l.Phone.E164 != "+972547712345" || !l.Phone.Valid || l.Phone.Raw != "054-771-2345" {
		t.Errorf("phone = %+v, want raw kept and +972547712345 valid", l.Phone)
	}
	if l.ClientName != "Dana" || l.Comment != "call me" || l.Status != lead.StatusNew {
		t.Errorf("lead = %+v", l)
	}
	if l.Integration != (lead.Integration{Namespace: "clinic", Name: "website", Source: "Generic"}) {
		t.Errorf("integration = %+v", l.Integration)
	}
	if l.DedupKey == "" || l.Raw.Body == "" || l.Request.RequestID == "" || l.Request.RemoteIP != "127.0.0.1" {
		t.Errorf("dedup key, raw body, request id or remote ip missing: %+v", l)
	}
}

// Row: same delivery again → 200 {"status":true,"duplicate":true}, no second lead.
func TestContractDuplicate(t *testing.T) {
	body := []byte(`{"client_name":"Dana","phone":"+972501234567"}`)
	t.Run("identical content", func(t *testing.T) {
		e := newEnv(t)
		id := e.post(genericPath, jsonType, body).expectStored(t)
		e.clock.Advance(time.Minute)
		e.post(genericPath, jsonType, body).expectDuplicate(t, id)
		e.onlyLead()
	})
	t.Run("idempotency key", func(t *testing.T) {
		e := newEnv(t)
		id := e.post(genericPath, jsonType, body, "Idempotency-Key", "d-1").expectStored(t)
		// A retry may differ in bytes (a re-rendered form); the key says it is the same delivery.
		e.clock.Advance(time.Hour)
		e.post(genericPath, jsonType, []byte(`{"phone":"+972501234567","client_name":"Dana "}`), "Idempotency-Key", "d-1").expectDuplicate(t, id)
		e.post(genericPath, jsonType, body, "Idempotency-Key", "d-2").expectStored(t)
		if n := len(e.leads()); n != 2 {
			t.Errorf("stored %d leads, want 2", n)
		}
	})
	t.Run("webhook-id", func(t *testing.T) {
		e := newEnv(t)
		id := e.post(genericPath, jsonType, body, "webhook-id", "msg_1").expectStored(t)
		e.post(genericPath, jsonType, body, "webhook-id", "msg_1").expectDuplicate(t, id)
		e.onlyLead()
	})
	t.Run("window", func(t *testing.T) {
		e := newEnv(t, integration("website", v1alpha1.SourceGeneric, func(s *v1alpha1.LeadIntegrationSpec) {
			s.DuplicateWindow = nil // ten minutes
		}))
		id := e.post(genericPath, jsonType, body).expectStored(t)
		// Just across a window boundary is still inside the window.
		e.clock.Advance(9 * time.Minute)
		e.post(genericPath, jsonType, body).expectDuplicate(t, id)
		// Two windows later, the same words are a new request for a call.
		e.clock.Advance(20 * time.Minute)
		e.post(genericPath, jsonType, body).expectStored(t)
		if n := len(e.leads()); n != 2 {
			t.Errorf("stored %d leads, want 2", n)
		}
	})
	t.Run("different lead", func(t *testing.T) {
		e := newEnv(t)
		e.post(genericPath, jsonType, body).expectStored(t)
		e.post(genericPath, jsonType, []byte(`{"client_name":"Dana","phone":"+972501234568"}`)).expectStored(t)
	})
}

// Row: sender probe (Tilda test=test, Google is_test) → 200 {"status":true}, no lead.
func TestContractProbe(t *testing.T) {
	for name, c := range map[string]struct{ ct, body string }{
		"tilda form":       {formType, "test=test"},
		"tilda json":       {jsonType, `{"test":"test"}`},
		"google is_test":   {jsonType, `{"is_test":true,"lead_id":"x","user_column_data":[]}`},
		"google is_test s": {jsonType, `{"is_test":"true","phone":"+972501234567"}`},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			r := e.post(genericPath, c.ct, []byte(c.body))
			r.expect(t, http.StatusOK, true, "")
			if _, ok := r.Body["lead_id"]; ok {
				t.Errorf("probe answered with a lead id: %s", r.Raw)
			}
			e.expectNoLeads()
			if got := e.intake(1)[0].Outcome; got != "probe" {
				t.Errorf("intake outcome = %q, want probe", got)
			}
		})
	}
}

// Row: body is not parseable → 400 {"status":false,"error":"Malformed payload"}.
func TestContractMalformed(t *testing.T) {
	cases := []struct {
		name, path, ct string
		body           []byte
	}{
		{"bad json", genericPath, jsonType, []byte(`{"phone":"+972501234567"`)},
		{"empty body", genericPath, jsonType, nil},
		{"blank body", genericPath, jsonType, []byte(" \n")},
		{"bad utf-8", genericPath, jsonType, []byte("{\"phone\":\"+972501234567\",\"client_name\":\"\xff\xfe\"}")},
		{"bad utf-8 form", genericPath, formType, []byte("phone=%2B972501234567&client_name=\xc3\x28")},
		{"trailing data", genericPath, jsonType, []byte(`{"phone":"1"} {"phone":"2"}`)},
		{"not an object", genericPath, jsonType, []byte(`["+972501234567"]`)},
		{"bad form escape", genericPath, formType, []byte(`phone=%zz`)},
		{"multipart without boundary", genericPath, "multipart/form-data", []byte("--x\r\n")},
		{"taplink bad json", taplinkPath, jsonType, []byte(`{"data":`)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			e.post(c.path, c.ct, c.body, "taplink-signature", taplinkSignature(taplinkKey, c.body)).
				expect(t, http.StatusBadRequest, false, "Malformed payload")
			e.expectNoLeads()
		})
	}
}

// Row: phone missing or blank everywhere → 422 {"status":false,"error":"Phone is required"}.
func TestContractPhoneRequired(t *testing.T) {
	cases := []struct {
		name, path, ct, body string
	}{
		{"generic missing", genericPath, jsonType, `{"client_name":"Dana"}`},
		{"generic blank", genericPath, jsonType, `{"client_name":"Dana","phone":"  "}`},
		{"generic null", genericPath, jsonType, `{"client_name":"Dana","phone":null}`},
		{"generic form blank", genericPath, formType, `client_name=Dana&phone=`},
		{"taplink blank everywhere", taplinkPath, jsonType,
			`{"action":"leads.created","data":{"fullname":"Dana","phone":"","records":[{"type":"7","idx":"1","title":"Телефон","value":""}]}}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			e.post(c.path, c.ct, []byte(c.body), "taplink-signature", taplinkSignature(taplinkKey, []byte(c.body))).
				expect(t, http.StatusUnprocessableEntity, false, "Phone is required")
			e.expectNoLeads()
		})
	}
}

// Row: other validation failure → 422 with a message naming the field.
func TestContractValidation(t *testing.T) {
	cases := []struct {
		name, path, body, field string
	}{
		{"array phone", genericPath, `{"phone":["+972501234567"]}`, "phone"},
		{"object name", genericPath, `{"phone":"+972501234567","client_name":{"first":"Dana"}}`, "client_name"},
		{"object comment", genericPath, `{"phone":"+972501234567","comment":{}}`, "comment"},
		{"taplink no data", taplinkPath, `{"action":"leads.created"}`, "data"},
		{"taplink data not object", taplinkPath, `{"data":"x"}`, "data"},
		{"taplink records not list", taplinkPath, `{"data":{"phone":"+79001234567","records":{}}}`, "data.records"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			r := e.post(c.path, jsonType, []byte(c.body), "taplink-signature", taplinkSignature(taplinkKey, []byte(c.body)))
			r.expect(t, http.StatusUnprocessableEntity, false, "")
			if msg, _ := r.Body["error"].(string); !strings.Contains(msg, c.field) {
				t.Errorf("error %q does not name field %s", msg, c.field)
			}
			e.expectNoLeads()
		})
	}
}

// Row: no enabled integration serves this path → 403 {"status":false,"error":"No active integration"}.
func TestContractNoActiveIntegration(t *testing.T) {
	body := []byte(`{"phone":"+972501234567"}`)
	t.Run("unknown path", func(t *testing.T) {
		e := newEnv(t)
		e.post("/api/other", jsonType, body).expect(t, http.StatusForbidden, false, "No active integration")
	})
	t.Run("disabled", func(t *testing.T) {
		off := false
		e := newEnv(t, integration("website", v1alpha1.SourceGeneric, func(s *v1alpha1.LeadIntegrationSpec) { s.Enabled = &off }))
		e.post(genericPath, jsonType, body).expect(t, http.StatusForbidden, false, "No active integration")
		e.expectNoLeads()
		// Switched back on, the same path takes leads again without a restart.
		e.setIntegrations(integration("website", v1alpha1.SourceGeneric))
		e.post(genericPath, jsonType, body).expectStored(t)
	})
	t.Run("invalid spec", func(t *testing.T) {
		e := newEnv(t, integration("website", v1alpha1.SourceGeneric, func(s *v1alpha1.LeadIntegrationSpec) { s.TimeZone = "Mars/Olympus" }))
		e.post(genericPath, jsonType, body).expect(t, http.StatusForbidden, false, "No active integration")
	})
	t.Run("custom path", func(t *testing.T) {
		e := newEnv(t, integration("landing", v1alpha1.SourceGeneric, func(s *v1alpha1.LeadIntegrationSpec) { s.Path = "/hooks/landing" }))
		e.post(genericPath, jsonType, body).expect(t, http.StatusForbidden, false, "No active integration")
		e.post("/hooks/landing", jsonType, body).expectStored(t)
		if got := e.onlyLead().Integration.Name; got != "landing" {
			t.Errorf("lead integration = %s, want landing", got)
		}
	})
}

// Row: signature missing or wrong → 401 with a clear message that says nothing of the secret.
func TestContractSignature(t *testing.T) {
	body := fixture(t, "taplink-leads-created.json")
	cases := []struct {
		name, header, want string
		body               []byte
	}{
		{"missing", "", "Signature required", body},
		{"wrong key", taplinkSignature("other-secret", body), "Invalid signature", body},
		{"tampered body", taplinkSignature(taplinkKey, body), "Invalid signature", bytes.Replace(body, []byte("79001234567"), []byte("79001234568"), 1)},
		{"not hex", "zz", "Invalid signature", body},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			var hdr []string
			if c.header != "" {
				hdr = []string{"taplink-signature", c.header}
			}
			r := e.post(taplinkPath, jsonType, c.body, hdr...)
			r.expect(t, http.StatusUnauthorized, false, c.want)
			if strings.Contains(r.Raw, taplinkKey) {
				t.Errorf("answer %s shows the secret", r.Raw)
			}
			e.expectNoLeads()
		})
	}
	t.Run("secret missing fails closed", func(t *testing.T) {
		e := newEnv(t, integration("taplink", v1alpha1.SourceTaplink, signedWith("no-such-secret")))
		r := e.post(taplinkPath, jsonType, body, "taplink-signature", taplinkSignature(taplinkKey, body))
		r.expect(t, http.StatusServiceUnavailable, false, "Integration not ready, retry later")
		if got := r.Header.Get("Retry-After"); got != "60" {
			t.Errorf("Retry-After = %q, want 60 (a Secret takes a while to appear)", got)
		}
		e.expectNoLeads()
	})
	t.Run("an outsider learns nothing of it", func(t *testing.T) {
		e := newEnv(t, integration("taplink", v1alpha1.SourceTaplink, signedWith("no-such-secret"),
			func(s *v1alpha1.LeadIntegrationSpec) { s.AllowedSourceRanges = []string{"203.0.113.0/24"} }))
		r := e.post(taplinkPath, jsonType, body, "taplink-signature", taplinkSignature(taplinkKey, body))
		r.expect(t, http.StatusForbidden, false, "Forbidden")
	})
}

// Row: source IP not in the allowlist → 403 {"status":false,"error":"Forbidden"}.
func TestContractAllowlist(t *testing.T) {
	body := []byte(`{"phone":"+972501234567"}`)
	e := newEnv(t, integration("website", v1alpha1.SourceGeneric, func(s *v1alpha1.LeadIntegrationSpec) {
		s.AllowedSourceRanges = []string{"203.0.113.0/24", "2001:db8::/32"}
	}))
	e.post(genericPath, jsonType, body).expect(t, http.StatusForbidden, false, "Forbidden")
	// X-Forwarded-For from an untrusted peer is not believed.
	e.post(genericPath, jsonType, body, "X-Forwarded-For", "203.0.113.7").expect(t, http.StatusForbidden, false, "Forbidden")
	e.expectNoLeads()
	e.setIntegrations(integration("website", v1alpha1.SourceGeneric, func(s *v1alpha1.LeadIntegrationSpec) {
		s.AllowedSourceRanges = []string{"127.0.0.0/8"}
	}))
	e.post(genericPath, jsonType, body).expectStored(t)
}

// Row: body over the integration's limit → 413.
func TestContractTooLarge(t *testing.T) {
	big := []byte(`{"phone":"+972501234567","comment":"` + strings.Repeat("x", 2048) + `"}`)
	e := newEnv(t, integration("website", v1alpha1.SourceGeneric, func(s *v1alpha1.LeadIntegrationSpec) { s.MaxBodyBytes = 1024 }))
	e.post(genericPath, jsonType, big).expect(t, http.StatusRequestEntityTooLarge, false, "Payload too large")
	// Without a Content-Length (chunked), the limit holds while reading.
	req, _ := http.NewRequest(http.MethodPost, e.url+genericPath, io.MultiReader(bytes.NewReader(big)))
	req.Header.Set("Content-Type", jsonType)
	req.ContentLength = -1
	e.do(req).expect(t, http.StatusRequestEntityTooLarge, false, "Payload too large")
	e.expectNoLeads()
	// What arrived is kept in the intake log (size-capped; truncated where reading stopped).
	for _, entry := range e.intake(2) {
		if entry.Status != http.StatusRequestEntityTooLarge || !strings.HasPrefix(string(big), entry.Body) || len(entry.Body) < 1024 {
			t.Errorf("intake entry = status %d, %d body bytes kept", entry.Status, len(entry.Body))
		}
	}
	// A body just under the limit is fine.
	e.post(genericPath, jsonType, big[:0:0]).expect(t, http.StatusBadRequest, false, "Malformed payload")
	e.post(genericPath, jsonType, []byte(`{"phone":"+972501234567","comment":"`+strings.Repeat("x", 900)+`"}`)).expectStored(t)
}

// Row: media type not supported → 415.
func TestContractUnsupportedMediaType(t *testing.T) {
	cases := []struct{ name, path, ct, body string }{
		{"text/plain", genericPath, "text/plain", `{"phone":"+972501234567"}`},
		{"xml", genericPath, "application/xml", `<lead><phone>+972501234567</phone></lead>`},
		{"unknown charset", genericPath, "application/json; charset=klingon", `{"phone":"+972501234567"}`},
		{"garbage type", genericPath, "%%%", `{"phone":"+972501234567"}`},
		{"none and not json", genericPath, "", `phone=+972501234567`},
		{"taplink form", taplinkPath, formType, `data=1`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			e.post(c.path, c.ct, []byte(c.body), "taplink-signature", taplinkSignature(taplinkKey, []byte(c.body))).
				expect(t, http.StatusUnsupportedMediaType, false, "")
			e.expectNoLeads()
		})
	}
}

// Row: rate limit exceeded → 429 with Retry-After.
func TestContractRateLimited(t *testing.T) {
	e := newEnv(t, integration("website", v1alpha1.SourceGeneric, func(s *v1alpha1.LeadIntegrationSpec) {
		s.RateLimit = &v1alpha1.RateLimitSpec{RequestsPerSecond: 1, Burst: 2}
	}))
	e.post(genericPath, jsonType, []byte(`{"phone":"+972501234567"}`)).expectStored(t)
	e.post(genericPath, jsonType, []byte(`{"phone":"+972501234568"}`)).expectStored(t)
	r := e.post(genericPath, jsonType, []byte(`{"phone":"+972501234569"}`))
	r.expect(t, http.StatusTooManyRequests, false, "Too many requests")
	if r.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}

// downStore is a store whose server is gone: every write fails as the driver reports it.
type downStore struct{ *store.Store }

// Row: storage unavailable and nothing durable took the lead → 503 with Retry-After.
func TestContractStorageUnavailable(t *testing.T) {
	st := mongo.Open(t)
	// Disconnect the store's client: writes fail exactly as they do when MongoDB is gone.
	if err := st.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, options{items: defaultIntegrations(), store: downStore{st}, timeout: time.Second})
	r := e.post(genericPath, jsonType, []byte(`{"phone":"+972501234567"}`))
	r.expect(t, http.StatusServiceUnavailable, false, "Storage unavailable, retry later")
	if got := r.Header.Get("Retry-After"); got != "30" {
		t.Errorf("Retry-After = %q, want 30", got)
	}
}

// Row: lead stored (durably). With MongoDB down, durable means fsynced to the spool: still
// exactly 200 with the lead's id, and the lead is in MongoDB once it is back, under that id.
// With the spool full too, nothing durable took the lead: 503 with Retry-After.
func TestContractMongoDBDownSpoolTakesTheLead(t *testing.T) {
	srv := storetest.StartStoppable(t)
	open := func(maxBytes int64) (*store.Store, *spool.Spool) {
		sp, err := spool.Open(t.TempDir(), maxBytes)
		if err != nil {
			t.Fatal(err)
		}
		st, err := store.Open(context.Background(), store.Options{URI: srv.URI, Database: "spooled", Spool: sp,
			WriteTimeout: time.Second, RetryInterval: 100 * time.Millisecond, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close(context.Background()) })
		return st, sp
	}
	st, sp := open(64 << 20)
	full, _ := open(100) // smaller than any lead
	e := newEnvWith(t, options{items: defaultIntegrations(), store: st})
	eFull := newEnvWith(t, options{items: defaultIntegrations(), store: full})
	srv.Stop()

	id := e.post(genericPath, jsonType, []byte(`{"phone":"+972501234567","client_name":"Spooled"}`)).expectStored(t)
	if sp.Stats().Records != 1 {
		t.Fatalf("spool holds %d leads after a 200 with MongoDB down, want 1", sp.Stats().Records)
	}
	r := eFull.post(genericPath, jsonType, []byte(`{"phone":"+972501234568"}`))
	r.expect(t, http.StatusServiceUnavailable, false, "Storage unavailable, retry later")
	if got := r.Header.Get("Retry-After"); got != "30" {
		t.Errorf("Retry-After = %q, want 30", got)
	}

	srv.Start(t)
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var got lead.Lead
		err := st.Leads().FindOne(context.Background(), bson.D{{Key: "_id", Value: oid}}).Decode(&got)
		if err == nil {
			if got.ClientName != "Spooled" || sp.Stats().Records != 0 {
				t.Fatalf("drained lead %+v, spool %+v", got, sp.Stats())
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("spooled lead %s not in MongoDB a minute after it came back: %v", id, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// panicStore breaks in a way nothing expects.
type panicStore struct{}

func (panicStore) InsertLead(context.Context, *lead.Lead) (store.InsertResult, error) {
	panic(errors.New("mongo: internal detail at 10.0.0.7:27017"))
}

func (panicStore) FindLead(context.Context, string) (bson.ObjectID, bool, error) {
	panic(errors.New("mongo: internal detail"))
}

func (panicStore) RecordIntake(*store.IntakeEntry) {}

// Row: anything unexpected → 500 {"status":false,"error":"Server error"}, never internals.
func TestContractServerError(t *testing.T) {
	e := newEnvWith(t, options{items: defaultIntegrations(), store: panicStore{}})
	r := e.post(genericPath, jsonType, []byte(`{"phone":"+972501234567"}`))
	r.expect(t, http.StatusInternalServerError, false, "Server error")
	if strings.Contains(r.Raw, "10.0.0.7") || strings.Contains(r.Raw, "mongo") {
		t.Errorf("500 shows internals: %s", r.Raw)
	}
}

// Unknown routes and methods also answer JSON.
func TestContractRoutes(t *testing.T) {
	e := newEnv(t)
	get := func(path string) reply {
		req, _ := http.NewRequest(http.MethodGet, e.url+path, nil)
		return e.do(req)
	}
	get("/healthz").expect(t, http.StatusOK, true, "")
	get("/readyz").expect(t, http.StatusOK, true, "")
	r := get(genericPath)
	r.expect(t, http.StatusMethodNotAllowed, false, "Method not allowed")
	if r.Header.Get("Allow") != http.MethodPost {
		t.Errorf("Allow = %q", r.Header.Get("Allow"))
	}
	// The probes are not lead paths: a POST to one is refused, not taken for a delivery.
	for _, probe := range []string{"/healthz", "/readyz"} {
		r := e.post(probe, jsonType, []byte(`{"phone":"+972501234567"}`))
		r.expect(t, http.StatusMethodNotAllowed, false, "Method not allowed")
		if r.Header.Get("Allow") != http.MethodGet {
			t.Errorf("POST %s: Allow = %q, want GET", probe, r.Header.Get("Allow"))
		}
	}
	// A trailing slash reaches the same integration.
	e.post(genericPath+"/", jsonType, []byte(`{"phone":"+972501234567"}`)).expectStored(t)

	// Every request's outcome is in the intake log, the unrouted ones included; a stored
	// lead's entry records its size (the lead keeps the body itself).
	entries := e.intake(4) // health probes are not deliveries; POSTs to them are
	if m := entries[0]; m.Method != http.MethodGet || m.Status != http.StatusMethodNotAllowed || m.Path != genericPath {
		t.Errorf("405 intake entry = %+v", m)
	}
	if m := entries[1]; m.Method != http.MethodPost || m.Status != http.StatusMethodNotAllowed || m.Path != "/healthz" {
		t.Errorf("POST /healthz intake entry = %+v", m)
	}
	if s := entries[3]; s.Status != http.StatusOK || s.BodyBytes != len(`{"phone":"+972501234567"}`) || s.Body != "" {
		t.Errorf("stored lead's intake entry: status %d, body_bytes %d, body %q", s.Status, s.BodyBytes, s.Body)
	}
}

// Generic bodies: JSON, urlencoded and multipart forms, media types parsed properly.
func TestGenericBodies(t *testing.T) {
	multipartBody := func(fields map[string]string) ([]byte, string) {
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		for k, v := range fields {
			_ = w.WriteField(k, v)
		}
		fw, _ := w.CreateFormFile("attachment", "cv.txt")
		_, _ = fw.Write([]byte("a file is ignored"))
		_ = w.Close()
		return buf.Bytes(), w.FormDataContentType()
	}
	mp, mpType := multipartBody(map[string]string{"client_name": "Dana", "phone": "+972501234567", "comment": "hi"})
	cp1251 := []byte("client_name=\xc8\xe2\xe0\xed&phone=%2B79001234567") // "Иван" in windows-1251
	cases := []struct {
		name, ct   string
		body       []byte
		wantName   string
		wantPhone  string
		wantFormID string
	}{
		{"json", jsonType, []byte(`{"client_name":"Dana","phone":"+972501234567"}`), "Dana", "+972501234567", ""},
		{"json case and charset", "Application/JSON; Charset=UTF-8", []byte(`{"client_name":"Dana","phone":"+972501234567"}`), "Dana", "+972501234567", ""},
		{"json suffix type", "application/vnd.lead+json", []byte(`{"client_name":"Dana","phone":"+972501234567"}`), "Dana", "+972501234567", ""},
		{"json without content type", "", []byte(`{"client_name":"Dana","phone":"+972501234567"}`), "Dana", "+972501234567", ""},
		{"json bom", jsonType, []byte("\xef\xbb\xbf{\"client_name\":\"Dana\",\"phone\":\"+972501234567\"}"), "Dana", "+972501234567", ""},
		{"json numbers as text", jsonType, []byte(`{"phone":972501234567,"form_id":12,"client_name":"Dana"}`), "Dana", "+972501234567", "12"},
		{"form", formType, []byte("client_name=Dana&phone=%2B972501234567&form_id=f1"), "Dana", "+972501234567", "f1"},
		{"form upper case type", "APPLICATION/X-WWW-FORM-URLENCODED; charset=utf-8", []byte("client_name=Dana&phone=%2B972501234567"), "Dana", "+972501234567", ""},
		{"form tilda names", formType, []byte("Name=Dana&Phone=%2B972501234567&formid=form1"), "Dana", "+972501234567", "form1"},
		{"form windows-1251", formType + "; charset=windows-1251", cp1251, "Иван", "+79001234567", ""},
		{"multipart", mpType, mp, "Dana", "+972501234567", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			e.post(genericPath, c.ct, c.body).expectStored(t)
			l := e.onlyLead()
			if l.ClientName != c.wantName || l.Phone.E164 != c.wantPhone || l.FormID != c.wantFormID {
				t.Errorf("lead name %q phone %q form %q, want %q %q %q", l.ClientName, l.Phone.E164, l.FormID, c.wantName, c.wantPhone, c.wantFormID)
			}
			if !bytes.Equal([]byte(l.Raw.Body), c.body) && !bytes.Equal(l.Raw.BodyBinary, c.body) {
				t.Errorf("raw body not kept exactly")
			}
		})
	}
}

// Normalisation: unusual phones kept and flagged, created_at in the integration's zone.
func TestNormalisation(t *testing.T) {
	e := newEnv(t)
	e.post(genericPath, jsonType, []byte(`{"phone":"12345","created_at":"next tuesday","email":"not-an-email"}`)).expectStored(t)
	l := e.onlyLead()
	if l.Phone.Raw != "12345" || l.Phone.Valid {
		t.Errorf("phone = %+v, want raw kept, not valid", l.Phone)
	}
	for _, f := range []string{lead.FlagPhoneUnusual, lead.FlagCreatedAtUnparsed, lead.FlagEmailInvalid} {
		if !strings.Contains(strings.Join(l.Flags, ","), f) {
			t.Errorf("flags %v lack %s", l.Flags, f)
		}
	}
	if !l.CreatedAt.Equal(e.clock.Now()) || l.CreatedRaw != "next tuesday" {
		t.Errorf("created_at = %v raw %q, want receive time and raw kept", l.CreatedAt, l.CreatedRaw)
	}
	for _, c := range []struct{ raw, want string }{
		{"2023-08-23 06:49:51", "2023-08-23T03:49:51Z"}, // Asia/Jerusalem, summer
		{"2023-01-10 06:49:51", "2023-01-10T04:49:51Z"}, // winter
		{"2023-08-23T06:49:51+02:00", "2023-08-23T04:49:51Z"},
		{"1692773391", "2023-08-23T06:49:51Z"},
	} {
		e := newEnv(t)
		e.post(genericPath, jsonType, []byte(`{"phone":"+972501234567","created_at":"`+c.raw+`"}`)).expectStored(t)
		if got := e.onlyLead().CreatedAt.UTC().Format(time.RFC3339); got != c.want {
			t.Errorf("created_at %q stored as %s, want %s", c.raw, got, c.want)
		}
	}
}

// The intake log keeps every outcome: rejected payloads with their bytes, stored leads by id.
func TestIntakeLog(t *testing.T) {
	e := newEnv(t)
	id := e.post(genericPath, jsonType, []byte(`{"phone":"+972501234567"}`)).expectStored(t)
	e.post(genericPath, jsonType, []byte(`{"client_name":"no phone"}`)).expect(t, http.StatusUnprocessableEntity, false, "")
	e.post("/nowhere", jsonType, []byte(`{"x":1}`)).expect(t, http.StatusForbidden, false, "")
	byOutcome := map[string]store.IntakeEntry{}
	for _, entry := range e.intake(3) {
		byOutcome[entry.Outcome] = entry
	}
	if s := byOutcome["stored"]; s.LeadID == nil || s.LeadID.Hex() != id || s.Body != "" || s.Integration != "clinic/website" || s.Route != "api.lead.store" {
		t.Errorf("stored entry = %+v", s)
	}
	if r := byOutcome["rejected"]; r.Body != `{"client_name":"no phone"}` || r.Status != 422 || r.Error != "Phone is required" {
		t.Errorf("rejected entry = %+v", r)
	}
	if n := byOutcome["no_integration"]; n.Body != `{"x":1}` || n.Status != 403 || n.Path != "/nowhere" {
		t.Errorf("no-integration entry = %+v", n)
	}
}
