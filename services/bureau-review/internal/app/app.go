// Package app is the bureau review's use cases: taking in applications whose
// school notice passed, taking back items finance returned, listing and
// reading items, and bulk decisions. Each state change and its events commit
// in one transaction.
package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/natsx"
	"github.com/edubureau/studentaid/pkg/outbox"
	"github.com/edubureau/studentaid/pkg/page"
	"github.com/edubureau/studentaid/pkg/telemetry"
	commonv1 "github.com/edubureau/studentaid/proto/gen/aid/common/v1"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	"github.com/edubureau/studentaid/services/bureau-review/internal/adapters"
	"github.com/edubureau/studentaid/services/bureau-review/internal/domain"
)

// ServiceName is the service's name in spans and its schema.
const ServiceName = "bureau-review"

// Notifier is woken after a commit that wrote outbox events.
type Notifier interface{ Notify() }

// Service runs the bureau review's use cases.
type Service struct {
	pool  *pgxpool.Pool
	relay Notifier
	now   func() time.Time
}

// New returns a Service; relay is notified after every commit that wrote
// events. A nil now means time.Now.
func New(pool *pgxpool.Pool, relay Notifier, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{pool: pool, relay: relay, now: now}
}

func keys(r *domain.Review) events.Keys {
	return events.Keys{ApplicationID: r.ApplicationID, SchoolCode: r.SchoolCode, ProgramCode: r.ProgramCode, Term: r.Term}
}

func notFound(applicationID string) error {
	return apperr.New(apperr.NotFound, "application %s is not under the bureau's review", applicationID)
}

// HandleEvent applies a consumed event inside the consumer's transaction.
func (s *Service) HandleEvent(ctx context.Context, tx pgx.Tx, ev *eventsv1.Event) error {
	if _, err := uuid.Parse(ev.GetApplicationId()); err != nil {
		return natsx.Permanent(fmt.Errorf("%s %s: bad application id", ev.GetType(), ev.GetEventId()))
	}
	switch {
	case ev.GetNoticePassed() != nil:
		return s.applyNoticePassed(ctx, tx, ev)
	case ev.GetItemReturnedToBureau() != nil:
		return s.applyItemReturned(ctx, tx, ev)
	}
	return nil // not an event this service consumes
}

// applyNoticePassed makes a pending item of an application whose school
// notice passed. A repeated event changes nothing.
func (s *Service) applyNoticePassed(ctx context.Context, tx pgx.Tx, ev *eventsv1.Event) error {
	body := ev.GetNoticePassed()
	if ev.GetSchoolCode() == "" || body.GetSubmittedBy() == "" || body.GetSchoolReviewer() == "" || body.GetAmountFen() < 0 {
		return natsx.Permanent(fmt.Errorf("notice_passed %s: missing school, submitter or school reviewer, or negative amount", ev.GetEventId()))
	}
	tp, ts := telemetry.TraceContextOf(ctx)
	r := domain.Review{
		ApplicationID:   ev.GetApplicationId(),
		SchoolCode:      ev.GetSchoolCode(),
		Term:            ev.GetTerm(),
		ProgramCode:     ev.GetProgramCode(),
		Stage:           body.GetStage(),
		StudentIDMasked: body.GetStudentIdMasked(),
		StudentIDHash:   body.GetStudentIdHash(),
		HardshipLevel:   body.GetHardshipLevel(),
		AmountFen:       body.GetAmountFen(),
		FundingSource:   body.GetFundingSource(),
		SubmittedBy:     body.GetSubmittedBy(),
		SchoolReviewer:  body.GetSchoolReviewer(),
		State:           domain.StatePending,
		TraceParent:     tp,
		TraceState:      ts,
	}
	_, err := adapters.Insert(ctx, tx, r, s.now().UTC())
	return err
}

// applyItemReturned sends an approved item back to pending. The item must be
// approved: an earlier event (the notice, or the approval's commit) may still
// be on its way, so anything else waits (natsx.ErrNotYet), except a rejected
// item, which can never be approved again.
func (s *Service) applyItemReturned(ctx context.Context, tx pgx.Tx, ev *eventsv1.Event) error {
	locked, err := adapters.LockForUpdate(ctx, tx, []string{ev.GetApplicationId()})
	if err != nil {
		return err
	}
	r, ok := locked[ev.GetApplicationId()]
	if !ok {
		return fmt.Errorf("finance returned %s before the bureau has it: %w", ev.GetApplicationId(), natsx.ErrNotYet)
	}
	if err := r.ReturnFromFinance(ev.GetItemReturnedToBureau().GetReason(), s.now().UTC()); err != nil {
		if r.State == domain.StateRejected {
			return natsx.Permanent(fmt.Errorf("finance returned %s, which the bureau rejected: %w", r.ApplicationID, err))
		}
		return fmt.Errorf("%w: %w", natsx.ErrNotYet, err)
	}
	return adapters.Save(ctx, tx, []*domain.Review{r})
}

