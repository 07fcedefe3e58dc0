// Command leadhook-bench is `make bench`: a load generator that measures, in one invocation
// on this machine, how many leads per second leadhook takes and how fast it answers, next to
// three yardsticks under the same load:
//
//	(1) noop      a chi handler that answers {"status":true}: the HTTP ceiling
//	(2) naive     a chi handler that inserts one lead per request (InsertOne, majority + journal)
//	(3) batched   one writer inserting unordered InsertMany batches of 100 leads: the store's ceiling
//	(4) leadhook  bin/leadhook server in local mode
//
// Each subject is a process of its own (so its peak RSS, VmHWM, is its own) on a fresh data
// directory with its own embedded store (FerretDB on SQLite, as leadhook's local mode); (1)-(3)
// are this binary run in a role. The load is generated here: a closed loop of -concurrency
// keep-alive clients for -warmup and then -duration, sending one third generic JSON, one third
// urlencoded form and one third signed Taplink JSON, every delivery unique. (3) has no HTTP:
// its figures are documents inserted, its latencies those of one batch. Then (4) runs again,
// fresh, as an open loop at half the rate it reached, with latencies counted from each
// request's scheduled time: the "p99 at half peak" figure.
//
// It prints one table, the ratios of (4) to the others with the goals of issue #6, and exits
// non-zero if any request failed.
//
// Usage:
//
//	leadhook-bench [-concurrency 64] [-duration 10s] [-warmup 2s] [-leadhook bin/leadhook]
//	leadhook-bench noop|naive -listen ADDR [-data-dir DIR]    (a subject; the driver starts these)
//	leadhook-bench batched -data-dir DIR [-warmup D] [-duration D] [-batch N]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "time/tzdata" // the integrations' time zone, wherever this runs
)

func main() {
	var err error
	args := os.Args[1:]
	role := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		role, args = args[0], args[1:]
	}
	switch role {
	case "":
		err = runDriver(args)
	case "noop":
		err = runNoop(args)
	case "naive":
		err = runNaive(args)
	case "batched":
		err = runBatched(args)
	default:
		err = fmt.Errorf("unknown role %q (noop, naive, batched, or none for the whole benchmark)", role)
	}
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", strings.TrimSpace("leadhook-bench "+role), err)
		os.Exit(1)
	}
}

// config is the driver's flags.
type config struct {
	concurrency int
	duration    time.Duration
	warmup      time.Duration
	batch       int
	leadhook    string
	tmp         string
	keep        bool
	subjects    map[string]bool
}

// The subjects, in the order they run and are reported.
const (
	subjNoop     = "noop"
	subjNaive    = "naive"
	subjBatched  = "batched"
	subjLeadhook = "leadhook"
)

var allSubjects = []string{subjNoop, subjNaive, subjBatched, subjLeadhook}

func parseDriverFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("leadhook-bench", flag.ContinueOnError)
	fs.IntVar(&c.concurrency, "concurrency", 64, "concurrent clients of the closed loop")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "measured time of each run")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Second, "warm-up before each measured run")
	fs.IntVar(&c.batch, "batch", 100, "documents per InsertMany of subject (3)")
	fs.StringVar(&c.leadhook, "leadhook", "bin/leadhook", "the leadhook binary under test")
	fs.StringVar(&c.tmp, "tmp", os.TempDir(), "where the subjects' data directories are made")
	fs.BoolVar(&c.keep, "keep", false, "keep the data directories and logs")
	only := fs.String("subjects", strings.Join(allSubjects, ","), "comma-separated subjects to run")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	if c.concurrency < 1 || c.duration <= 0 || c.warmup < 0 || c.batch < 1 {
		return c, errors.New("-concurrency, -duration and -batch must be positive, -warmup not negative")
	}
	c.subjects = map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(allSubjects, s) {
			return c, fmt.Errorf("-subjects: unknown subject %q (have %s)", s, strings.Join(allSubjects, ", "))
		}
		c.subjects[s] = true
	}
	return c, nil
}

// driver runs the subjects one after another and collects their outcomes.
type driver struct {
	cfg  config
	self string // this binary, run in a role for (1)-(3)
	root string // the run's temporary directory
	gen  *generator
}

func runDriver(args []string) error {
	cfg, err := parseDriverFlags(args)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this binary: %w", err)
	}
	if cfg.subjects[subjLeadhook] {
		if cfg.leadhook, err = filepath.Abs(cfg.leadhook); err != nil {
			return fmt.Errorf("resolving -leadhook: %w", err)
		}
		if _, err := os.Stat(cfg.leadhook); err != nil {
			return fmt.Errorf("-leadhook: %w (make bench builds it)", err)
		}
	}
	root, err := os.MkdirTemp(cfg.tmp, "leadhook-bench-")
	if err != nil {
		return fmt.Errorf("creating the run's directory: %w", err)
	}
	if cfg.keep {
		fmt.Fprintf(os.Stderr, "data directories and logs kept in %s\n", root)
	} else {
		defer os.RemoveAll(root)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	d := &driver{cfg: cfg, self: self, root: root, gen: newGenerator()}
	rep := report{cfg: cfg, outcomes: map[string]*outcome{}, loadAvg: loadAverage()}
	for _, name := range allSubjects {
		if !cfg.subjects[name] {
			continue
		}
		fmt.Fprintf(os.Stderr, "running %s ...\n", cfg.title(name))
		o, err := d.run(ctx, name)
		if err != nil {
			return err
		}
		rep.outcomes[name] = &o
		fmt.Fprintf(os.Stderr, "  %s\n", cfg.rowText(name, o))
	}
	if o := rep.outcomes[subjLeadhook]; o != nil && o.Rate() > 0 {
		rep.halfRate = o.Rate() / 2
		fmt.Fprintf(os.Stderr, "running (4) open loop at %.0f leads/s ...\n", rep.halfRate)
		half, err := d.runHTTP(ctx, "leadhook-half", func(base string) outcome {
			return openLoop(ctx, base, d.gen, rep.halfRate, maxInFlight, cfg.warmup, cfg.duration)
		})
		if err != nil {
			return err
		}
		rep.half = &half
	}
	rep.write(os.Stdout)
	if failed := rep.failedSubjects(); len(failed) > 0 {
		return fmt.Errorf("requests failed in %s: the figures above are not to be trusted", strings.Join(failed, ", "))
	}
	return nil
}

