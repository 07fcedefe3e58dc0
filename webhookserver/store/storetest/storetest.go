// Package storetest gives tests a real MongoDB-wire server: the embedded FerretDB, or the
// server named by $MONGODB_URI so the same tests run against a genuine MongoDB.
package storetest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/leadhook/leadhook/webhookserver/store"
)

// Server is a running MongoDB-compatible server for a test binary.
type Server struct {
	URI      string
	embedded *store.Embedded
	dir      string
}

// Start starts the server a test binary shares (call it from TestMain, and Stop after m.Run).
func Start() (*Server, error) {
	if uri := os.Getenv("MONGODB_URI"); uri != "" {
		return &Server{URI: uri}, nil
	}
	dir, err := os.MkdirTemp("", "leadhook-storetest-")
	if err != nil {
		return nil, fmt.Errorf("creating data directory: %w", err)
	}
	emb, err := store.StartEmbedded(dir, "127.0.0.1:0", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return &Server{URI: emb.URI, embedded: emb, dir: dir}, nil
}

// Stop stops an embedded server and removes its files.
func (s *Server) Stop() {
	if s.embedded != nil {
		s.embedded.Stop()
		_ = os.RemoveAll(s.dir)
	}
}

var dbCounter atomic.Int64

// Open opens a store on a database of its own, closed when the test ends.
func (s *Server) Open(t testing.TB) *store.Store {
	t.Helper()
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, t.Name())
	if len(name) > 40 {
		name = name[:40]
	}
	db := fmt.Sprintf("t%d_%s", dbCounter.Add(1), name)
	st, err := store.Open(context.Background(), store.Options{URI: s.URI, Database: db,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("opening store: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(context.Background()); err != nil {
			t.Errorf("closing store: %v", err)
		}
	})
	return st
}
