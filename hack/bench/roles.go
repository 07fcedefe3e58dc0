package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/leadhook/leadhook/webhookserver"
	"github.com/leadhook/leadhook/webhookserver/store"
)

// The subjects (1)-(3) are this binary in a role, each in a process of its own, so that its
// peak RSS is its own. They stop on SIGTERM (and when the driver dies: see startSubject).

// discard is a logger that says nothing.
var discard = slog.New(slog.DiscardHandler)

// roleContext ends on SIGTERM or SIGINT.
func roleContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// serveRole serves h on the -listen address of args until SIGTERM, as leadhook serves
// (webhookserver.Serve: the same http.Server settings). setup, when set, runs first with the
// remaining flags parsed.
func serveRole(name string, args []string, dataDir *string, setup func(ctx context.Context) (http.Handler, func(), error)) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to serve on")
	if dataDir != nil {
		fs.StringVar(dataDir, "data-dir", "", "directory of the embedded store's files")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := roleContext()
	defer cancel()
	h, cleanup, err := setup(ctx)
	if err != nil {
		return err
	}
	defer cleanup()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", *listen, err)
	}
	return webhookserver.Serve(ctx, ln, h, webhookserver.ServerOptions{Drain: 5 * time.Second, Log: discard})
}

// newRouter is a chi router answering GET /healthz and, for every POST, handle.
func newRouter(handle http.HandlerFunc) http.Handler {
	r := chi.NewRouter()
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) { answer(w, http.StatusOK, `{"status":true}`) })
	r.Post("/*", handle)
	return r
}

func answer(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// runNoop is subject (1), the HTTP ceiling: a chi handler that reads the body and answers
// {"status":true}.
func runNoop(args []string) error {
	return serveRole("noop", args, nil, func(context.Context) (http.Handler, func(), error) {
		return newRouter(func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.Copy(io.Discard, r.Body); err != nil {
				answer(w, http.StatusBadRequest, `{"status":false}`)
				return
			}
			answer(w, http.StatusOK, `{"status":true}`)
		}), func() {}, nil
	})
}

// runNaive is subject (2): a chi handler that decodes the body minimally, builds the lead
// and inserts it with one InsertOne, leadhook's write concern (majority, journal), answering
// 200 once the write is acknowledged.
func runNaive(args []string) error {
	var dataDir string
	return serveRole("naive", args, &dataDir, func(ctx context.Context) (http.Handler, func(), error) {
		st, closeStore, err := openStore(ctx, dataDir)
		if err != nil {
			return nil, nil, err
		}
		b, err := newLeadBuilder()
		if err != nil {
			closeStore()
			return nil, nil, err
		}
		leads := st.Leads()
		return newRouter(func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			if err != nil {
				answer(w, http.StatusBadRequest, `{"status":false}`)
				return
			}
			l, err := b.build(r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("Idempotency-Key"), body, time.Now())
			if err != nil {
				answer(w, http.StatusUnprocessableEntity, `{"status":false}`)
				return
			}
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
			defer cancel()
			if _, err := leads.InsertOne(ctx, l); err != nil && !mongo.IsDuplicateKeyError(err) {
				answer(w, http.StatusServiceUnavailable, `{"status":false}`)
				return
			}
			answer(w, http.StatusOK, `{"status":true,"lead_id":"`+l.ID.Hex()+`"}`)
		}), closeStore, nil
	})
}

// runBatched is subject (3), the store's ceiling: one writer inserting unordered InsertMany
// batches of the same lead documents, with leadhook's write concern, as fast as it can, for
// -warmup and then -duration. It prints its outcome as JSON (latencies are per batch) and exits.
func runBatched(args []string) error {
	fs := flag.NewFlagSet("batched", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "", "directory of the embedded store's files")
	warmup := fs.Duration("warmup", 2*time.Second, "warm-up, not measured")
	window := fs.Duration("duration", 10*time.Second, "measured time")
	size := fs.Int("batch", 100, "documents per InsertMany")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := roleContext()
	defer cancel()
	st, closeStore, err := openStore(ctx, *dataDir)
	if err != nil {
		return err
	}
	defer closeStore()
	b, err := newLeadBuilder()
	if err != nil {
		return err
	}
	// The documents are built while the previous batch is written, as a group-committing
	// server builds them in its handlers while its writer writes.
	gen := newGenerator()
	batches := make(chan []any, 2)
	prodCtx, stopProducer := context.WithCancel(ctx)
	defer stopProducer()
	go func() {
		defer close(batches)
		for prodCtx.Err() == nil {
			docs := make([]any, 0, *size)
			for range *size {
				r := gen.next()
				l, err := b.build(r.path, r.header.Get("Content-Type"), r.header.Get("Idempotency-Key"), r.body, time.Now())
				if err != nil {
					panic(fmt.Sprintf("the generator made a delivery the lead builder refuses: %v", err))
				}
				docs = append(docs, l)
			}
			select {
			case batches <- docs:
			case <-prodCtx.Done():
			}
		}
	}()
	leads := st.Leads()
	rec := newRecorder(time.Now().Add(*warmup), *window)
	for ctx.Err() == nil {
		docs, ok := <-batches
		start := time.Now()
		if !ok || !start.Before(rec.to) {
			break
		}
		_, err := leads.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
		took := time.Since(start)
		var bwe mongo.BulkWriteException
		switch {
		case err == nil:
			rec.ok(start, took, len(docs))
		case errors.As(err, &bwe) && bwe.WriteConcernError == nil: // unordered: the others went in
			rec.ok(start, took, len(docs)-len(bwe.WriteErrors))
			rec.fail(start, "insert error", err.Error())
		default:
			rec.fail(start, "insert error", err.Error())
		}
	}
	stopProducer()
	if ctx.Err() != nil {
		return errors.New("interrupted")
	}
	out := rec.outcome()
	if out.PeakRSS, err = peakRSS("self"); err != nil {
		return err
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		return fmt.Errorf("writing outcome: %w", err)
	}
	return nil
}

// openStore starts an embedded store (FerretDB on SQLite, as leadhook's local mode) in dir
// and opens leadhook's store on it: the same collection, indexes and write concern.
func openStore(ctx context.Context, dir string) (*store.Store, func(), error) {
	if dir == "" {
		return nil, nil, errors.New("-data-dir is required")
	}
	emb, err := store.StartEmbedded(dir, "", discard)
	if err != nil {
		return nil, nil, err
	}
	st, err := store.Open(ctx, store.Options{URI: emb.URI, Log: discard})
	if err != nil {
		emb.Stop()
		return nil, nil, fmt.Errorf("opening store: %w", err)
	}
	return st, func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = st.Close(cctx)
		emb.Stop()
	}, nil
}
