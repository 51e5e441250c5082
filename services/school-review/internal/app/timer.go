package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/lease"
	"github.com/edubureau/studentaid/pkg/outbox"
	"github.com/edubureau/studentaid/pkg/review/reviewapp"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	"github.com/edubureau/studentaid/services/school-review/internal/adapters"
)

// NoticeTimerLease names the lease under which one replica at a time runs
// the notice timer.
const NoticeTimerLease = "notice-timer"

// RunNoticeTimer passes due public notices until ctx is done or the lease l
// is lost: every PollInterval, and at once when a decision wakes it.
// Deadlines live in PostgreSQL, so notices that fell due while the service
// was down pass on the first round after a restart. One replica runs it, the
// holder of the NoticeTimerLease (lease.Runner); every pass is fenced by l,
// so a replica that lost the lease passes nothing.
func (s *Service) RunNoticeTimer(ctx context.Context, l lease.Lease) error {
	ticker := time.NewTicker(s.cfg.PollInterval)
	defer ticker.Stop()
	for {
		for {
			n, err := s.PassDueNotices(ctx, l)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				if errors.Is(err, lease.ErrNotHeld) {
					s.log.WarnContext(ctx, "notice timer: lease lost; stopping", "epoch", l.Epoch)
					return nil
				}
				s.log.WarnContext(ctx, "notice timer: passing due notices failed; will retry", "err", err)
				break
			}
			if n < NoticeBatchSize {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		case <-s.wake:
		}
	}
}

// PassDueNotices moves up to NoticeBatchSize items whose notice has ended to
// PASSED and writes a notice_passed event for each, in one transaction
// fenced by the lease l. It returns how many it passed, and
// lease.ErrNotHeld, having changed nothing, if l is no longer held.
func (s *Service) PassDueNotices(ctx context.Context, l lease.Lease) (n int, err error) {
	quiet := quietContext(ctx)
	tx, err := s.pool.Begin(quiet)
	if err != nil {
		return 0, fmt.Errorf("notice timer: begin: %w", err)
	}
	defer func() {
		if err != nil || n == 0 {
			_ = tx.Rollback(context.WithoutCancel(quiet))
		}
	}()
	now := s.now()
	due, err := adapters.LockDueNotices(quiet, tx, now, NoticeBatchSize)
	if err != nil || len(due) == 0 {
		return 0, err
	}
	// Fenced once there is work: idle polls cost one query. The share lock
	// on the lease row holds to commit, so no takeover lands in between.
	if err := l.Fence(quiet, tx); err != nil {
		return 0, fmt.Errorf("notice timer: %w", err)
	}

	ctx, span := s.tracer.Start(ctx, "school-review pass public notices",
		trace.WithNewRoot(),
		trace.WithLinks(reviewapp.Links(due, linkKind)...),
		trace.WithAttributes(attribute.Int("notices.passed", len(due))))
	defer func() {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "notice timer failed")
		}
		span.End()
	}()
	if len(due) == 1 {
		reviewapp.SetSpanKeys(ctx, &due[0].Item)
	}

	evs := make([]*eventsv1.Event, 0, len(due))
	for _, r := range due {
		if err := r.PassNotice(now); err != nil {
			return 0, fmt.Errorf("notice timer: %w", err)
		}
		actor := events.Actor(SystemActor, "service", r.SchoolCode)
		ev, err := events.New(now, actor, reviewapp.Keys(&r.Item), &eventsv1.NoticePassed{
			HardshipLevel:   string(r.HardshipLevel),
			AmountFen:       r.AmountFen,
			FundingSource:   r.FundingSource,
			SubmittedBy:     r.SubmittedBy,
			SchoolReviewer:  r.Reviewer,
			Stage:           r.Stage,
			StudentIdMasked: r.StudentIDMasked,
			StudentIdHash:   r.StudentIDHash,
		})
		if err != nil {
			return 0, err
		}
		evs = append(evs, ev)
	}
	if err := adapters.Reviews.Save(ctx, tx, due); err != nil {
		return 0, err
	}
	if err := outbox.Append(ctx, tx, evs...); err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("notice timer: commit: %w", err)
	}
	s.notify()
	return len(due), nil
}

// quietContext carries an unsampled parent, so the timer's polling queries
// (every 200ms, mostly finding nothing) leave no spans; a pass that finds
// due notices starts a real span of its own.
func quietContext(ctx context.Context) context.Context {
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x51, 0x55, 0x49, 0x45, 0x54}, // "QUIET", never exported
		SpanID:  trace.SpanID{0x51},
	})
	return trace.ContextWithSpanContext(ctx, sc)
}
