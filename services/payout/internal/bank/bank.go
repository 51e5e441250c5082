// Package bank is the payout service's side of the bank: it pays confirmed
// items to bank cards and looks up what the bank did, idempotently by key.
package bank

import (
	"context"
	"errors"
)

// Gateway pays and looks up payments at a bank. Implementations must make Pay idempotent by key.
type Gateway interface {
	// Pay credits the payee once per key. Returns a Result whose Status is Credited or Rejected (with Reason),
	// or an error wrapping ErrUnknownOutcome when the bank may or may not have executed it (timeout, 5xx, connection reset).
	// Returns ErrInvalidPayment when the bank refused the request as malformed (nothing executed), and
	// ErrKeyConflict when key was already used for a different payment.
	Pay(ctx context.Context, p Payment) (Result, error)
	// Lookup returns the bank's record of key, or ErrNotFound if the bank never executed it.
	// Any other error (wrapping ErrUnknownOutcome for timeouts and 5xx) leaves the state unknown.
	Lookup(ctx context.Context, key string) (Result, error)
	// OpenLoan asks the bank to open a loan contract once per key; the bank
	// sets the contract number and the term in years. Its errors are Pay's.
	OpenLoan(ctx context.Context, r LoanRequest) (Loan, error)
	// LookupLoan returns the loan contract opened under key, or ErrNotFound
	// if the bank never opened one. Its errors are Lookup's.
	LookupLoan(ctx context.Context, key string) (Loan, error)
}

// LoanRequest asks the bank to open a loan contract of AmountFen for the
// borrower, repaid from the borrower's card.
type LoanRequest struct {
	Key, BorrowerName, CardNumber string
	AmountFen                     int64
}

// Loan is the bank's record of a loan contract it opened.
type Loan struct {
	Key, ContractNumber string
	AmountFen           int64
	// Years is the term of the loan as the bank set it.
	Years int32
}

// Payment is one credit to a payee's bank card, in fen.
type Payment struct {
	Key, CardNumber, AccountName string
	AmountFen                    int64
}

// Result is the bank's record of a payment.
type Result struct {
	Key, BankRef string
	Status       Status
	Reason       string
	AmountFen    int64
}

// Status is the bank's final verdict on a payment.
type Status string

// Final verdicts.
const (
	// StatusCredited: the money is on the card.
	StatusCredited Status = "credited"
	// StatusRejected: the bank returned the payment; Reason holds its code.
	StatusRejected Status = "rejected"
)

// Bank return reason codes seen in Result.Reason.
const (
	ReasonAccountClosed = "ACCOUNT_CLOSED"
	ReasonNameMismatch  = "NAME_MISMATCH"
)

// Errors of a Gateway.
var (
	// ErrUnknownOutcome: the bank may or may not have executed the payment;
	// retry Pay with the same key or Lookup, never pay under a new key.
	ErrUnknownOutcome = errors.New("bank: outcome unknown")
	// ErrNotFound: the bank has no payment under the key.
	ErrNotFound = errors.New("bank: payment not found")
	// ErrInvalidPayment: the bank refused the request as malformed and executed nothing.
	ErrInvalidPayment = errors.New("bank: invalid payment")
	// ErrKeyConflict: the key already names a different payment at the bank.
	ErrKeyConflict = errors.New("bank: idempotency key used for a different payment")
)
