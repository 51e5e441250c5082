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
}

// EventHandler applies the later steps' events to applications.
type EventHandler struct {
	app *app.Service
}

// NewEventHandler returns the handler for the use cases in a.
func NewEventHandler(a *app.Service) *EventHandler { return &EventHandler{app: a} }

// Consumer returns the service's durable consumer of Subjects.
func (h *EventHandler) Consumer() *natsx.Consumer {
	return &natsx.Consumer{Subjects: Subjects, Handle: h.Handle}
}

// Handle applies ev inside tx. It returns natsx.ErrNotYet when ev came before
// a step it follows, and a natsx.Permanent error when it can never apply.
// Events that are not about one application are ignored.
func (h *EventHandler) Handle(ctx context.Context, tx pgx.Tx, ev *eventsv1.Event) error {
	change, ok := changeOf(ev)
	if !ok {
		return nil
	}
	if _, err := uuid.Parse(ev.GetApplicationId()); err != nil {
		return natsx.Permanent(fmt.Errorf("%s %s: bad application id %q", ev.GetType(), ev.GetEventId(), ev.GetApplicationId()))
	}
	actor := ev.GetActor()
	err := h.app.ApplyEvent(ctx, tx, app.Event{
		ID: ev.GetEventId(), OccurredAt: ev.GetOccurredAt().AsTime(),
		ActorUser: actor.GetUserId(), ActorRole: actor.GetRole(), ActorOrg: actor.GetOrg(),
		ApplicationID: ev.GetApplicationId(), SchoolCode: ev.GetSchoolCode(), ProgramCode: ev.GetProgramCode(), Term: ev.GetTerm(),
		BatchID: ev.GetBatchId(), Change: change,
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, domain.ErrNotYet):
		return fmt.Errorf("%w: %v", natsx.ErrNotYet, err)
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
