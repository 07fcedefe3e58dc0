package registry_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/leadhook/leadhook/api/v1alpha1"
	"github.com/leadhook/leadhook/webhookserver/registry"
	"github.com/leadhook/leadhook/webhookserver/verify"
)

// item is an enabled Generic integration on path, created at the given day of 2024 (0: unset).
func item(ns, name, path string, day int) v1alpha1.LeadIntegration {
	obj := v1alpha1.LeadIntegration{Spec: v1alpha1.LeadIntegrationSpec{Source: v1alpha1.SourceGeneric, Path: path}}
	obj.Namespace, obj.Name = ns, name
	if day > 0 {
		obj.CreationTimestamp = metav1.NewTime(time.Date(2024, 1, day, 0, 0, 0, 0, time.UTC))
	}
	return obj
}

func disabled(obj v1alpha1.LeadIntegration) v1alpha1.LeadIntegration {
	off := false
	obj.Spec.Enabled = &off
	return obj
}

func noSecrets(string, string, string) ([]byte, bool) { return nil, false }

// problemList renders problems as "key reason" lines, for comparison.
func problemList(ps []registry.Problem) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Key + " " + p.Reason
	}
	return out
}

func TestBuildPaths(t *testing.T) {
	signed := item("clinic", "signed", "/signed", 1)
	signed.Spec.Signature = &v1alpha1.SignatureSpec{SecretRef: v1alpha1.SecretKeyRef{Name: "missing"}}
	badRegion := item("clinic", "bad-region", "/bad-region", 1)
	badRegion.Spec.DefaultRegion = "XX"
	badZone := item("clinic", "bad-zone", "/bad-zone", 1)
	badZone.Spec.TimeZone = "Mars/Olympus"
	noSource := item("clinic", "no-source", "/no-source", 1)
	noSource.Spec.Source = ""
	invalidOld := item("clinic", "old", "/x", 1)
	invalidOld.Spec.DefaultRegion = "il" // regions are upper case

	tests := []struct {
		name         string
		items        []v1alpha1.LeadIntegration
		wantOwners   map[string]string // path -> key
		wantProblems []string
	}{
		{
			name:       "older wins",
			items:      []v1alpha1.LeadIntegration{item("clinic", "new", "/x", 20), item("clinic", "old", "/x", 10)},
			wantOwners: map[string]string{"/x": "clinic/old"},
			wantProblems: []string{
				"clinic/new " + v1alpha1.ReasonPathConflict,
			},
		},
		{
			name:         "older wins whatever the order given",
			items:        []v1alpha1.LeadIntegration{item("clinic", "old", "/x", 10), item("clinic", "new", "/x", 20)},
			wantOwners:   map[string]string{"/x": "clinic/old"},
			wantProblems: []string{"clinic/new " + v1alpha1.ReasonPathConflict},
		},
		{
			name:         "older wins over a smaller name",
			items:        []v1alpha1.LeadIntegration{item("a", "a", "/x", 20), item("z", "z", "/x", 10)},
			wantOwners:   map[string]string{"/x": "z/z"},
			wantProblems: []string{"a/a " + v1alpha1.ReasonPathConflict},
		},
		{
			name:         "tie: namespace/name order",
			items:        []v1alpha1.LeadIntegration{item("clinic", "b", "/x", 10), item("clinic", "a", "/x", 10), item("another", "z", "/x", 10)},
			wantOwners:   map[string]string{"/x": "another/z"},
			wantProblems: []string{"clinic/a " + v1alpha1.ReasonPathConflict, "clinic/b " + v1alpha1.ReasonPathConflict},
		},
		{
			name: "default paths conflict too",
			items: []v1alpha1.LeadIntegration{
				item("clinic", "web2", "", 2), item("clinic", "web1", "", 1), item("clinic", "web3", "/api/lead", 3),
			},
			wantOwners: map[string]string{"/api/lead": "clinic/web1"},
			wantProblems: []string{
				"clinic/web2 " + v1alpha1.ReasonPathConflict, "clinic/web3 " + v1alpha1.ReasonPathConflict,
			},
		},
		{
			name:       "a disabled older one does not conflict",
			items:      []v1alpha1.LeadIntegration{disabled(item("clinic", "old", "/x", 1)), item("clinic", "new", "/x", 2)},
			wantOwners: map[string]string{"/x": "clinic/new"},
		},
		{
			name:         "the probes are no lead paths",
			items:        []v1alpha1.LeadIntegration{item("clinic", "probe", "/healthz", 1), item("clinic", "ready", "/readyz/", 2)},
			wantOwners:   map[string]string{},
			wantProblems: []string{"clinic/probe " + v1alpha1.ReasonInvalidSpec, "clinic/ready " + v1alpha1.ReasonInvalidSpec},
		},
		{
			name:       "an invalid older one does not take the path",
			items:      []v1alpha1.LeadIntegration{invalidOld, item("clinic", "new", "/x", 2)},
			wantOwners: map[string]string{"/x": "clinic/new"},
			wantProblems: []string{
				"clinic/old " + v1alpha1.ReasonInvalidSpec,
			},
		},
		{
			name:       "invalid specs and a missing secret",
			items:      []v1alpha1.LeadIntegration{signed, badRegion, badZone, noSource},
			wantOwners: map[string]string{"/signed": "clinic/signed"}, // served, not ready
			wantProblems: []string{
				"clinic/bad-region " + v1alpha1.ReasonInvalidSpec,
				"clinic/bad-zone " + v1alpha1.ReasonInvalidSpec,
				"clinic/no-source " + v1alpha1.ReasonInvalidSpec,
				"clinic/signed " + v1alpha1.ReasonSecretNotFound,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table, problems := registry.Build(tt.items, noSecrets, nil)
			if table.Len() != len(tt.wantOwners) {
				t.Errorf("table serves %d paths, want %d", table.Len(), len(tt.wantOwners))
			}
			for path, key := range tt.wantOwners {
				if in, ok := table.Lookup(path); !ok || in.Key() != key {
					t.Errorf("%s served by %v (%v), want %s", path, in, ok, key)
				}
			}
			got := problemList(problems)
			slices.Sort(got)
			if !slices.Equal(got, tt.wantProblems) {
				t.Errorf("problems = %q\nwant       %q", got, tt.wantProblems)
			}
			for _, p := range problems {
				if p.Err == nil {
					t.Errorf("problem %s without an error", p.Key)
				}
				// A conflict names the integration that keeps the path.
				if p.Reason == v1alpha1.ReasonPathConflict {
					owner, _ := table.Lookup(tt.items[0].Spec.EffectivePath())
					if !strings.Contains(p.Err.Error(), owner.Key()) {
						t.Errorf("conflict %q does not name the owner %s", p.Err, owner.Key())
					}
				}
			}
		})
	}
}

