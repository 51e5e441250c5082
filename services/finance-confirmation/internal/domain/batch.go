// Package domain holds the finance bureau's rules for payment batches: the
// control count and sum check, which transitions a batch and its items may
// make, and who may order payment. The rules applied to a whole set of items
// at once (gathering approvals into batches, ordering a confirmed batch's
// items, recording payment results) are set-based statements in adapters.
// It does no I/O.
package domain

import (
	"errors"
	"fmt"
	"time"

	"github.com/edubureau/studentaid/pkg/auth"
)

// BatchStatus is where a payment batch stands.
type BatchStatus string

// Batch statuses. A batch is OPEN while it takes new items, CLOSED once an
// officer froze it for checking, and CONFIRMED once the finance bureau
// confirmed its control totals and payment was ordered.
const (
	BatchOpen      BatchStatus = "OPEN"
	BatchClosed    BatchStatus = "CLOSED"
	BatchConfirmed BatchStatus = "CONFIRMED"
)

// ItemStatus is where one item of a batch stands.
type ItemStatus string

// Item statuses.
const (
	// ItemPending: in the batch, counted in its control totals, not yet confirmed.
	ItemPending ItemStatus = "PENDING"
	// ItemReturned: a finance officer sent it back to the bureau; out of the totals.
	ItemReturned ItemStatus = "RETURNED"
	// ItemOrdered: the batch was confirmed (or the item reissued); payout pays it.
	ItemOrdered ItemStatus = "ORDERED"
	// ItemPaid: the bank credited the payee.
	ItemPaid ItemStatus = "PAID"
	// ItemFailed: the bank returned the payment; it may be reissued once the
	// school corrected the payee.
	ItemFailed ItemStatus = "FAILED"
)

// Sentinel errors of the domain. The messages are shown to finance officers.
var (
	// ErrIllegalTransition: the batch or item is not in a state that allows the change.
	ErrIllegalTransition = errors.New("illegal transition")
	// ErrTotalsChanged: the officer confirmed totals that are not the batch's.
	ErrTotalsChanged = errors.New("batch totals changed")
	// ErrEmptyBatch: a batch without items cannot be confirmed.
	ErrEmptyBatch = errors.New("empty batch")
	// ErrInvalidAmount: an item amount must be positive.
	ErrInvalidAmount = errors.New("invalid amount")
	// ErrNotCorrected: a failed item can be reissued only after the payee was corrected.
	ErrNotCorrected = errors.New("payee not corrected")
	// ErrReasonRequired: a return needs a reason.
	ErrReasonRequired = errors.New("reason required")
	// ErrNotConfirmer: the officer's role does not order payments.
	ErrNotConfirmer = errors.New("role does not order payments")
	// ErrReviewedOwnItem: separation of duties; the confirmer reviewed or submitted an item.
	ErrReviewedOwnItem = errors.New("confirmer reviewed or submitted an item")
	// ErrCloserConfirms: separation of duties; the officer who closed a
	// batch may not confirm it.
	ErrCloserConfirms = errors.New("the officer who closed the batch may not confirm it")
)

// ErrTotalsMismatch: a batch's control totals disagree with its items. It
// means a bug or a manual edit; nothing is ordered.
var ErrTotalsMismatch = errors.New("batch control totals disagree with its items")

// Batch is a payment batch: the items of one term, program and funding
// source, with the control count and control sum of its PENDING items.
type Batch struct {
	ID            string
	Term          string
	ProgramCode   string
	FundingSource string
	Status        BatchStatus
	// ControlCount and ControlSumFen count the batch's PENDING items before
	// confirmation, and the confirmed (ordered) items after.
	ControlCount  int64
	ControlSumFen int64
	PaidCount     int64
	PaidSumFen    int64
	// FailedCount is the number of items whose latest payment failed and
	// that were not reissued yet.
	FailedCount int64
	// ClosedBy and ClosedByOrg are who closed the batch: the first of the
	// two finance officers it takes.
	ClosedBy    string
	ClosedByOrg string
	ConfirmedBy string
	CreatedAt   time.Time
	ConfirmedAt time.Time
}

// TotalsError says what the officer saw and what the batch holds now.
type TotalsError struct {
	SawCount, SawSumFen int64
	NowCount, NowSumFen int64
}

