package domain

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxReasonRunes bounds a return reason.
const MaxReasonRunes = 500

// Item is one application's place in a batch.
type Item struct {
	BatchID       string
	ApplicationID string
	SchoolCode    string
	AmountFen     int64
	Status        ItemStatus
	// Reason is why the item was returned, or the bank's reason code for a
	// failed payment.
	Reason    string
	PaymentID string
	// Attempt numbers the payment orders of the item: 1 on confirmation,
	// one more per reissue.
	Attempt int32
	// Corrected: the school corrected the payee after the latest failure.
	Corrected bool
	Reviewers
}

// Return sends a PENDING item back to the bureau for reason.
func (i *Item) Return(reason string) error {
	reason = strings.TrimSpace(reason)
	if reason == "" || !utf8.ValidString(reason) || utf8.RuneCountInString(reason) > MaxReasonRunes {
		return fmt.Errorf("%w: give 1 to %d characters", ErrReasonRequired, MaxReasonRunes)
	}
	if i.Status != ItemPending {
		return fmt.Errorf("%w: only a pending item can be returned; this one is %s", ErrIllegalTransition, i.Status)
	}
	i.Status = ItemReturned
	i.Reason = reason
	return nil
}

// Reissue orders a FAILED, corrected item's payment again under a new paymentID.
func (i *Item) Reissue(paymentID string) error {
	if i.Status != ItemFailed {
		return fmt.Errorf("%w: only a failed item can be reissued; this one is %s", ErrIllegalTransition, i.Status)
	}
	if !i.Corrected {
		return fmt.Errorf("%w: the school has not corrected the payee since the payment failed", ErrNotCorrected)
	}
	if paymentID == i.PaymentID {
		return fmt.Errorf("%w: a reissue needs a new payment ID", ErrIllegalTransition)
	}
	i.Status = ItemOrdered
	i.PaymentID = paymentID
	i.Attempt++
	i.Reason = ""
	i.Corrected = false
	return nil
}
