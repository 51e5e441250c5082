package domain

import (
	"errors"
	"fmt"
)

// Reasons payout refuses an order, or a manifest that would prove orders,
// for good: the label values of aid_payout_orders_refused_total. Each is a
// sign of forgery or of a fault in finance and pages the operator.
const (
	// RefusedNotInManifest: the batch's verified manifest does not list the application.
	RefusedNotInManifest = "not_in_manifest"
	// RefusedAmount: the order's amount is not the manifest's.
	RefusedAmount = "amount_mismatch"
	// RefusedBatchKeys: the order names another program or term than its batch's manifest.
	RefusedBatchKeys = "batch_mismatch"
	// RefusedPaymentID: a first order under a payment ID the manifest does not give.
	RefusedPaymentID = "payment_id_mismatch"
	// RefusedReissueSignature: a reissue without finance's valid signature.
	RefusedReissueSignature = "reissue_signature"
	// RefusedAlreadyPaid: the application already has an open or paid payment.
	RefusedAlreadyPaid = "already_paid"
	// RefusedManifestUnknownKey: a manifest header signed by a key payout does not know.
	RefusedManifestUnknownKey = "manifest_unknown_key"
	// RefusedManifestSignature: a manifest header whose signature does not verify.
	RefusedManifestSignature = "manifest_signature"
	// RefusedManifestMalformed: a header that cannot be read or encoded canonically.
	RefusedManifestMalformed = "manifest_malformed"
	// RefusedManifestConflict: a second, different header for a batch.
	RefusedManifestConflict = "manifest_conflict"
	// RefusedManifestPart: a part that is not the one the signed header names.
	RefusedManifestPart = "manifest_part"
	// RefusedManifestTotals: parts that do not add up to the header's control totals.
	RefusedManifestTotals = "manifest_totals"
)

// RefusedReasons are all the reasons, for metrics that start at zero.
var RefusedReasons = []string{
	RefusedNotInManifest, RefusedAmount, RefusedBatchKeys, RefusedPaymentID, RefusedReissueSignature, RefusedAlreadyPaid,
	RefusedManifestUnknownKey, RefusedManifestSignature, RefusedManifestMalformed, RefusedManifestConflict,
	RefusedManifestPart, RefusedManifestTotals,
}

// ErrRefused matches every RefusedError.
var ErrRefused = errors.New("refused")

// ErrManifestNotYet: the order's batch has no verified manifest yet.
var ErrManifestNotYet = errors.New("the batch's manifest is not verified yet")

// RefusedError is an order or manifest refused for good, with its reason.
type RefusedError struct {
	Reason string
	Err    error
}

// Refuse returns a RefusedError for reason with a message.
func Refuse(reason, format string, args ...any) *RefusedError {
	return &RefusedError{Reason: reason, Err: fmt.Errorf(format, args...)}
}

func (e *RefusedError) Error() string { return e.Reason + ": " + e.Err.Error() }

// Unwrap makes errors.Is(err, ErrRefused) hold, and the cause reachable.
func (e *RefusedError) Unwrap() []error { return []error{ErrRefused, e.Err} }

// ManifestEntry is what a batch's manifest says about one application.
type ManifestEntry struct {
	// Verified: the batch's manifest is complete and verified.
	Verified bool
	// Listed: the manifest lists the application.
	Listed    bool
	PaymentID string
	AmountFen int64
	// ProgramCode and Term are the manifest header's.
	ProgramCode string
	Term        string
}

// CheckAgainst decides whether the manifest entry e proves o: the batch's
// manifest is verified (else ErrManifestNotYet), is of the order's program
// and term, lists the application with the same amount, and, for a first
// order, under the same payment ID. A
// reissue's signature is checked by the caller, which holds the keys.
func (o Order) CheckAgainst(e ManifestEntry) error {
	switch {
	case !e.Verified:
		return fmt.Errorf("payment %s of batch %s: %w", o.PaymentID, o.BatchID, ErrManifestNotYet)
	case !e.Listed:
		return Refuse(RefusedNotInManifest, "payment %s: batch %s's manifest does not list application %s", o.PaymentID, o.BatchID, o.ApplicationID)
	case o.ProgramCode != e.ProgramCode || o.Term != e.Term:
		return Refuse(RefusedBatchKeys, "payment %s: batch %s is of %s %s, the order says %s %s", o.PaymentID, o.BatchID, e.ProgramCode, e.Term, o.ProgramCode, o.Term)
	case o.AmountFen != e.AmountFen:
		return Refuse(RefusedAmount, "payment %s of application %s: %d fen ordered, the manifest says %d", o.PaymentID, o.ApplicationID, o.AmountFen, e.AmountFen)
	case o.Attempt == 1 && e.PaymentID != "" && o.PaymentID != e.PaymentID:
		return Refuse(RefusedPaymentID, "payment %s of application %s: the manifest orders it as payment %s", o.PaymentID, o.ApplicationID, e.PaymentID)
	}
	return nil
}
