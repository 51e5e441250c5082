package app

import (
	"sync"

	"github.com/edubureau/studentaid/services/application/internal/adapters"
)

// headCache remembers the last known head (keys, state, trail end) of
// recently touched applications, so that applying an event usually takes
// one round trip instead of two: the write is conditional on the trail still
// ending where the cached head says (adapters.Store.ApplyChange), so a stale
// or too-new entry (from a rolled-back transaction or another replica) only
// costs a fall back to reading the row.
type headCache struct {
	mu  sync.Mutex
	m   map[string]adapters.Head
	max int
}

func newHeadCache(size int) *headCache {
	return &headCache{m: make(map[string]adapters.Head), max: size}
}

func (c *headCache) get(id string) (adapters.Head, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.m[id]
	return h, ok
}

func (c *headCache) put(id string, h adapters.Head) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[id]; !ok && len(c.m) >= c.max {
		// Evict an arbitrary tenth; map order is random enough for a cache
		// whose misses are only slower, never wrong.
		n := c.max / 10
		for k := range c.m {
			if n == 0 {
				break
			}
			delete(c.m, k)
			n--
		}
	}
	c.m[id] = h
}
