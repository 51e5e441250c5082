package domain

import (
	"errors"
	"fmt"
	"time"
)

// LoanContract is a loan contract the bank opened for a loan payment, with
// what has been recorded against it since.
type LoanContract struct {
	ContractNumber string
	PaymentID      string
	ApplicationID  string
	BatchID        string
	SchoolCode     string
	ProgramCode    string
	// Term is the aid term the loan was granted for.
	Term      string
	AmountFen int64
	// Years is the term of the loan as the bank set it.
	Years    int32
	OpenedAt time.Time
	// RepaidFen and RecoveredFen sum the contract's repayments of each kind.
	RepaidFen    int64
	RecoveredFen int64
}

// OutstandingFen is what the contract still owes.
func (c LoanContract) OutstandingFen() int64 { return c.AmountFen - c.RepaidFen - c.RecoveredFen }

// Status is LoanRepaid once nothing is outstanding, LoanOpen before.
func (c LoanContract) Status() LoanStatus {
	if c.OutstandingFen() <= 0 {
		return LoanRepaid
	}
	return LoanOpen
}

// LoanStatus is where a loan contract stands.
type LoanStatus string

// Loan statuses.
const (
	// LoanOpen: something is outstanding.
	LoanOpen LoanStatus = "open"
	// LoanRepaid: repaid and recovered in full.
	LoanRepaid LoanStatus = "repaid"
)

// RepaymentKind is where money recorded against a loan came from.
type RepaymentKind string

// Repayment kinds.
const (
	// KindRepayment: the borrower repaid.
	KindRepayment RepaymentKind = "REPAYMENT"
	// KindRecovery: an overdue loan was recovered.
	KindRecovery RepaymentKind = "RECOVERY"
)

// Repayment is money the bank reported against a loan contract, recorded
// once by a finance officer and never changed.
type Repayment struct {
	ID             string
	ContractNumber string
	Kind           RepaymentKind
	AmountFen      int64
	// BankReference is the bank's reference of the transfer: unique across
	// the loan book, it makes recording idempotent.
	BankReference string
	// PaidOn is the day the money arrived (UTC midnight).
	PaidOn     time.Time
	Reason     string
	RecordedBy string
	RecordedAt time.Time
}

// SameAs reports whether r records the same money as o: a repeated request
// under one bank reference.
func (r Repayment) SameAs(o Repayment) bool {
	return r.ContractNumber == o.ContractNumber && r.Kind == o.Kind && r.AmountFen == o.AmountFen &&
		r.BankReference == o.BankReference && r.PaidOn.Equal(o.PaidOn) && r.Reason == o.Reason
}

// Errors of the loan book.
var (
	// ErrExceedsOutstanding: the repayment is more than the contract still owes.
	ErrExceedsOutstanding = errors.New("more than is outstanding")
	// ErrBankReferenceReused: the bank reference is recorded for other money.
	ErrBankReferenceReused = errors.New("bank reference already recorded for another repayment")
)

// Apply returns the contract with r added to its totals. Returns
// ErrExceedsOutstanding, with the figures in the message, when r is more
// than is outstanding, and an error for an amount that is not positive or
// an unknown kind.
func (c LoanContract) Apply(r Repayment) (LoanContract, error) {
	switch {
	case r.AmountFen <= 0:
		return c, fmt.Errorf("repayment of %d fen: the amount must be positive", r.AmountFen)
	case r.AmountFen > c.OutstandingFen():
		return c, fmt.Errorf("%w: contract %s has %d fen outstanding (%d fen lent, %d repaid, %d recovered); %d fen is more",
			ErrExceedsOutstanding, c.ContractNumber, c.OutstandingFen(), c.AmountFen, c.RepaidFen, c.RecoveredFen, r.AmountFen)
	}
	switch r.Kind {
	case KindRepayment:
		c.RepaidFen += r.AmountFen
	case KindRecovery:
		c.RecoveredFen += r.AmountFen
	default:
		return c, fmt.Errorf("repayment of kind %q", r.Kind)
	}
	return c, nil
}

// LoanFilter narrows the loan book; empty fields match everything.
type LoanFilter struct {
	Term       string
	SchoolCode string
	Status     LoanStatus
}

// LoanBookTotals sum the contracts a filter selects, in fen.
type LoanBookTotals struct {
	Contracts      int64
	AmountFen      int64
	RepaidFen      int64
	RecoveredFen   int64
	OutstandingFen int64
}
