package domain

import (
	"errors"
	"fmt"
	"time"
)

// Refund statuses.
const (
	RefundOpen   = "open"
	RefundClosed = "closed"
)

// Refund is a receivable recovering an ineligible payment. It is linked to
// the payment record and never changes it.
type Refund struct {
	ID          string
	ClueID      string
	RecordID    string
	PaymentID   string
	SchoolCode  string
	ProgramCode string
	Term        string
	AmountFen   int64
	ReceivedFen int64
	Status      string
	Account     string
	Receipts    []Receipt
	OpenedAt    time.Time
	ClosedAt    time.Time
}

// Receipt is money received into the integrity account for a refund.
type Receipt struct {
	AmountFen  int64
	BankRef    string
	Account    string
	ReceivedAt time.Time
	RecordedBy string
}

// Errors of receiving money; each names its rule.
var (
	// ErrWrongAccount: refunds are received only into the integrity account (廉政账户).
	ErrWrongAccount = errors.New("receipt-not-into-integrity-account")
	// ErrOverReceipt: a receipt may not exceed what is outstanding.
	ErrOverReceipt = errors.New("receipt-exceeds-outstanding")
	// ErrRefundClosed: a closed refund takes no more receipts.
	ErrRefundClosed = errors.New("refund-closed")
)

// Outstanding is what is still to recover.
func (r *Refund) Outstanding() int64 { return r.AmountFen - r.ReceivedFen }

// Receive applies rc, recorded at now; the refund closes when nothing is
// outstanding. integrity is the configured integrity account.
func (r *Refund) Receive(rc Receipt, integrity string, now time.Time) error {
	switch {
	case r.Status == RefundClosed:
		return fmt.Errorf("%w: refund %s is fully recovered", ErrRefundClosed, r.ID)
	case rc.Account != integrity:
		return fmt.Errorf("%w: refunds are received into the integrity account %s, not %s", ErrWrongAccount, integrity, rc.Account)
	case rc.AmountFen <= 0 || rc.AmountFen > r.Outstanding():
		return fmt.Errorf("%w: %d fen received against %d fen outstanding on refund %s", ErrOverReceipt, rc.AmountFen, r.Outstanding(), r.ID)
	}
	r.ReceivedFen += rc.AmountFen
	r.Receipts = append(r.Receipts, rc)
	if r.Outstanding() == 0 {
		r.Status, r.ClosedAt = RefundClosed, now
	}
	return nil
}
