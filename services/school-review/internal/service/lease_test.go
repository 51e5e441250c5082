package service_test

import (
	"context"
	"testing"
	"time"

	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/review/reviewtest"
	schoolreviewv1 "github.com/edubureau/studentaid/proto/gen/aid/schoolreview/v1"
	"github.com/edubureau/studentaid/services/school-review/internal/app"
	"github.com/edubureau/studentaid/services/school-review/internal/domain"
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
