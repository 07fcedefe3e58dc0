package store

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/leadhook/leadhook/webhookserver/spool"
)

// storeMetrics are the store's Prometheus metrics: batches, MongoDB errors, and the spool.
type storeMetrics struct {
	batchSize     prometheus.Histogram
	batchDuration prometheus.Histogram
	storeErrors   *prometheus.CounterVec
	up            prometheus.Gauge
	spooled       prometheus.Counter
	drained       prometheus.Counter
	spoolErrors   prometheus.Counter
	intakeDropped prometheus.CounterFunc
	spoolGauges   []prometheus.Collector
}

func newStoreMetrics(s *Store) *storeMetrics {
	m := &storeMetrics{
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "leadhook_store_batch_size",
			Help:    "Leads written together by one group commit.",
			Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500},
		}),
		batchDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "leadhook_store_batch_duration_seconds",
			Help:    "Time to write one batch of leads (to MongoDB, or to the spool when MongoDB did not take it).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadhook_store_errors_total",
			Help: "Failed MongoDB operations, by operation (insert, lookup, drain, intake).",
		}, []string{"op"}),
		up: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "leadhook_store_up",
			Help: "1 while MongoDB takes writes, 0 while leads go to the spool.",
		}),
		spooled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadhook_spool_written_leads_total",
			Help: "Leads written to the spool because MongoDB did not acknowledge them.",
		}),
		drained: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadhook_spool_drained_leads_total",
			Help: "Spooled leads replayed into MongoDB (duplicates of stored leads included).",
		}),
		spoolErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadhook_spool_errors_total",
			Help: "Spool failures: a batch that could not be written (full or disk error) or was quarantined.",
		}),
		intakeDropped: prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "leadhook_intake_log_dropped_total",
			Help: "Intake log entries dropped because the intake queue was full.",
		}, func() float64 { return float64(s.IntakeDropped.Load()) }),
	}
	m.up.Set(1)
	for _, op := range []string{"insert", "lookup", "drain", "intake"} {
		m.storeErrors.WithLabelValues(op) // exported as 0 from the start, so rate() and alerts see it
	}
	stats := func(f func(spool.Stats) float64) func() float64 {
		return func() float64 {
			if s.spool == nil {
				return 0
			}
			return f(s.spool.Stats())
		}
	}
	m.spoolGauges = []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "leadhook_spool_leads", Help: "Leads waiting in the spool."},
			stats(func(st spool.Stats) float64 { return float64(st.Records) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "leadhook_spool_bytes", Help: "Bytes the spool holds."},
			stats(func(st spool.Stats) float64 { return float64(st.Bytes) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "leadhook_spool_max_bytes", Help: "The spool's size limit (--spool-max-bytes)."},
			stats(func(st spool.Stats) float64 { return float64(st.MaxBytes) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "leadhook_spool_oldest_age_seconds", Help: "Age of the oldest spooled batch; 0 when the spool is empty."},
			stats(func(st spool.Stats) float64 {
				if st.Oldest.IsZero() {
					return 0
				}
				return time.Since(st.Oldest).Seconds()
			})),
	}
	return m
}

// Collectors are the store's metrics, for the server's Prometheus registry.
func (s *Store) Collectors() []prometheus.Collector {
	m := s.metrics
	return append([]prometheus.Collector{m.batchSize, m.batchDuration, m.storeErrors, m.up,
		m.spooled, m.drained, m.spoolErrors, m.intakeDropped}, m.spoolGauges...)
}
