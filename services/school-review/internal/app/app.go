// Package app is the school review's use cases: taking in submitted
// applications, listing and reading review items within the caller's scope,
// bulk decisions, objections during the public notice, and the notice timer.
// Each state change and its events commit in one transaction.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/calendar"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/outbox"
	"github.com/edubureau/studentaid/pkg/review"
	"github.com/edubureau/studentaid/pkg/review/reviewapp"
	"github.com/edubureau/studentaid/pkg/telemetry"
	commonv1 "github.com/edubureau/studentaid/proto/gen/aid/common/v1"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	"github.com/edubureau/studentaid/services/school-review/internal/adapters"
	"github.com/edubureau/studentaid/services/school-review/internal/domain"
)

// ServiceName is the service's name in events, spans and its schema.
const ServiceName = "school-review"

// SystemActor is the user ID of the service's own steps (the notice timer).
const SystemActor = "system:" + ServiceName

// Defaults of Config.
const (
	DefaultPollInterval = 200 * time.Millisecond
	// NoticeBatchSize is how many due notices one timer transaction passes.
	NoticeBatchSize = 1000
)

// Config is the service's own configuration.
type Config struct {
	// NoticePeriod is how long the public notice runs; zero means
	// domain.DefaultNoticePeriod.
	NoticePeriod domain.NoticePeriod
	// PollInterval is how often the notice timer looks for due notices;
	// zero means DefaultPollInterval.
	PollInterval time.Duration
	// LeaseTTL is how long the notice timer's lease lasts unrenewed: a
	// crashed holder's timer stops for at most this long before another
	// replica takes over. Zero means lease.DefaultTTL.
	LeaseTTL time.Duration
	// CalendarRefresh is how often the working calendar is reloaded from
	// the database; zero means DefaultCalendarRefresh.
	CalendarRefresh time.Duration
}

// Deps are what the use cases need.
type Deps struct {
	Pool *pgxpool.Pool
	Log  *slog.Logger
	// Notify wakes the outbox relay after a commit that wrote events.
	Notify func()
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Tracer trace.Tracer
	Config Config
	// Registry takes the service's metrics; nil counts without registering.
	Registry prometheus.Registerer
}

// Service runs the school review's use cases.
type Service struct {
	pool   *pgxpool.Pool
	log    *slog.Logger
	notify func()
	clock  func() time.Time
	tracer trace.Tracer
	cfg    Config
	wake   chan struct{}
	decide reviewapp.Bulk[domain.State, *domain.Review, domain.Decision]
	// cal is the working calendar the notice counts on (RefreshCalendar).
	cal        atomic.Pointer[calendar.Calendar]
	calMetrics *calendarMetrics
	missing    missingYears
}

// linkKind names the span links from a step on items to their submissions.
const linkKind = "submission"

