// Package domain holds the bureau review's rules: the review item's state
// machine (pending → approved or rejected; finance may send an approved item
// back to pending) and separation of duties between submitter, school
// reviewer and bureau reviewer. It does no I/O.
package domain

import (
	"errors"
	"fmt"
	"time"

	"github.com/edubureau/studentaid/pkg/review"
)

// State is where an item stands in the bureau's review.
type State string

// The review states.
const (
	// StatePending waits for a bureau reviewer.
	StatePending State = "PENDING"
	// StateApproved was approved by the bureau; finance batches it next.
	StateApproved State = "APPROVED"
	// StateRejected was rejected by the bureau. Final.
	StateRejected State = "REJECTED"
)

// ParseState returns the State named s.
func ParseState(s string) (State, error) {
	switch st := State(s); st {
	case StatePending, StateApproved, StateRejected:
		return st, nil
	}
	return "", fmt.Errorf("unknown review state %q", s)
}

// MaxReasonRunes caps reasons.
const MaxReasonRunes = review.MaxReasonRunes

// Errors of the review rules. Compare with errors.Is.
var (
	// ErrIllegalTransition means the item's state does not allow the action.
	ErrIllegalTransition = review.ErrIllegalTransition
	// ErrSubmitterCannotReview means the bureau reviewer submitted the application.
	ErrSubmitterCannotReview = review.ErrSubmitterCannotReview
	// ErrSchoolReviewerCannotBureauReview means the bureau reviewer already
	// reviewed the application at the school.
	ErrSchoolReviewerCannotBureauReview = errors.New("the school reviewer of an application cannot review it for the bureau")
	// ErrReasonRequired means a rejection has no reason.
	ErrReasonRequired = review.ErrReasonRequired
	// ErrReasonInvalid means a reason is too long or not valid UTF-8.
	ErrReasonInvalid = review.ErrReasonInvalid
)

// TransitionError says which action an item's state refused.
type TransitionError = review.TransitionError[State]

// Review is one school-approved application under the bureau's review: the
// fields every review item has (review.Item; its trace context is the
// notice_passed consumer span's) and the bureau's own.
type Review struct {
	review.Item[State]
	HardshipLevel  string
	SchoolReviewer string
	// Returns counts how many times finance sent the item back.
	Returns int32
	// FlagsShown are the review-time flag kinds the reviewer was shown when
	// deciding (catalog.FlagKind values); empty while pending.
	FlagsShown []string
}

// Decision is a bureau reviewer's verdict on one item.
type Decision struct {
	ApplicationID string
	Approve       bool
	// Reason is required when rejecting.
	Reason string
	// FlagsShown are the review-time flag kinds the reviewer saw.
	FlagsShown []string
}

// Application is the ID of the application d is about.
func (d Decision) Application() string { return d.ApplicationID }

// CheckReason validates a reason (review.CheckReason).
func CheckReason(reason string, required bool) error { return review.CheckReason(reason, required) }

// Decide applies a bureau reviewer's decision at now. Returns
// ErrSchoolReviewerCannotBureauReview or ErrSubmitterCannotReview when the
// reviewer already acted on the application, a *TransitionError unless the
// item is pending, and ErrReasonRequired for a rejection without reason.
func (r *Review) Decide(d Decision, reviewer string, now time.Time) error {
	if reviewer == r.SchoolReviewer {
		return ErrSchoolReviewerCannotBureauReview
	}
	if reviewer == r.SubmittedBy {
		return ErrSubmitterCannotReview
	}
	action := "reject"
	if d.Approve {
		action = "approve"
	}
	if r.State != StatePending {
		return &TransitionError{ApplicationID: r.ApplicationID, From: r.State, Action: action}
	}
	if err := CheckReason(d.Reason, !d.Approve); err != nil {
		return err
	}
	r.State = StateRejected
	if d.Approve {
		r.State = StateApproved
	}
	r.Reason = d.Reason
	r.Reviewer = reviewer
	r.FlagsShown = d.FlagsShown
	r.UpdatedAt = now
	return nil
}

// ReturnFromFinance sends an approved item back to pending because a
// finance officer returned it with reason. Returns a *TransitionError unless
// the item is approved.
func (r *Review) ReturnFromFinance(reason string, now time.Time) error {
	if r.State != StateApproved {
		return &TransitionError{ApplicationID: r.ApplicationID, From: r.State, Action: "take it back from finance"}
	}
	r.State = StatePending
	r.Reason = reason
	r.Reviewer = ""
	r.FlagsShown = nil
	r.Returns++
	r.UpdatedAt = now
	return nil
}
