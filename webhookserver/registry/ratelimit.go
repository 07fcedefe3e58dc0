package registry

import (
	"container/list"
	"math"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// DefaultMaxClients bounds how many client buckets one integration keeps.
const DefaultMaxClients = 10000

// ClientLimiter is a token bucket per client address, with bounded memory: buckets are kept
// in least-recently-used order, a bucket idle long enough to have refilled is forgotten (a
// fresh one is the same), and beyond MaxClients the least recently used is dropped, so a flood
// of distinct (for instance forged X-Forwarded-For) addresses cannot grow it without bound.
// IPv6 clients share a bucket per /64, the block one subscriber usually holds.
type ClientLimiter struct {
	limit rate.Limit
	burst int
	// MaxClients is the most buckets kept; DefaultMaxClients when 0.
	MaxClients int

	mu    sync.Mutex
	byKey map[netip.Addr]*list.Element
	lru   list.List // of *clientBucket, most recently used at the front
}

type clientBucket struct {
	key  netip.Addr
	lim  *rate.Limiter
	last time.Time
}

// NewClientLimiter returns per-client buckets of the given rate and burst.
func NewClientLimiter(limit rate.Limit, burst int) *ClientLimiter {
	return &ClientLimiter{limit: limit, burst: burst, byKey: map[netip.Addr]*list.Element{}}
}

// Limit is the per-client rate.
func (c *ClientLimiter) Limit() rate.Limit { return c.limit }

// Burst is the per-client bucket size.
func (c *ClientLimiter) Burst() int { return c.burst }

// Len is the number of client buckets held.
func (c *ClientLimiter) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// Reserve takes a token from addr's bucket at now. It returns the reservation (to cancel if
// a later check refuses the request) and, when no token is available, how long until one is.
func (c *ClientLimiter) Reserve(addr netip.Addr, now time.Time) (*rate.Reservation, time.Duration) {
	lim := c.bucket(clientKey(addr), now)
	return reserve(lim, now)
}

// bucket finds or makes the bucket of key, forgetting idle and surplus ones.
func (c *ClientLimiter) bucket(key netip.Addr, now time.Time) *rate.Limiter {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[key]; ok {
		b := el.Value.(*clientBucket)
		b.last = now
		c.lru.MoveToFront(el)
		return b.lim
	}
	c.evict(now)
	b := &clientBucket{key: key, lim: rate.NewLimiter(c.limit, c.burst), last: now}
	c.byKey[key] = c.lru.PushFront(b)
	return b.lim
}

// evict drops buckets idle for longer than a full refill takes, then the least recently
// used ones while there is no room for one more.
func (c *ClientLimiter) evict(now time.Time) {
	max := c.MaxClients
	if max <= 0 {
		max = DefaultMaxClients
	}
	refill := time.Duration(math.MaxInt64)
	if c.limit > 0 {
		refill = time.Duration(float64(c.burst)/float64(c.limit)*float64(time.Second)) + time.Second
	}
	for el := c.lru.Back(); el != nil; el = c.lru.Back() {
		b := el.Value.(*clientBucket)
		if c.lru.Len() < max && now.Sub(b.last) <= refill {
			return
		}
		c.lru.Remove(el)
		delete(c.byKey, b.key)
	}
}

// clientKey is the bucket key of an address: itself for IPv4, its /64 for IPv6.
func clientKey(addr netip.Addr) netip.Addr {
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		if p, err := addr.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return addr
}

// reserve takes one token from lim at now; when none is available it cancels the
// reservation and says how long until a token is.
func reserve(lim *rate.Limiter, now time.Time) (*rate.Reservation, time.Duration) {
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return nil, time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return nil, d
	}
	return r, 0
}

// Allow takes a token from the client's bucket and the integration's, at now. When either
// is empty it takes none (a refused client does not spend the integration's budget) and
// says how long until the request would be allowed.
func (i *Integration) Allow(client netip.Addr, now time.Time) (bool, time.Duration) {
	var fromClient *rate.Reservation
	if i.ClientLimiter != nil {
		r, wait := i.ClientLimiter.Reserve(client, now)
		if r == nil {
			return false, wait
		}
		fromClient = r
	}
	if i.Limiter != nil {
		if r, wait := reserve(i.Limiter, now); r == nil {
			if fromClient != nil {
				fromClient.CancelAt(now)
			}
			return false, wait
		}
	}
	return true, 0
}
