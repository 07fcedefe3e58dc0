package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// requestTimeout bounds one request; leadhook's own --write-timeout is 30s.
const requestTimeout = 30 * time.Second

// newClient is a keep-alive HTTP/1.1 client keeping up to idle connections to one host.
func newClient(idle int) *http.Client {
	return &http.Client{
		Timeout: requestTimeout,
		Transport: &http.Transport{
			MaxIdleConns:        idle,
			MaxIdleConnsPerHost: idle,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
			ForceAttemptHTTP2:   false,
		},
	}
}

// send posts r to base and records how it ended: a lead for a 200, else a failure by status.
func send(ctx context.Context, c *http.Client, base string, r request, start time.Time, rec *recorder) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+r.path, bytes.NewReader(r.body))
	if err != nil {
		rec.fail(start, "request error", err.Error())
		return
	}
	req.Header = r.header
	resp, err := c.Do(req)
	if err != nil {
		rec.fail(start, "transport error", err.Error())
		return
	}
	body, err := io.ReadAll(resp.Body) // read to the end, so the connection is reused
	_ = resp.Body.Close()
	took := time.Since(start)
	switch {
	case err != nil:
		rec.fail(start, "transport error", err.Error())
	case resp.StatusCode != http.StatusOK:
		rec.fail(start, strconv.Itoa(resp.StatusCode), fmt.Sprintf("%s %s", r.path, bytes.TrimSpace(body)))
	default:
		rec.ok(start, took, 1)
	}
}

// closedLoop runs `concurrency` clients, each sending its next delivery as soon as the last
// one is answered, for warmup and then the measured window.
func closedLoop(ctx context.Context, base string, gen *generator, concurrency int, warmup, window time.Duration) outcome {
	c := newClient(concurrency)
	defer c.CloseIdleConnections()
	rec := newRecorder(time.Now().Add(warmup), window)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for ctx.Err() == nil {
				r := gen.next()
				start := time.Now()
				if !start.Before(rec.to) {
					return
				}
				send(ctx, c, base, r, start, rec)
			}
		})
	}
	wg.Wait()
	return rec.outcome()
}

// openLoop sends deliveries at a constant rate (per second), each on its schedule whether or
// not earlier ones were answered, for warmup and then the measured window. A latency is
// counted from the scheduled send time, so a server that falls behind shows its queueing
// (no coordinated omission). At most maxInFlight requests are outstanding; a delivery due
// beyond that is counted as "not sent".
func openLoop(ctx context.Context, base string, gen *generator, rate float64, maxInFlight int, warmup, window time.Duration) outcome {
	c := newClient(maxInFlight)
	defer c.CloseIdleConnections()
	t0 := time.Now()
	rec := newRecorder(t0.Add(warmup), window)
	var (
		wg       sync.WaitGroup
		inFlight atomic.Int64
	)
	for i := 0; ctx.Err() == nil; i++ {
		due := t0.Add(time.Duration(float64(i) * float64(time.Second) / rate))
		if !due.Before(rec.to) {
			break
		}
		if wait := time.Until(due); wait > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		}
		if inFlight.Load() >= int64(maxInFlight) {
			rec.fail(due, "not sent", fmt.Sprintf("%d requests already in flight", maxInFlight))
			continue
		}
		inFlight.Add(1)
		r := gen.next()
		wg.Go(func() {
			defer inFlight.Add(-1)
			send(ctx, c, base, r, due, rec)
		})
	}
	wg.Wait()
	return rec.outcome()
}