func TestBuildSecretKeys(t *testing.T) {
	secrets := func(ns, name, key string) ([]byte, bool) {
		if ns == "clinic" && name == "signing" && key == "secret" {
			return []byte("k1\r\n"), true
		}
		return nil, false
	}
	obj := item("clinic", "web", "", 1)
	obj.Spec.Signature = &v1alpha1.SignatureSpec{Header: "X-Hub-Signature-256", SecretRef: v1alpha1.SecretKeyRef{Name: "signing"}}
	table, problems := registry.Build([]v1alpha1.LeadIntegration{obj}, secrets, nil)
	if len(problems) != 0 {
		t.Fatalf("problems: %v", problems)
	}
	in, _ := table.Lookup("/api/lead")
	if got := keyStrings(in.Keys); !slices.Equal(got, []string{"k1"}) || in.NotReady != "" {
		t.Errorf("keys = %q, not ready %q", got, in.NotReady)
	}
	if in.Signer != (verify.HMACSHA256{Header: "X-Hub-Signature-256"}) {
		t.Errorf("signer = %#v", in.Signer)
	}
}

// A rebuild lends the previous table's limiter to the same integration with the same limit.
func TestBuildKeepsLimiter(t *testing.T) {
	limited := func(ns, name string, rps, burst int32) v1alpha1.LeadIntegration {
		o := item(ns, name, "/x", 1)
		o.Spec.RateLimit = &v1alpha1.RateLimitSpec{RequestsPerSecond: rps, Burst: burst}
		return o
	}
	first, _ := registry.Build([]v1alpha1.LeadIntegration{limited("clinic", "web", 5, 0)}, noSecrets, nil)
	old, _ := first.Lookup("/x")
	if old.Limiter.Burst() != 10 {
		t.Fatalf("default burst = %d, want twice the rate", old.Limiter.Burst())
	}
	tests := []struct {
		name string
		obj  v1alpha1.LeadIntegration
		same bool
	}{
		{"unchanged", limited("clinic", "web", 5, 0), true},
		{"same limit written out", limited("clinic", "web", 5, 10), true},
		{"other rate", limited("clinic", "web", 6, 10), false},
		{"other burst", limited("clinic", "web", 5, 11), false},
		{"other integration on the path", limited("clinic", "web2", 5, 0), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next, _ := registry.Build([]v1alpha1.LeadIntegration{tt.obj}, noSecrets, first)
			in, _ := next.Lookup("/x")
			if got := in.Limiter == old.Limiter; got != tt.same {
				t.Errorf("limiter kept = %v, want %v", got, tt.same)
			}
		})
	}
}

