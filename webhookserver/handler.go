// Package webhookserver is leadhook's HTTP server: it routes each delivery to the enabled
// integration owning its path, checks it, decodes and normalises it, and stores the lead,
// answering per the HTTP contract. It reads integrations and never writes them.
package webhookserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/leadhook/leadhook/webhookserver/lead"
	"github.com/leadhook/leadhook/webhookserver/registry"
	"github.com/leadhook/leadhook/webhookserver/source"
	"github.com/leadhook/leadhook/webhookserver/store"
	"github.com/leadhook/leadhook/webhookserver/verify"
)

// LeadStore is where the handler puts leads and the outcome of every request.
type LeadStore interface {
	// InsertLead stores a lead and returns once it is durable: acknowledged by MongoDB with
	// the configured write concern, or fsynced to the local spool.
	InsertLead(ctx context.Context, l *lead.Lead) (store.InsertResult, error)
	// FindLead returns the id of the lead stored under a de-duplication key, if any.
	FindLead(ctx context.Context, dedupKey string) (bson.ObjectID, bool, error)
	// RecordIntake logs a request's outcome without waiting.
	RecordIntake(e *store.IntakeEntry)
}

// Config wires a Handler.
type Config struct {
	Registry registry.Registry
	Store    LeadStore
	// Ready reports whether the server can take leads (store reachable, integrations loaded).
	Ready func(ctx context.Context) error
	Log   *slog.Logger
	// StoreTimeout bounds one lead's write; default 10s.
	StoreTimeout time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Metrics, when set, counts every answered delivery.
	Metrics *Metrics
	// TrustedProxies are the proxies whose X-Forwarded-For is believed. Empty: the client
	// is the socket peer and X-Forwarded-For is ignored. Else, when the peer is in one of
	// them, the chain is walked right to left and the rightmost address outside them is
	// the client.
	TrustedProxies []netip.Prefix
}

// Delivery-id headers that make a retried delivery count once.
var deliveryIDHeaders = []string{"Idempotency-Key", "Webhook-Id"}

type handler struct {
	Config
	notReady atomic.Bool // the last /readyz answer was 503; readiness changes are logged once
}

// NewHandler returns the HTTP handler for leads, health and readiness.
func NewHandler(cfg Config) http.Handler {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.StoreTimeout <= 0 {
		cfg.StoreTimeout = 10 * time.Second
	}
	if cfg.Ready == nil {
		cfg.Ready = func(context.Context) error { return nil }
	}
	h := &handler{Config: cfg}
	r := chi.NewRouter()
	r.Use(middleware.RequestID, h.recoverer, clientIPMiddleware(cfg.TrustedProxies))
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, response{Status: true}) })
	r.Get("/readyz", h.readyz)
	r.Post("/*", h.serveLead)
	for _, probe := range []string{"/healthz", "/readyz"} { // a probe is not a lead path
		r.Post(probe, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", http.MethodGet)
			h.serveUnrouted(w, r, http.StatusMethodNotAllowed, msgMethodNotAllowd)
		})
	}
	r.NotFound(func(w http.ResponseWriter, r *http.Request) { h.serveUnrouted(w, r, http.StatusNotFound, msgNotFound) })
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", http.MethodPost)
		h.serveUnrouted(w, r, http.StatusMethodNotAllowed, msgMethodNotAllowd)
	})
	return r
}

// serveUnrouted answers a request no route takes (a GET on a lead path, say), leaving its
// trace in the intake log like any other.
func (h *handler) serveUnrouted(w http.ResponseWriter, r *http.Request, status int, msg string) {
	start := h.Now()
	d := h.newDelivery(r, start)
	d.entry.Status, d.entry.Outcome, d.entry.Error = status, outcomeRejected, msg
	d.keepForLog(r)
	d.entry.SetBody(d.body, d.complete)
	h.finish(d.entry, start)
	writeError(w, status, msg)
}

