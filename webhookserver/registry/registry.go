// Package registry answers which enabled LeadIntegration serves a path. Integrations come
// from a feed (a directory of YAML in local mode, the API server's cache in cluster mode);
// the HTTP code sees only the Registry interface.
package registry

import (
	"bytes"
	"fmt"
	"net/netip"
	"sort"
	"sync/atomic"
	"time"

	"github.com/nyaruka/phonenumbers"
	"golang.org/x/time/rate"

	"github.com/leadhook/leadhook/api/v1alpha1"
	"github.com/leadhook/leadhook/webhookserver/verify"
)

// Registry finds the integration serving a path.
type Registry interface {
	// Lookup returns the enabled integration that owns path, if any.
	Lookup(path string) (*Integration, bool)
}

// Integration is one enabled LeadIntegration, resolved for serving.
type Integration struct {
	Namespace string
	Name      string
	Source    v1alpha1.Source
	Path      string
	// RouteName names the route in logs and metrics (never the raw path).
	RouteName string
	Region    string
	Location  *time.Location
	// Signer and Keys are set when deliveries must be signed.
	Signer verify.Signer
	Keys   [][]byte
	// NotReady, when set, says why the integration cannot accept leads (its secret is missing).
	NotReady        string
	AllowedNets     []netip.Prefix
	Limiter         *rate.Limiter
	MaxBodyBytes    int64
	DuplicateWindow time.Duration

	// ClientLimiter, when set, limits each client address on its own (see Allow).
	ClientLimiter *ClientLimiter
}

// Key is namespace/name.
func (i *Integration) Key() string { return i.Namespace + "/" + i.Name }

// Problem is an integration that is not served, and why.
type Problem struct {
	Key    string
	Reason string // a v1alpha1 Reason* constant
	Err    error
}

func (p Problem) String() string { return fmt.Sprintf("%s: %s: %v", p.Key, p.Reason, p.Err) }

// Secrets finds a Secret's key in a namespace; ok is false when the Secret or the key is missing.
type Secrets func(namespace, name, key string) (value []byte, ok bool)

// Table is an immutable path -> integration map.
type Table struct {
	byPath map[string]*Integration
}

// Lookup implements Registry.
func (t *Table) Lookup(path string) (*Integration, bool) {
	if t == nil {
		return nil, false
	}
	i, ok := t.byPath[path]
	return i, ok
}

// Len is the number of paths served.
func (t *Table) Len() int { return len(t.byPath) }

// Build resolves integrations into a table. Disabled integrations are left out; invalid ones
// and the younger of two claiming one path are reported as problems. prev, when given, lends
// its rate limiters to unchanged integrations so a reload does not refill their buckets.
func Build(items []v1alpha1.LeadIntegration, secrets Secrets, prev *Table) (*Table, []Problem) {
	sorted := append([]v1alpha1.LeadIntegration(nil), items...)
	sort.SliceStable(sorted, func(a, b int) bool { // the older keeps a contested path
		ta, tb := sorted[a].CreationTimestamp, sorted[b].CreationTimestamp
		if !ta.Equal(&tb) {
			return ta.Before(&tb)
		}
		return sorted[a].Namespace+"/"+sorted[a].Name < sorted[b].Namespace+"/"+sorted[b].Name
	})
	t := &Table{byPath: map[string]*Integration{}}
	var problems []Problem
	for idx := range sorted {
		obj := &sorted[idx]
		key := obj.Namespace + "/" + obj.Name
		if !obj.Spec.IsEnabled() {
			continue
		}
		in, err := resolve(obj, secrets)
		if err != nil {
			problems = append(problems, Problem{Key: key, Reason: v1alpha1.ReasonInvalidSpec, Err: err})
			continue
		}
		if owner, taken := t.byPath[in.Path]; taken {
			problems = append(problems, Problem{Key: key, Reason: v1alpha1.ReasonPathConflict,
				Err: fmt.Errorf("path %s is served by %s", in.Path, owner.Key())})
			continue
		}
		if in.NotReady != "" {
			problems = append(problems, Problem{Key: key, Reason: v1alpha1.ReasonSecretNotFound, Err: fmt.Errorf("%s", in.NotReady)})
		}
		if old, ok := prev.Lookup(in.Path); ok && old.Key() == in.Key() && sameLimit(old.Limiter, in.Limiter) {
			in.Limiter = old.Limiter
		}
		if old, ok := prev.Lookup(in.Path); ok && old.Key() == in.Key() && sameClientLimit(old.ClientLimiter, in.ClientLimiter) {
			in.ClientLimiter = old.ClientLimiter
		}
		t.byPath[in.Path] = in
	}
	return t, problems
}

func sameLimit(a, b *rate.Limiter) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Limit() == b.Limit() && a.Burst() == b.Burst()
}

func sameClientLimit(a, b *ClientLimiter) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Limit() == b.Limit() && a.Burst() == b.Burst()
}