func TestLiveAndNilTable(t *testing.T) {
	var live registry.Live
	if _, ok := live.Lookup("/api/lead"); ok || live.Table() != nil {
		t.Fatal("an empty Live serves a path")
	}
	table, _ := registry.Build([]v1alpha1.LeadIntegration{item("clinic", "web", "", 1)}, noSecrets, nil)
	live.Set(table)
	if in, ok := live.Lookup("/api/lead"); !ok || in.Key() != "clinic/web" {
		t.Errorf("Lookup = %v, %v", in, ok)
	}
	var none *registry.Table
	if _, ok := none.Lookup("/api/lead"); ok {
		t.Error("a nil table serves a path")
	}
}

// A Secret value holds one key per line, for rotation; keys are decoded when the scheme wants.
func TestBuildKeyRotation(t *testing.T) {
	tests := []struct {
		name         string
		scheme       v1alpha1.SignatureScheme
		value        string
		want         []string // nil: not ready
		wantNotReady string
	}{
		{"one key, trailing CRLF", v1alpha1.SchemeHMACSHA256, "k1\r\n", []string{"k1"}, ""},
		{"one phrase with spaces kept as written", v1alpha1.SchemeTaplinkSHA1, " a phrase with spaces ", []string{" a phrase with spaces "}, ""},
		{"old and new key", v1alpha1.SchemeHMACSHA256, "old\nnew\n", []string{"old", "new"}, ""},
		{"CRLF lines and blank lines", v1alpha1.SchemeToken, "\r\n\nold\r\n  \r\n\tnew key\r\n\r\n", []string{"old", "\tnew key"}, ""},
		{"only blank lines fail closed", v1alpha1.SchemeHMACSHA256, "\n\r\n \n", nil, "has no key"},
		{"whsec keys decoded", v1alpha1.SchemeStandardWebhooks, "whsec_YWJjZA==\nraw-key\n", []string{"abcd", "raw-key"}, ""},
		{"whsec kept raw for HMACSHA256", v1alpha1.SchemeHMACSHA256, "whsec_YWJjZA==", []string{"whsec_YWJjZA=="}, ""},
		{"undecodable whsec fails closed", v1alpha1.SchemeStandardWebhooks, "whsec_YWJjZA==\nwhsec_s3cr*t!", nil, "line 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secrets := func(ns, name, key string) ([]byte, bool) { return []byte(tt.value), true }
			obj := item("clinic", "web", "", 1)
			obj.Spec.Signature = &v1alpha1.SignatureSpec{Scheme: tt.scheme, SecretRef: v1alpha1.SecretKeyRef{Name: "signing"}}
			table, _ := registry.Build([]v1alpha1.LeadIntegration{obj}, secrets, nil)
			in, ok := table.Lookup("/api/lead")
			if !ok {
				t.Fatal("integration not served")
			}
			if got := keyStrings(in.Keys); !slices.Equal(got, tt.want) {
				t.Errorf("keys = %q, want %q", got, tt.want)
			}
			if tt.wantNotReady == "" && in.NotReady != "" || !strings.Contains(in.NotReady, tt.wantNotReady) {
				t.Errorf("not ready = %q, want %q", in.NotReady, tt.wantNotReady)
			}
			if strings.Contains(in.NotReady, "s3cr") {
				t.Errorf("not-ready message %q shows the secret", in.NotReady)
			}
		})
	}
}

