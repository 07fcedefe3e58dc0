package main

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// percentile is the nearest-rank q-quantile (0 < q ≤ 1) of sorted: the smallest value with at
// least q of all values at or below it. Zero for no values.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// outcome is a subject's figures for one measured window.
type outcome struct {
	Leads   int           `json:"leads"`   // leads stored: 200 answers (for (3): documents inserted)
	Seconds float64       `json:"seconds"` // length of the measured window
	P50     time.Duration `json:"p50_ns"`
	P99     time.Duration `json:"p99_ns"`
	// Failures counts what was not a lead, by kind: an HTTP status ("503"), "transport
	// error", "not sent". Empty when all went well.
	Failures map[string]int `json:"failures,omitempty"`
	// FirstError is the first failure's detail, to show when there were failures.
	FirstError string `json:"first_error,omitempty"`
	PeakRSS    int64  `json:"peak_rss"` // bytes: VmHWM of the subject's process
}

// Rate is leads per second.
func (o outcome) Rate() float64 {
	if o.Seconds <= 0 {
		return 0
	}
	return float64(o.Leads) / o.Seconds
}

// FailureText lists the failures, most frequent first ("none" when there were none).
func (o outcome) FailureText() string {
	if len(o.Failures) == 0 {
		return "none"
	}
	keys := slices.SortedFunc(maps.Keys(o.Failures), func(a, b string) int { return o.Failures[b] - o.Failures[a] })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + " ×" + strconv.Itoa(o.Failures[k])
	}
	return strings.Join(parts, ", ")
}

// recorder collects the requests (or batches) of one run that start inside its measured
// window [from, to): their latencies and how each ended. Safe for concurrent use.
type recorder struct {
	from, to time.Time

	mu        sync.Mutex
	latencies []time.Duration
	leads     int
	failures  map[string]int
	firstErr  string
}

func newRecorder(from time.Time, window time.Duration) *recorder {
	return &recorder{from: from, to: from.Add(window), failures: map[string]int{}}
}

// counts reports whether something that started at t falls inside the window.
func (r *recorder) counts(t time.Time) bool { return !t.Before(r.from) && t.Before(r.to) }

// ok records a success of n leads that started at start and took took.
func (r *recorder) ok(start time.Time, took time.Duration, n int) {
	if !r.counts(start) {
		return
	}
	r.mu.Lock()
	r.latencies = append(r.latencies, took)
	r.leads += n
	r.mu.Unlock()
}

// fail records a failure of the given kind that started at start.
func (r *recorder) fail(start time.Time, kind, detail string) {
	if !r.counts(start) {
		return
	}
	r.mu.Lock()
	r.failures[kind]++
	if r.firstErr == "" {
		r.firstErr = fmt.Sprintf("%s: %s", kind, detail)
	}
	r.mu.Unlock()
}

// outcome summarises the window; call it once everything recorded has finished.
func (r *recorder) outcome() outcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	slices.Sort(r.latencies)
	o := outcome{Leads: r.leads, Seconds: r.to.Sub(r.from).Seconds(),
		P50: percentile(r.latencies, 0.50), P99: percentile(r.latencies, 0.99), FirstError: r.firstErr}
	if len(r.failures) > 0 {
		o.Failures = maps.Clone(r.failures)
	}
	return o
}
