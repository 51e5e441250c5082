// Package lease gives work that must have one owner at a time (the
// public-notice timer, …) a lease stored in PostgreSQL with a fencing epoch.
//
// A lease is a row of the service's leases table:
//
//	CREATE TABLE leases (
//	  name       text        PRIMARY KEY,
//	  owner      text        NOT NULL,
//	  epoch      bigint      NOT NULL,
//	  expires_at timestamptz NOT NULL
//	);
//
// (each service that uses leases has it in a migration of its own,
// NNN_leases.up.sql). An owner takes a free or expired lease and the epoch
// goes up by one; it renews the lease well within its TTL; it releases it on
// shutdown, so the next owner need not wait for the TTL. Times are the
// database's clock, never a replica's.
//
// Unlike a session advisory lock, which is lost silently when a pool
// recycles its connection and gives no token, the lease fences: every write
// transaction of the owner calls [Lease.Fence] first, which share-locks the
// lease row if it is still this owner's, at this epoch, and unexpired, and
// fails with [ErrNotHeld] otherwise. A stale owner (paused past its TTL, cut
// off from the database) therefore changes nothing once another has taken
// over; and a takeover waits for the transactions that fenced before it to
// end, so the old owner's last writes are ordered before the new epoch.
package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/edubureau/studentaid/pkg/db"
)

// ErrNotHeld is returned when the caller does not hold the lease (any
// more): another owner took it over, it expired, or it was released.
var ErrNotHeld = errors.New("lease: not held")

// Lease is one owner's hold on a named lease at one epoch.
type Lease struct {
	Name  string
	Owner string
	// Epoch is the fencing token: it goes up by one at every change of
	// owner.
	Epoch int64
}

// Owner returns an owner ID for this process: host name, process ID and a
// random suffix, so that a restarted process on the same host is a new
// owner.
func Owner() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// micros is d in whole microseconds, PostgreSQL's resolution.
func micros(d time.Duration) int64 { return d.Microseconds() }

// TryAcquire takes the lease name for owner for ttl if it is free, expired
// or released, raising its epoch by one; if owner already holds it, it
// renews it at the same epoch. ok is false, with no error, while another
// owner holds it.
func TryAcquire(ctx context.Context, q db.Querier, name, owner string, ttl time.Duration) (l Lease, ok bool, err error) {
	if owner == "" {
		return Lease{}, false, errors.New("lease: empty owner")
	}
	var epoch int64
	err = q.QueryRow(ctx, `INSERT INTO leases AS l (name, owner, epoch, expires_at)
		VALUES ($1, $2, 1, clock_timestamp() + $3 * interval '1 microsecond')
		ON CONFLICT (name) DO UPDATE
		SET owner = EXCLUDED.owner,
		    epoch = CASE WHEN l.owner = EXCLUDED.owner AND l.expires_at > clock_timestamp() THEN l.epoch ELSE l.epoch + 1 END,
		    expires_at = EXCLUDED.expires_at
		WHERE l.owner = EXCLUDED.owner OR l.expires_at <= clock_timestamp()
		RETURNING epoch`, name, owner, micros(ttl)).Scan(&epoch)
	if errors.Is(err, pgx.ErrNoRows) {
		return Lease{}, false, nil
	}
	if err != nil {
		return Lease{}, false, fmt.Errorf("lease %s: acquire: %w", name, err)
	}
	return Lease{Name: name, Owner: owner, Epoch: epoch}, true, nil
}

