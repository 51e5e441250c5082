package ports

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/natsx"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	"github.com/edubureau/studentaid/services/reporting/internal/app"
	"github.com/edubureau/studentaid/services/reporting/internal/domain"
)

// Subjects are the events the read model is built from: submissions (whose
// payment it is and how it splits), the steps of the chain, payments, loan
// repayments and the data office's comparisons, clues and refunds.
var Subjects = []string{
	events.Subject(events.TypeApplicationSubmitted),
	events.Subject(events.TypeSchoolReviewApproved),
	events.Subject(events.TypeSchoolReviewRejected),
	events.Subject(events.TypeSchoolReviewWithdrawn),
	events.Subject(events.TypeNoticePassed),
	events.Subject(events.TypeNoticeObjected),
	events.Subject(events.TypeBureauApproved),
	events.Subject(events.TypeBureauRejected),
	events.Subject(events.TypeItemBatched),
	events.Subject(events.TypeItemReturnedToBureau),
	events.Subject(events.TypePaymentOrdered),
	events.Subject(events.TypePaymentSucceeded),
	events.Subject(events.TypePaymentFailed),
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
	}, HandleBatch: func(ctx context.Context, tx pgx.Tx, ds []natsx.Delivery) error {
		return classify(applyBatch(ctx, a, tx, ds))
	}}
}

// applyBatch applies ds in order as apply would one by one, with fewer
// round trips (app.Batch). A payment before its application's submission
// in the batch is not yet (one by one, it would wait for it).
func applyBatch(ctx context.Context, a *app.Service, tx pgx.Tx, ds []natsx.Delivery) error {
	submitted := map[string]int{} // application → the last of its submissions in ds
	for i, d := range ds {
		if _, ok := d.Event.GetBody().(*eventsv1.Event_ApplicationSubmitted); ok {
			submitted[d.Event.GetApplicationId()] = i
		}
	}
	b := a.NewBatch()
	for i, d := range ds {
		ev := d.Event
		at := ev.GetOccurredAt().AsTime().UTC()
		if step, reason := stepOf(ev); step != "" {
			id, err := applicationID(ev)
			if err != nil {
				return err
			}
			if err := b.Step(id, step, reason, ev.GetEventId(), at); err != nil {
				return err
			}
			continue
		}
		switch body := ev.GetBody().(type) {
		case *eventsv1.Event_ApplicationSubmitted:
			id, err := applicationID(ev)
			if err != nil {
				return err
			}
			if err := b.Submitted(submittedOf(ev, id, body.ApplicationSubmitted)); err != nil {
				return err
			}
		case *eventsv1.Event_PaymentSucceeded:
			p := body.PaymentSucceeded
			id, err := applicationID(ev)
			if err != nil {
				return err
			}
			if j, ok := submitted[ev.GetApplicationId()]; ok && j > i {
				return fmt.Errorf("%w: payment %s before its application's submission in the batch", app.ErrNotYet, p.GetPaymentId())
			}
			if err := b.Paid(p.GetPaymentId(), id, p.GetAmountFen(), p.GetLoanContractNumber(), at); err != nil {
				return err
			}
			if err := b.Step(id, domain.StepPaid, "", ev.GetEventId(), at); err != nil {
				return err
			}
		case *eventsv1.Event_RefundReceiptRecorded:
			r := body.RefundReceiptRecorded
			id, err := uuid.Parse(ev.GetEventId())
			if err != nil {
				return fmt.Errorf("%w: receipt event id %q", app.ErrBadEvent, ev.GetEventId())
			}
			b.Receipt(id.String(), r.GetRefundId(), r.GetAmountFen(), at)
		default:
			dctx := d.Ctx
			b.Later(func(context.Context, db.Tx) error { return apply(dctx, a, tx, ev) })
		}
	}
	return b.Run(ctx, tx)
}