// newDelivery starts a request's intake log entry, with the client address resolved (through
// trusted proxies when configured; the socket peer when none could be).
func (h *handler) newDelivery(r *http.Request, received time.Time) *delivery {
	peer := remoteIP(r)
	client, resolved := clientAddr(r)
	if !resolved {
		client = peer
	}
	d := &delivery{client: client, resolved: resolved, entry: &store.IntakeEntry{
		ReceivedAt:  received.UTC(),
		RequestID:   middleware.GetReqID(r.Context()),
		Method:      r.Method,
		Path:        r.URL.Path,
		RemoteIP:    client.String(),
		UserAgent:   r.UserAgent(),
		ContentType: r.Header.Get("Content-Type"),
		Status:      http.StatusInternalServerError,
		Outcome:     outcomeError,
	}}
	if peer.WithZone("") != client {
		d.entry.PeerIP = peer.String()
	}
	return d
}

// finish records a request's outcome: intake log, metrics, one log line without personal data.
func (h *handler) finish(e *store.IntakeEntry, start time.Time) {
	h.Store.RecordIntake(e)
	h.Metrics.observe(e, h.Now().Sub(start))
	h.Log.Info("Handled delivery", "request_id", e.RequestID, "integration", e.Integration,
		"route", e.Route, "method", e.Method, "status", e.Status, "outcome", e.Outcome,
		"duration_ms", float64(h.Now().Sub(start).Microseconds())/1000)
}

func (h *handler) readyz(w http.ResponseWriter, r *http.Request) {
	if err := h.Ready(r.Context()); err != nil {
		if !h.notReady.Swap(true) {
			h.Log.Warn("Not ready", "error", err)
		}
		writeError(w, http.StatusServiceUnavailable, "Not ready")
		return
	}
	if h.notReady.Swap(false) {
		h.Log.Info("Ready again")
	}
	writeJSON(w, http.StatusOK, response{Status: true})
}

// recoverer turns a panic into the contract's 500, never showing internals.
func (h *handler) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler { //nolint:errorlint // sentinel compared as net/http does
					panic(v)
				}
				h.Log.Error("Recovered from panic", "request_id", middleware.GetReqID(r.Context()), "panic", v)
				writeError(w, http.StatusInternalServerError, msgServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// delivery is one request's progress through the pipeline, logged whatever its outcome.
type delivery struct {
	entry    *store.IntakeEntry
	read     bool // the pipeline read the body
	body     []byte
	complete bool // the whole body was read
	// client is the client's address; resolved is false when the trusted-proxy walk found
	// none (fail closed), and client is then the socket peer.
	client     netip.Addr
	resolved   bool
	retryAfter int // seconds, for a 429
}

// keepForLog reads, when the pipeline stopped before reading it, as much of the body as the
// intake log keeps, so a rejected delivery leaves its trace.
func (d *delivery) keepForLog(r *http.Request) {
	if d.read {
		return
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, store.MaxIntakeBody+1))
	d.body, d.complete = b, err == nil && len(b) <= store.MaxIntakeBody
}

func (h *handler) serveLead(w http.ResponseWriter, r *http.Request) {
	start := h.Now()
	d := h.newDelivery(r, start)
	defer func() {
		e := d.entry
		if e.Outcome != outcomeStored && e.Outcome != outcomeSpooled && e.Outcome != outcomeDuplicate {
			d.keepForLog(r)
			e.SetBody(d.body, d.complete) // rejected payloads are kept, size-capped
		} else {
			e.BodyBytes = len(d.body) // the lead holds the body itself
		}
		h.finish(e, start)
	}()
	status, resp := h.process(r, d, start)
	d.entry.Status = status
	if resp.Error != "" && d.entry.Error == "" {
		d.entry.Error = resp.Error
	}
	if status != http.StatusOK {
		resp = response{Status: false, Error: resp.Error}
		switch status {
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			setRetryAfter(w, retryAfterFor(d)) // reads the entry's error: set above
		}
	}
	writeJSON(w, status, resp)
}

