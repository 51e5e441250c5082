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
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/timestamppb"

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
	// NoticePeriod is how long the public notice runs.
	NoticePeriod domain.NoticePeriod
	// PollInterval is how often the notice timer looks for due notices.
	PollInterval time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Notifier is woken after a commit that wrote outbox events.
type Notifier interface{ Notify() }

// Service runs the school review's use cases.
type Service struct {
	pool   *pgxpool.Pool
	relay  Notifier
	cfg    Config
	tracer trace.Tracer
	log    *slog.Logger
	wake   chan struct{}
}

// New returns a Service; relay is notified after every commit that wrote events.
func New(pool *pgxpool.Pool, relay Notifier, cfg Config, tracer trace.Tracer, log *slog.Logger) *Service {
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NoticePeriod == (domain.NoticePeriod{}) {
		cfg.NoticePeriod = domain.DefaultNoticePeriod
	}
	return &Service{pool: pool, relay: relay, cfg: cfg, tracer: tracer, log: log, wake: make(chan struct{}, 1)}
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// wakeTimer asks the notice timer to look for due notices now.
func (s *Service) wakeTimer() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func keys(r *domain.Review) events.Keys {
	return events.Keys{ApplicationID: r.ApplicationID, SchoolCode: r.SchoolCode, ProgramCode: r.ProgramCode, Term: r.Term}
}

// visible reports whether the caller may see r: school-bound roles see their
// own school only.
func visible(id auth.Identity, r *domain.Review) bool {
	return !id.Role.SchoolBound() || r.SchoolCode == id.Org
}

func notFound(applicationID string) error {
	return apperr.New(apperr.NotFound, "application %s is not under review at your school", applicationID)
}

// ApplySubmitted turns an application.submitted event into a pending review
// item, inside the consumer's transaction. A repeated submission of the same
// application changes nothing.
func (s *Service) ApplySubmitted(ctx context.Context, tx pgx.Tx, ev *eventsv1.Event) error {
	body := ev.GetApplicationSubmitted()
	if body == nil {
		return nil // not an event this service consumes
	}
	if _, err := uuid.Parse(ev.GetApplicationId()); err != nil {
		return natsx.Permanent(fmt.Errorf("application.submitted %s: bad application id", ev.GetEventId()))
	}
	if ev.GetSchoolCode() == "" || body.GetSubmittedBy() == "" {
		return natsx.Permanent(fmt.Errorf("application.submitted %s: missing school or submitter", ev.GetEventId()))
	}
	tp, ts := telemetry.TraceContextOf(ctx)
	r := domain.Submitted(domain.Review{
		ApplicationID:     ev.GetApplicationId(),
		SchoolCode:        ev.GetSchoolCode(),
		Term:              ev.GetTerm(),
		ProgramCode:       ev.GetProgramCode(),
		Stage:             body.GetStage(),
		StudentIDMasked:   body.GetStudentIdMasked(),
		StudentNameMasked: body.GetStudentNameMasked(),
		StudentIDHash:     body.GetStudentIdHash(),
		Tiered:            body.GetTiered(),
		BaseAmountFen:     body.GetAmountFen(),
		FundingSource:     body.GetFundingSource(),
		SubmittedBy:       body.GetSubmittedBy(),
		TraceParent:       tp,
		TraceState:        ts,
	})
	if _, err := adapters.InsertSubmitted(ctx, tx, r, s.now()); err != nil {
		return err
	}
	return nil
}

// Get returns one item. NotFound when it does not exist or belongs to
// another school and the caller is bound to a school.
func (s *Service) Get(ctx context.Context, id auth.Identity, applicationID string) (*domain.Review, error) {
	r, err := adapters.Get(ctx, s.pool, applicationID)
	if errors.Is(err, adapters.ErrNotFound) || (err == nil && !visible(id, r)) {
		return nil, notFound(applicationID)
	}
	if err != nil {
		return nil, err
	}
	setSpanKeys(ctx, r)
	return r, nil
}

// List returns up to f.Limit items and whether there are more. Callers bound
// to a school see their own school only; asking for another school's items
// returns nothing.
func (s *Service) List(ctx context.Context, id auth.Identity, f adapters.Filter) ([]*domain.Review, bool, error) {
	if id.Role.SchoolBound() {
		if f.SchoolCode != "" && f.SchoolCode != id.Org {
			return nil, false, nil
		}
		f.SchoolCode = id.Org
	}
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

// Decide applies the caller's decisions, all or nothing: every item must be
// pending at the caller's school (NotFound / FailedPrecondition naming the
// first that is not), not submitted by the caller (PermissionDenied), with a
// level for tiered approvals and a reason for rejections (InvalidArgument).
// Approvals start the public notice. Results are in request order.
func (s *Service) Decide(ctx context.Context, id auth.Identity, ds []domain.Decision) ([]*domain.Review, error) {
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.ApplicationID
	}
	actor := events.Actor(id.UserID, string(id.Role), id.Org)
	var out []*domain.Review
	var approved bool
	err := db.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		now := s.now()
		out, approved = make([]*domain.Review, 0, len(ds)), false
		locked, err := adapters.LockForUpdate(ctx, tx, ids)
		if err != nil {
			return err
		}
		evs := make([]*eventsv1.Event, 0, len(ds))
		for i, d := range ds {
			r, ok := locked[d.ApplicationID]
			if !ok || r.SchoolCode != id.Org {
				return notFound(d.ApplicationID)
			}
			if err := r.Decide(d, id.UserID, now, s.cfg.NoticePeriod); err != nil {
				return decisionError(i, r, err)
			}
			ev, err := decisionEvent(now, actor, r)
			if err != nil {
				return err
			}
			approved = approved || r.State == domain.StateInNotice
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
	if approved {
		s.wakeTimer()
	}
	span := trace.SpanFromContext(ctx)
	span.SetAttributes(attribute.String("school.code", id.Org), attribute.Int("decisions", len(out)))
	if len(out) == 1 {
		setSpanKeys(ctx, out[0])
	}
	linkSubmissions(ctx, out)
	return out, nil
}

func decisionEvent(now time.Time, actor *commonv1.Actor, r *domain.Review) (*eventsv1.Event, error) {
	if r.State == domain.StateInNotice {
		return events.New(now, actor, keys(r), &eventsv1.SchoolReviewApproved{
			HardshipLevel: string(r.HardshipLevel),
			AmountFen:     r.AmountFen,
			NoticeEndsAt:  timestamppb.New(r.NoticeEndsAt),
			Reason:        r.Reason,
		})
	}
	return events.New(now, actor, keys(r), &eventsv1.SchoolReviewRejected{Reason: r.Reason})
}

// decisionError turns a domain refusal of the i-th decision into the error
// the reviewer sees.
func decisionError(i int, r *domain.Review, err error) error {
	var v apperr.Violations
	switch {
	case errors.Is(err, domain.ErrSubmitterCannotReview):
		return apperr.Denied("submitter-cannot-review", "you submitted application %s; another reviewer must decide it", r.ApplicationID)
	case errors.Is(err, domain.ErrIllegalTransition):
		return apperr.New(apperr.FailedPrecondition, "application %s is %s, not PENDING; nothing was decided", r.ApplicationID, r.State)
	case errors.Is(err, domain.ErrLevelRequired), errors.Is(err, domain.ErrInvalidLevel):
		v.Add(fmt.Sprintf("decisions[%d].hardship_level", i), "application %s: %v", r.ApplicationID, err)
	case errors.Is(err, domain.ErrReasonRequired), errors.Is(err, domain.ErrReasonInvalid):
		v.Add(fmt.Sprintf("decisions[%d].reason", i), "application %s: %v", r.ApplicationID, err)
	default:
		return fmt.Errorf("decide %s: %w", r.ApplicationID, err)
	}
	return v.Err()
}

// RaiseObjection records an objection to an item in notice: it goes back to
// pending. NotFound outside the caller's school; FailedPrecondition when the
// notice is not running (or has already ended).
func (s *Service) RaiseObjection(ctx context.Context, id auth.Identity, applicationID, reason string) (*domain.Review, error) {
	actor := events.Actor(id.UserID, string(id.Role), id.Org)
	var out *domain.Review
	err := db.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		now := s.now()
		locked, err := adapters.LockForUpdate(ctx, tx, []string{applicationID})
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
				v.Add("reason", "%v", err)
				return v.Err()
			}
			return fmt.Errorf("object to %s: %w", applicationID, err)
		}
		ev, err := events.New(now, actor, keys(r), &eventsv1.NoticeObjected{Reason: r.Reason})
		if err != nil {
			return err
		}
		if err := adapters.Save(ctx, tx, []*domain.Review{r}); err != nil {
			return err
		}
		out = r
		return outbox.Append(ctx, tx, ev)
	})
	if err != nil {
		return nil, err
	}
	s.relay.Notify()
	setSpanKeys(ctx, out)
	linkSubmissions(ctx, []*domain.Review{out})
	return out, nil
}

func setSpanKeys(ctx context.Context, r *domain.Review) {
	trace.SpanFromContext(ctx).SetAttributes(
		attribute.String("application.id", r.ApplicationID),
		attribute.String("school.code", r.SchoolCode),
		attribute.String("program.code", r.ProgramCode),
		attribute.String("term", r.Term),
	)
}
