// Package domain holds payout's rules: the life of one payment from its
// order to the bank's verdict, what each answer of the bank leads to, how
// long to wait before asking the bank again when its answer was lost, and
// what a loan contract owes as repayments and recoveries are recorded
// against it. It does no I/O.
package domain

import (
	"errors"
	"fmt"
	"time"
)

// Status is where a payment stands.
type Status string

// Payment statuses.
const (
	// Pending: ordered by finance, never sent to the bank.
	Pending Status = "PENDING"
	// Unknown: sent, or about to be sent, and the bank's verdict is not
	// known. It is never sent blind again: the bank is asked first.
	Unknown Status = "UNKNOWN"
	// Paid: the bank credited the payee.
	Paid Status = "PAID"
	// Failed: the bank returned the payment, or refused it as malformed.
	Failed Status = "FAILED"
)

// Final reports whether s is a verdict that never changes.
func (s Status) Final() bool { return s == Paid || s == Failed }

// Reasons payout itself gives for a failed payment, beside the bank's codes.
const (
	// ReasonInvalidPayment: the bank refused the request as malformed and executed nothing.
	ReasonInvalidPayment = "INVALID_PAYMENT"
	// ReasonPayeeUnreadable: the sealed card or name could not be opened; nothing was sent.
	ReasonPayeeUnreadable = "PAYEE_UNREADABLE"
)

// ErrIllegalTransition: the payment is not in a state that allows the change.
var ErrIllegalTransition = errors.New("illegal payment transition")

// Payee is an application's payee as the application service last
// described it: the card number and account name sealed as received, never
// opened except in memory just before a bank call.
type Payee struct {
	ApplicationID string
	CardSealed    []byte
	NameSealed    []byte
	CardMasked    string
	// EventID and At are the describing event's: the newest description wins.
	EventID string
	At      time.Time
}

// Order is a payment finance ordered: one credit of AmountFen to the
// application's payee.
type Order struct {
	PaymentID     string
	ApplicationID string
	BatchID       string
	SchoolCode    string
	ProgramCode   string
	Term          string
	AmountFen     int64
	// Attempt is finance's attempt number of the item (1, then one more per reissue).
	Attempt int32
	// ReissueKeyID and ReissueSignature are finance's signature over a
	// reissue (Attempt > 1); a first order is proven by its batch's manifest.
	ReissueKeyID     string
	ReissueSignature []byte
}

// FundingBankLoan is the funding source of loan programs (生源地信用助学贷款):
// a payment of such a batch opens a loan contract with the bank instead of
// crediting the card.
const FundingBankLoan = "bank_loan"

// Payment is an ordered credit to a payee, and what became of it.
type Payment struct {
	Order
	// FundingSource is the funding source of the payment's batch, from its
	// signed manifest header; FundingBankLoan makes the payment a loan.
	FundingSource string
	// LoanContractNumber is the contract the bank opened for a paid loan.
	LoanContractNumber string
	// CardMasked is the payee's card as shown to people.
	CardMasked string
	Status     Status
	Reason     string
	BankRef    string
	// Attempts counts the times payout took the payment up to send it or
	// to ask the bank about it.
	Attempts  int32
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Loan reports whether the payment is a loan: the bank opens a contract for
// it and credits no card.
func (p *Payment) Loan() bool { return p.FundingSource == FundingBankLoan }

// PaymentFilter narrows a list of payments; empty fields match everything.
type PaymentFilter struct {
	BatchID       string
	ApplicationID string
	Status        Status
}

// PaymentCursor is the position after the last payment of a page.
type PaymentCursor struct {
	CreatedAt time.Time
	PaymentID string
}

// Step is what to do with a claimed payment.
type Step int

// Steps.
const (
	// StepPay: never sent; send it.
	StepPay Step = iota + 1
	// StepLookup: maybe sent; ask the bank first, and send it again (same key)
	// only if the bank has no record of it.
	StepLookup
)

// Claim takes the payment up for a bank call. A PENDING payment becomes
// UNKNOWN before anything is sent: if payout dies after the bank call, the
// next claim looks it up instead of paying blind. An UNKNOWN payment is
// looked up. adapters.Claim makes the same transition for many payments in
// one statement; its test runs both over the same payments.
func (p *Payment) Claim() (Step, error) {
	switch p.Status {
	case Pending:
		p.Status = Unknown
		p.Attempts++
		return StepPay, nil
	case Unknown:
		p.Attempts++
		return StepLookup, nil
	default:
		return 0, fmt.Errorf("%w: a %s payment is settled", ErrIllegalTransition, p.Status)
	}
}

// Verdict is the bank's final answer on a payment.
type Verdict struct {
	Paid    bool
	BankRef string
	// Reason is the return code of a failed payment.
	Reason string
	// ContractNumber and LoanYears are the loan contract the bank opened
	// for a paid loan; empty and 0 for a credit.
	ContractNumber string
	LoanYears      int32
}

// Settle records the bank's verdict on an UNKNOWN payment.
func (p *Payment) Settle(v Verdict) error {
	if p.Status != Unknown {
		return fmt.Errorf("%w: only a payment sent to the bank can be settled; this one is %s", ErrIllegalTransition, p.Status)
	}
	switch {
	case v.Paid && v.BankRef == "":
		return fmt.Errorf("%w: a credit without a bank reference", ErrIllegalTransition)
	case !v.Paid && v.Reason == "":
		return fmt.Errorf("%w: a failure without a reason", ErrIllegalTransition)
	case v.Paid && p.Loan() && (v.ContractNumber == "" || v.LoanYears < 1):
		return fmt.Errorf("%w: a loan paid without a contract", ErrIllegalTransition)
	case v.Paid && !p.Loan() && v.ContractNumber != "":
		return fmt.Errorf("%w: a loan contract for a payment that is not a loan", ErrIllegalTransition)
	}
	if v.Paid {
		p.Status, p.BankRef, p.Reason, p.LoanContractNumber = Paid, v.BankRef, "", v.ContractNumber
	} else {
		p.Status, p.BankRef, p.Reason = Failed, v.BankRef, v.Reason
	}
	return nil
}
