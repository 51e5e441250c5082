package service_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace/noop"

	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/lease"
	"github.com/edubureau/studentaid/pkg/review/reviewtest"
	"github.com/edubureau/studentaid/pkg/service/servicetest"
	schoolreviewv1 "github.com/edubureau/studentaid/proto/gen/aid/schoolreview/v1"
	"github.com/edubureau/studentaid/services/school-review/internal/app"
	"github.com/edubureau/studentaid/services/school-review/internal/domain"
	srservice "github.com/edubureau/studentaid/services/school-review/internal/service"
)

// Two replicas share one schema: the notice timer runs under one lease, and
// across a takeover (the holder's lease expiring under it, as when it
// stalls past its TTL) every notice passes exactly once.
func TestNoticeTimerTwoReplicasPassEachNoticeOnce(t *testing.T) {
	t.Parallel()
	e := prepare(t)
	cfg := app.Config{NoticePeriod: domain.FixedNotice(time.Second), LeaseTTL: time.Second}
	e.start(t, cfg)
	e.start(t, cfg)
	ctx := reviewtest.Ctx(t)
	rev := e.client(t, reviewer, auth.RoleSchoolReviewer, schoolA)
	const n = 30
	approveAll := func(ids []string) {
		t.Helper()
		ds := make([]*schoolreviewv1.Decision, len(ids))
		for i, id := range ids {
			ds[i] = approve(id, "difficult")
		}
		if _, err := rev.Decide(ctx, &schoolreviewv1.DecideRequest{Decisions: ds}); err != nil {
			t.Fatal(err)
		}
	}

	first := e.submit(t, hsGrant, n)
	approveAll(first)
	e.Outputs(t, events.TypeNoticePassed, n, first...)
	epoch := leaseEpoch(t, e)
	if epoch != 1 {
		t.Fatalf("notice-timer lease at epoch %d after both replicas started, want 1 (one owner, never lost)", epoch)
	}

	if _, err := e.Pool.Exec(ctx, `UPDATE leases SET expires_at = now() WHERE name = $1`, app.NoticeTimerLease); err != nil {
		t.Fatal(err)
	}
	second := e.submit(t, hsGrant, n)
	approveAll(second)
	e.Outputs(t, events.TypeNoticePassed, n, second...)
	if got := leaseEpoch(t, e); got <= epoch {
		t.Fatalf("notice-timer lease at epoch %d after it expired, want a takeover above %d", got, epoch)
	}

	e.WaitCount(t, `SELECT count(*) FROM outbox WHERE subject = $1 AND published_at IS NOT NULL`, 2*n, events.Subject(events.TypeNoticePassed))
	e.WaitCount(t, `SELECT count(*) FROM outbox WHERE subject = $1`, 2*n, events.Subject(events.TypeNoticePassed))
	e.WaitCount(t, `SELECT count(*) FROM review WHERE state = 'PASSED'`, 2*n)
	if got := e.StreamCount(t, events.TypeNoticePassed); got != 2*n {
		t.Fatalf("%d notice_passed events in the stream, want %d", got, 2*n)
	}
}

func leaseEpoch(t *testing.T, e *env) int64 {
	t.Helper()
	var epoch int64
	if err := e.Pool.QueryRow(context.Background(), `SELECT epoch FROM leases WHERE name = $1`, app.NoticeTimerLease).Scan(&epoch); err != nil {
		t.Fatal(err)
	}
	return epoch
}

// A replica that held the timer's lease, stalled past its TTL and woke up
// after another took over passes nothing: its pass is fenced out and rolls
// back, though the notices are due by its clock.
func TestStaleTimerPassesNothing(t *testing.T) {
	t.Parallel()
	e := prepare(t)
	servicetest.Migrate(t, e.Svc, srservice.Spec())
	ctx := reviewtest.Ctx(t)
	stale, ok, err := lease.TryAcquire(ctx, e.Pool, app.NoticeTimerLease, "stalled-replica", 200*time.Millisecond)
	if err != nil || !ok {
		t.Fatalf("take the lease first: ok=%v err=%v", ok, err)
	}
	time.Sleep(300 * time.Millisecond)
	e.start(t, longNotice) // its timer takes the lapsed lease over
	ids := e.submit(t, hsTuition, 3)
	rev := e.client(t, reviewer, auth.RoleSchoolReviewer, schoolA)
	ds := make([]*schoolreviewv1.Decision, len(ids))
	for i, id := range ids {
		ds[i] = approve(id, "")
	}
	if _, err := rev.Decide(ctx, &schoolreviewv1.DecideRequest{Decisions: ds}); err != nil {
		t.Fatal(err)
	}
	e.WaitCount(t, `SELECT count(*) FROM leases WHERE name = $1 AND epoch = $2 AND owner <> $3`, 1,
		app.NoticeTimerLease, stale.Epoch+1, stale.Owner)

	month := time.Now().AddDate(0, 1, 0)
	woke := app.New(app.Deps{Pool: e.Pool, Log: slog.New(slog.DiscardHandler), Tracer: noop.NewTracerProvider().Tracer(""),
		Now: func() time.Time { return month }, Config: longNotice})
	n, err := woke.PassDueNotices(ctx, stale)
	if !errors.Is(err, lease.ErrNotHeld) || n != 0 {
		t.Fatalf("the stale replica's pass: %d passed, err %v; want 0 and ErrNotHeld", n, err)
	}
	e.WaitCount(t, `SELECT count(*) FROM review WHERE state = 'IN_NOTICE' AND application_id = ANY($1::uuid[])`, len(ids), ids)
	e.WaitCount(t, `SELECT count(*) FROM outbox WHERE subject = $1`, 0, events.Subject(events.TypeNoticePassed))
}