// resolve checks one enabled integration and turns its spec into an Integration.
func resolve(obj *v1alpha1.LeadIntegration, secrets Secrets) (*Integration, error) {
	spec := &obj.Spec
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if spec.DefaultRegion != "" && phonenumbers.GetCountryCodeForRegion(spec.DefaultRegion) == 0 {
		return nil, fmt.Errorf("spec.defaultRegion %q is not a region phone numbers know", spec.DefaultRegion)
	}
	loc, err := time.LoadLocation(spec.EffectiveTimeZone())
	if err != nil {
		return nil, fmt.Errorf("spec.timeZone: %w", err)
	}
	in := &Integration{
		Namespace:       obj.Namespace,
		Name:            obj.Name,
		Source:          spec.Source,
		Path:            spec.EffectivePath(),
		Region:          spec.DefaultRegion,
		Location:        loc,
		MaxBodyBytes:    spec.EffectiveMaxBodyBytes(),
		DuplicateWindow: spec.EffectiveDuplicateWindow(),
	}
	in.RouteName = routeName(in)
	for _, c := range spec.AllowedSourceRanges {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("spec.allowedSourceRanges: %w", err)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 { // ::ffff:203.0.113.0/120 is 203.0.113.0/24
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		in.AllowedNets = append(in.AllowedNets, p.Masked())
	}
	if rl := spec.RateLimit; rl != nil {
		burst := int(rl.Burst)
		if burst == 0 {
			burst = 2 * int(rl.RequestsPerSecond)
		}
		in.Limiter = rate.NewLimiter(rate.Limit(rl.RequestsPerSecond), burst)
		if rl.PerClientRequestsPerSecond > 0 {
			burst := int(rl.PerClientBurst)
			if burst == 0 {
				burst = 2 * int(rl.PerClientRequestsPerSecond)
			}
			in.ClientLimiter = NewClientLimiter(rate.Limit(rl.PerClientRequestsPerSecond), burst)
		}
	}
	if sig := spec.Signature; sig != nil {
		switch sig.EffectiveScheme(spec.Source) {
		case v1alpha1.SchemeTaplinkSHA1:
			in.Signer = verify.TaplinkSHA1{}
		case v1alpha1.SchemeHMACSHA256:
			in.Signer = verify.HMACSHA256{Header: sig.Header}
		case v1alpha1.SchemeStandardWebhooks:
			in.Signer = verify.StandardWebhooks{Window: sig.EffectiveReplayWindow()}
		case v1alpha1.SchemeToken:
			in.Signer = verify.Token{Header: sig.Header}
		}
		ref := sig.SecretRef
		value, ok := secrets(obj.Namespace, ref.Name, ref.EffectiveKey())
		keys, err := splitKeys(value, in.Signer)
		// Fail closed: a signed integration without a usable key accepts nothing.
		switch {
		case ok && err != nil:
			in.NotReady = fmt.Sprintf("secret %s/%s key %q: %v", obj.Namespace, ref.Name, ref.EffectiveKey(), err)
		case !ok || len(keys) == 0:
			in.NotReady = fmt.Sprintf("secret %s/%s has no key %q", obj.Namespace, ref.Name, ref.EffectiveKey())
		default:
			in.Keys = keys
		}
	}
	return in, nil
}

// splitKeys reads a Secret value as one key per line, so keys can be rotated: a delivery
// signed with any of them passes. Blank lines and a line's trailing "\r" are ignored; nothing
// else is trimmed (a Taplink phrase may contain spaces), so a one-line value is one key, as
// written. Keys are decoded when the scheme wants it (whsec_<base64>); the error names the
// line, never its content.
func splitKeys(value []byte, signer verify.Signer) ([][]byte, error) {
	var keys [][]byte
	for i, line := range bytes.Split(value, []byte("\n")) {
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if d, ok := signer.(verify.KeyDecoder); ok {
			key, err := d.DecodeKey(line)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", i+1, err)
			}
			line = key
		}
		keys = append(keys, line)
	}
	return keys, nil
}

// routeName is the contract's route name for a source's default path, else one naming the
// integration.
func routeName(in *Integration) string {
	switch {
	case in.Source == v1alpha1.SourceGeneric && in.Path == v1alpha1.DefaultGenericPath:
		return "api.lead.store"
	case in.Source == v1alpha1.SourceTaplink && in.Path == v1alpha1.DefaultTaplinkPath:
		return "api.taplink.lead.store"
	}
	return "integration." + in.Namespace + "." + in.Name
}

// Live is a Registry whose table is swapped atomically by its feed.
type Live struct {
	table atomic.Pointer[Table]
}

// Lookup implements Registry.
func (l *Live) Lookup(path string) (*Integration, bool) { return l.table.Load().Lookup(path) }

// Table is the current table (nil before the first load).
func (l *Live) Table() *Table { return l.table.Load() }

// Set replaces the table.
func (l *Live) Set(t *Table) { l.table.Store(t) }
