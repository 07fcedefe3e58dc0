package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// ferretNewMu serialises ferretdb.New, which writes a package-level variable.
var ferretNewMu sync.Mutex

// Embedded is a MongoDB-compatible server (FerretDB on SQLite) running in this process.
type Embedded struct {
	// URI is the address the driver connects to.
	URI    string
	cancel context.CancelFunc
	done   chan struct{}
	socket string
}

// StartEmbedded starts FerretDB with its SQLite files in dataDir. listen is the TCP address
// other MongoDB clients can use (e.g. 127.0.0.1:27017); when empty the server listens only on
// a Unix socket.
func StartEmbedded(dataDir, listen string, log *slog.Logger) (*Embedded, error) {
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("creating data directory: %w", err)
	}
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, fmt.Errorf("resolving data directory: %w", err)
	}
	e := &Embedded{done: make(chan struct{})}
	cfg := &ferretdb.Config{
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/",
		Logger:    log,
		Listener:  ferretdb.ListenerConfig{TCP: listen},
	}
	if listen == "" {
		e.socket = filepath.Join(os.TempDir(), fmt.Sprintf("leadhook-mongo-%d.sock", os.Getpid()))
		_ = os.Remove(e.socket)
		cfg.Listener.Unix = e.socket
	}
	ferretNewMu.Lock()
	f, err := ferretdb.New(cfg)
	ferretNewMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("starting embedded MongoDB-compatible server on %q: %w", listen, err)
	}
	e.URI = f.MongoDBURI()
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	go func() {
		defer close(e.done)
		_ = f.Run(ctx)
	}()
	return e, nil
}

// Stop shuts the server down and waits for it.
func (e *Embedded) Stop() {
	e.cancel()
	<-e.done
	if e.socket != "" {
		if err := os.Remove(e.socket); err != nil && !errors.Is(err, os.ErrNotExist) {
			slog.Default().Warn("Could not remove socket", "error", err)
		}
	}
}