// New returns a Service.
func New(d Deps) *Service {
	s := &Service{pool: d.Pool, log: d.Log, notify: d.Notify, clock: d.Now, tracer: d.Tracer, cfg: d.Config, wake: make(chan struct{}, 1),
		calMetrics: newCalendarMetrics(d.Registry)}
	if s.notify == nil {
		s.notify = func() {}
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.cfg.PollInterval <= 0 {
		s.cfg.PollInterval = DefaultPollInterval
	}
	if s.cfg.CalendarRefresh <= 0 {
		s.cfg.CalendarRefresh = DefaultCalendarRefresh
	}
	if s.cfg.NoticePeriod == (domain.NoticePeriod{}) {
		s.cfg.NoticePeriod = domain.DefaultNoticePeriod
	}
	s.decide = reviewapp.Bulk[domain.State, *domain.Review, domain.Decision]{
		Pool: s.pool, Store: adapters.Reviews, Notify: s.notify, Now: s.now,
		SchoolScoped: true,
		NotFound:     notFound,
		Decide: func(r *domain.Review, d domain.Decision, reviewer string, now time.Time) error {
			return r.Decide(d, reviewer, now, s.noticeEndsAt)
		},
		Refusal:  decisionError,
		Event:    decisionEvent,
		LinkKind: linkKind,
	}
	return s
}

func (s *Service) now() time.Time { return s.clock().UTC() }

// wakeTimer asks the notice timer to look for due notices now.
func (s *Service) wakeTimer() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// visible reports whether the caller may see r: school-bound roles see their
// own school only.
func visible(id auth.Identity, r *domain.Review) bool {
	return !id.Role.SchoolBound() || r.SchoolCode == id.Org
}

func notFound(applicationID string) error {
	return apperr.New(apperr.NotFound, "application %s is not under review at your school", applicationID)
}

// Submitted is an application.submitted event, as the consumer decoded and
// checked it; AmountFen is the submission's standard amount. PolicyVersion,
// RegisterVersion and Tiers are what it was computed under (zero for
// events from before amounts were pinned).
type Submitted struct {
	review.Arrival
	StudentNameMasked string
	Tiered            bool
	PolicyVersion     int64
	RegisterVersion   int64
	Tiers             domain.Tiers
}

// ApplySubmitted turns a submitted application into a pending review item,
// inside the consumer's transaction. A repeated submission of the same
// application changes nothing.
func (s *Service) ApplySubmitted(ctx context.Context, tx db.Tx, ev Submitted) error {
	tp, ts := telemetry.TraceContextOf(ctx)
	r := domain.Submitted(domain.Review{
		Item:              review.Arrived(ev.Arrival, domain.StatePending, tp, ts),
		StudentNameMasked: ev.StudentNameMasked,
		Tiered:            ev.Tiered,
		BaseAmountFen:     ev.AmountFen,
		PolicyVersion:     ev.PolicyVersion,
		RegisterVersion:   ev.RegisterVersion,
		Tiers:             ev.Tiers,
	})
	_, err := adapters.Reviews.Insert(ctx, tx, &r, s.now())
	return err
}

// Filter selects items for a list. Empty fields do not filter.
type Filter = review.Filter[domain.State]

// Get returns one item. NotFound when it does not exist or belongs to
// another school and the caller is bound to a school.
func (s *Service) Get(ctx context.Context, id auth.Identity, applicationID string) (*domain.Review, error) {
	return reviewapp.Get(ctx, s.pool, adapters.Reviews, applicationID, func(r *domain.Review) bool { return visible(id, r) }, notFound)
}

// List returns up to f.Limit items and whether there are more. Callers bound
// to a school see their own school only; asking for another school's items
// returns nothing.
func (s *Service) List(ctx context.Context, id auth.Identity, f Filter) ([]*domain.Review, bool, error) {
	if id.Role.SchoolBound() {
		if f.SchoolCode != "" && f.SchoolCode != id.Org {
			return nil, false, nil
		}
		f.SchoolCode = id.Org
	}
	return reviewapp.List(ctx, s.pool, adapters.Reviews, f)
}

// Decide applies the caller's decisions, all or nothing: every item must be
// pending at the caller's school (NotFound / FailedPrecondition naming the
// first that is not), not submitted by the caller (PermissionDenied), with a
// level for tiered approvals and a reason for rejections (InvalidArgument).
// Approvals start the public notice, and wake the notice timer. Results are
// in request order.
func (s *Service) Decide(ctx context.Context, id auth.Identity, ds []domain.Decision) ([]*domain.Review, error) {
	out, err := s.decide.Run(ctx, id, ds)
	if err != nil {
		return nil, err
	}
	if slices.ContainsFunc(out, func(r *domain.Review) bool { return r.State == domain.StateInNotice }) {
		s.wakeTimer()
	}
	return out, nil
}

func decisionEvent(now time.Time, actor *commonv1.Actor, r *domain.Review) (*eventsv1.Event, error) {
	if r.State == domain.StateInNotice {
		return events.New(now, actor, reviewapp.Keys(&r.Item), &eventsv1.SchoolReviewApproved{
			HardshipLevel: string(r.HardshipLevel),
			AmountFen:     r.AmountFen,
			NoticeEndsAt:  timestamppb.New(r.NoticeEndsAt),
			Reason:        r.Reason,
		})
	}
	return events.New(now, actor, reviewapp.Keys(&r.Item), &eventsv1.SchoolReviewRejected{Reason: r.Reason})
}

// decisionError turns a domain refusal of the i-th decision into the error
// the reviewer sees: a bad level here, the rest as every review does.
func decisionError(i int, r *domain.Review, err error) error {
	if errors.Is(err, domain.ErrLevelRequired) || errors.Is(err, domain.ErrInvalidLevel) {
		return reviewapp.Invalid(i, "hardship_level", &r.Item, err)
	}
	return reviewapp.Refusal(i, &r.Item, "reviewer", err)
}

// RaiseObjection records an objection to an item in notice: it goes back to
// pending. NotFound outside the caller's school; FailedPrecondition when the
// notice is not running (or has already ended).
func (s *Service) RaiseObjection(ctx context.Context, id auth.Identity, applicationID, reason string) (*domain.Review, error) {
	actor := events.Actor(id.UserID, string(id.Role), id.Org)
	var out *domain.Review
	err := db.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		now := s.now()
		locked, err := adapters.Reviews.LockForUpdate(ctx, tx, []string{applicationID})
		if err != nil {
			return err
		}
		r, ok := locked[applicationID]
		if !ok || r.SchoolCode != id.Org {
			return notFound(applicationID)
		}
		if err := r.Object(reason, now); err != nil {
			var v apperr.Violations
			switch {
			case errors.Is(err, domain.ErrIllegalTransition):
				return apperr.New(apperr.FailedPrecondition, "application %s is %s: objections are only possible while the public notice runs", applicationID, r.State)
			case errors.Is(err, domain.ErrNoticeEnded):
				return apperr.New(apperr.FailedPrecondition, "the public notice of application %s has ended; objections are no longer possible", applicationID)
			case errors.Is(err, domain.ErrReasonRequired), errors.Is(err, domain.ErrReasonInvalid):
				v.Addf("reason", "%v", err)
				return v.Err()
			}
			return fmt.Errorf("object to %s: %w", applicationID, err)
		}
		ev, err := events.New(now, actor, reviewapp.Keys(&r.Item), &eventsv1.NoticeObjected{Reason: r.Reason})
		if err != nil {
			return err
		}
		out = r
		return saveOne(ctx, tx, r, ev)
	})
	if err != nil {
		return nil, err
	}
	return s.announced(ctx, out), nil
}

