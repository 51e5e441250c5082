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

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/review"
	"github.com/edubureau/studentaid/pkg/review/reviewapp"
	"github.com/edubureau/studentaid/pkg/telemetry"
	commonv1 "github.com/edubureau/studentaid/proto/gen/aid/common/v1"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	"github.com/edubureau/studentaid/services/bureau-review/internal/adapters"
	"github.com/edubureau/studentaid/services/bureau-review/internal/domain"
)

// ServiceName is the service's name in spans and its schema.
const ServiceName = "bureau-review"

// linkKind names the span links from a decision to the items' arrivals at
// the bureau (which continue the school's and the submission's trace).
const linkKind = "school_review"

// Deps are what the use cases need.
type Deps struct {
	Pool *pgxpool.Pool
	// Notify wakes the outbox relay after a commit that wrote events.
	Notify func()
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service runs the bureau review's use cases.
type Service struct {
	pool   *pgxpool.Pool
	notify func()
	clock  func() time.Time
	decide reviewapp.Bulk[domain.State, *domain.Review, domain.Decision]
}

// New returns a Service.
func New(d Deps) *Service {
	s := &Service{pool: d.Pool, notify: d.Notify, clock: d.Now}
	if s.notify == nil {
		s.notify = func() {}
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	s.decide = reviewapp.Bulk[domain.State, *domain.Review, domain.Decision]{
		Pool: s.pool, Store: adapters.Reviews, Notify: s.notify, Now: s.now,
		NotFound: notFound,
		Decide: func(r *domain.Review, d domain.Decision, reviewer string, now time.Time) error {
			return r.Decide(d, reviewer, now)
		},
		Refusal:  decisionError,
		Event:    decisionEvent,
		LinkKind: linkKind,
	}
	return s
}

func (s *Service) now() time.Time { return s.clock().UTC() }

func notFound(applicationID string) error {
	return apperr.New(apperr.NotFound, "application %s is not under the bureau's review", applicationID)
}

// Errors of the consumed events. Compare with errors.Is.
var (
	// ErrNotYet means an event came before one it follows: it applies later.
	ErrNotYet = errors.New("event arrived before its prerequisite")
	// ErrImpossible means an event can never be applied.
	ErrImpossible = errors.New("event can never be applied")
)

// impossible marks err as ErrImpossible, keeping its message.
type impossible struct{ error }

func (e impossible) Unwrap() []error { return []error{e.error, ErrImpossible} }

// NoticePassed is a schoolreview.notice_passed event, as the consumer
// decoded and checked it.
type NoticePassed struct {
	review.Arrival
	HardshipLevel  string
	SchoolReviewer string
}

// ApplyNoticePassed makes a pending item of an application whose school
// notice passed, inside the consumer's transaction. A repeated event changes
// nothing.
func (s *Service) ApplyNoticePassed(ctx context.Context, tx db.Tx, ev NoticePassed) error {
	tp, ts := telemetry.TraceContextOf(ctx)
	r := domain.Review{
		Item:           review.Arrived(ev.Arrival, domain.StatePending, tp, ts),
		HardshipLevel:  ev.HardshipLevel,
		SchoolReviewer: ev.SchoolReviewer,
	}
	_, err := adapters.Reviews.Insert(ctx, tx, &r, s.now())
	return err
}

// ItemReturned is a finance.item_returned event, as the consumer decoded it.
type ItemReturned struct {
	ApplicationID string
	Reason        string
}

// ApplyItemReturned sends an approved item back to pending, inside the
// consumer's transaction. The item must be approved: an earlier event (the
// notice, or the approval's commit) may still be on its way, so anything
// else waits (ErrNotYet), except a rejected item, which can never be
// approved again (ErrImpossible).
func (s *Service) ApplyItemReturned(ctx context.Context, tx db.Tx, ev ItemReturned) error {
	locked, err := adapters.Reviews.LockForUpdate(ctx, tx, []string{ev.ApplicationID})
	if err != nil {
		return err
	}
	r, ok := locked[ev.ApplicationID]
	if !ok {
		return fmt.Errorf("finance returned %s before the bureau has it: %w", ev.ApplicationID, ErrNotYet)
	}
	if err := r.ReturnFromFinance(ev.Reason, s.now()); err != nil {
		if r.State == domain.StateRejected {
			return impossible{fmt.Errorf("finance returned %s, which the bureau rejected: %w", r.ApplicationID, err)}
		}
		return fmt.Errorf("%w: %w", ErrNotYet, err)
	}
	return adapters.Reviews.Save(ctx, tx, []*domain.Review{r})
}

// Filter selects items for a list. Empty fields do not filter.
type Filter = review.Filter[domain.State]

// Get returns one item, or NotFound.
func (s *Service) Get(ctx context.Context, applicationID string) (*domain.Review, error) {
	return reviewapp.Get(ctx, s.pool, adapters.Reviews, applicationID, nil, notFound)
}

// List returns up to f.Limit items matching f and whether there are more.
func (s *Service) List(ctx context.Context, f Filter) ([]*domain.Review, bool, error) {
	return reviewapp.List(ctx, s.pool, adapters.Reviews, f)
}

// Decide applies the caller's decisions, all or nothing: every item must
// exist (NotFound naming the first that does not) and be pending
// (FailedPrecondition), the caller must not have submitted or school-reviewed
// it (PermissionDenied), and rejections need a reason (InvalidArgument).
// Results are in request order.
func (s *Service) Decide(ctx context.Context, id auth.Identity, ds []domain.Decision) ([]*domain.Review, error) {
	return s.decide.Run(ctx, id, ds)
}

func decisionEvent(now time.Time, actor *commonv1.Actor, r *domain.Review) (*eventsv1.Event, error) {
	if r.State == domain.StateApproved {
		return events.New(now, actor, reviewapp.Keys(&r.Item), &eventsv1.BureauApproved{
			AmountFen:      r.AmountFen,
			FundingSource:  r.FundingSource,
			SubmittedBy:    r.SubmittedBy,
			SchoolReviewer: r.SchoolReviewer,
			BureauReviewer: r.Reviewer,
			Reason:         r.Reason,
			FlagsShown:     r.FlagsShown,
		})
	}
	return events.New(now, actor, reviewapp.Keys(&r.Item), &eventsv1.BureauRejected{Reason: r.Reason, FlagsShown: r.FlagsShown})
}

// decisionError turns a domain refusal of the i-th decision into the error
// the reviewer sees: a school reviewer deciding here, the rest as every
// review does.
func decisionError(i int, r *domain.Review, err error) error {
	if errors.Is(err, domain.ErrSchoolReviewerCannotBureauReview) {
		return apperr.Denied(apperr.ReasonSchoolReviewerCannotBureauReview, "you reviewed application %s at the school; another bureau reviewer must decide it", r.ApplicationID)
	}
	return reviewapp.Refusal(i, &r.Item, "bureau reviewer", err)
}
