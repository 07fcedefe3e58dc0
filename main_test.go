package main

// End-to-end tests of the built binary in local mode: what a new user does with `make run`.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/leadhook/leadhook/internal/testcert"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "leadhook-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "leadhook")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building leadhook: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// server is a running `leadhook server` process.
type server struct {
	cmd     *exec.Cmd
	url     string
	mongo   string
	metrics string // base URL of the metrics endpoint
	log     *bytes.Buffer
	args    []string     // more flags
	client  *http.Client // nil: http.DefaultClient
}

// startServer starts the binary; tweaks may add flags or change the URL and client first.
func startServer(t *testing.T, integrations, dataDir, listen, mongoListen string, tweaks ...func(*server)) *server {
	t.Helper()
	metricsListen := freeAddr(t)
	s := &server{url: "http://" + listen, mongo: mongoListen, metrics: "http://" + metricsListen, log: &bytes.Buffer{}}
	for _, tweak := range tweaks {
		tweak(s)
	}
	s.cmd = exec.Command(binary, append([]string{"server", "--listen", listen, "--integrations", integrations,
		"--data-dir", dataDir, "--embedded-mongo-listen", mongoListen, "--metrics-listen", metricsListen}, s.args...)...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			_ = s.cmd.Process.Kill()
			_ = s.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("server log:\n%s", s.log)
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := s.httpClient().Get(s.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if exited(s.cmd.Process.Pid) {
			_ = s.cmd.Wait()
			t.Fatalf("server exited before it was ready: %v", s.cmd.ProcessState)
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready after 60s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// exited reports whether a child process has ended (it is a zombie, or gone).
func exited(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) state ...: comm may hold spaces, so read the state after the last ")".
	rest := stat[bytes.LastIndexByte(stat, ')')+1:]
	return len(bytes.TrimSpace(rest)) > 0 && bytes.TrimSpace(rest)[0] == 'Z'
}

func (s *server) httpClient() *http.Client {
	if s.client == nil {
		return http.DefaultClient
	}
	return s.client
}

// stop sends SIGTERM and expects a clean exit.
func (s *server) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Wait(); err != nil {
		t.Fatalf("server exited with %v", err)
	}
}

func (s *server) post(t *testing.T, path, contentType string, body []byte, headers ...string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.url+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := s.httpClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("answer %q: %v", raw, err)
	}
	return resp.StatusCode, out
}

// leadCount asks the embedded store, as any MongoDB client would, how many leads it holds.
func (s *server) leadCount(t *testing.T) int64 {
	t.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://" + s.mongo + "/"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = client.Disconnect(context.Background()) }()
	n, err := client.Database("leadhook").Collection("leads").CountDocuments(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// scrape reads the metrics endpoint.
func (s *server) scrape(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(s.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	return string(b)
}

func copySamples(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files, _ := filepath.Glob("config/samples/*.yaml")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("webhookserver", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLocalMode runs the binary on the sample integrations: the fixtures are accepted, a
// MongoDB client sees the leads, enabled:false takes effect within 2 seconds without a
// restart, and leads survive a restart.
func TestLocalMode(t *testing.T) {
	integrations, data := copySamples(t), t.TempDir()
	listen, mongoListen := freeAddr(t), freeAddr(t)
	s := startServer(t, integrations, data, listen, mongoListen)

	seed := readFixture(t, "generic-seed.json")
	tapl := readFixture(t, "taplink-leads-created.json")
	if code, body := s.post(t, "/api/lead", "application/json", seed); code != 200 || body["status"] != true {
		t.Fatalf("generic-seed: %d %v", code, body)
	}
	if code, body := s.post(t, "/api/lead", "application/x-www-form-urlencoded", readFixture(t, "generic-form.txt")); code != 200 || body["status"] != true {
		t.Fatalf("generic-form: %d %v", code, body)
	}
	sig := []string{"taplink-signature", "f0c516ae690148af65bccf8a168a479acc2edba6"}
	if code, body := s.post(t, "/api/taplink/lead", "application/json", tapl, sig...); code != 200 || body["status"] != true {
		t.Fatalf("taplink-leads-created: %d %v", code, body)
	}
	if code, body := s.post(t, "/api/taplink/lead", "application/json", tapl, sig...); code != 200 || body["duplicate"] != true {
		t.Fatalf("taplink-leads-created again: %d %v", code, body)
	}
	if n := s.leadCount(t); n != 3 {
		t.Fatalf("a MongoDB client sees %d leads, want 3", n)
	}
	// Prometheus sees them by integration, route and outcome, and nothing a sender typed.
	metrics := s.scrape(t)
	for _, want := range []string{
		`leadhook_webhook_requests_total{code="200",integration="clinic/website",outcome="stored",route="api.lead.store"} 2`,
		`leadhook_webhook_requests_total{code="200",integration="clinic/taplink",outcome="stored",route="api.taplink.lead.store"} 1`,
		`leadhook_webhook_requests_total{code="200",integration="clinic/taplink",outcome="duplicate",route="api.taplink.lead.store"} 1`,
		`leadhook_webhook_request_duration_seconds_count{outcome="stored",route="api.lead.store"} 2`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, secret := range []string{"972501234567", "79001234567", "/api/lead"} {
		if strings.Contains(metrics, secret) {
			t.Errorf("metrics contain %q", secret)
		}
	}

	// Switch the website integration off by editing its file, then on again.
	file := filepath.Join(integrations, "leadhook_v1alpha1_leadintegration_generic.yaml")
	orig, _ := os.ReadFile(file)
	if !bytes.Contains(orig, []byte("enabled: true")) {
		t.Fatal("sample has no enabled: true to toggle")
	}
	waitFor := func(wantCode int) time.Duration {
		t.Helper()
		start := time.Now()
		for {
			// A different comment each time, so no answer is a duplicate.
			body := []byte(fmt.Sprintf(`{"phone":"+972547712345","comment":"%d"}`, time.Now().UnixNano()))
			code, _ := s.post(t, "/api/lead", "application/json", body)
			if code == wantCode {
				return time.Since(start)
			}
			if time.Since(start) > 2*time.Second {
				t.Fatalf("still %d, not %d, 2s after the edit", code, wantCode)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if err := os.WriteFile(file, bytes.Replace(orig, []byte("enabled: true"), []byte("enabled: false"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("disabled after %v", waitFor(http.StatusForbidden))
	code, body := s.post(t, "/api/lead", "application/json", seed)
	if code != http.StatusForbidden || body["error"] != "No active integration" {
		t.Fatalf("disabled integration: %d %v", code, body)
	}
	if err := os.WriteFile(file, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("enabled again after %v", waitFor(http.StatusOK))
	before := s.leadCount(t)

	// Leads survive a restart: the store still has them, and a retry is still a duplicate.
	s.stop(t)
	if !strings.Contains(s.log.String(), "Stopped serving webhooks") {
		t.Errorf("no clean shutdown in the log:\n%s", s.log)
	}
	s = startServer(t, integrations, data, listen, mongoListen)
	if n := s.leadCount(t); n != before {
		t.Fatalf("after restart %d leads, want %d", n, before)
	}
	if code, body := s.post(t, "/api/lead", "application/json", seed); code != 200 || body["duplicate"] != true {
		t.Fatalf("generic-seed after restart: %d %v, want a duplicate", code, body)
	}
	s.stop(t)
}

// The log never carries personal data or signatures.
func TestLocalModeLogsNoPersonalData(t *testing.T) {
	s := startServer(t, copySamples(t), t.TempDir(), freeAddr(t), freeAddr(t))
	s.post(t, "/api/lead", "application/json", readFixture(t, "generic-seed.json"))
	s.post(t, "/api/lead", "application/json", []byte(`{"client_name":"Secret Person","email":"x@example.com"}`))
	s.post(t, "/api/taplink/lead", "application/json", readFixture(t, "taplink-leads-created.json"), "taplink-signature", "0123456789abcdef0123456789abcdef01234567")
	s.stop(t)
	for _, secret := range []string{"John Doe", "972501234567", "john@example.com", "Secret Person", "x@example.com",
		"79001234567", "Иван", "test-secret", "0123456789abcdef0123456789abcdef01234567", "consultation"} {
		if strings.Contains(s.log.String(), secret) {
			t.Errorf("log contains %q:\n%s", secret, s.log)
		}
	}
}

func TestServerHelpAndBadFlags(t *testing.T) {
	out, err := exec.Command(binary, "server", "--help").Output() // on stdout: help asked for can be piped
	for _, flag := range []string{"embedded-mongo-listen", "mongo-uri", "trusted-proxies", "read-header-timeout",
		"read-timeout", "write-timeout", "idle-timeout", "tls-cert-file", "tls-key-file", "X-Forwarded-For"} {
		if err != nil || !strings.Contains(string(out), flag) {
			t.Errorf("server --help (%s): %v\n%s", flag, err, out)
		}
	}
	for _, bad := range []struct {
		args []string
		says string
	}{
		{[]string{"--tls-cert-file", "tls.crt"}, "give both or neither"},
		{[]string{"--tls-key-file", "tls.key"}, "give both or neither"},
		{[]string{"--tls-cert-file", "/no/such.crt", "--tls-key-file", "/no/such.key"}, "/no/such.crt"},
		{[]string{"--trusted-proxies", "10.0.0.0/8,proxy.example"}, "--trusted-proxies"},
		{[]string{"--read-header-timeout", "0s"}, "must be positive"},
	} {
		out, err := exec.Command(binary, append([]string{"server"}, bad.args...)...).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 || !strings.Contains(string(out), bad.says) {
			t.Errorf("server %v: %v, %s; want a non-zero exit saying %q", bad.args, err, out, bad.says)
		}
	}
	out, err = exec.Command(binary, "server", "--no-such-flag").Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || len(out) > 0 ||
		!strings.Contains(string(ee.Stderr), "Usage: leadhook server") ||
		strings.Count(string(ee.Stderr), "no-such-flag") != 1 {
		t.Errorf("unknown flag: %v, stdout %q; want exit 2 and the problem once, with the usage, on stderr only", err, out)
	}
	if out, err := exec.Command(binary, "controller", "--help").Output(); err != nil ||
		!strings.Contains(string(out), "leader-elect") {
		t.Errorf("controller --help: %v\n%s", err, out)
	}
	err = exec.Command(binary, "frobnicate").Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Errorf("unknown command: %v, want exit 2", err)
	}
}

// The binary behind a proxy and over HTTPS: --trusted-proxies lets the proxy's
// X-Forwarded-For reach an allowlist (and only the rightmost untrusted hop counts), and
// --tls-cert-file/--tls-key-file serve HTTPS.
func TestTrustedProxiesAndTLS(t *testing.T) {
	integrations, certDir := copySamples(t), t.TempDir()
	allowlisted := `apiVersion: leadhook.io/v1alpha1
kind: LeadIntegration
metadata: {name: partner, namespace: clinic}
spec:
  source: Generic
  path: /api/partner
  defaultRegion: IL
  allowedSourceRanges: [203.0.113.0/24]
`
	if err := os.WriteFile(filepath.Join(integrations, "partner.yaml"), []byte(allowlisted), 0o600); err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, cert := testcert.SelfSigned(t, 1)
	certFile, keyFile := filepath.Join(certDir, "tls.crt"), filepath.Join(certDir, "tls.key")
	for f, b := range map[string][]byte{certFile: certPEM, keyFile: keyPEM} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	listen := freeAddr(t)
	s := startServer(t, integrations, t.TempDir(), listen, freeAddr(t), func(s *server) {
		s.url = "https://" + listen
		s.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
		s.args = []string{"--trusted-proxies", "127.0.0.1/32,::1/128", "--tls-cert-file", certFile, "--tls-key-file", keyFile}
	})
	body := []byte(`{"phone":"+972547712345"}`)
	if code, out := s.post(t, "/api/partner", "application/json", body, "X-Forwarded-For", "203.0.113.9"); code != 200 || out["status"] != true {
		t.Errorf("client 203.0.113.9 through the trusted proxy: %d %v", code, out)
	}
	for _, xff := range []string{"", "203.0.113.9, 198.51.100.1"} {
		if code, out := s.post(t, "/api/partner", "application/json", body, "X-Forwarded-For", xff); code != 403 || out["error"] != "Forbidden" {
			t.Errorf("X-Forwarded-For %q: %d %v, want 403 Forbidden", xff, code, out)
		}
	}
	// Plain HTTP on the HTTPS port takes no lead.
	if resp, err := http.Post("http://"+listen+"/api/lead", "application/json", bytes.NewReader(body)); err == nil {
		_ = resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP accepted on the HTTPS port")
		}
	}
	s.stop(t)
	if strings.Contains(s.log.String(), "203.0.113.9") {
		t.Errorf("the log names a client address:\n%s", s.log)
	}
}
