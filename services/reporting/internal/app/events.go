package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/services/reporting/internal/adapters"
	"github.com/edubureau/studentaid/services/reporting/internal/domain"
)

// Submitted is an application as submitted.
type Submitted = adapters.Application

// normalise gives a submission its term's rank and an empty funding split
// when it has none; a term that is not one is a bad event.
func normalise(a Submitted) (Submitted, error) {
	r, err := domain.TermRank(a.Term)
	if err != nil {
		return a, fmt.Errorf("%w: application %s: %w", ErrBadEvent, a.ID, err)
	}
	a.TermRank = r
	if a.SharesBP == nil {
		a.SharesBP = map[string]int32{}
	}
	return a, nil
}

// ApplySubmitted keeps a submitted application.
func (s *Service) ApplySubmitted(ctx context.Context, tx db.Tx, a Submitted) error {
	a, err := normalise(a)
	if err != nil {
		return err
	}
	if err := adapters.InsertApplication(ctx, tx, a); err != nil {
		return err
	}
	return adapters.InsertStep(ctx, tx, adapters.StepEntered{ApplicationID: a.ID, Step: domain.StepSchoolReview,
		EventID: a.EventID, At: a.SubmittedAt})
}

// ApplyStep keeps an application's entering step at the instant at (the
// event's occurred_at) with the event's reason, trimmed. ErrNotYet before
// the application's submission is known.
func (s *Service) ApplyStep(ctx context.Context, tx db.Tx, applicationID, step, reason, eventID string, at time.Time) error {
	err := adapters.InsertStep(ctx, tx, adapters.StepEntered{ApplicationID: applicationID, Step: step,
		Reason: strings.TrimSpace(reason), EventID: eventID, At: at.UTC()})
	if errors.Is(err, adapters.ErrUnknownApplication) {
		return fmt.Errorf("%w: %w", ErrNotYet, err)
	}
	return err
}

// ApplyPaid keeps a succeeded payment (a loan when loanContract is set).
func (s *Service) ApplyPaid(ctx context.Context, tx db.Tx, paymentID, applicationID string, amountFen int64, loanContract string, at time.Time) error {
	w := &adapters.Writes{}
	if err := applyPaid(ctx, tx, w, paymentID, applicationID, amountFen, loanContract, at); err != nil {
		return err
	}
	return w.Run(ctx, tx)
}

func applyPaid(ctx context.Context, tx db.Tx, w *adapters.Writes, paymentID, applicationID string, amountFen int64, loanContract string, at time.Time) error {
	if paymentID == "" || amountFen <= 0 {
		return fmt.Errorf("%w: payment %q of %d fen", ErrBadEvent, paymentID, amountFen)
	}
	err := adapters.InsertPaymentTo(ctx, tx, w, paymentID, applicationID, amountFen, loanContract, at)
	if errors.Is(err, adapters.ErrUnknownApplication) {
		return fmt.Errorf("%w: %w", ErrNotYet, err)
	}
	return err
}

// ApplyRefundOpened keeps an ordered refund.
func (s *Service) ApplyRefundOpened(ctx context.Context, tx db.Tx, refundID, paymentID, clueID string, amountFen int64, at time.Time) error {
	return adapters.InsertRefund(ctx, tx, refundID, paymentID, clueID, amountFen, at)
}

// ApplyReceipt keeps money recovered against a refund.
func (s *Service) ApplyReceipt(ctx context.Context, tx db.Tx, eventID, refundID string, amountFen int64, at time.Time) error {
	w := &adapters.Writes{}
	if err := applyReceipt(ctx, tx, w, eventID, refundID, amountFen, at); err != nil {
		return err
	}
	return w.Run(ctx, tx)
}

func applyReceipt(ctx context.Context, tx db.Tx, w *adapters.Writes, eventID, refundID string, amountFen int64, at time.Time) error {
	if amountFen <= 0 {
		return fmt.Errorf("%w: receipt %s of %d fen", ErrBadEvent, eventID, amountFen)
	}
	err := adapters.InsertReceiptTo(ctx, tx, w, eventID, refundID, amountFen, at)
	if errors.Is(err, adapters.ErrUnknownRefund) {
		return fmt.Errorf("%w: %w", ErrNotYet, err)
	}
	return err
}

// ApplyRepayment keeps a loan repayment or recovery; paidOn is its
// YYYY-MM-DD day, or empty for the day it was recorded.
func (s *Service) ApplyRepayment(ctx context.Context, tx db.Tx, id, contract, kind string, amountFen int64, paidOn string, at time.Time) error {
	day := at
	if paidOn != "" {
		d, err := time.Parse(time.DateOnly, paidOn)
		if err != nil {
			return fmt.Errorf("%w: repayment %s paid on %q", ErrBadEvent, id, paidOn)
		}
		day = d
	}
	return adapters.InsertRepayment(ctx, tx, id, contract, kind, amountFen, day, at)
}

// ApplyComparison keeps a comparison run.
func (s *Service) ApplyComparison(ctx context.Context, tx db.Tx, runID int64, from, to string, records, newClues int64, at time.Time) error {
	return adapters.InsertComparison(ctx, tx, runID, from, to, records, newClues, at)
}

// Clue is a raised clue.
type Clue = adapters.Clue