// retryAfterFor is the Retry-After of a 429 or 503.
func retryAfterFor(d *delivery) int {
	switch d.entry.Outcome {
	case outcomeUnavailable:
		if d.entry.Error == msgNotReady {
			return retryAfterNotReady
		}
		return retryAfterStore
	default:
		return max(d.retryAfter, 1)
	}
}

// process runs the pipeline: route, allowlist, readiness, rate limit, size limit, signature, decode,
// normalise, de-duplicate, store. It returns the status and body to answer with.
func (h *handler) process(r *http.Request, d *delivery, received time.Time) (int, response) {
	e := d.entry
	in, ok := h.Registry.Lookup(routePath(r.URL.Path))
	if !ok {
		e.Outcome = outcomeNoIntegration
		return http.StatusForbidden, response{Error: msgNoIntegration}
	}
	e.Integration, e.Route = in.Key(), in.RouteName
	reject := func(status int, msg string) (int, response) {
		e.Outcome = outcomeRejected
		return status, response{Error: msg}
	}
	// An unresolved client (a forwarded chain that fails closed) is never allowlisted.
	if len(in.AllowedNets) > 0 && (!d.resolved || !verify.Allowed(d.client, in.AllowedNets)) {
		return reject(http.StatusForbidden, msgForbidden)
	}
	// Only an allowed sender learns the integration is waiting for its Secret.
	if in.NotReady != "" {
		e.Outcome = outcomeUnavailable
		return http.StatusServiceUnavailable, response{Error: msgNotReady}
	}
	if ok, wait := in.Allow(d.client, received); !ok {
		d.retryAfter = int(math.Ceil(wait.Seconds()))
		return reject(http.StatusTooManyRequests, msgRateLimited)
	}
	if r.ContentLength > in.MaxBodyBytes {
		return reject(http.StatusRequestEntityTooLarge, msgTooLarge)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, in.MaxBodyBytes+1))
	d.read, d.body, d.complete = true, body, err == nil && int64(len(body)) <= in.MaxBodyBytes
	switch {
	case err != nil:
		return reject(http.StatusBadRequest, "Could not read request body")
	case int64(len(body)) > in.MaxBodyBytes:
		d.body = body[:in.MaxBodyBytes]
		return reject(http.StatusRequestEntityTooLarge, msgTooLarge)
	}
	deliveryKey := deliveryID(r.Header)
	if in.Signer != nil {
		if err := in.Signer.Verify(body, r.Header, in.Keys, received); err != nil {
			return reject(http.StatusUnauthorized, err.Error())
		}
		// A signed delivery id is the de-duplication key, whatever unsigned header came
		// along: a replay inside the time window cannot pass as a new delivery.
		if s, ok := in.Signer.(verify.DeliveryIdentifier); ok {
			deliveryKey = s.DeliveryID(r.Header)
		}
	}
	dec, ok := source.For(in.Source)
	if !ok {
		return reject(http.StatusForbidden, msgNoIntegration)
	}
	decoded, err := dec.Decode(source.Request{Body: body, ContentType: r.Header.Get("Content-Type"), Header: r.Header})
	if err != nil {
		var se *source.Error
		if errors.As(err, &se) {
			return reject(se.Status, se.Message)
		}
		return reject(http.StatusBadRequest, msgMalformed)
	}
	if decoded.Probe {
		e.Outcome = outcomeProbe
		return http.StatusOK, response{Status: true}
	}
	ref := lead.Integration{Namespace: in.Namespace, Name: in.Name, Source: string(in.Source)}
	// The write outlives a sender that hangs up: the lead is stored, and its retry is a duplicate.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), h.StoreTimeout)
	defer cancel()
	l, err := lead.Build(decoded.Fields, lead.Options{Region: in.Region, Location: in.Location}, received)
	if err != nil {
		// A later event about a known lead (Taplink's payments.created) may carry no phone.
		if decoded.SourceID != "" {
			id, found, findErr := h.Store.FindLead(ctx, lead.SourceKey(ref, decoded.SourceID))
			if findErr != nil {
				return h.storeFailed(e, findErr)
			}
			if found {
				e.LeadID, e.Outcome = &id, outcomeDuplicate
				return http.StatusOK, response{Status: true, Duplicate: true, LeadID: id.Hex()}
			}
		}
		return reject(http.StatusUnprocessableEntity, err.Error())
	}
	l.Integration = ref
	l.Notes, l.Extras = decoded.Notes, decoded.Extras
	l.Raw = lead.NewRaw(r.Header.Get("Content-Type"), body)
	l.Request = lead.Request{RemoteIP: e.RemoteIP, PeerIP: e.PeerIP, UserAgent: e.UserAgent, RequestID: e.RequestID}
	l.SetDedupKey(decoded.SourceID, deliveryKey, in.DuplicateWindow)
	res, err := h.Store.InsertLead(ctx, l)
	if err != nil {
		return h.storeFailed(e, err)
	}
	id := res.ID
	e.LeadID = &id
	if res.Duplicate {
		e.Outcome = outcomeDuplicate
		return http.StatusOK, response{Status: true, Duplicate: true, LeadID: id.Hex()}
	}
	e.Outcome = outcomeStored
	if res.Spooled {
		e.Outcome = outcomeSpooled
	}
	return http.StatusOK, response{Status: true, LeadID: id.Hex()}
}

