// Package domain holds the application service's rules: the status machine
// an application moves through from submission to payout, the hash-chained
// trail of everything that happened to it, and how personal data is masked.
// It does no I/O.
package domain

import (
	"errors"
	"fmt"
	"slices"
)

// Status is where an application stands in the approval chain.
type Status string

// The statuses, in the order of the approval chain.
const (
	StatusSubmitted      Status = "SUBMITTED"
	StatusInNotice       Status = "IN_NOTICE"
	StatusSchoolRejected Status = "SCHOOL_REJECTED"
	StatusSchoolApproved Status = "SCHOOL_APPROVED"
	StatusBureauRejected Status = "BUREAU_REJECTED"
	StatusBureauApproved Status = "BUREAU_APPROVED"
	StatusConfirmed      Status = "CONFIRMED"
	StatusPaid           Status = "PAID"
	StatusPaymentFailed  Status = "PAYMENT_FAILED"
	// StatusWithdrawn: the school withdrew it before its review decided.
	StatusWithdrawn Status = "WITHDRAWN"
)

// Statuses lists every status.
var Statuses = []Status{StatusSubmitted, StatusInNotice, StatusSchoolRejected, StatusSchoolApproved,
	StatusBureauRejected, StatusBureauApproved, StatusConfirmed, StatusPaid, StatusPaymentFailed, StatusWithdrawn}

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	return slices.Contains(Statuses, s)
}

// Live reports whether an application in status s counts for the rule of
// one application per student, program and term: every status but a
// rejection (by the school or the bureau) and a withdrawal, all final, so an
// application never becomes live again. The unique index
// applications_one_live_per_student_program_term enforces the rule over the
// column live, which the adapters set from this.
func (s Status) Live() bool {
	switch s {
	case StatusSchoolRejected, StatusBureauRejected, StatusWithdrawn:
		return false
	default:
		return true
	}
}

// Kind is the kind of fact that moves an application: the versioned event
// type that records it ("schoolreview.approved.v1").
type Kind string

// The kinds of change, named by their event types.
const (
	KindSubmitted        Kind = "application.submitted.v1"
	KindPayeeCorrected   Kind = "application.payee_corrected.v1"
	KindSchoolApproved   Kind = "schoolreview.approved.v1"
	KindSchoolRejected   Kind = "schoolreview.rejected.v1"
	KindNoticeObjected   Kind = "schoolreview.notice_objected.v1"
	KindNoticePassed     Kind = "schoolreview.notice_passed.v1"
	KindBureauApproved   Kind = "bureaureview.approved.v1"
	KindBureauRejected   Kind = "bureaureview.rejected.v1"
	KindItemBatched      Kind = "finance.item_batched.v1"
	KindItemReturned     Kind = "finance.item_returned.v1"
	KindPaymentOrdered   Kind = "finance.payment_ordered.v1"
	KindPaymentSucceeded Kind = "payout.payment_succeeded.v1"
	KindPaymentFailed    Kind = "payout.payment_failed.v1"
	// KindWithdrawn: the school withdrew the application (school-review
	// owns the withdrawal, so it is decided against the review's state).
	KindWithdrawn Kind = "schoolreview.withdrawn.v1"
	// KindPayeeCorrectionEntered and KindPayeeCorrectionRejected record the
	// first and the refused second step of a payee correction in the trail;
	// they are not published (nothing outside the service acts on them).
	// The approval is KindPayeeCorrected.
	KindPayeeCorrectionEntered  Kind = "application.payee_correction_entered.v1"
	KindPayeeCorrectionRejected Kind = "application.payee_correction_rejected.v1"
)

// Kinds lists every kind of change that is an event.
var Kinds = []Kind{KindSubmitted, KindPayeeCorrected, KindSchoolApproved, KindSchoolRejected, KindNoticeObjected,
	KindNoticePassed, KindBureauApproved, KindBureauRejected, KindItemBatched, KindItemReturned,
	KindPaymentOrdered, KindPaymentSucceeded, KindPaymentFailed, KindWithdrawn}

// TrailOnlyKinds lists the kinds of change the trail records that are not
// published.
var TrailOnlyKinds = []Kind{KindPayeeCorrectionEntered, KindPayeeCorrectionRejected}

// Errors returned, wrapped with detail, by Apply. Compare with errors.Is.
var (
	// ErrNotYet means the change is not allowed now but may be once an
	// earlier change arrives (the events were delivered out of order).
	ErrNotYet = errors.New("change arrived before its prerequisite")
	// ErrImpossible means the change can never apply to the application in
	// its current state, whatever arrives later.
	ErrImpossible = errors.New("change is impossible in the application's state")
)

// State is the part of an application that changes as it moves along the
// chain. The zero State is an application that does not exist yet.
type State struct {
	Status Status
	// HardshipLevel is set by the school's approval; empty until then.
	HardshipLevel string
	// AmountFen is the amount to be paid, in fen.
	AmountFen int64
	// BatchID is the payment batch holding the application, if any.
	BatchID string
	// PaymentID is the latest payment ordered, if any.
	PaymentID string
	// Reason says why the last step refused or failed it, if it did.
	Reason string
}

// Change is one fact about an application, reduced to what the status
// machine needs.
type Change struct {
	Kind          Kind
	HardshipLevel string
	// AmountFen is the amount the fact carries; see HasAmount.
	AmountFen int64
	BatchID   string
	PaymentID string
	Reason    string
}

// HasAmount reports whether the kind of change carries an amount of its own
// (the others leave the application's amount as it is).
func (c Change) HasAmount() bool {
	switch c.Kind {
	case KindSubmitted, KindSchoolApproved, KindItemBatched, KindPaymentOrdered, KindPaymentSucceeded, KindPaymentFailed:
		return true
	default:
		return false
	}
}

