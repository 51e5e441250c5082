package app

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/outbox"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	"github.com/edubureau/studentaid/services/school-review/internal/adapters"
)

// RunNoticeTimer passes due public notices until ctx is done: every
// PollInterval, and at once when a decision wakes it. Deadlines live in
// PostgreSQL, so notices that fell due while the service was down pass on
// the first round after a restart; several instances share the work
// (FOR UPDATE SKIP LOCKED).
func (s *Service) RunNoticeTimer(ctx context.Context) error {
	ticker := time.NewTicker(s.cfg.PollInterval)
	defer ticker.Stop()
	for {
		for {
			n, err := s.PassDueNotices(ctx)
			if err != nil {
				if ctx.Err() != nil {
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
// PASSED and writes a notice_passed event for each, in one transaction. It
// returns how many it passed.
func (s *Service) PassDueNotices(ctx context.Context) (n int, err error) {
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

	ctx, span := s.tracer.Start(ctx, "school-review pass public notices",
		trace.WithNewRoot(),
		trace.WithLinks(submissionLinks(due)...),
		trace.WithAttributes(attribute.Int("notices.passed", len(due))))
	defer func() {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "notice timer failed")
		}
		span.End()
	}()
	if len(due) == 1 {
		setSpanKeys(ctx, due[0])
	}

	evs := make([]*eventsv1.Event, 0, len(due))
	for _, r := range due {
		if err := r.PassNotice(now); err != nil {
			return 0, fmt.Errorf("notice timer: %w", err)
		}
		actor := events.Actor(SystemActor, "service", r.SchoolCode)
		ev, err := events.New(now, actor, keys(r), &eventsv1.NoticePassed{
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
	if err := adapters.Save(ctx, tx, due); err != nil {
		return 0, err
	}
	if err := outbox.Append(ctx, tx, evs...); err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("notice timer: commit: %w", err)
	}
	s.relay.Notify()
	return len(due), nil
}
