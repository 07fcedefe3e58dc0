// Package storetest gives tests a real MongoDB-wire server: the embedded FerretDB, or the
// server named by $MONGODB_URI so the same tests run against a genuine MongoDB.
package storetest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
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

// Stoppable is an embedded server of a test's own on a fixed address, which the test can
// stop and start again (same files, same URI) to see how the store copes with an outage.
type Stoppable struct {
	URI    string
	dir    string
	listen string
	mu     sync.Mutex
	emb    *store.Embedded
}

// StartStoppable starts a server that the test can stop; it is stopped when the test ends.
func StartStoppable(t testing.TB) *Stoppable {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().String()
	_ = ln.Close()
	s := &Stoppable{dir: t.TempDir(), listen: listen}
	s.Start(t)
	s.URI = s.emb.URI
	t.Cleanup(s.Stop)
	return s
}

// Start starts the server again after Stop.
func (s *Stoppable) Start(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.emb != nil {
		return
	}
	emb, err := store.StartEmbedded(s.dir, s.listen, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("starting the embedded server again: %v", err)
	}
	s.emb = emb
}

// Stop stops the server: connections drop and new ones are refused.
func (s *Stoppable) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.emb != nil {
		s.emb.Stop()
		s.emb = nil
	}
}
