package webhookserver

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/leadhook/leadhook/webhookserver/store"
)

// Metrics counts deliveries for Prometheus, labelled by integration, route name, outcome and
// status code: never by raw path, address or anything a sender typed, so cardinality stays
// bounded by the number of integrations.
type Metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics registers leadhook's webhook metrics, plus the Go and process collectors, on a
// registry of its own.
func NewMetrics() (*Metrics, error) {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadhook_webhook_requests_total",
			Help: "Webhook deliveries answered, by integration (namespace/name), route, outcome and status code.",
		}, []string{"integration", "route", "outcome", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "leadhook_webhook_request_duration_seconds",
			Help:    "Time from receiving a delivery to answering it, by route and outcome.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "outcome"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := m.registry.Register(c); err != nil {
			return nil, fmt.Errorf("registering metrics: %w", err)
		}
	}
	return m, nil
}

// Register adds more collectors (the store's) to the registry.
func (m *Metrics) Register(cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := m.registry.Register(c); err != nil {
			return fmt.Errorf("registering metrics: %w", err)
		}
	}
	return nil
}

// observe records one answered delivery.
func (m *Metrics) observe(e *store.IntakeEntry, took time.Duration) {
	if m == nil {
		return
	}
	integration, route := e.Integration, e.Route
	if integration == "" {
		integration, route = "none", "none"
	}
	m.requests.WithLabelValues(integration, route, e.Outcome, strconv.Itoa(e.Status)).Inc()
	m.duration.WithLabelValues(route, e.Outcome).Observe(took.Seconds())
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// ServeMetrics answers GET /metrics on ln until ctx ends, with the webhook server's limits.
func ServeMetrics(ctx context.Context, ln net.Listener, m *Metrics) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	if err := Serve(ctx, ln, mux, ServerOptions{Drain: 5 * time.Second}); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}
