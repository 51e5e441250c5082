package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/outbox"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	"github.com/edubureau/studentaid/services/payout/internal/adapters"
	"github.com/edubureau/studentaid/services/payout/internal/domain"
)

// Limits of the loan book's inputs.
const (
	maxContractNumberLen = 64
	maxBankReferenceLen  = 64
	maxRepaymentReason   = 500 // characters
)

// RepaymentInput is money the bank reported against a loan contract, as a
// finance officer enters it.
type RepaymentInput struct {
	ContractNumber string
	Kind           domain.RepaymentKind
	AmountFen      int64
	BankReference  string
	// PaidOn is the day the money arrived, YYYY-MM-DD.
	PaidOn string
	Reason string
}

// checkRepayment checks in's fields, adding a violation for each bad one, and
// returns the repayment it describes (without ID and recorder).
func (s *Service) checkRepayment(v *apperr.Violations, in RepaymentInput) domain.Repayment {
	r := domain.Repayment{ContractNumber: strings.TrimSpace(in.ContractNumber), Kind: in.Kind, AmountFen: in.AmountFen,
		BankReference: strings.TrimSpace(in.BankReference), Reason: strings.TrimSpace(in.Reason)}
	if r.ContractNumber == "" || len(r.ContractNumber) > maxContractNumberLen {
		v.Addf("contract_number", "give the loan contract number the bank issued (1 to %d characters)", maxContractNumberLen)
	}
	switch in.Kind {
	case domain.KindRepayment:
	case domain.KindRecovery:
		if r.Reason == "" {
			v.Addf("reason", "say what the recovery is (e.g. the bank's statement line or the overdue case)")
		}
	default:
		v.Addf("kind", "must be REPAYMENT (the borrower repaid) or RECOVERY (an overdue loan was recovered)")
	}
	if in.AmountFen <= 0 {
		v.Addf("amount_fen", "must be a positive amount in fen (1 yuan is 100 fen); %d is not", in.AmountFen)
	}
	if r.BankReference == "" || len(r.BankReference) > maxBankReferenceLen {
		v.Addf("bank_reference", "give the bank's reference of the transfer (1 to %d characters)", maxBankReferenceLen)
	}
	if !utf8.ValidString(r.Reason) || utf8.RuneCountInString(r.Reason) > maxRepaymentReason {
		v.Addf("reason", "must be valid text of at most %d characters", maxRepaymentReason)
	}
	day, err := time.Parse(time.DateOnly, in.PaidOn)
	switch {
	case err != nil:
		v.Addf("paid_on", "must be the day the money arrived as YYYY-MM-DD; %q is not", in.PaidOn)
	case day.After(s.now().UTC()):
		v.Addf("paid_on", "%s is in the future; give the day the money arrived", in.PaidOn)
	}
	r.PaidOn = day.UTC()
	return r
}

