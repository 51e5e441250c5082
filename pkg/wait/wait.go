// Package wait pauses a goroutine for a while without outliving its
// context: the pause between polls, retries and rounds of the services, the
// load generator and the bank simulator.
package wait

import (
	"context"
	"time"
)

// For waits d, or until ctx ends, whichever comes first. It reports whether
// it waited all of d; for d ≤ 0 it returns at once, true while ctx lives.
func For(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