// Renew extends l by ttl from now. It returns ErrNotHeld if l has expired,
// been taken over or released: a lease that lapsed is taken again with
// TryAcquire, at a new epoch, never renewed.
func (l Lease) Renew(ctx context.Context, q db.Querier, ttl time.Duration) error {
	tag, err := q.Exec(ctx, `UPDATE leases SET expires_at = clock_timestamp() + $4 * interval '1 microsecond'
		WHERE name = $1 AND owner = $2 AND epoch = $3 AND expires_at > clock_timestamp()`,
		l.Name, l.Owner, l.Epoch, micros(ttl))
	if err != nil {
		return fmt.Errorf("lease %s: renew: %w", l.Name, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotHeld
	}
	return nil
}

// Release gives l up at once: the next TryAcquire by anyone takes it (at
// epoch+1) and l's Fence fails from now on. Releasing a lease no longer
// held does nothing.
func (l Lease) Release(ctx context.Context, q db.Querier) error {
	_, err := q.Exec(ctx, `UPDATE leases SET expires_at = clock_timestamp()
		WHERE name = $1 AND owner = $2 AND epoch = $3 AND expires_at > clock_timestamp()`,
		l.Name, l.Owner, l.Epoch)
	if err != nil {
		return fmt.Errorf("lease %s: release: %w", l.Name, err)
	}
	return nil
}

// Fence checks, inside the owner's write transaction tx, that l is still
// held at its epoch and unexpired, and share-locks the lease row to the end
// of tx, so no takeover commits between the check and tx's commit. It
// returns ErrNotHeld otherwise: the caller rolls tx back and stops the work.
// Call it before the transaction's writes.
func (l Lease) Fence(ctx context.Context, tx db.Querier) error {
	return Fence(ctx, tx, l.Name, l.Owner, l.Epoch)
}

// Fence is [Lease.Fence] for a lease given by its parts.
func Fence(ctx context.Context, tx db.Querier, name, owner string, epoch int64) error {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM leases
		WHERE name = $1 AND owner = $2 AND epoch = $3 AND expires_at > clock_timestamp()
		FOR SHARE`, name, owner, epoch).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotHeld
	}
	if err != nil {
		return fmt.Errorf("lease %s: fence: %w", name, err)
	}
	return nil
}

// Runner runs a piece of work only while this process holds its lease.
type Runner struct {
	pool    *pgxpool.Pool
	name    string
	owner   string
	ttl     time.Duration
	retry   time.Duration
	log     *slog.Logger
	metrics *metrics
}

// Option configures a Runner.
type Option func(*Runner)

// WithOwner sets the owner ID; the default is [Owner].
func WithOwner(owner string) Option { return func(r *Runner) { r.owner = owner } }

// WithTTL sets how long the lease lasts unrenewed; it is renewed every third
// of it. The default is DefaultTTL.
func WithTTL(d time.Duration) Option { return func(r *Runner) { r.ttl = d } }

// WithRetry sets how often a process that does not hold the lease tries to
// take it. The default is a third of the TTL.
func WithRetry(d time.Duration) Option { return func(r *Runner) { r.retry = d } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(r *Runner) { r.log = l } }

// WithRegisterer registers the lease metrics (aid_lease_held,
// aid_lease_epoch, aid_lease_acquired_total, aid_lease_lost_total).
func WithRegisterer(reg prometheus.Registerer, service string) Option {
	return func(r *Runner) { r.metrics = newMetrics(reg, service, r.name) }
}

// DefaultTTL is how long a lease lasts unrenewed unless WithTTL says
// otherwise: a crashed owner's work stops for at most this long.
const DefaultTTL = 10 * time.Second

// NewRunner returns a Runner for the lease name in the leases table
// reachable through pool's search path.
func NewRunner(pool *pgxpool.Pool, name string, opts ...Option) *Runner {
	r := &Runner{pool: pool, name: name, ttl: DefaultTTL, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(r)
	}
	if r.owner == "" {
		r.owner = Owner()
	}
	if r.retry <= 0 {
		r.retry = r.ttl / 3
	}
	if r.metrics == nil {
		r.metrics = newMetrics(nil, "", name)
	}
	return r
}

// Run takes the lease whenever it is free and runs work while it holds it,
// until ctx is done. work's context is cancelled when the lease is lost (a
// renewal found it taken over, or renewals failed for a whole TTL); work
// must return then, and fence its writes with the Lease it is given. When
// ctx is done Run releases the lease, so another replica takes over at once,
// and returns nil. An error from work ends Run with that error.
func (r *Runner) Run(ctx context.Context, work func(ctx context.Context, l Lease) error) error {
	for {
		l, ok, acqErr := TryAcquire(ctx, r.pool, r.name, r.owner, r.ttl)
		switch {
		case acqErr != nil:
			if ctx.Err() == nil {
				r.log.WarnContext(ctx, "lease: acquiring failed; will retry", "lease", r.name, "err", acqErr)
			}
		case ok:
			// hold releases the lease if ctx is done, even right away.
			if err := r.hold(ctx, l, work); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(r.retry):
		}
	}
}

// hold runs work under l, renewing it, until work returns, l is lost or ctx
// is done.
func (r *Runner) hold(ctx context.Context, l Lease, work func(ctx context.Context, l Lease) error) error {
	r.log.InfoContext(ctx, "lease acquired", "lease", l.Name, "owner", l.Owner, "epoch", l.Epoch)
	r.metrics.acquired(l.Epoch)
	wctx, cancel := context.WithCancel(ctx)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		defer cancel()
		r.renew(wctx, l)
	}()
	err := work(wctx, l)
	cancel()
	<-renewed
	r.metrics.released()
	// Hand over at once (on shutdown, or when work ended on its own); a
	// lease already lost is left alone.
	rctx, done := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer done()
	if rerr := l.Release(rctx, r.pool); rerr != nil {
		r.log.WarnContext(rctx, "lease: release failed; the next owner waits for the TTL", "lease", l.Name, "err", rerr)
	}
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("lease %s: %w", l.Name, err)
	}
	return nil
}

// renew renews l every third of the TTL until ctx is done, and returns when
// l is lost: taken over, or not renewed for a whole TTL.
func (r *Runner) renew(ctx context.Context, l Lease) {
	every := r.ttl / 3
	deadline := time.Now().Add(r.ttl)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		// A renewal that hangs (a lock, a dead connection) must not outlive
		// the lease it renews.
		rctx, done := context.WithTimeout(ctx, every)
		err := l.Renew(rctx, r.pool, r.ttl)
		done()
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, ErrNotHeld):
			r.log.WarnContext(ctx, "lease lost: taken over or expired", "lease", l.Name, "epoch", l.Epoch)
			r.metrics.lost()
			return
		case err != nil:
			if time.Now().After(deadline) {
				r.log.WarnContext(ctx, "lease lost: not renewed within its TTL", "lease", l.Name, "epoch", l.Epoch, "err", err)
				r.metrics.lost()
				return
			}
			r.log.WarnContext(ctx, "lease: renewal failed; will retry", "lease", l.Name, "err", err)
		default:
			deadline = start.Add(r.ttl)
		}
	}
}

type metrics struct {
	held      prometheus.Gauge
	epoch     prometheus.Gauge
	acquiredN prometheus.Counter
	lostN     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, service, name string) *metrics {
	labels := prometheus.Labels{"service": service, "lease": name}
	m := &metrics{
		held: prometheus.NewGauge(prometheus.GaugeOpts{Name: "aid_lease_held",
			Help: "1 while this replica holds the lease, else 0.", ConstLabels: labels}),
		epoch: prometheus.NewGauge(prometheus.GaugeOpts{Name: "aid_lease_epoch",
			Help: "Fencing epoch of the lease when this replica last took it.", ConstLabels: labels}),
		acquiredN: prometheus.NewCounter(prometheus.CounterOpts{Name: "aid_lease_acquired_total",
			Help: "Times this replica took the lease.", ConstLabels: labels}),
		lostN: prometheus.NewCounter(prometheus.CounterOpts{Name: "aid_lease_lost_total",
			Help: "Times this replica lost the lease while working (taken over or not renewed in time).", ConstLabels: labels}),
	}
	if reg != nil {
		reg.MustRegister(m.held, m.epoch, m.acquiredN, m.lostN)
	}
	return m
}

func (m *metrics) acquired(epoch int64) {
	m.held.Set(1)
	m.epoch.Set(float64(epoch))
	m.acquiredN.Inc()
}

func (m *metrics) released() { m.held.Set(0) }

func (m *metrics) lost() { m.lostN.Inc() }