// node is a position in the status machine. Whether the application sits in
// a payment batch matters as much as its status: finance can only return or
// pay a batched item.
type node struct {
	status  Status
	batched bool
}

// transitions is the status machine: from a node, each kind of change leads
// to one node. Anything not listed is refused.
var transitions = map[node]map[Kind]node{
	{status: ""}: {
		KindSubmitted: {status: StatusSubmitted},
	},
	{status: StatusSubmitted}: {
		KindSchoolApproved: {status: StatusInNotice},
		KindSchoolRejected: {status: StatusSchoolRejected},
		KindWithdrawn:      {status: StatusWithdrawn},
	},
	{status: StatusInNotice}: {
		KindNoticeObjected: {status: StatusSubmitted},
		KindNoticePassed:   {status: StatusSchoolApproved},
	},
	{status: StatusSchoolApproved}: {
		KindBureauApproved: {status: StatusBureauApproved},
		KindBureauRejected: {status: StatusBureauRejected},
	},
	{status: StatusBureauApproved}: {
		KindItemBatched: {status: StatusBureauApproved, batched: true},
	},
	{status: StatusBureauApproved, batched: true}: {
		KindItemReturned:   {status: StatusSchoolApproved},
		KindPaymentOrdered: {status: StatusConfirmed, batched: true},
	},
	{status: StatusConfirmed, batched: true}: {
		KindPaymentSucceeded: {status: StatusPaid, batched: true},
		KindPaymentFailed:    {status: StatusPaymentFailed, batched: true},
	},
	{status: StatusPaymentFailed, batched: true}: {
		KindPayeeCorrectionEntered:  {status: StatusPaymentFailed, batched: true},
		KindPayeeCorrectionRejected: {status: StatusPaymentFailed, batched: true},
		KindPayeeCorrected:          {status: StatusPaymentFailed, batched: true},
		KindPaymentOrdered:          {status: StatusConfirmed, batched: true},
	},
}

// Apply returns the state after c, or an error wrapping ErrNotYet when c is
// not allowed now but will be after changes that may still arrive, or
// ErrImpossible when no later state allows it.
func Apply(s State, c Change) (State, error) {
	from := node{status: s.Status, batched: s.BatchID != ""}
	to, ok := transitions[from][c.Kind]
	if !ok {
		if reachable(from, c.Kind) {
			return s, fmt.Errorf("%w: %s cannot follow %s yet", ErrNotYet, c.Kind, describe(from))
		}
		return s, fmt.Errorf("%w: %s cannot follow %s", ErrImpossible, c.Kind, describe(from))
	}
	if err := checkKeys(s, c); err != nil {
		return s, err
	}
	next := s
	next.Status = to.status
	switch c.Kind {
	case KindSubmitted:
		next = State{Status: to.status, AmountFen: c.AmountFen}
	case KindSchoolApproved:
		next.HardshipLevel, next.AmountFen, next.Reason = c.HardshipLevel, c.AmountFen, ""
	case KindSchoolRejected, KindNoticeObjected, KindBureauRejected, KindPaymentFailed, KindWithdrawn:
		next.Reason = c.Reason
	case KindNoticePassed, KindBureauApproved, KindPaymentSucceeded:
		next.Reason = ""
	case KindItemBatched:
		next.BatchID, next.Reason = c.BatchID, ""
	case KindItemReturned:
		next.BatchID, next.PaymentID, next.Reason = "", "", c.Reason
	case KindPaymentOrdered:
		next.PaymentID, next.Reason = c.PaymentID, ""
	case KindPayeeCorrected, KindPayeeCorrectionEntered, KindPayeeCorrectionRejected:
		// Still failed until the payment is ordered again; the reason stays.
	}
	return next, nil
}

// checkKeys refuses a change whose batch or payment does not match the
// application's, once the status machine has allowed its kind.
func checkKeys(s State, c Change) error {
	switch c.Kind {
	case KindItemBatched:
		if c.BatchID == "" {
			return fmt.Errorf("%w: %s without a batch", ErrImpossible, c.Kind)
		}
	case KindPaymentOrdered:
		if c.BatchID != "" && c.BatchID != s.BatchID {
			// Ordered from another batch: the item must first be returned
			// from this one and batched again.
			return fmt.Errorf("%w: %s for batch %s, application is in batch %s", ErrNotYet, c.Kind, c.BatchID, s.BatchID)
		}
	case KindPaymentSucceeded, KindPaymentFailed:
		if c.PaymentID != "" && s.PaymentID != "" && c.PaymentID != s.PaymentID {
			// The bank answered a later order than the one the application
			// knows of: the failure and the reissue are still on their way.
			return fmt.Errorf("%w: %s for payment %s, application awaits payment %s", ErrNotYet, c.Kind, c.PaymentID, s.PaymentID)
		}
	default:
		// The other kinds carry no keys of their own to check.
	}
	return nil
}

// reachable reports whether some node reachable from n (n itself excluded)
// allows kind.
func reachable(n node, kind Kind) bool {
	seen := map[node]bool{n: true}
	queue := []node{n}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, next := range transitions[cur] {
			if seen[next] {
				continue
			}
			if _, ok := transitions[next][kind]; ok {
				return true
			}
			seen[next] = true
			queue = append(queue, next)
		}
	}
	return false
}

func describe(n node) string {
	switch {
	case n.status == "":
		return "a missing application"
	case n.batched && n.status == StatusBureauApproved:
		return "status BUREAU_APPROVED (batched)"
	default:
		return "status " + string(n.status)
	}
}

// Terminal reports whether no change can ever follow s.
func (s Status) Terminal() bool {
	for n, out := range transitions {
		if n.status == s && len(out) > 0 {
			return false
		}
	}
	return true
}
