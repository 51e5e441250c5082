package lease_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/edubureau/studentaid/internal/devtools/testenv"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/lease"
)

// setup returns a pool on a fresh schema holding the leases table (as the
// services' NNN_leases migrations create it) and a work table the owners
// write to under their fence.
func setup(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, _ := testenv.Pool(t, "svc")
	_, err := pool.Exec(context.Background(), `CREATE SCHEMA svc;
CREATE TABLE svc.leases (
  name       text        PRIMARY KEY,
  owner      text        NOT NULL,
  epoch      bigint      NOT NULL,
  expires_at timestamptz NOT NULL
);
CREATE TABLE svc.work (owner text NOT NULL, epoch bigint NOT NULL)`)
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

// fencedWrite writes one row as l's owner under l's fence.
func fencedWrite(ctx context.Context, pool *pgxpool.Pool, l lease.Lease) error {
	return db.InTx(ctx, pool, func(tx pgx.Tx) error {
		if err := l.Fence(ctx, tx); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO work (owner, epoch) VALUES ($1, $2)`, l.Owner, l.Epoch)
		return err
	})
}

func countWork(t *testing.T, pool *pgxpool.Pool, owner string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM work WHERE owner = $1`, owner).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestOneOwnerAmongContenders(t *testing.T) {
	t.Parallel()
	pool := setup(t)
	ctx := context.Background()
	const contenders = 8
	var wg sync.WaitGroup
	var won atomic.Int32
	for i := range contenders {
		wg.Go(func() {
			_, ok, err := lease.TryAcquire(ctx, pool, "timer", string(rune('a'+i)), time.Minute)
			if err != nil {
				t.Error(err)
			}
			if ok {
				won.Add(1)
			}
		})
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Fatalf("%d contenders took the lease, want exactly 1", won.Load())
	}
	var epoch int64
	if err := pool.QueryRow(ctx, `SELECT epoch FROM leases WHERE name = 'timer'`).Scan(&epoch); err != nil {
		t.Fatal(err)
	}
	if epoch != 1 {
		t.Fatalf("epoch = %d after the first acquisition, want 1", epoch)
	}
}

func TestStaleOwnerIsFencedAfterTakeover(t *testing.T) {
	t.Parallel()
	pool := setup(t)
	ctx := context.Background()
	const ttl = 300 * time.Millisecond
	a, ok, err := lease.TryAcquire(ctx, pool, "timer", "a", ttl)
	if err != nil || !ok {
		t.Fatalf("a: ok=%v err=%v", ok, err)
	}
	if err := fencedWrite(ctx, pool, a); err != nil {
		t.Fatalf("the owner's fenced write: %v", err)
	}
	if _, ok, _ := lease.TryAcquire(ctx, pool, "timer", "b", ttl); ok {
		t.Fatal("b took a lease a holds")
	}

	time.Sleep(ttl + 100*time.Millisecond) // a pauses past its TTL
	b, ok, err := lease.TryAcquire(ctx, pool, "timer", "b", ttl)
	if err != nil || !ok {
		t.Fatalf("b after a's TTL: ok=%v err=%v", ok, err)
	}
	if b.Epoch != a.Epoch+1 {
		t.Fatalf("b's epoch = %d, want %d", b.Epoch, a.Epoch+1)
	}

	if err := fencedWrite(ctx, pool, a); !errors.Is(err, lease.ErrNotHeld) {
		t.Fatalf("the stale owner's fenced write: %v, want ErrNotHeld", err)
	}
	if err := a.Renew(ctx, pool, ttl); !errors.Is(err, lease.ErrNotHeld) {
		t.Fatalf("the stale owner's renewal: %v, want ErrNotHeld", err)
	}
	if n := countWork(t, pool, "a"); n != 1 {
		t.Fatalf("a's rows = %d, want the 1 written while it held the lease", n)
	}
	if err := fencedWrite(ctx, pool, b); err != nil {
		t.Fatalf("the new owner's fenced write: %v", err)
	}
	if n := countWork(t, pool, "b"); n != 1 {
		t.Fatalf("b's rows = %d, want 1", n)
	}
}

func TestExpiredLeaseWithoutFenceRefusesEvenWithNoTakeover(t *testing.T) {
	t.Parallel()
	pool := setup(t)
	ctx := context.Background()
	a, ok, err := lease.TryAcquire(ctx, pool, "timer", "a", 100*time.Millisecond)
	if err != nil || !ok {
		t.Fatalf("a: ok=%v err=%v", ok, err)
	}
	time.Sleep(200 * time.Millisecond)
	if err := fencedWrite(ctx, pool, a); !errors.Is(err, lease.ErrNotHeld) {
		t.Fatalf("a write under an expired lease: %v, want ErrNotHeld", err)
	}
	again, ok, err := lease.TryAcquire(ctx, pool, "timer", "a", time.Minute)
	if err != nil || !ok {
		t.Fatalf("a again: ok=%v err=%v", ok, err)
	}
	if again.Epoch != 2 {
		t.Fatalf("re-taking a lapsed lease: epoch %d, want 2", again.Epoch)
	}
}

func TestReleaseHandsOverAtOnce(t *testing.T) {
	t.Parallel()
	pool := setup(t)
	ctx := context.Background()
	a, ok, err := lease.TryAcquire(ctx, pool, "timer", "a", time.Hour)
	if err != nil || !ok {
		t.Fatalf("a: ok=%v err=%v", ok, err)
	}
	if err := a.Release(ctx, pool); err != nil {
		t.Fatal(err)
	}
	b, ok, err := lease.TryAcquire(ctx, pool, "timer", "b", time.Hour)
	if err != nil || !ok {
		t.Fatalf("b right after a released an hour-long lease: ok=%v err=%v", ok, err)
	}
	if b.Epoch != 2 {
		t.Fatalf("b's epoch = %d, want 2", b.Epoch)
	}
	if err := fencedWrite(ctx, pool, a); !errors.Is(err, lease.ErrNotHeld) {
		t.Fatalf("a's write after releasing: %v, want ErrNotHeld", err)
	}
}

// A takeover waits for the transaction the old owner fenced before it: the
// old owner's last writes commit before the new epoch exists.
func TestTakeoverWaitsForFencedTransaction(t *testing.T) {
	t.Parallel()
	pool := setup(t)
	ctx := context.Background()
	const ttl = 200 * time.Millisecond
	a, ok, err := lease.TryAcquire(ctx, pool, "timer", "a", ttl)
	if err != nil || !ok {
		t.Fatalf("a: ok=%v err=%v", ok, err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if err := a.Fence(ctx, tx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(ttl + 100*time.Millisecond) // expired, but a's transaction holds the row

	took := make(chan lease.Lease, 1)
	go func() {
		b, ok, err := lease.TryAcquire(ctx, pool, "timer", "b", time.Minute)
		if err != nil || !ok {
			t.Errorf("b: ok=%v err=%v", ok, err)
		}
		took <- b
	}()
	select {
	case <-took:
		t.Fatal("b took over while a's fenced transaction was open")
	case <-time.After(300 * time.Millisecond):
	}
	if _, err := tx.Exec(ctx, `INSERT INTO work (owner, epoch) VALUES ('a', $1)`, a.Epoch); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if b := <-took; b.Epoch != 2 {
		t.Fatalf("b's epoch = %d, want 2", b.Epoch)
	}
}

// Two runners with one lease: the work runs under one at a time; stopping
// the holder hands the work to the other.
func TestRunnerHandsOver(t *testing.T) {
	t.Parallel()
	pool := setup(t)
	ctx := context.Background()
	var running atomic.Int32
	var overlap atomic.Bool
	work := func(ctx context.Context, l lease.Lease) error {
		if running.Add(1) > 1 {
			overlap.Store(true)
		}
		defer running.Add(-1)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				if err := fencedWrite(ctx, pool, l); err != nil && ctx.Err() == nil {
					return err
				}
			}
		}
	}
	start := func(owner string) (stop func(), done chan error) {
		rctx, cancel := context.WithCancel(ctx)
		done = make(chan error, 1)
		r := lease.NewRunner(pool, "timer", lease.WithOwner(owner), lease.WithTTL(600*time.Millisecond), lease.WithRetry(50*time.Millisecond))
		go func() { done <- r.Run(rctx, work) }()
		return cancel, done
	}
	stopA, doneA := start("a")
	waitRows(t, pool, "a")
	stopB, doneB := start("b")
	time.Sleep(400 * time.Millisecond) // b contends; a keeps renewing
	if n := countWork(t, pool, "b"); n != 0 {
		t.Fatalf("b wrote %d rows while a held the lease", n)
	}
	stopA()
	if err := <-doneA; err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	waitRows(t, pool, "b")
	if d := time.Since(began); d > 400*time.Millisecond {
		t.Errorf("b took %s to take over a released lease (TTL 600ms, retry 50ms)", d)
	}
	stopB()
	if err := <-doneB; err != nil {
		t.Fatal(err)
	}
	if overlap.Load() {
		t.Fatal("the work ran under two owners at once")
	}
	var epochs int
	if err := pool.QueryRow(ctx, `SELECT count(DISTINCT epoch) FROM work`).Scan(&epochs); err != nil {
		t.Fatal(err)
	}
	if epochs != 2 {
		t.Fatalf("work written under %d epochs, want 2 (a's, then b's)", epochs)
	}
}

// A runner whose lease is taken over behind its back (its renewals
// stalled) has its work cancelled.
func TestRunnerStopsWorkWhenLeaseLost(t *testing.T) {
	t.Parallel()
	pool := setup(t)
	ctx := context.Background()
	r := lease.NewRunner(pool, "timer", lease.WithOwner("a"), lease.WithTTL(300*time.Millisecond))
	cancelled := make(chan struct{})
	got := make(chan lease.Lease, 1)
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		_ = r.Run(rctx, func(ctx context.Context, l lease.Lease) error {
			got <- l
			<-ctx.Done()
			close(cancelled)
			<-rctx.Done()
			return nil
		})
	}()
	l := <-got
	// Another owner steals the row (as a takeover after a stall would).
	if _, err := pool.Exec(ctx, `UPDATE leases SET owner = 'b', epoch = epoch + 1 WHERE name = 'timer'`); err != nil {
		t.Fatal(err)
	}
	select {
	case <-cancelled:
	case <-time.After(2 * time.Second):
		t.Fatal("the work was not cancelled after the lease was lost")
	}
	if err := fencedWrite(ctx, pool, l); !errors.Is(err, lease.ErrNotHeld) {
		t.Fatalf("write after the loss: %v, want ErrNotHeld", err)
	}
}

func waitRows(t *testing.T, pool *pgxpool.Pool, owner string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for countWork(t, pool, owner) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s never wrote", owner)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
