package registry_test

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/leadhook/leadhook/webhookserver/registry"
	"github.com/leadhook/leadhook/webhookserver/verify"
)

// Manifests used across the tests.
const (
	websiteYAML = `# A website form, signed, with its Secret in the same file.
apiVersion: leadhook.io/v1alpha1
kind: LeadIntegration
metadata:
  name: website
  namespace: clinic
spec:
  source: Generic
  defaultRegion: IL
  timeZone: Asia/Jerusalem
  allowedSourceRanges: [203.0.113.0/24, "2001:db8::1/32"]
  rateLimit: {requestsPerSecond: 1, burst: 2}
  maxBodyBytes: 4096
  duplicateWindow: 90s
  signature:
    secretRef: {name: website-signing}
---
apiVersion: v1
kind: Secret
metadata:
  name: website-signing
  namespace: clinic
stringData:
  secret: |
    s3cret
---
apiVersion: v1
kind: ConfigMap
metadata: {name: ignored, namespace: clinic}
data: {x: y}
`
	taplinkYAML = `apiVersion: leadhook.io/v1alpha1
kind: LeadIntegration
metadata:
  name: taplink
  namespace: clinic
spec:
  source: Taplink
  signature:
    secretRef: {name: taplink-signing, key: phrase}
`
	// The Taplink integration's Secret, in another file, as base64 data.
	taplinkSecretYAML = `apiVersion: v1
kind: Secret
metadata:
  name: taplink-signing
  namespace: clinic
data:
  phrase: dGVzdC1zZWNyZXQ=
`
	// No namespace: "default". A custom path: a route name of its own.
	customPathYAML = `{"apiVersion": "leadhook.io/v1alpha1", "kind": "LeadIntegration",
 "metadata": {"name": "landing"},
 "spec": {"source": "Generic", "path": "/hooks/landing"}}
`
)

// quiet is a logger for Files that keeps test output readable.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// loadDir writes files (name, content pairs) to a new directory and loads it.
func loadDir(t *testing.T, files ...string) (*registry.Files, string) {
	t.Helper()
	dir := t.TempDir()
	for i := 0; i+1 < len(files); i += 2 {
		writeFile(t, dir, files[i], files[i+1])
	}
	f := &registry.Files{Dir: dir, Log: quiet}
	if err := f.Load(); err != nil {
		t.Fatalf("Load: %v", err)
	}
	return f, dir
}

func mustLoad(t *testing.T, f *registry.Files) {
	t.Helper()
	if err := f.Load(); err != nil {
		t.Fatalf("Load: %v", err)
	}
}

func lookup(t *testing.T, r registry.Registry, path string) *registry.Integration {
	t.Helper()
	in, ok := r.Lookup(path)
	if !ok {
		t.Fatalf("no integration serves %s", path)
	}
	return in
}

func notServed(t *testing.T, r registry.Registry, path string) {
	t.Helper()
	if in, ok := r.Lookup(path); ok {
		t.Fatalf("%s is served by %s", path, in.Key())
	}
}

func keyStrings(keys [][]byte) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = string(k)
	}
	return out
}

