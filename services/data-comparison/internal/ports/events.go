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
	"github.com/edubureau/studentaid/services/data-comparison/internal/app"
)

// Subjects are the events the service follows: submissions, the school's
// level and amount, rejections and the bank's answers.
var Subjects = []string{
	events.Subject(events.TypeApplicationSubmitted),
	events.Subject(events.TypeSchoolReviewApproved),
	events.Subject(events.TypeSchoolReviewRejected),
	events.Subject(events.TypeBureauRejected),
	events.Subject(events.TypePaymentSucceeded),
	events.Subject(events.TypePaymentFailed),
}

// Consumer is the service's durable consumer of Subjects.
func Consumer(a *app.Service) *natsx.Consumer {
	return &natsx.Consumer{Subjects: Subjects, Handle: func(ctx context.Context, tx pgx.Tx, ev *eventsv1.Event) error {
		return classify(apply(ctx, a, tx, ev))
	}}
}

func apply(ctx context.Context, a *app.Service, tx pgx.Tx, ev *eventsv1.Event) error {
	id, err := uuid.Parse(ev.GetApplicationId())
	if err != nil {
		return fmt.Errorf("%w: %s %s has no application id", app.ErrBadEvent, ev.GetType(), ev.GetEventId())
	}
	at := ev.GetOccurredAt().AsTime()
	o := app.Outcome{ApplicationID: id.String(), At: at}
	actor := ev.GetActor()
	cause := app.Cause{EventID: ev.GetEventId(), Type: ev.GetType(), At: at,
		ActorUser: actor.GetUserId(), ActorRole: actor.GetRole(), ActorOrg: actor.GetOrg()}
	switch b := ev.GetBody().(type) {
	case *eventsv1.Event_ApplicationSubmitted:
		s := b.ApplicationSubmitted
		return a.ApplySubmitted(ctx, tx, app.Submitted{ApplicationID: id.String(), StudentIDHash: s.GetStudentIdHash(),
			StudentIDMasked: s.GetStudentIdMasked(), SchoolCode: ev.GetSchoolCode(), ProgramCode: ev.GetProgramCode(),
			Stage: s.GetStage(), AppliedFen: s.GetAmountFen(), At: at, BackPayClueID: s.GetBackPayClueId()}, ev.GetTerm(), s.GetBirthMonth(), cause)
	case *eventsv1.Event_SchoolReviewApproved:
		o.HardshipLevel, o.AmountFen = b.SchoolReviewApproved.GetHardshipLevel(), b.SchoolReviewApproved.GetAmountFen()
	case *eventsv1.Event_SchoolReviewRejected, *eventsv1.Event_BureauRejected:
		o.Status = "rejected"
	case *eventsv1.Event_PaymentSucceeded:
		o.Status, o.AmountFen, o.PaymentID = "paid", b.PaymentSucceeded.GetAmountFen(), b.PaymentSucceeded.GetPaymentId()
	case *eventsv1.Event_PaymentFailed:
		o.Status = "failed"
	default:
		return nil
	}
	return a.ApplyOutcome(ctx, tx, o, cause)
}

func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, app.ErrNotYet):
		return fmt.Errorf("%w: %w", natsx.ErrNotYet, err)
	case errors.Is(err, app.ErrBadEvent):
		return natsx.Permanent(err)
	default:
		return err
	}
}
