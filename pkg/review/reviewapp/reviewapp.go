// Package reviewapp is the use-case side every review service shares: the
// bulk decision (lock → decide each → map the refusal → event → save →
// outbox → span), the refusals every review maps alike, and the span keys
// and links of review items.
package reviewapp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/outbox"
	"github.com/edubureau/studentaid/pkg/review"
	commonv1 "github.com/edubureau/studentaid/proto/gen/aid/common/v1"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
)

// Decision is a reviewer's verdict on one item, of the service's own type.
type Decision interface {
	// Application is the ID of the application the decision is about.
	Application() string
}

// Store locks and saves a service's review items inside a transaction.
type Store[R any] interface {
	LockForUpdate(ctx context.Context, tx db.Tx, ids []string) (map[string]R, error)
	Save(ctx context.Context, tx db.Tx, rs []R) error
}

// Bulk is a service's bulk decision: its collaborators and its own steps.
type Bulk[S ~string, R review.Reviewed[S], D Decision] struct {
	Pool  db.Beginner
	Store Store[R]
	// Notify wakes the outbox relay after the commit.
	Notify func()
	// Now is the clock, in UTC.
	Now func() time.Time
	// SchoolScoped means reviewers decide their own school's items only:
	// another school's item is NotFound, and the span carries the school.
	SchoolScoped bool
	// NotFound is the error for an application the caller may not decide.
	NotFound func(applicationID string) error
	// Decide applies d to r at now, by reviewer, by the service's rules.
	Decide func(r R, d D, reviewer string, now time.Time) error
	// Refusal turns the rules' refusal of the i-th decision into the error
	// the reviewer sees (see Refusal for the kinds every review shares).
	Refusal func(i int, r R, err error) error
	// Event is the event a decided item publishes.
	Event func(now time.Time, actor *commonv1.Actor, r R) (*eventsv1.Event, error)
	// LinkKind names the span links to the items' arrivals.
	LinkKind string
}

// Run applies the caller's decisions, all or nothing, in one transaction
// that saves the items and writes their events to the outbox. The first
// decision refused fails them all. Results are in request order.
func (b *Bulk[S, R, D]) Run(ctx context.Context, id auth.Identity, ds []D) ([]R, error) {
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.Application()
	}
	actor := events.Actor(id.UserID, string(id.Role), id.Org)
	var out []R
	err := db.InTx(ctx, b.Pool, func(tx pgx.Tx) error {
		now := b.Now()
		out = make([]R, 0, len(ds))
		locked, err := b.Store.LockForUpdate(ctx, tx, ids)
		if err != nil {
			return err
		}
		evs := make([]*eventsv1.Event, 0, len(ds))
		for i, d := range ds {
			r, ok := locked[d.Application()]
			if !ok || (b.SchoolScoped && r.Shared().SchoolCode != id.Org) {
				return b.NotFound(d.Application())
			}
			if err := b.Decide(r, d, id.UserID, now); err != nil {
				return b.Refusal(i, r, err)
			}
			ev, err := b.Event(now, actor, r)
			if err != nil {
				return err
			}
			evs = append(evs, ev)
			out = append(out, r)
		}
		if err := b.Store.Save(ctx, tx, out); err != nil {
			return err
		}
		return outbox.Append(ctx, tx, evs...)
	})
	if err != nil {
		return nil, err
	}
	b.Notify()
	span := trace.SpanFromContext(ctx)
	if b.SchoolScoped {
		span.SetAttributes(attribute.String("school.code", id.Org))
	}
	span.SetAttributes(attribute.Int("decisions", len(out)))
	if len(out) == 1 {
		SetSpanKeys(ctx, out[0].Shared())
	}
	AddLinks(ctx, out, b.LinkKind)
	return out, nil
}

// Refusal is the error a reviewer sees when an item refused the i-th
// decision for a reason every review has: a submitter deciding
// (PermissionDenied; another must decide it, named by who), a state that
// allows no decision (FailedPrecondition) or a bad reason (InvalidArgument
// on decisions[i].reason). Any other error is internal.
func Refusal[S ~string](i int, it *review.Item[S], who string, err error) error {
	switch {
	case errors.Is(err, review.ErrSubmitterCannotReview):
		return apperr.Denied(apperr.ReasonSubmitterCannotReview, "you submitted application %s; another %s must decide it", it.ApplicationID, who)
	case errors.Is(err, review.ErrIllegalTransition):
		return apperr.New(apperr.FailedPrecondition, "application %s is %s, not PENDING; nothing was decided", it.ApplicationID, it.State)
	case errors.Is(err, review.ErrReasonRequired), errors.Is(err, review.ErrReasonInvalid):
		return Invalid(i, "reason", it, err)
	}
	return fmt.Errorf("decide %s: %w", it.ApplicationID, err)
}

// Invalid is the InvalidArgument error of field of the i-th decision about it.
func Invalid[S ~string](i int, field string, it *review.Item[S], err error) error {
	var v apperr.Violations
	v.Addf(fmt.Sprintf("decisions[%d].%s", i, field), "application %s: %v", it.ApplicationID, err)
	return v.Err()
}

// Keys are the business keys of it's events.
func Keys[S ~string](it *review.Item[S]) events.Keys {
	return events.Keys{ApplicationID: it.ApplicationID, SchoolCode: it.SchoolCode, ProgramCode: it.ProgramCode, Term: it.Term}
}

// SetSpanKeys puts it's business keys on ctx's span.
func SetSpanKeys[S ~string](ctx context.Context, it *review.Item[S]) {
	trace.SpanFromContext(ctx).SetAttributes(
		attribute.String("application.id", it.ApplicationID),
		attribute.String("school.code", it.SchoolCode),
		attribute.String("program.code", it.ProgramCode),
		attribute.String("term", it.Term),
	)
}