func TestFilesLoad(t *testing.T) {
	f, _ := loadDir(t,
		"10-website.yaml", websiteYAML,
		"20-taplink.yml", taplinkYAML,
		"30-secrets.yaml", taplinkSecretYAML,
		"40-landing.json", customPathYAML,
		"notes.txt", strings.Replace(customPathYAML, "/hooks/landing", "/from-txt", 1),
		".hidden.yaml", strings.Replace(customPathYAML, "/hooks/landing", "/from-hidden", 1),
	)
	if !f.Loaded() {
		t.Fatal("Loaded() = false after Load")
	}

	web := lookup(t, f, "/api/lead")
	if web.Key() != "clinic/website" || web.Source != "Generic" || web.Path != "/api/lead" || web.RouteName != "api.lead.store" {
		t.Errorf("website = %s %s %s %s", web.Key(), web.Source, web.Path, web.RouteName)
	}
	if web.Region != "IL" || web.Location.String() != "Asia/Jerusalem" {
		t.Errorf("website region %q, zone %s", web.Region, web.Location)
	}
	if web.Signer != (verify.HMACSHA256{}) {
		t.Errorf("website signer = %#v, want HMACSHA256 on X-Signature", web.Signer)
	}
	// The block scalar's trailing newline is not part of the key.
	if got := keyStrings(web.Keys); !slices.Equal(got, []string{"s3cret"}) || web.NotReady != "" {
		t.Errorf("website keys = %q, not ready %q", got, web.NotReady)
	}
	wantNets := []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::/32")}
	if !slices.Equal(web.AllowedNets, wantNets) {
		t.Errorf("website nets = %v, want %v", web.AllowedNets, wantNets)
	}
	if web.Limiter == nil || web.Limiter.Limit() != rate.Limit(1) || web.Limiter.Burst() != 2 {
		t.Errorf("website limiter = %+v", web.Limiter)
	}
	if web.MaxBodyBytes != 4096 || web.DuplicateWindow != 90*time.Second {
		t.Errorf("website max body %d, window %s", web.MaxBodyBytes, web.DuplicateWindow)
	}

	tl := lookup(t, f, "/api/taplink/lead")
	if tl.Key() != "clinic/taplink" || tl.RouteName != "api.taplink.lead.store" || tl.Signer != (verify.TaplinkSHA1{}) {
		t.Errorf("taplink = %s %s %#v", tl.Key(), tl.RouteName, tl.Signer)
	}
	if got := keyStrings(tl.Keys); !slices.Equal(got, []string{"test-secret"}) || tl.NotReady != "" {
		t.Errorf("taplink keys = %q, not ready %q", got, tl.NotReady)
	}
	// Defaults for what the spec leaves out.
	if tl.Location.String() != "UTC" || tl.MaxBodyBytes != 65536 || tl.DuplicateWindow != 10*time.Minute || tl.Limiter != nil || tl.AllowedNets != nil {
		t.Errorf("taplink defaults: zone %s, max body %d, window %s, limiter %v, nets %v",
			tl.Location, tl.MaxBodyBytes, tl.DuplicateWindow, tl.Limiter, tl.AllowedNets)
	}

	landing := lookup(t, f, "/hooks/landing")
	if landing.Key() != "default/landing" || landing.RouteName != "integration.default.landing" || landing.Signer != nil {
		t.Errorf("landing = %s %s %#v", landing.Key(), landing.RouteName, landing.Signer)
	}

	// Only .yaml, .yml and .json files that are not hidden are read.
	notServed(t, f, "/from-txt")
	notServed(t, f, "/from-hidden")
	notServed(t, f, "/api/other")
}

// A multi-document file saved with Windows line endings keeps all its documents.
func TestFilesLoadCRLF(t *testing.T) {
	f, _ := loadDir(t, "website.yaml", strings.ReplaceAll(websiteYAML, "\n", "\r\n"))
	web := lookup(t, f, "/api/lead")
	if got := keyStrings(web.Keys); !slices.Equal(got, []string{"s3cret"}) || web.NotReady != "" {
		t.Errorf("keys = %q, not ready %q: the Secret after --- was lost", got, web.NotReady)
	}
}

func TestFilesLoadMissingDir(t *testing.T) {
	f := &registry.Files{Dir: filepath.Join(t.TempDir(), "nope"), Log: quiet}
	if err := f.Load(); err == nil {
		t.Fatal("Load of a missing directory succeeded")
	}
	if f.Loaded() {
		t.Error("Loaded() = true after a failed Load")
	}
	notServed(t, f, "/api/lead")
}

// A file with an unknown field is rejected as a whole; other files are served. A file that
// was good and turns bad keeps its last good version until it is fixed or removed.
func TestFilesLoadStrict(t *testing.T) {
	typo := strings.Replace(customPathYAML, `"path"`, `"pathh"`, 1)
	f, dir := loadDir(t, "a-typo.json", typo, "b-taplink.yaml", taplinkYAML+"---\n"+taplinkSecretYAML)
	notServed(t, f, "/hooks/landing")
	notServed(t, f, "/api/lead") // the typo must not fall back to the default path
	lookup(t, f, "/api/taplink/lead")

	// A good file becomes invalid: its last good version stays.
	writeFile(t, dir, "c-website.yaml", websiteYAML)
	mustLoad(t, f)
	lookup(t, f, "/api/lead")
	writeFile(t, dir, "c-website.yaml", strings.Replace(websiteYAML, "  defaultRegion: IL\n", "  defaultRegion: IL\n  enabeld: false\n", 1))
	mustLoad(t, f)
	if got := lookup(t, f, "/api/lead"); got.Region != "IL" || got.NotReady != "" {
		t.Errorf("last good website = region %q, not ready %q", got.Region, got.NotReady)
	}
	lookup(t, f, "/api/taplink/lead") // untouched

	// Fixed: the new version is served.
	writeFile(t, dir, "c-website.yaml", strings.Replace(websiteYAML, "defaultRegion: IL", "defaultRegion: RU", 1))
	mustLoad(t, f)
	if got := lookup(t, f, "/api/lead").Region; got != "RU" {
		t.Errorf("fixed website region = %q, want RU", got)
	}

	// Bad again, then removed: nothing is kept for a file that is gone.
	writeFile(t, dir, "c-website.yaml", "kind: LeadIntegration\napiVersion: leadhook.io/v1alpha1\nmetadata: [")
	mustLoad(t, f)
	if got := lookup(t, f, "/api/lead").Region; got != "RU" {
		t.Errorf("website region after a broken save = %q, want RU", got)
	}
	if err := os.Remove(filepath.Join(dir, "c-website.yaml")); err != nil {
		t.Fatal(err)
	}
	mustLoad(t, f)
	notServed(t, f, "/api/lead")

	// A file that was never good serves nothing, and a name is required.
	writeFile(t, dir, "d-noname.yaml", strings.Replace(taplinkYAML, "  name: taplink\n", "", 1))
	writeFile(t, dir, "e-bad-secret.yaml", strings.Replace(taplinkSecretYAML, "data:", "dta:", 1))
	mustLoad(t, f)
	if tl := lookup(t, f, "/api/taplink/lead"); tl.Key() != "clinic/taplink" || tl.NotReady != "" {
		t.Errorf("taplink path served by %q, not ready %q", tl.Key(), tl.NotReady)
	}
}

