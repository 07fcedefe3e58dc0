package webhookserver_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/leadhook/leadhook/internal/testcert"
	"github.com/leadhook/leadhook/internal/testlog"
	"github.com/leadhook/leadhook/webhookserver"
	"github.com/leadhook/leadhook/webhookserver/lead"
	"github.com/leadhook/leadhook/webhookserver/store"
)

// serve runs webhookserver.Serve for the env's handler on a loopback listener until the
// test ends, and returns its address.
func (e *env) serve(o webhookserver.ServerOptions) string {
	e.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- webhookserver.Serve(ctx, ln, e.handler, o) }()
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// Connections that trickle their headers in are closed by the read-header timeout, however
// steadily they trickle, and meanwhile other requests are answered.
func TestServeSlowClients(t *testing.T) {
	e := newEnv(t)
	addr := e.serve(webhookserver.ServerOptions{
		ReadHeaderTimeout: 500 * time.Millisecond, ReadTimeout: 2 * time.Second,
		WriteTimeout: 10 * time.Second, IdleTimeout: time.Second, Drain: 5 * time.Second,
	})
	const slow = 8
	// A trickle of one header byte every 20ms would take this long to finish the headers:
	// far beyond the timeout, so only the timeout can end it first.
	header := []byte("POST /api/lead HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Slow: " +
		string(bytes.Repeat([]byte("a"), 2000)) + "\r\n\r\n")
	trickleFor := time.Duration(len(header)) * 20 * time.Millisecond
	var (
		wg     sync.WaitGroup
		open   atomic.Int32 // slow connections the server has not closed yet
		closed atomic.Int32
	)
	watch := func(i int, conn net.Conn) chan struct{} {
		open.Add(1)
		stop := make(chan struct{})
		wg.Add(1)
		go func() { // the server closing the connection ends the read
			defer wg.Done()
			defer close(stop)
			// net/http closes it silently, or after a 400 when the deadline cut a header line.
			got, err := io.ReadAll(conn)
			open.Add(-1)
			// A reset (the server closed while this side still wrote) is a close too.
			if (err == nil || errors.Is(err, syscall.ECONNRESET)) && (len(got) == 0 || bytes.HasPrefix(got, []byte("HTTP/1.1 4"))) {
				closed.Add(1)
			} else {
				t.Errorf("slow connection %d: read %q, %v; want it closed, at most with a 4xx", i, got, err)
			}
		}()
		return stop
	}
	// A connection that sends nothing at all is closed too.
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	watch(-1, idle)
	// The trickling ones start one after another, so some are always held for a while.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < slow; i++ {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			t.Cleanup(func() { _ = conn.Close() })
			stop := watch(i, conn)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, b := range header {
					select {
					case <-stop:
						return
					case <-time.After(20 * time.Millisecond):
					}
					if _, err := conn.Write([]byte{b}); err != nil {
						return
					}
				}
				t.Errorf("slow connection %d sent its whole header without being closed", i)
			}()
			time.Sleep(100 * time.Millisecond)
		}
	}()

	// Meanwhile, normal requests are answered.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	// Generous for a loaded machine (each normal request is a real store write), and still far
	// short of trickleFor, so a connection closed in time was closed by the timeout.
	deadline := time.Now().Add(trickleFor / 2)
	answered, whileHeld := 0, 0
	for closed.Load() < slow+1 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d slow connections closed", closed.Load(), slow+1)
		}
		answered++
		resp, err := client.Post("http://"+addr+genericPath, jsonType,
			bytes.NewReader([]byte(fmt.Sprintf(`{"phone":"+9725012%05d"}`, answered))))
		if err != nil {
			t.Fatalf("normal request while slow clients are held: %v", err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("normal request while slow clients are held: %d", resp.StatusCode)
		}
		if open.Load() > 0 {
			whileHeld++
		}
		time.Sleep(20 * time.Millisecond)
	}
	wg.Wait()
	if whileHeld == 0 {
		t.Errorf("no normal request was answered while slow connections were held (%d answered)", answered)
	}
	t.Logf("%d normal requests answered, %d while slow connections were held", answered, whileHeld)
}

// writeCert writes a fresh self-signed certificate for 127.0.0.1 and its key into dir and
// returns the certificate.
func writeCert(t *testing.T, dir string, serial int64) *x509.Certificate {
	t.Helper()
	certPEM, keyPEM, cert := testcert.SelfSigned(t, serial)
	writeFile(t, filepath.Join(dir, "tls.crt"), certPEM)
	writeFile(t, filepath.Join(dir, "tls.key"), keyPEM)
	return cert
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil { // as a kubelet swaps a mounted Secret
		t.Fatal(err)
	}
}

