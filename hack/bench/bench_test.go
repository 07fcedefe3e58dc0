package main

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/leadhook/leadhook/webhookserver/lead"
	"github.com/leadhook/leadhook/webhookserver/registry"
	"github.com/leadhook/leadhook/webhookserver/source"
	"github.com/leadhook/leadhook/webhookserver/verify"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	for _, c := range []struct {
		values []time.Duration
		q      float64
		want   time.Duration
	}{
		{nil, 0.5, 0},
		{ms(7), 0.99, 7 * time.Millisecond},
		{ms(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
		{ms(1, 2, 3, 4, 5), 0.5, 3 * time.Millisecond},
		{ms(hundred...), 0.5, 50 * time.Millisecond},
		{ms(hundred...), 0.99, 99 * time.Millisecond},
		{ms(hundred...), 1, 100 * time.Millisecond},
	} {
		if got := percentile(c.values, c.q); got != c.want {
			t.Errorf("percentile(%d values, %v) = %v, want %v", len(c.values), c.q, got, c.want)
		}
	}
}

func TestRecorderCountsOnlyItsWindow(t *testing.T) {
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rec := newRecorder(from, 10*time.Second)
	rec.ok(from.Add(-time.Millisecond), time.Second, 1) // warm-up
	rec.ok(from, 3*time.Millisecond, 1)
	rec.ok(from.Add(5*time.Second), time.Millisecond, 1)
	rec.fail(from.Add(6*time.Second), "503", "Storage unavailable")
	rec.fail(from.Add(7*time.Second), "503", "again")
	rec.ok(from.Add(10*time.Second), time.Second, 1) // after the window
	o := rec.outcome()
	if o.Leads != 2 || o.Seconds != 10 || o.Rate() != 0.2 || o.P50 != time.Millisecond || o.P99 != 3*time.Millisecond {
		t.Errorf("outcome = %+v", o)
	}
	if got := o.FailureText(); got != "503 ×2" || o.FirstError != "503: Storage unavailable" {
		t.Errorf("failures %q, first %q", got, o.FirstError)
	}
	if got := (outcome{}).FailureText(); got != "none" {
		t.Errorf("no failures = %q", got)
	}
}

func TestParseVmHWM(t *testing.T) {
	got, err := parseVmHWM([]byte("Name:\tleadhook\nVmPeak:\t  900 kB\nVmHWM:\t   123456 kB\nVmRSS:\t 1000 kB\n"))
	if err != nil || got != 123456<<10 {
		t.Errorf("parseVmHWM = %d, %v", got, err)
	}
	if _, err := parseVmHWM([]byte("Name:\tx\n")); err == nil {
		t.Error("no VmHWM line: no error")
	}
	if _, err := peakRSS("self"); err != nil {
		t.Errorf("peakRSS(self): %v", err)
	}
}

// The deliveries the generator makes pass leadhook's own pipeline as the harness configures
// it (its integrations YAML, the signature check, the source decoders, lead.Build), are all
// different leads, and the minimal lead builder of subjects (2) and (3) makes the same lead
// document from each.
func TestDeliveriesAreUniqueLeadsLeadhookAccepts(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bench.yaml"), []byte(integrationsYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	reg := &registry.Files{Dir: dir}
	if err := reg.Load(); err != nil {
		t.Fatalf("leadhook cannot load the harness's integrations: %v", err)
	}
	builder, err := newLeadBuilder()
	if err != nil {
		t.Fatal(err)
	}
	gen := newGenerator()
	now := time.Now()
	keys := map[string]bool{}
	phones := map[string]bool{}
	kinds := map[kind]int{}
	const n = 300
	for range n {
		r := gen.next()
		kinds[r.kind]++
		in, ok := reg.Lookup(r.path)
		if !ok || in.NotReady != "" || in.Limiter != nil {
			t.Fatalf("%s: no ready, unlimited integration on %s", r.kind, r.path)
		}
		if (in.Signer != nil) != (r.kind == kindTaplink) {
			t.Fatalf("%s: signer %v", r.kind, in.Signer)
		}
		deliveryKey := r.header.Get("Idempotency-Key")
		if in.Signer != nil {
			if err := in.Signer.Verify(r.body, r.header, in.Keys, now); err != nil {
				t.Fatalf("%s: signature refused: %v", r.kind, err)
			}
			if err := (verify.TaplinkSHA1{}).Verify(r.body, r.header, [][]byte{[]byte(taplinkSecret)}, now); err != nil {
				t.Fatalf("%s: not signed as Taplink signs: %v", r.kind, err)
			}
		}
		dec, _ := source.For(in.Source)
		d, err := dec.Decode(source.Request{Body: r.body, ContentType: r.header.Get("Content-Type"), Header: r.header})
		if err != nil {
			t.Fatalf("%s: decoder refuses %s: %v", r.kind, r.body, err)
		}
		want, err := lead.Build(d.Fields, lead.Options{Region: in.Region, Location: in.Location}, now)
		if err != nil {
			t.Fatalf("%s: lead.Build: %v", r.kind, err)
		}
		want.Integration = lead.Integration{Namespace: in.Namespace, Name: in.Name, Source: string(in.Source)}
		want.Notes, want.Extras = d.Notes, d.Extras
		want.Raw = lead.NewRaw(r.header.Get("Content-Type"), r.body)
		want.SetDedupKey(d.SourceID, deliveryKey, in.DuplicateWindow)
		if !want.Phone.Valid || len(want.Flags) > 0 {
			t.Errorf("%s: phone %+v, flags %v: want a valid phone and no flags", r.kind, want.Phone, want.Flags)
		}
		if d.Probe || keys[want.DedupKey] || phones[want.Phone.E164] {
			t.Fatalf("%s: probe %v, or the same lead as an earlier delivery (key %s, phone %s)", r.kind, d.Probe, want.DedupKey, want.Phone.E164)
		}
		keys[want.DedupKey], phones[want.Phone.E164] = true, true

		got, err := builder.build(r.path, r.header.Get("Content-Type"), deliveryKey, r.body, now)
		if err != nil {
			t.Fatalf("%s: lead builder: %v", r.kind, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: the lead builder's document differs from leadhook's:\n got %+v\nwant %+v", r.kind, got, want)
		}
	}
	for k := range numKinds {
		if kinds[k] != n/int(numKinds) {
			t.Errorf("%d of %d deliveries are %s, want a third", kinds[k], n, k)
		}
	}
}

func TestParseOutcome(t *testing.T) {
	o, err := parseOutcome(`{"leads":4000,"seconds":10,"p50_ns":24000000,"p99_ns":43000000,"peak_rss":104857600}` + "\n")
	if err != nil || o.Rate() != 400 || o.P99 != 43*time.Millisecond || o.PeakRSS != 100<<20 {
		t.Errorf("parseOutcome = %+v, %v", o, err)
	}
	if _, err := parseOutcome(""); err == nil {
		t.Error("empty outcome: no error")
	}
}

func TestFmtDur(t *testing.T) {
	for d, want := range map[time.Duration]string{
		1500 * time.Microsecond: "1.50 ms", 43 * time.Millisecond: "43.0 ms",
		430 * time.Millisecond: "430 ms", 1400 * time.Millisecond: "1.40 s",
	} {
		if got := fmtDur(d); got != want {
			t.Errorf("fmtDur(%v) = %q, want %q", d, got, want)
		}
	}
}