// WithdrawApplication withdraws a pending item at the request of the
// school's aid officer: the committee will not decide it, and the
// application service stops counting it against the student. The row lock
// it takes is the one Decide takes, so a withdrawal and a decision at the
// same moment end in exactly one of the two. NotFound outside the caller's
// school; FailedPrecondition (rule review-already-decided) once the item was
// decided; InvalidArgument without a reason.
func (s *Service) WithdrawApplication(ctx context.Context, id auth.Identity, applicationID, reason string) (*domain.Review, error) {
	actor := events.Actor(id.UserID, string(id.Role), id.Org)
	var out *domain.Review
	err := db.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		now := s.now()
		locked, err := adapters.Reviews.LockForUpdate(ctx, tx, []string{applicationID})
		if err != nil {
			return err
		}
		r, ok := locked[applicationID]
		if !ok || r.SchoolCode != id.Org || id.Role != auth.RoleSchoolOfficer {
			return notFound(applicationID)
		}
		if err := r.Withdraw(reason, now); err != nil {
			switch {
			case errors.Is(err, domain.ErrIllegalTransition):
				return &apperr.Error{Code: apperr.FailedPrecondition, Rule: apperr.ReasonReviewAlreadyDecided,
					Message: fmt.Sprintf("application %s is %s: only an application the school's review has not decided can be withdrawn", applicationID, r.State)}
			case errors.Is(err, domain.ErrReasonRequired), errors.Is(err, domain.ErrReasonInvalid):
				var v apperr.Violations
				v.Addf("reason", "%v", err)
				return v.Err()
			}
			return fmt.Errorf("withdraw %s: %w", applicationID, err)
		}
		ev, err := events.New(now, actor, reviewapp.Keys(&r.Item), &eventsv1.SchoolReviewWithdrawn{Reason: r.Reason})
		if err != nil {
			return err
		}
		out = r
		return saveOne(ctx, tx, r, ev)
	})
	if err != nil {
		return nil, err
	}
	return s.announced(ctx, out), nil
}

// saveOne stores one changed review and its event in tx.
func saveOne(ctx context.Context, tx pgx.Tx, r *domain.Review, ev *eventsv1.Event) error {
	if err := adapters.Reviews.Save(ctx, tx, []*domain.Review{r}); err != nil {
		return err
	}
	return outbox.Append(ctx, tx, ev)
}

// announced wakes the outbox relay for a committed change of r and puts
// r's keys and links on the call's span.
func (s *Service) announced(ctx context.Context, r *domain.Review) *domain.Review {
	s.notify()
	reviewapp.SetSpanKeys(ctx, &r.Item)
	reviewapp.AddLinks(ctx, []*domain.Review{r}, linkKind)
	return r
}
