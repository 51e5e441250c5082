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
	"github.com/edubureau/studentaid/services/reporting/internal/app"
)

// Subjects are the events the read model is built from: submissions (whose
// payment it is and how it splits), payments, loan repayments and the data
// office's comparisons, clues and refunds.
var Subjects = []string{
	events.Subject(events.TypeApplicationSubmitted),
	events.Subject(events.TypePaymentSucceeded),
	events.Subject(events.TypeLoanRepaymentRecorded),
	events.Subject(events.TypeComparisonCompleted),
	events.Subject(events.TypeClueRaised),
	events.Subject(events.TypeClueVerified),
	events.Subject(events.TypeClueDismissed),
	events.Subject(events.TypeRefundOpened),
	events.Subject(events.TypeRefundReceiptRecorded),
}

// Consumer is the service's durable consumer of Subjects.
func Consumer(a *app.Service) *natsx.Consumer {
	return &natsx.Consumer{Subjects: Subjects, Handle: func(ctx context.Context, tx pgx.Tx, ev *eventsv1.Event) error {
		return classify(apply(ctx, a, tx, ev))
	}}
}

func apply(ctx context.Context, a *app.Service, tx pgx.Tx, ev *eventsv1.Event) error {
	at := ev.GetOccurredAt().AsTime().UTC()
	switch b := ev.GetBody().(type) {
	case *eventsv1.Event_ApplicationSubmitted:
		s := b.ApplicationSubmitted
		id, err := uuid.Parse(ev.GetApplicationId())
		if err != nil {
			return fmt.Errorf("%w: %s %s has no application id", app.ErrBadEvent, ev.GetType(), ev.GetEventId())
		}
		return a.ApplySubmitted(ctx, tx, app.Submitted{ID: id.String(), StudentIDHash: s.GetStudentIdHash(),
			SchoolCode: ev.GetSchoolCode(), ProgramCode: ev.GetProgramCode(), Term: ev.GetTerm(), Stage: s.GetStage(),
			FundingSource: s.GetFundingSource(), GovernmentTotal: s.GetGovernmentTotal(), SharesBP: s.GetFundingSharesBp(),
			PolicyVersion: s.GetPolicyVersion(), SubmittedAt: at})
	case *eventsv1.Event_PaymentSucceeded:
		p := b.PaymentSucceeded
		id, err := uuid.Parse(ev.GetApplicationId())
		if err != nil {
			return fmt.Errorf("%w: %s %s has no application id", app.ErrBadEvent, ev.GetType(), ev.GetEventId())
		}
		return a.ApplyPaid(ctx, tx, p.GetPaymentId(), id.String(), p.GetAmountFen(), p.GetLoanContractNumber(), at)
	case *eventsv1.Event_LoanRepaymentRecorded:
		r := b.LoanRepaymentRecorded
		return a.ApplyRepayment(ctx, tx, r.GetRepaymentId(), r.GetContractNumber(), r.GetKind(), r.GetAmountFen(), r.GetPaidOn(), at)
	case *eventsv1.Event_ComparisonCompleted:
		c := b.ComparisonCompleted
		return a.ApplyComparison(ctx, tx, c.GetRunId(), c.GetFromTerm(), c.GetToTerm(), c.GetRecords(), c.GetNewClues(), at)
	case *eventsv1.Event_ClueRaised:
		c := b.ClueRaised
		return a.ApplyClueRaised(ctx, tx, app.Clue{ID: c.GetClueId(), Kind: c.GetKind(), Origin: c.GetOrigin(),
			SchoolCode: ev.GetSchoolCode(), ProgramCode: ev.GetProgramCode(), Term: ev.GetTerm(),
			StudentIDHash: c.GetStudentIdHash(), AmountFen: c.GetAmountFen(), RaisedAt: at})
	case *eventsv1.Event_ClueVerified:
		return a.ApplyClueClosed(ctx, tx, b.ClueVerified.GetClueId(), "verified", b.ClueVerified.GetIneligible(), at)
	case *eventsv1.Event_ClueDismissed:
		return a.ApplyClueClosed(ctx, tx, b.ClueDismissed.GetClueId(), "dismissed", false, at)
	case *eventsv1.Event_RefundOpened:
		r := b.RefundOpened
		return a.ApplyRefundOpened(ctx, tx, r.GetRefundId(), r.GetPaymentId(), r.GetClueId(), r.GetAmountFen(), at)
	case *eventsv1.Event_RefundReceiptRecorded:
		r := b.RefundReceiptRecorded
		id, err := uuid.Parse(ev.GetEventId())
		if err != nil {
			return fmt.Errorf("%w: receipt event id %q", app.ErrBadEvent, ev.GetEventId())
		}
		return a.ApplyReceipt(ctx, tx, id.String(), r.GetRefundId(), r.GetAmountFen(), at)
	}
	return nil
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