// HTTPS with a certificate that is re-read when its files change, without a restart; a
// broken new pair leaves the last good one in service; TLS below 1.2 is refused.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	first := writeCert(t, dir, 1)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	var logs testlog.Buffer
	certs, err := webhookserver.NewCertReloader(certFile, keyFile, 20*time.Millisecond, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	addr := e.serve(webhookserver.ServerOptions{TLS: certs, Drain: 5 * time.Second})

	roots := x509.NewCertPool()
	roots.AddCert(first)
	served := func(roots *x509.CertPool) (*x509.Certificate, error) {
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			DisableKeepAlives: true, TLSClientConfig: &tls.Config{RootCAs: roots},
		}}
		resp, err := client.Post("https://"+addr+genericPath, jsonType, bytes.NewReader([]byte(`{"phone":"+972501234567"}`)))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("status %d", resp.StatusCode)
		}
		return resp.TLS.PeerCertificates[0], nil
	}
	if got, err := served(roots); err != nil || got.SerialNumber.Int64() != 1 {
		t.Fatalf("HTTPS request: %v, %v", got, err)
	}

	// Plain HTTP to the HTTPS port gets no lead in.
	if resp, err := http.Post("http://"+addr+genericPath, jsonType, bytes.NewReader([]byte(`{"phone":"+972501234568"}`))); err == nil {
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP accepted on the HTTPS port")
		}
	}
	// TLS 1.1 is refused.
	old := &tls.Config{RootCAs: roots, MaxVersion: tls.VersionTLS11}
	if conn, err := tls.Dial("tcp", addr, old); err == nil {
		_ = conn.Close()
		t.Error("TLS 1.1 handshake succeeded")
	}

	// A rotation writes the certificate first: a certificate without its key is not served.
	certPEM, keyPEM, second := testcert.SelfSigned(t, 2)
	writeFile(t, certFile, certPEM)
	both := x509.NewCertPool()
	both.AddCert(first)
	both.AddCert(second)
	waitLog := time.Now().Add(5 * time.Second)
	for !bytes.Contains(logs.Bytes(), []byte("Could not reload TLS certificate")) {
		if time.Now().After(waitLog) {
			t.Fatalf("a mismatched pair was not reported; log:\n%s", logs.Bytes())
		}
		_, _ = served(both)
		time.Sleep(20 * time.Millisecond)
	}
	if got, err := served(both); err != nil || got.SerialNumber.Int64() != 1 {
		t.Fatalf("during a half-done rotation: %v, %v; want the first certificate still", got, err)
	}
	// Then the key: the new pair is served, no restart.
	writeFile(t, keyFile, keyPEM)
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := served(both)
		if err == nil && got.SerialNumber.Int64() == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still served %v (%v) after the rotation", got, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !bytes.Contains(logs.Bytes(), []byte("Reloaded TLS certificate")) {
		t.Errorf("no reload in the log:\n%s", logs.Bytes())
	}
}

func TestCertReloaderErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := webhookserver.NewCertReloader(filepath.Join(dir, "none.crt"), filepath.Join(dir, "none.key"), 0, nil); err == nil {
		t.Error("missing files accepted")
	}
	writeCert(t, dir, 1)
	_, otherKey, _ := testcert.SelfSigned(t, 2)
	writeFile(t, filepath.Join(dir, "other.key"), otherKey)
	_, err := webhookserver.NewCertReloader(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "other.key"), 0, nil)
	if err == nil {
		t.Fatal("a key that does not match accepted")
	}
	if bytes.Contains([]byte(err.Error()), otherKey[30:60]) {
		t.Errorf("error shows key material: %v", err)
	}
}

// unavailableStore is a store that neither MongoDB nor a spool can help: every lead fails
// as the store fails it during a known outage.
type unavailableStore struct{}

func (unavailableStore) InsertLead(context.Context, *lead.Lead) (store.InsertResult, error) {
	return store.InsertResult{}, fmt.Errorf("%w: MongoDB is not taking writes and there is no spool", store.ErrUnavailable)
}

func (unavailableStore) FindLead(context.Context, string) (bson.ObjectID, bool, error) {
	return bson.ObjectID{}, false, nil
}

func (unavailableStore) RecordIntake(*store.IntakeEntry) {}

// An outage is logged when readiness changes, not once per probe or per refused lead (the
// store logs the outage itself), so that a long one does not flood the log.
func TestOutageLoggedOncePerChange(t *testing.T) {
	var logs testlog.Buffer
	var down atomic.Bool
	down.Store(true)
	e := newEnvWith(t, options{items: defaultIntegrations(), store: unavailableStore{},
		log: slog.New(slog.NewTextHandler(&logs, nil)),
		ready: func(context.Context) error {
			if down.Load() {
				return errors.New("MongoDB is not answering and there is no spool")
			}
			return nil
		}})
	readyz := func() reply {
		req, _ := http.NewRequest(http.MethodGet, e.url+"/readyz", nil)
		return e.do(req)
	}
	for i := range 5 {
		readyz().expect(t, http.StatusServiceUnavailable, false, "Not ready")
		e.post(genericPath, jsonType, []byte(fmt.Sprintf(`{"phone":"+97250123456%d"}`, i))).
			expect(t, http.StatusServiceUnavailable, false, "Storage unavailable, retry later")
	}
	down.Store(false)
	readyz().expect(t, http.StatusOK, true, "")
	readyz().expect(t, http.StatusOK, true, "")
	down.Store(true)
	readyz().expect(t, http.StatusServiceUnavailable, false, "Not ready")
	out := logs.String()
	for msg, want := range map[string]int{`msg="Not ready"`: 2, `msg="Ready again"`: 1, "Could not store lead": 0, `msg="Handled delivery"`: 5} {
		if got := strings.Count(out, msg); got != want {
			t.Errorf("%s logged %d times, want %d:\n%s", msg, got, want, out)
		}
	}
}