// Error is the message the finance officer sees.
func (e *TotalsError) Error() string {
	return fmt.Sprintf("batch totals changed: you saw %d items / %d fen, the batch now holds %d / %d; reload and check again",
		e.SawCount, e.SawSumFen, e.NowCount, e.NowSumFen)
}

// Unwrap makes errors.Is(err, ErrTotalsChanged) hold.
func (e *TotalsError) Unwrap() error { return ErrTotalsChanged }

// RemoveItem takes a returned PENDING item out of the control totals. Only
// an unconfirmed batch gives items back.
func (b *Batch) RemoveItem(amountFen int64) error {
	if amountFen <= 0 {
		return fmt.Errorf("%w: %d fen", ErrInvalidAmount, amountFen)
	}
	if b.Status != BatchOpen && b.Status != BatchClosed {
		return fmt.Errorf("%w: items of a %s batch cannot be returned", ErrIllegalTransition, b.Status)
	}
	if b.ControlCount < 1 || b.ControlSumFen < amountFen {
		return fmt.Errorf("%w: the batch totals (%d items / %d fen) do not hold an item of %d fen",
			ErrIllegalTransition, b.ControlCount, b.ControlSumFen, amountFen)
	}
	b.ControlCount--
	b.ControlSumFen -= amountFen
	return nil
}

// Close stops an OPEN batch from taking new items; officer is recorded as
// the one who closed it.
func (b *Batch) Close(officer auth.Identity) error {
	if b.Status != BatchOpen {
		return fmt.Errorf("%w: only an open batch can be closed; this one is %s", ErrIllegalTransition, b.Status)
	}
	b.Status = BatchClosed
	b.ClosedBy, b.ClosedByOrg = officer.UserID, officer.Org
	return nil
}

// closedBy reports whether officer is the one who closed the batch: the
// same user of the same organisation (a batch closed before organisations
// were recorded compares the user alone).
func (b *Batch) closedBy(officer auth.Identity) bool {
	return b.ClosedBy != "" && officer.UserID == b.ClosedBy && (b.ClosedByOrg == "" || officer.Org == b.ClosedByOrg)
}

// Confirm confirms a CLOSED batch by officer at at, provided officer is not
// the one who closed it, the totals the officer quotes are the batch's and
// it is not empty: the control count and sum check. Closing and confirming
// take two finance officers. Who may order payment of the items is
// CheckConfirmer's to decide, over the items the confirmation orders.
func (b *Batch) Confirm(officer auth.Identity, sawCount, sawSumFen int64, at time.Time) error {
	switch b.Status {
	case BatchClosed:
	case BatchOpen:
		return fmt.Errorf("%w: the batch is still open; one finance officer closes it, a second one confirms it", ErrIllegalTransition)
	default:
		return fmt.Errorf("%w: the batch is already %s", ErrIllegalTransition, b.Status)
	}
	if b.closedBy(officer) {
		return ErrCloserConfirms
	}
	if sawCount != b.ControlCount || sawSumFen != b.ControlSumFen {
		return &TotalsError{SawCount: sawCount, SawSumFen: sawSumFen, NowCount: b.ControlCount, NowSumFen: b.ControlSumFen}
	}
	if b.ControlCount == 0 {
		return fmt.Errorf("%w: the batch holds no items", ErrEmptyBatch)
	}
	b.Status = BatchConfirmed
	b.ConfirmedBy = officer.UserID
	b.ConfirmedAt = at.UTC()
	return nil
}

// RecordReissued takes a failed item out of the failed count: it is being paid again.
func (b *Batch) RecordReissued() error {
	if b.Status != BatchConfirmed || b.FailedCount < 1 {
		return fmt.Errorf("%w: the batch has no failed item to reissue", ErrIllegalTransition)
	}
	b.FailedCount--
	return nil
}

// CheckOrdered checks that the items a confirmation ordered are the ones the
// confirmed control totals count: the same number, adding up to the same
// sum. Returns ErrTotalsMismatch otherwise.
func (b *Batch) CheckOrdered(items []Item) error {
	var sum int64
	for _, it := range items {
		sum += it.AmountFen
	}
	if int64(len(items)) != b.ControlCount || sum != b.ControlSumFen {
		return fmt.Errorf("batch %s: %w: row %d / %d fen, items %d / %d fen",
			b.ID, ErrTotalsMismatch, b.ControlCount, b.ControlSumFen, len(items), sum)
	}
	return nil
}
