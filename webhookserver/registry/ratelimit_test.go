package registry_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/leadhook/leadhook/api/v1alpha1"
	"github.com/leadhook/leadhook/webhookserver/registry"
)

var t0 = time.Date(2026, 3, 24, 12, 0, 0, 0, time.UTC)

// Each client has its own bucket; a refused client spends nothing of the integration's.
func TestIntegrationAllow(t *testing.T) {
	in := &registry.Integration{
		Limiter:       rate.NewLimiter(1, 3),
		ClientLimiter: registry.NewClientLimiter(1, 1),
	}
	a, b, c := netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.2"), netip.MustParseAddr("203.0.113.3")
	if ok, _ := in.Allow(a, t0); !ok {
		t.Fatal("first request of a refused")
	}
	for i := 0; i < 5; i++ {
		ok, wait := in.Allow(a, t0)
		if ok || wait <= 0 || wait > time.Second {
			t.Fatalf("second request of a: allowed %v, wait %v; want refused within 1s", ok, wait)
		}
	}
	// a's refusals took nothing from the integration: b and c still fit in its burst of 3.
	for _, addr := range []netip.Addr{b, c} {
		if ok, _ := in.Allow(addr, t0); !ok {
			t.Fatalf("%s refused", addr)
		}
	}
	// The integration's bucket is now empty: a fresh client is refused by it.
	ok, wait := in.Allow(netip.MustParseAddr("203.0.113.4"), t0)
	if ok || wait <= 0 {
		t.Fatalf("fourth client: allowed %v, wait %v; want the integration's refusal", ok, wait)
	}
	// ... and that refusal did not spend the fourth client's own token.
	if ok, _ := in.Allow(netip.MustParseAddr("203.0.113.4"), t0.Add(time.Second)); !ok {
		t.Fatal("fourth client refused once the integration had a token again")
	}
}

// IPv6 clients share a bucket per /64; v4-mapped addresses are their IPv4 selves.
func TestClientLimiterKeys(t *testing.T) {
	cl := registry.NewClientLimiter(1, 1)
	if r, _ := cl.Reserve(netip.MustParseAddr("2001:db8:1:2::1"), t0); r == nil {
		t.Fatal("first v6 request refused")
	}
	if r, _ := cl.Reserve(netip.MustParseAddr("2001:db8:1:2:ffff::9"), t0); r != nil {
		t.Error("another address of the same /64 has a bucket of its own")
	}
	if r, _ := cl.Reserve(netip.MustParseAddr("2001:db8:1:3::1"), t0); r == nil {
		t.Error("another /64 shares the bucket")
	}
	if r, _ := cl.Reserve(netip.MustParseAddr("192.0.2.1"), t0); r == nil {
		t.Fatal("first v4 request refused")
	}
	if r, _ := cl.Reserve(netip.MustParseAddr("::ffff:192.0.2.1"), t0); r != nil {
		t.Error("a v4-mapped address escapes its IPv4 bucket")
	}
	if cl.Len() != 3 {
		t.Errorf("buckets = %d, want 3", cl.Len())
	}
}

// Memory stays bounded under a flood of distinct addresses, and idle buckets are forgotten.
func TestClientLimiterBounded(t *testing.T) {
	cl := registry.NewClientLimiter(10, 20)
	cl.MaxClients = 100
	for i := 0; i < 5000; i++ {
		cl.Reserve(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), t0)
	}
	if n := cl.Len(); n > 100 {
		t.Fatalf("buckets = %d after a flood, want at most 100", n)
	}
	// Long after, one new client: every idle bucket (already full again) is dropped.
	cl.Reserve(netip.MustParseAddr("192.0.2.1"), t0.Add(time.Hour))
	if n := cl.Len(); n != 1 {
		t.Errorf("buckets = %d after an idle hour, want 1", n)
	}
	// The most recently used client keeps its bucket under the flood: its state survives.
	busy := netip.MustParseAddr("192.0.2.99")
	for i := 0; i < 20; i++ {
		cl.Reserve(busy, t0.Add(2*time.Hour))
	}
	for i := 0; i < 50; i++ {
		cl.Reserve(netip.MustParseAddr(fmt.Sprintf("10.1.0.%d", i)), t0.Add(2*time.Hour))
		cl.Reserve(busy, t0.Add(2*time.Hour))
	}
	if r, _ := cl.Reserve(busy, t0.Add(2*time.Hour)); r != nil {
		t.Error("a busy client got a fresh bucket")
	}
}

// A rebuild keeps the per-client buckets of an unchanged integration, and drops them when
// its per-client limit changes.
func TestBuildKeepsClientLimiter(t *testing.T) {
	limited := func(perClient int32) v1alpha1.LeadIntegration {
		o := item("clinic", "web", "/x", 1)
		o.Spec.RateLimit = &v1alpha1.RateLimitSpec{RequestsPerSecond: 50, PerClientRequestsPerSecond: perClient}
		return o
	}
	first, problems := registry.Build([]v1alpha1.LeadIntegration{limited(2)}, noSecrets, nil)
	if len(problems) != 0 {
		t.Fatal(problems)
	}
	old, _ := first.Lookup("/x")
	if old.ClientLimiter == nil || old.ClientLimiter.Burst() != 4 {
		t.Fatalf("client limiter = %+v, want burst twice the per-client rate", old.ClientLimiter)
	}
	same, _ := registry.Build([]v1alpha1.LeadIntegration{limited(2)}, noSecrets, first)
	if in, _ := same.Lookup("/x"); in.ClientLimiter != old.ClientLimiter {
		t.Error("unchanged integration got new client buckets")
	}
	other, _ := registry.Build([]v1alpha1.LeadIntegration{limited(3)}, noSecrets, first)
	if in, _ := other.Lookup("/x"); in.ClientLimiter == old.ClientLimiter {
		t.Error("a changed per-client rate kept the old buckets")
	}
	none, _ := registry.Build([]v1alpha1.LeadIntegration{limited(0)}, noSecrets, first)
	if in, _ := none.Lookup("/x"); in.ClientLimiter != nil {
		t.Error("per-client buckets without perClientRequestsPerSecond")
	}
	bad := limited(0)
	bad.Spec.RateLimit.PerClientBurst = 5
	if _, problems := registry.Build([]v1alpha1.LeadIntegration{bad}, noSecrets, nil); len(problems) != 1 {
		t.Errorf("perClientBurst alone: problems %v, want one", problems)
	}
}