// maxInFlight bounds the open loop's outstanding requests.
const maxInFlight = 2048

// run measures one subject with the closed loop.
func (d *driver) run(ctx context.Context, name string) (outcome, error) {
	if name == subjBatched {
		return d.runBatched(ctx)
	}
	return d.runHTTP(ctx, name, func(base string) outcome {
		return closedLoop(ctx, base, d.gen, d.cfg.concurrency, d.cfg.warmup, d.cfg.duration)
	})
}

// runHTTP starts an HTTP subject (noop, naive, or leadhook under any name starting with it)
// on a free port and a fresh directory, waits until it is ready, puts the load on it, reads
// its peak RSS and stops it.
func (d *driver) runHTTP(ctx context.Context, name string, load func(base string) outcome) (outcome, error) {
	dir, err := d.subjectDir(name)
	if err != nil {
		return outcome{}, err
	}
	defer d.removeDir(dir)
	addr, err := freeAddr()
	if err != nil {
		return outcome{}, err
	}
	path, ready := d.self, "/healthz"
	var args []string
	switch {
	case name == subjNoop:
		args = []string{subjNoop, "-listen", addr}
	case name == subjNaive:
		args = []string{subjNaive, "-listen", addr, "-data-dir", filepath.Join(dir, "data")}
	case strings.HasPrefix(name, subjLeadhook):
		integrations := filepath.Join(dir, "integrations")
		if err := os.Mkdir(integrations, 0o750); err != nil {
			return outcome{}, fmt.Errorf("creating integrations directory: %w", err)
		}
		if err := os.WriteFile(filepath.Join(integrations, "bench.yaml"), []byte(integrationsYAML), 0o600); err != nil {
			return outcome{}, fmt.Errorf("writing integrations: %w", err)
		}
		path, ready = d.cfg.leadhook, "/readyz"
		args = []string{"server", "--listen", addr, "--integrations", integrations, "--data-dir", filepath.Join(dir, "data"),
			"--embedded-mongo-listen", "", "--metrics-listen", ""}
	default:
		return outcome{}, fmt.Errorf("no HTTP subject %q", name)
	}
	s, err := startSubject(name, dir, nil, path, args...)
	if err != nil {
		return outcome{}, err
	}
	defer s.stop() //nolint:errcheck // stopped explicitly below; this is for early returns
	if err := s.waitReady(ctx, "http://"+addr+ready, 2*time.Minute); err != nil {
		return outcome{}, err
	}
	o := load("http://" + addr)
	if ctx.Err() != nil {
		return outcome{}, ctx.Err()
	}
	if s.exited() {
		return outcome{}, s.failed(fmt.Errorf("exited during the run: %v", s.waitErr))
	}
	if o.PeakRSS, err = peakRSS(strconv.Itoa(s.cmd.Process.Pid)); err != nil {
		return outcome{}, fmt.Errorf("%s: %w", name, err)
	}
	return o, s.stop()
}

// runBatched runs subject (3), which generates its own load and reports its outcome.
func (d *driver) runBatched(ctx context.Context) (outcome, error) {
	dir, err := d.subjectDir(subjBatched)
	if err != nil {
		return outcome{}, err
	}
	defer d.removeDir(dir)
	var out strings.Builder
	s, err := startSubject(subjBatched, dir, &out, d.self, subjBatched, "-data-dir", filepath.Join(dir, "data"),
		"-warmup", d.cfg.warmup.String(), "-duration", d.cfg.duration.String(), "-batch", strconv.Itoa(d.cfg.batch))
	if err != nil {
		return outcome{}, err
	}
	defer s.stop() //nolint:errcheck // it exits by itself; this is for early returns
	if err := s.wait(ctx, d.cfg.warmup+d.cfg.duration+2*time.Minute); err != nil {
		return outcome{}, err
	}
	o, err := parseOutcome(out.String())
	if err != nil {
		return outcome{}, s.failed(err)
	}
	return o, nil
}

// subjectDir makes a fresh directory for one subject's run.
func (d *driver) subjectDir(name string) (string, error) {
	dir, err := os.MkdirTemp(d.root, name+"-")
	if err != nil {
		return "", fmt.Errorf("creating directory of %s: %w", name, err)
	}
	return dir, nil
}

// removeDir removes a subject's directory once its run is over (unless -keep), so its files
// do not weigh on the next subject's disk.
func (d *driver) removeDir(dir string) {
	if !d.cfg.keep {
		_ = os.RemoveAll(dir)
	}
}
