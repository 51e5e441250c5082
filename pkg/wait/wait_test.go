package wait_test

import (
	"context"
	"testing"
	"time"

	"github.com/edubureau/studentaid/pkg/wait"
)

func TestForWaitsTheWholeDuration(t *testing.T) {
	start := time.Now()
	if !wait.For(t.Context(), 20*time.Millisecond) {
		t.Fatal("For reported an ended context for a live one")
	}
	if got := time.Since(start); got < 20*time.Millisecond {
		t.Fatalf("For returned after %v, before the 20ms it was asked to wait", got)
	}
}

func TestForEndsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	start := time.Now()
	if wait.For(ctx, time.Hour) {
		t.Fatal("For reported a full hour's wait for a context that ended after 10ms")
	}
	if got := time.Since(start); got > 10*time.Second {
		t.Fatalf("For returned %v after its context ended", got)
	}
}

func TestForWithoutDuration(t *testing.T) {
	if !wait.For(t.Context(), 0) || !wait.For(t.Context(), -time.Second) {
		t.Fatal("For with no time to wait reported an ended context for a live one")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if wait.For(ctx, 0) {
		t.Fatal("For with no time to wait reported a live context for an ended one")
	}
	if wait.For(ctx, time.Hour) {
		t.Fatal("For reported a full wait for a context ended before it began")
	}
}
