package webhookserver_test

// The client address (--trusted-proxies) and the rate limits keyed by it.

import (
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/leadhook/leadhook/api/v1alpha1"
)

var proxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}

func allowlisted(s *v1alpha1.LeadIntegrationSpec) {
	s.AllowedSourceRanges = []string{"203.0.113.0/24", "2001:db8::/32"}
}

// An allowlisted address only in X-Forwarded-For is believed only from a trusted proxy, and
// then only as the rightmost hop outside the trusted proxies.
func TestClientAddressAllowlist(t *testing.T) {
	cases := []struct {
		name    string
		trusted bool // the server has --trusted-proxies
		peer    string
		xff     []string // X-Forwarded-For headers, in order
		want    int
	}{
		{"direct from an allowlisted address", false, "203.0.113.7:4711", nil, http.StatusOK},
		{"spoofed XFF, no trusted proxies", false, "198.51.100.9:4711", []string{"203.0.113.7"}, http.StatusForbidden},
		{"XFF from a proxy nobody trusts", false, "10.1.2.3:4711", []string{"203.0.113.7"}, http.StatusForbidden},
		{"spoofed XFF from an untrusted peer", true, "198.51.100.9:4711", []string{"203.0.113.7"}, http.StatusForbidden},
		{"through a trusted proxy", true, "10.1.2.3:4711", []string{"203.0.113.7"}, http.StatusOK},
		{"through two trusted proxies", true, "10.1.2.3:4711", []string{"198.51.100.1, 203.0.113.7, 10.9.9.9"}, http.StatusOK},
		{"client-forged hop left of the real one", true, "10.1.2.3:4711", []string{"203.0.113.7, 198.51.100.9"}, http.StatusForbidden},
		{"forged hop in a second header", true, "10.1.2.3:4711", []string{"203.0.113.7", "198.51.100.9"}, http.StatusForbidden},
		{"direct from an allowlisted address, proxies trusted", true, "203.0.113.7:4711", []string{"10.0.0.1"}, http.StatusOK},
		{"garbage in the chain fails closed", true, "10.1.2.3:4711", []string{"203.0.113.7, bogus"}, http.StatusForbidden},
		{"trusted peer without XFF fails closed", true, "10.1.2.3:4711", nil, http.StatusForbidden},
		{"only trusted hops fails closed", true, "10.1.2.3:4711", []string{"10.0.0.9"}, http.StatusForbidden},
		{"IPv6 through a trusted IPv6 proxy", true, "[fd00::1]:443", []string{"2001:db8::5"}, http.StatusOK},
		{"IPv6 spoofed from an untrusted IPv6 peer", true, "[2001:db9::1]:443", []string{"2001:db8::5"}, http.StatusForbidden},
		{"IPv6 direct", false, "[2001:db8::5]:443", nil, http.StatusOK},
		{"v4-mapped client in XFF", true, "10.1.2.3:4711", []string{"::ffff:203.0.113.7"}, http.StatusOK},
		{"v4-mapped trusted peer", true, "[::ffff:10.1.2.3]:4711", []string{"203.0.113.7"}, http.StatusOK},
		{"v4-mapped allowlisted peer", false, "[::ffff:203.0.113.7]:4711", nil, http.StatusOK},
		{"v4-mapped forged hop is not a trusted proxy", true, "10.1.2.3:4711", []string{"203.0.113.7, ::ffff:198.51.100.9"}, http.StatusForbidden},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := options{items: []v1alpha1.LeadIntegration{integration("website", v1alpha1.SourceGeneric, allowlisted)}}
			if c.trusted {
				o.trusted = proxies
			}
			e := newEnvWith(t, o)
			var hdr []string
			for _, v := range c.xff {
				hdr = append(hdr, "X-Forwarded-For", v)
			}
			r := e.from(c.peer, genericPath, jsonType, []byte(`{"phone":"+972501234567"}`), hdr...)
			if c.want == http.StatusOK {
				r.expectStored(t)
				return
			}
			r.expect(t, c.want, false, "Forbidden")
			e.expectNoLeads()
		})
	}
}