func TestBuildSigners(t *testing.T) {
	window := func(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }
	tests := []struct {
		name   string
		source v1alpha1.Source
		sig    v1alpha1.SignatureSpec
		want   verify.Signer
	}{
		{"Taplink default", v1alpha1.SourceTaplink, v1alpha1.SignatureSpec{}, verify.TaplinkSHA1{}},
		{"Generic default", v1alpha1.SourceGeneric, v1alpha1.SignatureSpec{}, verify.HMACSHA256{}},
		{"HMACSHA256 header", v1alpha1.SourceGeneric, v1alpha1.SignatureSpec{Scheme: v1alpha1.SchemeHMACSHA256, Header: "X-Sig"}, verify.HMACSHA256{Header: "X-Sig"}},
		{"StandardWebhooks default window", v1alpha1.SourceGeneric, v1alpha1.SignatureSpec{Scheme: v1alpha1.SchemeStandardWebhooks}, verify.StandardWebhooks{Window: 5 * time.Minute}},
		{"StandardWebhooks window", v1alpha1.SourceGeneric, v1alpha1.SignatureSpec{Scheme: v1alpha1.SchemeStandardWebhooks, ReplayWindow: window(time.Minute)}, verify.StandardWebhooks{Window: time.Minute}},
		{"Token default header", v1alpha1.SourceGeneric, v1alpha1.SignatureSpec{Scheme: v1alpha1.SchemeToken}, verify.Token{}},
		{"Token header", v1alpha1.SourceTaplink, v1alpha1.SignatureSpec{Scheme: v1alpha1.SchemeToken, Header: "X-Api-Key"}, verify.Token{Header: "X-Api-Key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := item("clinic", "web", "/x", 1)
			obj.Spec.Source = tt.source
			tt.sig.SecretRef = v1alpha1.SecretKeyRef{Name: "signing"}
			obj.Spec.Signature = &tt.sig
			secrets := func(string, string, string) ([]byte, bool) { return []byte("k"), true }
			table, problems := registry.Build([]v1alpha1.LeadIntegration{obj}, secrets, nil)
			if len(problems) != 0 {
				t.Fatalf("problems: %v", problems)
			}
			in, _ := table.Lookup("/x")
			if in.Signer != tt.want {
				t.Errorf("signer = %#v, want %#v", in.Signer, tt.want)
			}
		})
	}
	t.Run("replay window out of range is invalid", func(t *testing.T) {
		for _, d := range []time.Duration{time.Millisecond, 25 * time.Hour} {
			obj := item("clinic", "web", "/x", 1)
			obj.Spec.Signature = &v1alpha1.SignatureSpec{Scheme: v1alpha1.SchemeStandardWebhooks, ReplayWindow: window(d), SecretRef: v1alpha1.SecretKeyRef{Name: "s"}}
			_, problems := registry.Build([]v1alpha1.LeadIntegration{obj}, noSecrets, nil)
			if got := problemList(problems); !slices.Equal(got, []string{"clinic/web " + v1alpha1.ReasonInvalidSpec}) {
				t.Errorf("window %v: problems %v", d, got)
			}
		}
	})
}