// ApplyClueRaised keeps a raised clue.
func (s *Service) ApplyClueRaised(ctx context.Context, tx db.Tx, c Clue) error {
	return adapters.InsertClue(ctx, tx, c)
}

// ApplyClueClosed records how a clue ended.
func (s *Service) ApplyClueClosed(ctx context.Context, tx db.Tx, clueID, outcome string, ineligible bool, at time.Time) error {
	return adapters.CloseClue(ctx, tx, clueID, outcome, ineligible, at)
}

// Batch applies many events in one transaction: the submissions and steps
// in their order with one round trip (adapters.StepPipeline), then the
// other events in their order, then, summed once per key, the step
// aggregates' changes and the writes of the payments and receipts that no
// later statement reads (adapters.Writes). Steps and the other events
// touch different tables but applications, which only submissions write,
// so the order between them does not change what is kept; the caller
// refuses a batch where a payment comes before its application's
// submission.
type Batch struct {
	s      *Service
	steps  adapters.StepPipeline
	later  []later
	writes adapters.Writes
}

// later is a use case applied after the submissions and steps: a payment,
// or another.
type later struct {
	pay *adapters.Payment
	fn  func(ctx context.Context, tx db.Tx) error
}

// NewBatch returns an empty batch.
func (s *Service) NewBatch() *Batch { return &Batch{s: s} }

// Submitted adds ApplySubmitted of a.
func (b *Batch) Submitted(a Submitted) error {
	a, err := normalise(a)
	if err != nil {
		return err
	}
	if err := b.steps.Application(a); err != nil {
		return err
	}
	return b.steps.Step(adapters.StepEntered{ApplicationID: a.ID, Step: domain.StepSchoolReview, EventID: a.EventID, At: a.SubmittedAt})
}

// Step adds ApplyStep.
func (b *Batch) Step(applicationID, step, reason, eventID string, at time.Time) error {
	return b.steps.Step(adapters.StepEntered{ApplicationID: applicationID, Step: step,
		Reason: strings.TrimSpace(reason), EventID: eventID, At: at.UTC()})
}

// Later adds a use case applied after the submissions and steps, in the
// order added.
func (b *Batch) Later(fn func(ctx context.Context, tx db.Tx) error) {
	b.later = append(b.later, later{fn: fn})
}

// Paid adds ApplyPaid: consecutive payments of different students are
// kept together (adapters.InsertPaymentsTo).
func (b *Batch) Paid(paymentID, applicationID string, amountFen int64, loanContract string, at time.Time) error {
	if paymentID == "" || amountFen <= 0 {
		return fmt.Errorf("%w: payment %q of %d fen", ErrBadEvent, paymentID, amountFen)
	}
	b.later = append(b.later, later{pay: &adapters.Payment{ID: paymentID, ApplicationID: applicationID, AmountFen: amountFen,
		LoanContract: loanContract, At: at}})
	return nil
}

// Receipt adds ApplyReceipt.
func (b *Batch) Receipt(eventID, refundID string, amountFen int64, at time.Time) {
	b.Later(func(ctx context.Context, tx db.Tx) error {
		return applyReceipt(ctx, tx, &b.writes, eventID, refundID, amountFen, at)
	})
}

// Run applies the batch in tx. ErrNotYet when a step's application is not
// known, or as the use cases return it.
func (b *Batch) Run(ctx context.Context, tx db.Tx) error {
	d := adapters.NewStepDeltas()
	err := b.steps.Run(ctx, tx, d)
	if errors.Is(err, adapters.ErrUnknownApplication) {
		return fmt.Errorf("%w: %w", ErrNotYet, err)
	}
	if err != nil {
		return err
	}
	if err := b.runLater(ctx, tx); err != nil {
		return err
	}
	if err := b.writes.Run(ctx, tx); err != nil {
		return err
	}
	return d.Flush(ctx, tx)
}

// runLater applies the use cases after the steps in order, each run of
// consecutive payments of different students together.
func (b *Batch) runLater(ctx context.Context, tx db.Tx) error {
	var ids []string
	for _, l := range b.later {
		if l.pay != nil {
			ids = append(ids, l.pay.ApplicationID)
		}
	}
	students := map[string]string{}
	if len(ids) > 1 {
		var err error
		if students, err = adapters.Students(ctx, tx, ids); err != nil {
			return err
		}
	}
	var run []adapters.Payment
	inRun := map[string]bool{}
	flush := func() error {
		if len(run) == 0 {
			return nil
		}
		err := adapters.InsertPaymentsTo(ctx, tx, &b.writes, run)
		run, inRun = run[:0], map[string]bool{}
		if errors.Is(err, adapters.ErrUnknownApplication) {
			return fmt.Errorf("%w: %w", ErrNotYet, err)
		}
		return err
	}
	for _, l := range b.later {
		if l.pay == nil {
			if err := flush(); err != nil {
				return err
			}
			if err := l.fn(ctx, tx); err != nil {
				return err
			}
			continue
		}
		// An application not known yet has no student: it runs alone (and
		// is not yet).
		student, known := students[l.pay.ApplicationID]
		if !known || inRun[student] {
			if err := flush(); err != nil {
				return err
			}
		}
		run = append(run, *l.pay)
		if known {
			inRun[student] = true
		} else if err := flush(); err != nil {
			return err
		}
	}
	return flush()
}
