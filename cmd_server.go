package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/leadhook/leadhook/webhookserver"
	"github.com/leadhook/leadhook/webhookserver/registry"
	"github.com/leadhook/leadhook/webhookserver/store"
)

// serverOptions are the flags of "leadhook server".
type serverOptions struct {
	listen          string
	integrations    string
	mongoURI        string
	mongoDatabase   string
	dataDir         string
	embeddedListen  string
	intakeRetention time.Duration
	shutdownTimeout time.Duration
	logFormat       string
	logLevel        string
}

func parseServerFlags(args []string) (*serverOptions, error) {
	o := &serverOptions{}
	fs := flag.NewFlagSet("leadhook server", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: leadhook server [flags]

Serves POST /api/lead, POST /api/taplink/lead and any path an integration claims, plus
/healthz and /readyz. Integrations are read from LeadIntegration (and Secret) YAML in a
directory and reloaded when a file changes. With no --mongo-uri, leads go to an embedded
MongoDB-compatible store (FerretDB on SQLite) under --data-dir.

Flags:
`)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.listen, "listen", ":8080", "address to serve webhooks on")
	fs.StringVar(&o.integrations, "integrations", "config/samples", "directory of LeadIntegration and Secret YAML files")
	fs.StringVar(&o.mongoURI, "mongo-uri", os.Getenv("LEADHOOK_MONGO_URI"), "MongoDB connection string (default $LEADHOOK_MONGO_URI); empty starts the embedded store")
	fs.StringVar(&o.mongoDatabase, "mongo-database", "leadhook", "database holding the leads and intake_log collections")
	fs.StringVar(&o.dataDir, "data-dir", "./data", "directory of the embedded store's files")
	fs.StringVar(&o.embeddedListen, "embedded-mongo-listen", "127.0.0.1:27017", "address where MongoDB clients can reach the embedded store; empty: a private Unix socket only")
	fs.DurationVar(&o.intakeRetention, "intake-log-retention", 30*24*time.Hour, "how long intake log entries are kept (0 keeps them)")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 25*time.Second, "how long in-flight requests may finish after SIGTERM")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return o, nil
}

func newLogger(format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q is not text or json", format)
}

func runServer(args []string) error {
	o, err := parseServerFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log, err := newLogger(o.logFormat, o.logLevel)
	if err != nil {
		return err
	}
	slog.SetDefault(log)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	uri := o.mongoURI
	if uri == "" {
		quiet := slog.New(log.Handler().WithAttrs([]slog.Attr{slog.String("component", "embedded-store")}))
		emb, err := store.StartEmbedded(o.dataDir, o.embeddedListen, quietLogger(quiet))
		if err != nil {
			return err
		}
		defer emb.Stop()
		uri = emb.URI
		log.Info("Started embedded store", "data_dir", o.dataDir, "listen", o.embeddedListen)
	}
	st, err := store.Open(ctx, store.Options{URI: uri, Database: o.mongoDatabase, IntakeRetention: o.intakeRetention, Log: log})
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := st.Close(cctx); err != nil {
			log.Error("Could not close store", "error", err)
		}
	}()

	files := &registry.Files{Dir: o.integrations, Log: log}
	if err := files.Load(); err != nil {
		return err
	}
	go files.Run(ctx)

	h := webhookserver.NewHandler(webhookserver.Config{
		Registry: files,
		Store:    st,
		Log:      log,
		Ready: func(ctx context.Context) error {
			if !files.Loaded() {
				return errors.New("integrations not loaded")
			}
			return st.Ping(ctx)
		},
	})
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", o.listen, err)
	}
	log.Info("Serving webhooks", "addr", ln.Addr().String(), "integrations", o.integrations)
	err = webhookserver.Serve(ctx, ln, h, o.shutdownTimeout)
	log.Info("Stopped serving webhooks")
	return err
}

// quietLogger keeps only errors of a chatty component (FerretDB dumps wire messages, which
// may hold lead data, at lower levels).
func quietLogger(l *slog.Logger) *slog.Logger {
	return slog.New(levelFloor{l.Handler(), slog.LevelError})
}

type levelFloor struct {
	slog.Handler
	min slog.Level
}

func (h levelFloor) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h levelFloor) WithAttrs(a []slog.Attr) slog.Handler {
	return levelFloor{h.Handler.WithAttrs(a), h.min}
}

func (h levelFloor) WithGroup(n string) slog.Handler {
	return levelFloor{h.Handler.WithGroup(n), h.min}
}