// Field names match as the API server matches them: exactly. A name in another case, or a
// field given twice, makes the file invalid rather than quietly meaning something.
func TestFilesLoadCaseSensitive(t *testing.T) {
	lookup(t, mustLoadDir(t, websiteYAML), "/api/lead") // as written, it is served
	for name, change := range map[string][2]string{
		"upper-case field":   {"  source: Generic\n", "  SOURCE: Generic\n"},
		"lower-case field":   {"defaultRegion:", "defaultregion:"},
		"repeated field":     {"  source: Generic\n", "  source: Generic\n  source: Taplink\n"},
		"secret field case":  {"stringData:", "stringdata:"},
		"metadata name case": {"  name: website\n", "  Name: website\n"},
	} {
		t.Run(name, func(t *testing.T) {
			doc := strings.Replace(websiteYAML, change[0], change[1], 1)
			if doc == websiteYAML {
				t.Fatalf("%q is not in the sample", change[0])
			}
			notServed(t, mustLoadDir(t, doc), "/api/lead")
		})
	}
}

// mustLoadDir loads a directory holding one file.
func mustLoadDir(t *testing.T, doc string) *registry.Files {
	t.Helper()
	f, _ := loadDir(t, "website.yaml", doc)
	return f
}

func TestFilesLoadDisabled(t *testing.T) {
	f, dir := loadDir(t, "website.yaml", websiteYAML)
	lookup(t, f, "/api/lead")
	writeFile(t, dir, "website.yaml", strings.Replace(websiteYAML, "  source: Generic\n", "  source: Generic\n  enabled: false\n", 1))
	mustLoad(t, f)
	notServed(t, f, "/api/lead")
	writeFile(t, dir, "website.yaml", strings.Replace(websiteYAML, "  source: Generic\n", "  source: Generic\n  enabled: true\n", 1))
	mustLoad(t, f)
	lookup(t, f, "/api/lead")
}

// A signed integration without its key is served, so that it answers "not ready" rather than
// "no integration", and it carries no keys (fail closed).
func TestFilesLoadSecretMissing(t *testing.T) {
	tests := []struct {
		name   string
		secret string // the file holding the Secret, if any
	}{
		{"no Secret", ""},
		{"Secret in another namespace", strings.Replace(taplinkSecretYAML, "namespace: clinic", "namespace: other", 1)},
		{"Secret without the key", strings.Replace(taplinkSecretYAML, "phrase:", "secret:", 1)},
		{"empty key", "apiVersion: v1\nkind: Secret\nmetadata: {name: taplink-signing, namespace: clinic}\nstringData: {phrase: \"\"}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, dir := loadDir(t, "taplink.yaml", taplinkYAML, "secret.yaml", tt.secret)
			tl := lookup(t, f, "/api/taplink/lead")
			if !strings.Contains(tl.NotReady, "taplink-signing") || tl.Keys != nil {
				t.Errorf("NotReady = %q, keys %q", tl.NotReady, tl.Keys)
			}
			// The Secret arrives: the integration becomes ready.
			writeFile(t, dir, "secret.yaml", taplinkSecretYAML)
			mustLoad(t, f)
			tl = lookup(t, f, "/api/taplink/lead")
			if tl.NotReady != "" || !slices.Equal(keyStrings(tl.Keys), []string{"test-secret"}) {
				t.Errorf("after the Secret: NotReady = %q, keys %q", tl.NotReady, tl.Keys)
			}
		})
	}
}

