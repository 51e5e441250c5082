package gateway

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limits are the fair-use limits of the entry point.
type Limits struct {
	// Rate is the sustained requests per second allowed to one organisation.
	Rate float64
	// Burst is how many requests one organisation may send at once.
	Burst int
	// MaxBodyBytes bounds a request body.
	MaxBodyBytes int64
	// RefusalHold is how long a request refused for its rate waits before
	// its answer (never longer than the Retry-After it is given, at least a
	// second): a portal that retries
	// in a loop, ignoring Retry-After, then sends a few requests a second
	// per connection instead of thousands, and the entry point's cores stay
	// with the schools within their limits. Zero answers at once.
	RefusalHold time.Duration
	// MaxHeld bounds the refusals held at once; past it they are answered
	// at once, so a flood over many connections costs memory no further.
	MaxHeld int
}

// DefaultLimits are the limits when no environment variable sets them:
// well above what one school's portal sends in the busiest week (a school
// submits a few thousand applications a term), far below what the shared
// services can take from all schools together.
var DefaultLimits = Limits{Rate: 50, Burst: 100, MaxBodyBytes: 4 << 20, RefusalHold: 500 * time.Millisecond, MaxHeld: 1024}

// orgLimiter keeps one token bucket per organisation.
type orgLimiter struct {
	limits Limits
	now    func() time.Time
	mu     sync.Mutex
	bucket map[string]*rate.Limiter
}

func newOrgLimiter(l Limits, now func() time.Time) *orgLimiter {
	return &orgLimiter{limits: l, now: now, bucket: map[string]*rate.Limiter{}}
}

// allow takes a token from org's bucket. When the bucket is empty it
// returns false and how long until a token is back.
func (o *orgLimiter) allow(org string) (bool, time.Duration) {
	o.mu.Lock()
	b, ok := o.bucket[org]
	if !ok {
		b = rate.NewLimiter(rate.Limit(o.limits.Rate), o.limits.Burst)
		o.bucket[org] = b
	}
	o.mu.Unlock()
	now := o.now()
	r := b.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// retryAfterSeconds rounds a wait up to whole seconds, at least 1, for the
// Retry-After header.
func retryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// orgCacheTTL is how long a verified token's organisation is remembered: a
// portal sends the same token for many requests, and an Ed25519 check per
// request would make a flood expensive to refuse. The services verify every
// token themselves; the gateway only needs the org to pick a bucket.
const (
	orgCacheTTL  = time.Minute
	orgCacheSize = 10000
)

// orgCache remembers the organisation of recently verified tokens.
type orgCache struct {
	now     func() time.Time
	mu      sync.Mutex
	entries map[string]orgEntry
}

type orgEntry struct {
	org     string
	expires time.Time
}

func newOrgCache(now func() time.Time) *orgCache {
	return &orgCache{now: now, entries: map[string]orgEntry{}}
}

func (c *orgCache) get(token string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[token]
	if !ok || c.now().After(e.expires) {
		return "", false
	}
	return e.org, true
}

func (c *orgCache) put(token, org string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= orgCacheSize {
		clear(c.entries) // simpler than LRU; refilling costs one check per token
	}
	c.entries[token] = orgEntry{org: org, expires: c.now().Add(orgCacheTTL)}
}