// applicationID is ev's application, checked.
func applicationID(ev *eventsv1.Event) (string, error) {
	id, err := uuid.Parse(ev.GetApplicationId())
	if err != nil {
		return "", fmt.Errorf("%w: %s %s has no application id", app.ErrBadEvent, ev.GetType(), ev.GetEventId())
	}
	return id.String(), nil
}

// submittedOf is the submission ev of application id.
func submittedOf(ev *eventsv1.Event, id string, s *eventsv1.ApplicationSubmitted) app.Submitted {
	return app.Submitted{ID: id, StudentIDHash: s.GetStudentIdHash(),
		SchoolCode: ev.GetSchoolCode(), ProgramCode: ev.GetProgramCode(), Term: ev.GetTerm(), Stage: s.GetStage(),
		FundingSource: s.GetFundingSource(), GovernmentTotal: s.GetGovernmentTotal(), SharesBP: s.GetFundingSharesBp(),
		PolicyVersion: s.GetPolicyVersion(), SubmittedAt: ev.GetOccurredAt().AsTime().UTC(), EventID: ev.GetEventId(),
		BackPayClueID: s.GetBackPayClueId()}
}

// stepOf is the step an event moves its application to, and the reason it
// gives; "" for an event that moves none.
func stepOf(ev *eventsv1.Event) (step, reason string) {
	switch b := ev.GetBody().(type) {
	case *eventsv1.Event_SchoolReviewApproved:
		return domain.StepNotice, ""
	case *eventsv1.Event_SchoolReviewRejected:
		return domain.StepSchoolRejected, b.SchoolReviewRejected.GetReason()
	case *eventsv1.Event_SchoolReviewWithdrawn:
		return domain.StepWithdrawn, b.SchoolReviewWithdrawn.GetReason()
	case *eventsv1.Event_NoticeObjected:
		return domain.StepSchoolReview, b.NoticeObjected.GetReason()
	case *eventsv1.Event_NoticePassed:
		return domain.StepBureauReview, ""
	case *eventsv1.Event_BureauApproved:
		return domain.StepFinance, ""
	case *eventsv1.Event_BureauRejected:
		return domain.StepBureauRejected, b.BureauRejected.GetReason()
	case *eventsv1.Event_ItemBatched:
		return domain.StepBatched, ""
	case *eventsv1.Event_ItemReturnedToBureau:
		return domain.StepBureauReview, b.ItemReturnedToBureau.GetReason()
	case *eventsv1.Event_PaymentOrdered:
		return domain.StepOrdered, ""
	case *eventsv1.Event_PaymentFailed:
		return domain.StepPaymentFailed, b.PaymentFailed.GetReason()
	}
	return "", ""
}

func apply(ctx context.Context, a *app.Service, tx pgx.Tx, ev *eventsv1.Event) error {
	at := ev.GetOccurredAt().AsTime().UTC()
	if step, reason := stepOf(ev); step != "" {
		id, err := uuid.Parse(ev.GetApplicationId())
		if err != nil {
			return fmt.Errorf("%w: %s %s has no application id", app.ErrBadEvent, ev.GetType(), ev.GetEventId())
		}
		return a.ApplyStep(ctx, tx, id.String(), step, reason, ev.GetEventId(), at)
	}
	switch b := ev.GetBody().(type) {
	case *eventsv1.Event_ApplicationSubmitted:
		id, err := applicationID(ev)
		if err != nil {
			return err
		}
		return a.ApplySubmitted(ctx, tx, submittedOf(ev, id, b.ApplicationSubmitted))
	case *eventsv1.Event_PaymentSucceeded:
		p := b.PaymentSucceeded
		id, err := uuid.Parse(ev.GetApplicationId())
		if err != nil {
			return fmt.Errorf("%w: %s %s has no application id", app.ErrBadEvent, ev.GetType(), ev.GetEventId())
		}
		if err := a.ApplyPaid(ctx, tx, p.GetPaymentId(), id.String(), p.GetAmountFen(), p.GetLoanContractNumber(), at); err != nil {
			return err
		}
		return a.ApplyStep(ctx, tx, id.String(), domain.StepPaid, "", ev.GetEventId(), at)
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
