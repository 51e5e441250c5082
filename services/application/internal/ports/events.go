package ports

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/natsx"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	"github.com/edubureau/studentaid/services/application/internal/app"
	"github.com/edubureau/studentaid/services/application/internal/domain"
)

// Subjects are the events the service follows: every step after submission
// that changes an application.
var Subjects = []string{
	events.SubjectPrefix + "schoolreview.>",
	events.SubjectPrefix + "bureaureview.>",
	events.Subject(events.TypeItemBatched),
	events.Subject(events.TypeItemReturnedToBureau),
	events.Subject(events.TypePaymentOrdered),
	events.SubjectPrefix + "payout.>",
	// A confirmed batch gets a checkpoint of the trails.
	events.Subject(events.TypeBatchConfirmed),
	// The data office's back-pay orders for missed students.
	events.Subject(events.TypeBackPayOpened),
}

// Consumer is the service's durable consumer: the events of Subjects,
// applied by the use cases in a.
func Consumer(a *app.Service) *natsx.Consumer {
	h := &eventHandler{app: a}
	return &natsx.Consumer{Subjects: Subjects, Handle: h.Handle, HandleBatch: h.HandleBatch}
}

// eventHandler applies the later steps' events to applications.
type eventHandler struct {
	app *app.Service
}

// Handle applies ev inside tx. It returns natsx.ErrNotYet when ev came before
// a step it follows, and a natsx.Permanent error when it can never apply.
// Events that are not about one application are ignored.
func (h *eventHandler) Handle(ctx context.Context, tx pgx.Tx, ev *eventsv1.Event) error {
	if ev.GetBatchConfirmed() != nil {
		return h.checkpoint(ctx, tx, ev)
	}
	if ev.GetBackPayOpened() != nil {
		return classify(h.app.OpenBackPay(ctx, tx, ev))
	}
	e, ok, err := eventOf(ev)
	if !ok || err != nil {
		return err
	}
	return classify(h.app.ApplyEvent(ctx, tx, e))
}

// HandleBatch applies the new events of a fetched batch inside tx, in stream
// order, reading and writing all the applications they touch at once. It is
// all or nothing: when any event cannot be applied now it returns an error,
// the consumer rolls back and applies the events one at a time through
// Handle, which sorts the early from the impossible. Events that are not
// about one application are ignored. The consumer has put each event's
// business keys on its delivery's span.
func (h *eventHandler) HandleBatch(ctx context.Context, tx pgx.Tx, ds []natsx.Delivery) error {
	evs := make([]app.Event, 0, len(ds))
	var confirmed []*eventsv1.Event
	for _, d := range ds {
		if d.Event.GetBatchConfirmed() != nil {
			confirmed = append(confirmed, d.Event)
			continue
		}
		if d.Event.GetBackPayOpened() != nil {
			if err := classify(h.app.OpenBackPay(ctx, tx, d.Event)); err != nil {
				return err
			}
			continue
		}
		e, ok, err := eventOf(d.Event)
		if err != nil {
			return err
		}
		if ok {
			evs = append(evs, e)
		}
	}
	if err := classify(h.app.ApplyEvents(ctx, tx, evs)); err != nil {
		return err
	}
	for _, ev := range confirmed {
		if err := h.checkpoint(ctx, tx, ev); err != nil {
			return err
		}
	}
	return nil
}

// checkpoint signs a checkpoint of the trails for a confirmed batch, in the
// consumer's transaction, so that the batch's acknowledgement and its
// checkpoint commit together.
func (h *eventHandler) checkpoint(ctx context.Context, tx pgx.Tx, ev *eventsv1.Event) error {
	if _, _, err := h.app.Checkpoint(ctx, tx, app.ReasonBatchConfirmed(ev.GetBatchId()), true); err != nil {
		return fmt.Errorf("checkpoint for batch %s: %w", ev.GetBatchId(), err)
	}
	return nil
}

// eventOf converts ev to the change it makes to its application; ok is false
// for events that change no application. The application ID is returned in
// its canonical form, the one the database gives back and the trail hashes.
func eventOf(ev *eventsv1.Event) (e app.Event, ok bool, err error) {
	change, ok := changeOf(ev)
	if !ok {
		return e, false, nil
	}
	id, err := uuid.Parse(ev.GetApplicationId())
	if err != nil {
		return e, false, natsx.Permanent(fmt.Errorf("%s %s: bad application id %q", ev.GetType(), ev.GetEventId(), ev.GetApplicationId()))
	}
	actor := ev.GetActor()
	return app.Event{
		ID: ev.GetEventId(), OccurredAt: ev.GetOccurredAt().AsTime(),
		ActorUser: actor.GetUserId(), ActorRole: actor.GetRole(), ActorOrg: actor.GetOrg(),
		ApplicationID: id.String(), SchoolCode: ev.GetSchoolCode(), ProgramCode: ev.GetProgramCode(), Term: ev.GetTerm(),
		BatchID: ev.GetBatchId(), Change: change,
	}, true, nil
}

// classify maps a use case's error to the consumer's: natsx.ErrNotYet to
// retry later, natsx.Permanent for never, anything else to retry.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, domain.ErrNotYet):
		return fmt.Errorf("%w: %w", natsx.ErrNotYet, err)
	case errors.Is(err, domain.ErrImpossible), errors.Is(err, app.ErrUnknownApplication), errors.Is(err, app.ErrKeysMismatch):
		return natsx.Permanent(err)
	default:
		return err
	}
}

// changeOf reduces an event to the change it makes to its application; ok is
// false for events that change no application.
func changeOf(ev *eventsv1.Event) (c domain.Change, ok bool) {
	c.Kind = domain.Kind(ev.GetType())
	c.BatchID = ev.GetBatchId()
	switch b := ev.GetBody().(type) {
	case *eventsv1.Event_SchoolReviewApproved:
		c.HardshipLevel, c.AmountFen, c.Reason = b.SchoolReviewApproved.GetHardshipLevel(), b.SchoolReviewApproved.GetAmountFen(), b.SchoolReviewApproved.GetReason()
	case *eventsv1.Event_SchoolReviewRejected:
		c.Reason = b.SchoolReviewRejected.GetReason()
	case *eventsv1.Event_NoticeObjected:
		c.Reason = b.NoticeObjected.GetReason()
	case *eventsv1.Event_SchoolReviewWithdrawn:
		c.Reason = b.SchoolReviewWithdrawn.GetReason()
	case *eventsv1.Event_NoticePassed:
	case *eventsv1.Event_BureauApproved:
		c.Reason = b.BureauApproved.GetReason()
	case *eventsv1.Event_BureauRejected:
		c.Reason = b.BureauRejected.GetReason()
	case *eventsv1.Event_ItemBatched:
		c.AmountFen = b.ItemBatched.GetAmountFen()
	case *eventsv1.Event_ItemReturnedToBureau:
		c.Reason = b.ItemReturnedToBureau.GetReason()
	case *eventsv1.Event_PaymentOrdered:
		c.AmountFen, c.PaymentID = b.PaymentOrdered.GetAmountFen(), b.PaymentOrdered.GetPaymentId()
	case *eventsv1.Event_PaymentSucceeded:
		c.AmountFen, c.PaymentID = b.PaymentSucceeded.GetAmountFen(), b.PaymentSucceeded.GetPaymentId()
	case *eventsv1.Event_PaymentFailed:
		c.AmountFen, c.PaymentID, c.Reason = b.PaymentFailed.GetAmountFen(), b.PaymentFailed.GetPaymentId(), b.PaymentFailed.GetReason()
	default:
		return c, false
	}
	return c, ev.GetApplicationId() != ""
}