// The lead and the intake log name the resolved client, and the proxy it came through.
func TestClientAddressRecorded(t *testing.T) {
	e := newEnvWith(t, options{items: defaultIntegrations(), trusted: proxies})
	e.from("10.1.2.3:4711", genericPath, jsonType, []byte(`{"phone":"+972501234567"}`),
		"X-Forwarded-For", "203.0.113.7, 10.0.0.5").expectStored(t)
	if req := e.onlyLead().Request; req.RemoteIP != "203.0.113.7" || req.PeerIP != "10.1.2.3" {
		t.Errorf("lead request = %+v, want client 203.0.113.7 via 10.1.2.3", req)
	}
	// Without an allowlist, a chain that fails closed is still served, recorded as the peer.
	e.from("10.1.2.3:4711", genericPath, jsonType, []byte(`{"phone":"+972501234568"}`),
		"X-Forwarded-For", "bogus").expectStored(t)
	// A direct client has no separate peer.
	e.from("[2001:db8::5]:443", genericPath, jsonType, []byte(`{"phone":"+972501234569"}`),
		"X-Forwarded-For", "203.0.113.7").expectStored(t)
	got := map[string]string{}
	for _, entry := range e.intake(3) {
		got[entry.RemoteIP] = entry.PeerIP
	}
	want := map[string]string{"203.0.113.7": "10.1.2.3", "10.1.2.3": "", "2001:db8::5": ""}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("intake remote -> peer = %v, want %v", got, want)
	}
}

// retryAfter checks a 429 and returns its Retry-After in seconds.
func retryAfter(t *testing.T, r reply) int {
	t.Helper()
	r.expect(t, http.StatusTooManyRequests, false, "Too many requests")
	s, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || s < 1 {
		t.Fatalf("Retry-After = %q, want whole seconds >= 1", r.Header.Get("Retry-After"))
	}
	return s
}

// The integration's budget is shared by all clients.
func TestRateLimitPerIntegration(t *testing.T) {
	e := newEnv(t, integration("website", v1alpha1.SourceGeneric, func(s *v1alpha1.LeadIntegrationSpec) {
		s.RateLimit = &v1alpha1.RateLimitSpec{RequestsPerSecond: 1, Burst: 2}
	}))
	body := func(i int) []byte { return []byte(fmt.Sprintf(`{"phone":"+97250123456%d"}`, i)) }
	e.from("198.51.100.1:1", genericPath, jsonType, body(1)).expectStored(t)
	e.from("198.51.100.2:1", genericPath, jsonType, body(2)).expectStored(t)
	if s := retryAfter(t, e.from("198.51.100.3:1", genericPath, jsonType, body(3))); s != 1 {
		t.Errorf("Retry-After = %d, want 1 (one token a second)", s)
	}
	retryAfter(t, e.from("198.51.100.1:1", genericPath, jsonType, body(4)))
	e.clock.Advance(time.Second)
	e.from("198.51.100.3:1", genericPath, jsonType, body(3)).expectStored(t)
	if n := len(e.leads()); n != 3 {
		t.Errorf("stored %d leads, want 3", n)
	}
}

// One client over its own budget is refused while others are still served, through a
// trusted proxy too (the bucket is the client's, not the proxy's).
func TestRateLimitPerClient(t *testing.T) {
	e := newEnvWith(t, options{trusted: proxies, items: []v1alpha1.LeadIntegration{
		integration("website", v1alpha1.SourceGeneric, func(s *v1alpha1.LeadIntegrationSpec) {
			s.RateLimit = &v1alpha1.RateLimitSpec{RequestsPerSecond: 100, PerClientRequestsPerSecond: 1, PerClientBurst: 2}
		}),
	}})
	n := 0
	send := func(peer string, hdr ...string) reply {
		n++
		return e.from(peer, genericPath, jsonType, []byte(fmt.Sprintf(`{"phone":"+9725012345%02d"}`, n)), hdr...)
	}
	for _, via := range []struct {
		name       string
		a, b       string
		hdrA, hdrB []string
	}{
		{"direct", "198.51.100.1:1", "198.51.100.2:1", nil, nil},
		{"through a proxy", "10.1.2.3:1", "10.1.2.3:1",
			[]string{"X-Forwarded-For", "203.0.113.1"}, []string{"X-Forwarded-For", "203.0.113.2"}},
		{"IPv6 /64", "[2001:db8:1:1::1]:1", "[2001:db8:1:2::1]:1", nil, nil},
	} {
		t.Run(via.name, func(t *testing.T) {
			send(via.a, via.hdrA...).expectStored(t)
			send(via.a, via.hdrA...).expectStored(t)
			for i := 0; i < 3; i++ {
				if s := retryAfter(t, send(via.a, via.hdrA...)); s != 1 {
					t.Errorf("Retry-After = %d, want 1", s)
				}
			}
			send(via.b, via.hdrB...).expectStored(t)
			send(via.b, via.hdrB...).expectStored(t)
		})
	}
	// Another address of a refused IPv6 client's /64 shares its bucket.
	retryAfter(t, send("[2001:db8:1:1::ffff]:1"))
	e.clock.Advance(time.Second)
	send("198.51.100.1:1").expectStored(t)
}