// storeFailed answers a delivery the store could not take: 503, so the sender retries.
func (h *handler) storeFailed(e *store.IntakeEntry, err error) (int, response) {
	level := slog.LevelError
	if errors.Is(err, store.ErrUnavailable) {
		level = slog.LevelDebug // the store has logged the outage once; not once per lead
	}
	h.Log.Log(context.Background(), level, "Could not store lead", "request_id", e.RequestID, "integration", e.Integration, "error", err)
	e.Outcome = outcomeUnavailable
	return http.StatusServiceUnavailable, response{Error: msgStoreDown}
}

// routePath is the path an integration is looked up by: a trailing slash does not matter.
func routePath(p string) string {
	if len(p) > 1 {
		p = strings.TrimRight(p, "/")
		if p == "" {
			p = "/"
		}
	}
	return p
}

// deliveryID is the sender's delivery id header, if any.
func deliveryID(h http.Header) string {
	for _, name := range deliveryIDHeaders {
		if v := strings.TrimSpace(h.Get(name)); v != "" {
			return v
		}
	}
	return ""
}

// clientIPMiddleware resolves each request's client address (read with clientAddr): the
// socket peer, or with trusted proxies the rightmost untrusted X-Forwarded-For hop.
func clientIPMiddleware(trusted []netip.Prefix) func(http.Handler) http.Handler {
	if len(trusted) == 0 {
		return middleware.ClientIPFromRemoteAddr
	}
	cidrs := make([]string, len(trusted))
	for i, p := range trusted {
		cidrs[i] = p.String()
	}
	return middleware.ClientIPFromXFF(cidrs...)
}

// clientAddr is the client address clientIPMiddleware resolved; ok is false when there is
// none: the peer is trusted but the chain has garbage or only trusted hops (fail closed).
func clientAddr(r *http.Request) (netip.Addr, bool) {
	a := middleware.GetClientIPAddr(r.Context())
	return a.WithZone(""), a.IsValid()
}

// ParseTrustedProxies parses a comma-separated list of CIDRs (a bare address is its /32 or
// /128; a v4-mapped prefix is its IPv4 one), as --trusted-proxies takes them.
func ParseTrustedProxies(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil || a.Zone() != "" {
				return nil, fmt.Errorf("trusted proxy %q is not a CIDR: %w", s, err)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 { // ::ffff:10.0.0.0/104 is 10.0.0.0/8
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// remoteIP is the socket's peer address.
func remoteIP(r *http.Request) netip.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	a, _ := netip.ParseAddr(r.RemoteAddr)
	return a.Unmap()
}
