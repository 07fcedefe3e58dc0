package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

// title names a subject in the report.
func (c config) title(name string) string {
	switch name {
	case subjNoop:
		return "(1) no-op chi handler"
	case subjNaive:
		return "(2) naive: InsertOne per request"
	case subjBatched:
		return fmt.Sprintf("(3) store: InsertMany×%d, 1 writer", c.batch)
	case subjLeadhook:
		return "(4) leadhook server, local mode"
	}
	return name
}

// The goals of issue #6 for (4).
const (
	goalOfStore     = 0.90                  // (4)/(3) at least
	goalOfNaive     = 5.0                   // (4)/(2) at least
	goalHalfPeakP99 = 50 * time.Millisecond // p99 under this at half of (4)'s peak rate
)

// report is what a run found.
type report struct {
	cfg      config
	outcomes map[string]*outcome
	halfRate float64  // the open loop's rate, half of (4)'s peak
	half     *outcome // (4) in the open loop at halfRate
	loadAvg  string   // the machine's load average when the run started
}

// write prints the report: machine and parameters, the table, the ratios against the goals.
func (r report) write(w io.Writer) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	p("leadhook bench, %s", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	p("machine: %d cores (%s), %s/%s, %s; leadhook at %s", runtime.NumCPU(), cpuModel(), runtime.GOOS, runtime.GOARCH,
		runtime.Version(), revision())
	p("load average: %s at the start, %s at the end (other work on the machine takes from every figure)", r.loadAvg, loadAverage())
	p("load: closed loop, %d keep-alive HTTP/1.1 clients, %v warm-up then %v measured, per subject", r.cfg.concurrency,
		r.cfg.warmup, r.cfg.duration)
	p("mix: %s; every delivery unique", mixText())
	p("each subject: its own process, fresh data directory, embedded FerretDB on SQLite; writes majority + journal")
	p("")
	p("%-38s %8s %9s %9s %9s  %s", "subject", "leads/s", "p50", "p99", "peak RSS", "errors")
	for _, name := range allSubjects {
		if o := r.outcomes[name]; o != nil {
			p("%s", r.cfg.rowText(name, *o))
		}
	}
	if r.outcomes[subjBatched] != nil {
		p("    * (3) has no HTTP: its latencies are those of one InsertMany of %d", r.cfg.batch)
	}
	p("")
	lh := r.outcomes[subjLeadhook]
	ratio := func(label, other string, goal float64, goalText string) {
		o := r.outcomes[other]
		if lh == nil || o == nil || o.Rate() == 0 {
			return
		}
		v := lh.Rate() / o.Rate()
		if goal == 0 {
			p("%s = %5.2f   (%s)", label, v, goalText)
			return
		}
		p("%s = %5.2f   (goal ≥ %s)  %s", label, v, goalText, verdict(v >= goal))
	}
	ratio("(4)/(1)", subjNoop, 0, "of the HTTP ceiling; no goal")
	ratio("(4)/(2)", subjNaive, goalOfNaive, "5")
	ratio("(4)/(3)", subjBatched, goalOfStore, "0.90")
	if b, n := r.outcomes[subjBatched], r.outcomes[subjNaive]; b != nil && n != nil && n.Rate() > 0 {
		p("(3)/(2) = %5.2f   (the store's own gain from batching: what any server on it can gain over (2))", b.Rate()/n.Rate())
	}
	if h := r.half; h != nil {
		p("(4) at half its peak, open loop at %.0f leads/s for %v: %.0f leads/s, p50 %s, p99 %s (goal p99 < %v)  %s; errors: %s",
			r.halfRate, r.cfg.duration, h.Rate(), fmtDur(h.P50), fmtDur(h.P99), goalHalfPeakP99,
			verdict(h.P99 < goalHalfPeakP99 && len(h.Failures) == 0), h.FailureText())
	}
	for _, name := range r.failedSubjects() {
		o := r.outcome(name)
		p("")
		p("!!! ERRORS in %s: %s", name, o.FailureText())
		p("!!! first: %s", o.FirstError)
	}
}

// outcome is a subject's outcome by name ("leadhook-half" for the open loop).
func (r report) outcome(name string) *outcome {
	if name == "leadhook-half" {
		return r.half
	}
	return r.outcomes[name]
}

// failedSubjects names the runs that had failures.
func (r report) failedSubjects() []string {
	var names []string
	for _, name := range append(allSubjects[:len(allSubjects):len(allSubjects)], "leadhook-half") {
		if o := r.outcome(name); o != nil && len(o.Failures) > 0 {
			names = append(names, name)
		}
	}
	return names
}

// rowText is a subject's row of the table.
func (c config) rowText(name string, o outcome) string {
	star := ""
	if name == subjBatched {
		star = "*"
	}
	return fmt.Sprintf("%-38s %8.0f %9s %9s %5.0f MiB  %s", c.title(name), o.Rate(), fmtDur(o.P50)+star, fmtDur(o.P99)+star,
		float64(o.PeakRSS)/(1<<20), o.FailureText())
}

func verdict(ok bool) string {
	if ok {
		return "ok"
	}
	return "SHORT"
}

// fmtDur prints a latency with two or three significant digits.
func fmtDur(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case ms < 10:
		return fmt.Sprintf("%.2f ms", ms)
	case ms < 100:
		return fmt.Sprintf("%.1f ms", ms)
	case ms < 1000:
		return fmt.Sprintf("%.0f ms", ms)
	}
	return fmt.Sprintf("%.2f s", ms/1000)
}

// mixText describes the payload mix with each kind's body size.
func mixText() string {
	g := &generator{nonce: 1 << 30}
	parts := make([]string, numKinds)
	for k := range numKinds {
		parts[k] = fmt.Sprintf("1/3 %s (%d B)", k, len(g.make(uint64(k)+1_000_000*uint64(numKinds)).body))
	}
	return strings.Join(parts, ", ")
}

// loadAverage is the machine's load average over the last minute, from /proc/loadavg.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "unknown"
}

// cpuModel is the processor's model name, as /proc/cpuinfo gives it.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// revision is the commit under test: from this binary's build information (make bench builds
// it with bin/leadhook), else, when the build left it out (-buildvcs=false), from git.
func revision() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		rev, modified := "", ""
		for _, s := range info.Settings {
			switch {
			case s.Key == "vcs.revision" && len(s.Value) >= 7:
				rev = s.Value[:7]
			case s.Key == "vcs.modified" && s.Value == "true":
				modified = "-dirty"
			}
		}
		if rev != "" {
			return rev + modified
		}
	}
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return "unknown commit"
	}
	return strings.TrimSpace(string(out))
}

// parseOutcome reads the outcome subject (3) prints.
func parseOutcome(s string) (outcome, error) {
	var o outcome
	if err := json.Unmarshal([]byte(strings.TrimSpace(s)), &o); err != nil {
		return o, fmt.Errorf("reading its outcome %q: %w", s, err)
	}
	return o, nil
}
