package webhookserver

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultCertCheckInterval is how often, at most, the certificate files are looked at.
const DefaultCertCheckInterval = 5 * time.Second

// CertReloader serves a certificate and key read from files, and reads them again when
// they change (cert-manager or a kubelet rotating a mounted Secret), so rotations need no
// restart. The files are looked at (stat only) at most every CheckInterval, during a
// handshake; a new pair that does not load is logged once and the last good pair kept.
type CertReloader struct {
	certFile, keyFile string
	interval          time.Duration
	log               *slog.Logger

	cert atomic.Pointer[tls.Certificate]

	mu      sync.Mutex // guards the fields below; held only by the handshake that checks
	checked time.Time
	loaded  fileStamps // of the pair being served
	failed  fileStamps // of the last pair that did not load, not retried until it changes
	// statFailed is set while the files cannot be looked at (logged once).
	statFailed bool
}

// fileStamps tell whether either file changed.
type fileStamps struct {
	certMod, keyMod   time.Time
	certSize, keySize int64
}

// NewCertReloader loads the pair, failing when it does not load. interval <= 0 means
// DefaultCertCheckInterval.
func NewCertReloader(certFile, keyFile string, interval time.Duration, log *slog.Logger) (*CertReloader, error) {
	if interval <= 0 {
		interval = DefaultCertCheckInterval
	}
	if log == nil {
		log = slog.Default()
	}
	c := &CertReloader{certFile: certFile, keyFile: keyFile, interval: interval, log: log}
	st, err := c.stamps()
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("loading TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	c.cert.Store(&cert)
	c.loaded, c.checked = st, time.Now()
	return c, nil
}

// GetCertificate is a tls.Config.GetCertificate serving the current pair.
func (c *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c.mu.TryLock() { // one handshake checks; the others go on with the current pair
		if now := time.Now(); now.Sub(c.checked) >= c.interval {
			c.checked = now
			c.reload()
		}
		c.mu.Unlock()
	}
	return c.cert.Load(), nil
}

// reload loads the files again if they changed since the pair served was loaded.
func (c *CertReloader) reload() {
	st, err := c.stamps()
	if err != nil { // e.g. between a rotation's removal and its rename
		if !c.statFailed {
			c.statFailed = true
			c.log.Warn("Could not read TLS certificate files, keeping the previous certificate", "error", err)
		}
		return
	}
	c.statFailed = false
	if st == c.loaded || st == c.failed {
		return
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		c.failed = st
		c.log.Warn("Could not reload TLS certificate, keeping the previous one", "cert_file", c.certFile, "error", err)
		return
	}
	c.cert.Store(&cert)
	c.loaded = st
	attrs := []any{"cert_file", c.certFile}
	if cert.Leaf != nil {
		attrs = append(attrs, "not_after", cert.Leaf.NotAfter)
	}
	c.log.Info("Reloaded TLS certificate", attrs...)
}

func (c *CertReloader) stamps() (fileStamps, error) {
	cs, err := os.Stat(c.certFile)
	if err != nil {
		return fileStamps{}, fmt.Errorf("TLS certificate: %w", err)
	}
	ks, err := os.Stat(c.keyFile)
	if err != nil {
		return fileStamps{}, fmt.Errorf("TLS key: %w", err)
	}
	return fileStamps{certMod: cs.ModTime(), keyMod: ks.ModTime(), certSize: cs.Size(), keySize: ks.Size()}, nil
}