// Get returns one item, or NotFound.
func (s *Service) Get(ctx context.Context, applicationID string) (*domain.Review, error) {
	r, err := adapters.Get(ctx, s.pool, applicationID)
	if errors.Is(err, adapters.ErrNotFound) {
		return nil, notFound(applicationID)
	}
	if err != nil {
		return nil, err
	}
	setSpanKeys(ctx, r)
	return r, nil
}

// List returns up to f.Limit items matching f and whether there are more.
func (s *Service) List(ctx context.Context, f adapters.Filter) ([]*domain.Review, bool, error) {
	if f.SchoolCode != "" {
		trace.SpanFromContext(ctx).SetAttributes(attribute.String("school.code", f.SchoolCode))
	}
	limit := f.Limit
	f.Limit = limit + 1
	list, err := adapters.List(ctx, s.pool, f)
	if err != nil {
		return nil, false, err
	}
	list, more := page.Trim(list, limit)
	return list, more, nil
}

// Decide applies the caller's decisions, all or nothing: every item must
// exist (NotFound naming the first that does not) and be pending
// (FailedPrecondition), the caller must not have submitted or school-reviewed
// it (PermissionDenied), and rejections need a reason (InvalidArgument).
// Results are in request order.
func (s *Service) Decide(ctx context.Context, id auth.Identity, ds []domain.Decision) ([]*domain.Review, error) {
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.ApplicationID
	}
	actor := events.Actor(id.UserID, string(id.Role), id.Org)
	var out []*domain.Review
	err := db.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		now := s.now().UTC()
		out = make([]*domain.Review, 0, len(ds))
		locked, err := adapters.LockForUpdate(ctx, tx, ids)
		if err != nil {
			return err
		}
		evs := make([]*eventsv1.Event, 0, len(ds))
		for i, d := range ds {
			r, ok := locked[d.ApplicationID]
			if !ok {
				return notFound(d.ApplicationID)
			}
			if err := r.Decide(d, id.UserID, now); err != nil {
				return decisionError(i, r, err)
			}
			ev, err := decisionEvent(now, actor, r)
			if err != nil {
				return err
			}
			evs = append(evs, ev)
			out = append(out, r)
		}
		if err := adapters.Save(ctx, tx, out); err != nil {
			return err
		}
		return outbox.Append(ctx, tx, evs...)
	})
	if err != nil {
		return nil, err
	}
	s.relay.Notify()
	trace.SpanFromContext(ctx).SetAttributes(attribute.Int("decisions", len(out)))
	if len(out) == 1 {
		setSpanKeys(ctx, out[0])
	}
	linkArrivals(ctx, out)
	return out, nil
}

func decisionEvent(now time.Time, actor *commonv1.Actor, r *domain.Review) (*eventsv1.Event, error) {
	if r.State == domain.StateApproved {
		return events.New(now, actor, keys(r), &eventsv1.BureauApproved{
			AmountFen:      r.AmountFen,
			FundingSource:  r.FundingSource,
			SubmittedBy:    r.SubmittedBy,
			SchoolReviewer: r.SchoolReviewer,
			BureauReviewer: r.Reviewer,
			Reason:         r.Reason,
		})
	}
	return events.New(now, actor, keys(r), &eventsv1.BureauRejected{Reason: r.Reason})
}

// decisionError turns a domain refusal of the i-th decision into the error
// the reviewer sees.
func decisionError(i int, r *domain.Review, err error) error {
	switch {
	case errors.Is(err, domain.ErrSchoolReviewerCannotBureauReview):
		return apperr.Denied("school-reviewer-cannot-bureau-review", "you reviewed application %s at the school; another bureau reviewer must decide it", r.ApplicationID)
	case errors.Is(err, domain.ErrSubmitterCannotReview):
		return apperr.Denied("submitter-cannot-review", "you submitted application %s; another bureau reviewer must decide it", r.ApplicationID)
	case errors.Is(err, domain.ErrIllegalTransition):
		return apperr.New(apperr.FailedPrecondition, "application %s is %s, not PENDING; nothing was decided", r.ApplicationID, r.State)
	case errors.Is(err, domain.ErrReasonRequired), errors.Is(err, domain.ErrReasonInvalid):
		var v apperr.Violations
		v.Add(fmt.Sprintf("decisions[%d].reason", i), "application %s: %v", r.ApplicationID, err)
		return v.Err()
	}
	return fmt.Errorf("decide %s: %w", r.ApplicationID, err)
}

func setSpanKeys(ctx context.Context, r *domain.Review) {
	trace.SpanFromContext(ctx).SetAttributes(
		attribute.String("application.id", r.ApplicationID),
		attribute.String("school.code", r.SchoolCode),
		attribute.String("program.code", r.ProgramCode),
		attribute.String("term", r.Term),
	)
}