// Two enabled integrations claiming one path: the older serves it, whichever file it is in.
func TestFilesLoadPathConflict(t *testing.T) {
	older := strings.Replace(customPathYAML, `"metadata": {"name": "landing"}`, `"metadata": {"name": "zz-old", "creationTimestamp": "2024-01-01T00:00:00Z"}`, 1)
	younger := strings.Replace(customPathYAML, `"metadata": {"name": "landing"}`, `"metadata": {"name": "aa-new", "creationTimestamp": "2025-01-01T00:00:00Z"}`, 1)
	f, _ := loadDir(t, "a.json", younger, "b.json", older)
	if got := lookup(t, f, "/hooks/landing").Key(); got != "default/zz-old" {
		t.Errorf("path served by %s, want the older default/zz-old", got)
	}
}

// Files.Run notices an integration switched off, without a restart.
func TestFilesRunPicksUpChanges(t *testing.T) {
	f, dir := loadDir(t, "website.yaml", websiteYAML)
	f.Interval = 20 * time.Millisecond
	lookup(t, f, "/api/lead")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	writeFile(t, dir, "website.yaml", strings.Replace(websiteYAML, "  source: Generic\n", "  source: Generic\n  enabled: false\n", 1))
	deadline := time.Now().Add(2 * time.Second)
	for {
		if _, ok := f.Lookup("/api/lead"); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/api/lead still served 2s after the integration was disabled")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// And back on.
	writeFile(t, dir, "website.yaml", websiteYAML)
	deadline = time.Now().Add(2 * time.Second)
	for {
		if _, ok := f.Lookup("/api/lead"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/api/lead not served 2s after the integration was enabled again")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A reload must not refill the rate limiter of an integration whose limit did not change.
func TestFilesReloadKeepsLimiter(t *testing.T) {
	f, dir := loadDir(t, "website.yaml", websiteYAML)
	lim := lookup(t, f, "/api/lead").Limiter
	for i := range 2 { // burst 2, 1 per second
		if !lim.Allow() {
			t.Fatalf("request %d refused", i+1)
		}
	}

	// Another file changes, then the integration's own file in a way that keeps its limit.
	writeFile(t, dir, "taplink.yaml", taplinkYAML)
	mustLoad(t, f)
	writeFile(t, dir, "website.yaml", strings.Replace(websiteYAML, "defaultRegion: IL", "defaultRegion: RU", 1))
	mustLoad(t, f)
	in := lookup(t, f, "/api/lead")
	if in.Region != "RU" {
		t.Fatalf("reload not applied: region %q", in.Region)
	}
	if in.Limiter != lim {
		t.Fatal("reload replaced the limiter of an unchanged rate limit")
	}
	if in.Limiter.Allow() {
		t.Error("reload refilled the drained bucket")
	}

	// A changed limit gets a new, full bucket.
	writeFile(t, dir, "website.yaml", strings.Replace(websiteYAML, "burst: 2", "burst: 3", 1))
	mustLoad(t, f)
	in = lookup(t, f, "/api/lead")
	if in.Limiter == lim || in.Limiter.Burst() != 3 || !in.Limiter.Allow() {
		t.Errorf("changed limit: limiter %p (old %p), burst %d", in.Limiter, lim, in.Limiter.Burst())
	}
}

// Names a cluster would refuse are refused in files too.
func TestFilesLoadRejectsBadNames(t *testing.T) {
	slash := strings.Replace(customPathYAML, `"name": "landing"`, `"name": "land/ing"`, 1)
	upper := strings.Replace(customPathYAML, `"name": "landing"`, `"name": "landing", "namespace": "Clinic"`, 1)
	for name, content := range map[string]string{"slash": slash, "namespace": upper} {
		t.Run(name, func(t *testing.T) {
			f, _ := loadDir(t, "a.json", content)
			notServed(t, f, "/hooks/landing")
		})
	}
}

// An allowlist written as IPv4-mapped IPv6 matches the IPv4 peers it names.
func TestBuildMappedAllowlist(t *testing.T) {
	f, _ := loadDir(t, "a.json", strings.Replace(customPathYAML, `"path": "/hooks/landing"`,
		`"path": "/hooks/landing", "allowedSourceRanges": ["::ffff:203.0.113.0/120"]`, 1))
	in := lookup(t, f, "/hooks/landing")
	if len(in.AllowedNets) != 1 || in.AllowedNets[0].String() != "203.0.113.0/24" {
		t.Fatalf("allowed = %v, want [203.0.113.0/24]", in.AllowedNets)
	}
}