// RecordLoanRepayment records a repayment or recovery against a loan
// contract and writes loan.repayment_recorded, in one transaction. It is
// idempotent by bank reference: the same reference with the same content
// returns the repayment recorded before, and the contract as it stands.
// Returns InvalidArgument for bad fields (an amount that is not positive),
// NotFound for an unknown contract, AlreadyExists
// (ReasonLoanBankReferenceReused) for a bank reference recorded for other
// money, and FailedPrecondition (ReasonLoanRepaymentExceedsOutstanding) for
// more than is outstanding; a refused request writes nothing.
func (s *Service) RecordLoanRepayment(ctx context.Context, by auth.Identity, in RepaymentInput) (domain.Repayment, domain.LoanContract, error) {
	var v apperr.Violations
	r := s.checkRepayment(&v, in)
	if err := v.Err(); err != nil {
		return domain.Repayment{}, domain.LoanContract{}, err
	}
	trace.SpanFromContext(ctx).SetAttributes(attribute.String("loan.contract", r.ContractNumber), attribute.String("loan.bank_reference", r.BankReference))
	now := s.now().UTC()
	r.ID, r.RecordedBy, r.RecordedAt = uuid.Must(uuid.NewV7()).String(), by.UserID, now.Truncate(time.Microsecond)
	var out domain.Repayment
	var contract domain.LoanContract
	var recorded bool
	err := db.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		recorded = false
		// The reference first, then the contract: a reference sent for two
		// contracts at once is compared with whichever was recorded first.
		if err := adapters.LockLoanReference(ctx, tx, r.BankReference); err != nil {
			return err
		}
		if err := adapters.LockLoanContract(ctx, tx, r.ContractNumber); err != nil {
			return err
		}
		c, err := adapters.GetLoanContract(ctx, tx, r.ContractNumber)
		if errors.Is(err, adapters.ErrNotFound) {
			return apperr.New(apperr.NotFound, "loan contract %s not found; check the number on the bank's statement", r.ContractNumber)
		}
		if err != nil {
			return err
		}
		prior, err := adapters.RepaymentByReference(ctx, tx, r.BankReference)
		switch {
		case err == nil && prior.SameAs(r):
			out, contract = prior, c
			return nil
		case err == nil:
			return &apperr.Error{Code: apperr.AlreadyExists, Rule: apperr.ReasonLoanBankReferenceReused, Message: fmt.Sprintf(
				"bank reference %s is already recorded: %s of %d fen on %s against contract %s; check the reference, or send exactly that request again",
				r.BankReference, prior.Kind, prior.AmountFen, prior.PaidOn.Format(time.DateOnly), prior.ContractNumber)}
		case !errors.Is(err, adapters.ErrNotFound):
			return err
		}
		c, err = c.Apply(r)
		if err != nil {
			if errors.Is(err, domain.ErrExceedsOutstanding) {
				return &apperr.Error{Code: apperr.FailedPrecondition, Rule: apperr.ReasonLoanRepaymentExceedsOutstanding, Message: fmt.Sprintf(
					"contract %s has %d fen outstanding (%d fen lent, %d repaid, %d recovered); %d fen is more: record at most the outstanding amount, or check the contract number",
					c.ContractNumber, c.OutstandingFen(), c.AmountFen, c.RepaidFen, c.RecoveredFen, r.AmountFen)}
			}
			return err
		}
		if err := adapters.InsertRepayment(ctx, tx, r); err != nil {
			return err
		}
		ev, err := events.New(now, events.Actor(by.UserID, string(by.Role), by.Org),
			events.Keys{ApplicationID: c.ApplicationID, BatchID: c.BatchID, SchoolCode: c.SchoolCode, ProgramCode: c.ProgramCode, Term: c.Term},
			&eventsv1.LoanRepaymentRecorded{RepaymentId: r.ID, ContractNumber: c.ContractNumber, Kind: string(r.Kind), AmountFen: r.AmountFen,
				BankReference: r.BankReference, PaidOn: r.PaidOn.Format(time.DateOnly), Reason: r.Reason,
				RepaidFen: c.RepaidFen, RecoveredFen: c.RecoveredFen, OutstandingFen: c.OutstandingFen()})
		if err != nil {
			return err
		}
		out, contract, recorded = r, c, true
		return outbox.Append(ctx, tx, ev)
	})
	if err != nil {
		return domain.Repayment{}, domain.LoanContract{}, err
	}
	if recorded {
		s.notify()
		kind := strings.ToLower(string(r.Kind))
		s.metrics.loanRepayments.WithLabelValues(kind).Inc()
		s.metrics.loanRepaidFen.WithLabelValues(kind).Add(float64(r.AmountFen))
	}
	return out, contract, nil
}

// ListLoans lists the loan book in contract-number order after the given
// contract number (from the first when empty).
func (s *Service) ListLoans(ctx context.Context, f domain.LoanFilter, after string, limit int) ([]domain.LoanContract, bool, error) {
	return adapters.ListLoans(ctx, s.pool, f, after, limit)
}

// LoanBookTotals totals the contracts f selects.
func (s *Service) LoanBookTotals(ctx context.Context, f domain.LoanFilter) (domain.LoanBookTotals, error) {
	return adapters.LoanBookTotals(ctx, s.pool, f)
}
