// Package domain holds the school review's rules: the review item's state
// machine (pending → in notice → passed, or rejected; an objection during the
// notice sends it back to pending), separation of duties, hardship levels and
// amounts, and the public notice period. It does no I/O.
package domain

import (
	"errors"
	"fmt"
	"time"

	"github.com/edubureau/studentaid/pkg/catalog"
	"github.com/edubureau/studentaid/pkg/policy"
	"github.com/edubureau/studentaid/pkg/policy/seed"
	"github.com/edubureau/studentaid/pkg/review"
)

// State is where an item stands in the school's review.
type State string

// The review states.
const (
	// StatePending waits for the school's review committee.
	StatePending State = "PENDING"
	// StateInNotice was approved; the public notice (公示) is running.
	StateInNotice State = "IN_NOTICE"
	// StateRejected was rejected by the school. Final.
	StateRejected State = "REJECTED"
	// StatePassed finished the notice without objection; the bureau reviews next. Final.
	StatePassed State = "PASSED"
	// StateWithdrawn was withdrawn by the school's aid officer before the
	// committee decided it. Final.
	StateWithdrawn State = "WITHDRAWN"
)

// ParseState returns the State named s.
func ParseState(s string) (State, error) {
	switch st := State(s); st {
	case StatePending, StateInNotice, StateRejected, StatePassed, StateWithdrawn:
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
	// ErrSubmitterCannotReview means the reviewer submitted the application.
	ErrSubmitterCannotReview = review.ErrSubmitterCannotReview
	// ErrLevelRequired means a tiered program was approved without a hardship level.
	ErrLevelRequired = errors.New("hardship level required")
	// ErrInvalidLevel means the level is not one of the program's levels.
	ErrInvalidLevel = errors.New("invalid hardship level")
	// ErrReasonRequired means a rejection or objection has no reason.
	ErrReasonRequired = review.ErrReasonRequired
	// ErrReasonInvalid means a reason is too long or not valid UTF-8.
	ErrReasonInvalid = review.ErrReasonInvalid
	// ErrNoticeEnded means an objection came after the notice's deadline.
	ErrNoticeEnded = errors.New("public notice has ended")
)

// TransitionError says which action an item's state refused.
type TransitionError = review.TransitionError[State]

// Review is one application under the school's review: the fields every
// review item has (review.Item; its trace context is the submission's) and
// the school's own.
type Review struct {
	review.Item[State]
	StudentNameMasked string
	Tiered            bool
	// BaseAmountFen is the standard amount from the submission; 0 for tiered
	// programs. AmountFen is the amount as decided.
	BaseAmountFen int64
	HardshipLevel catalog.HardshipLevel
	// PolicyVersion and RegisterVersion are the policy and school-register
	// versions the submission was computed under (0: submitted before
	// amounts were pinned). Tiers are that policy's amounts per hardship
	// level for a tiered program; the approval takes its amount from them.
	PolicyVersion   int64
	RegisterVersion int64
	Tiers           Tiers
	// NoticeEndsAt is set while the item is in notice.
	NoticeEndsAt time.Time
	Objections   int32
}

// Tiers are a tiered program's amounts per hardship level in fen, as the
// policy version a submission was computed under set them; 0 at a level
// means the policy has no such tier.
type Tiers struct {
	EspeciallyDifficult int64
	Difficult           int64
	GenerallyDifficult  int64
}

// ErrInvalidTiers means a submission's tier table names an unknown level or
// a negative amount.
var ErrInvalidTiers = errors.New("invalid tier table")

// TiersOf reads a tier table keyed by level (especially_difficult,
// difficult, generally_difficult), as application.submitted carries it.
func TiersOf(fen map[string]int64) (Tiers, error) {
	var t Tiers
	for key, amount := range fen {
		if amount < 0 {
			return Tiers{}, fmt.Errorf("%w: %s is %d fen", ErrInvalidTiers, key, amount)
		}
		level, err := catalog.ParseLevel(key)
		if err != nil || level == catalog.LevelUnspecified {
			return Tiers{}, fmt.Errorf("%w: unknown level %q", ErrInvalidTiers, key)
		}
		*tierOf(&t, level) = amount
	}
	return t, nil
}

// Empty reports whether the table has no tier: the submission predates
// pinned policies, or the program is not tiered.
func (t Tiers) Empty() bool { return t == Tiers{} }

// At returns the amount at level, and false when the table has none.
func (t Tiers) At(level catalog.HardshipLevel) (int64, bool) {
	p := tierOf(&t, level)
	if p == nil || *p == 0 {
		return 0, false
	}
	return *p, true
}

// tierOf points at t's amount for level; nil for no level.
func tierOf(t *Tiers, level catalog.HardshipLevel) *int64 {
	switch level {
	case catalog.LevelUnspecified:
		return nil
	case catalog.LevelEspeciallyDifficult:
		return &t.EspeciallyDifficult
	case catalog.LevelDifficult:
		return &t.Difficult
	case catalog.LevelGenerallyDifficult:
		return &t.GenerallyDifficult
	}
	return nil
}

// Submitted returns the pending review item for a submitted application. A
// submission computed under a pinned policy (a policy version or a tier
// table) says itself whether it is tiered, and its amount stands; for one
// from before, the catalog, when it knows the program, decides whether it
// is tiered and supplies a missing standard amount.
func Submitted(r Review) Review {
	r.State = StatePending
	if r.PolicyVersion > 0 || !r.Tiers.Empty() {
		r.Tiered = r.Tiered || !r.Tiers.Empty()
	} else if p, ok := seed.Program(r.ProgramCode); ok {
		r.Tiered = p.Tiered()
		if !r.Tiered && r.BaseAmountFen == 0 && p.Rule == policy.RuleFixed {
			r.BaseAmountFen = p.StandardFen[catalog.Stage(r.Stage)]
		}
	}
	if r.Tiered {
		r.BaseAmountFen = 0
	}
	r.AmountFen = r.BaseAmountFen
	return r
}

// Decision is a reviewer's verdict on one item.
type Decision struct {
	ApplicationID string
	Approve       bool
	// Level is required when approving a tiered program.
	Level catalog.HardshipLevel
	// Reason is required when rejecting.
	Reason string
}

// Application is the ID of the application d is about.
func (d Decision) Application() string { return d.ApplicationID }

// CheckReason validates a reason (review.CheckReason).
func CheckReason(reason string, required bool) error { return review.CheckReason(reason, required) }

// Decide applies a reviewer's decision at now: approval starts the public
// notice, which ends at noticeEnds(now); rejection is final. Returns a
// *TransitionError unless the item is pending, ErrSubmitterCannotReview when
// the reviewer submitted it, ErrLevelRequired or ErrInvalidLevel for a bad
// level, and ErrReasonRequired for a rejection without reason.
func (r *Review) Decide(d Decision, reviewer string, now time.Time, noticeEnds func(start time.Time) time.Time) error {
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
	if !d.Approve {
		if err := CheckReason(d.Reason, true); err != nil {
			return err
		}
		r.State = StateRejected
		r.HardshipLevel = catalog.LevelUnspecified
		r.AmountFen = r.BaseAmountFen
		r.Reason = d.Reason
		r.Reviewer = reviewer
		r.NoticeEndsAt = time.Time{}
		r.UpdatedAt = now
		return nil
	}
	if err := CheckReason(d.Reason, false); err != nil {
		return err
	}
	amount, err := r.amountFor(d.Level)
	if err != nil {
		return err
	}
	r.State = StateInNotice
	r.HardshipLevel = d.Level
	r.AmountFen = amount
	r.Reason = d.Reason
	r.Reviewer = reviewer
	r.NoticeEndsAt = noticeEnds(now)
	r.UpdatedAt = now
	return nil
}

// amountFor returns the amount the item pays at level: a non-tiered
// program's standard amount; a tiered one's from the tier table it was
// submitted under, or, for a submission from before tables were pinned,
// from the catalog.
func (r *Review) amountFor(level catalog.HardshipLevel) (int64, error) {
	if _, err := catalog.ParseLevel(string(level)); err != nil {
		return 0, fmt.Errorf("%w: %q (want especially_difficult, difficult or generally_difficult)", ErrInvalidLevel, level)
	}
	if !r.Tiered {
		return r.BaseAmountFen, nil
	}
	if level == catalog.LevelUnspecified {
		return 0, fmt.Errorf("%w: program %s pays by hardship level; give especially_difficult, difficult or generally_difficult", ErrLevelRequired, r.ProgramCode)
	}
	if !r.Tiers.Empty() {
		amount, ok := r.Tiers.At(level)
		if !ok {
			return 0, fmt.Errorf("%w: the policy version %d application %s was computed under has no %s tier for program %s; choose one of its levels",
				ErrInvalidLevel, r.PolicyVersion, r.ApplicationID, level, r.ProgramCode)
		}
		return amount, nil
	}
	p, ok := seed.Program(r.ProgramCode)
	if !ok {
		return 0, fmt.Errorf("%w: program %s is not in the aid policy", ErrInvalidLevel, r.ProgramCode)
	}
	amount, ok := p.TierFen[level]
	if !ok {
		return 0, fmt.Errorf("%w: program %s has no level %q", ErrInvalidLevel, r.ProgramCode, level)
	}
	return amount, nil
}

// Object records an objection at now: the notice stops and the item goes
// back to pending with its level and amount cleared. Returns a
// *TransitionError unless the item is in notice, ErrNoticeEnded once the
// deadline has passed, and ErrReasonRequired without a reason.
func (r *Review) Object(reason string, now time.Time) error {
	if r.State != StateInNotice {
		return &TransitionError{ApplicationID: r.ApplicationID, From: r.State, Action: "raise an objection (the public notice is not running)"}
	}
	if !now.Before(r.NoticeEndsAt) {
		return fmt.Errorf("%w: the notice of application %s ended at %s", ErrNoticeEnded, r.ApplicationID, r.NoticeEndsAt.UTC().Format(time.RFC3339))
	}
	if err := CheckReason(reason, true); err != nil {
		return err
	}
	r.State = StatePending
	r.Objections++
	r.HardshipLevel = catalog.LevelUnspecified
	r.AmountFen = r.BaseAmountFen
	r.Reason = reason
	r.Reviewer = ""
	r.NoticeEndsAt = time.Time{}
	r.UpdatedAt = now
	return nil
}

// PassNotice ends the notice at now. Returns a *TransitionError unless the
// item is in notice and its deadline has come.
func (r *Review) PassNotice(now time.Time) error {
	if r.State != StateInNotice {
		return &TransitionError{ApplicationID: r.ApplicationID, From: r.State, Action: "pass the public notice"}
	}
	if now.Before(r.NoticeEndsAt) {
		return &TransitionError{ApplicationID: r.ApplicationID, From: r.State, Action: "pass the public notice before " + r.NoticeEndsAt.UTC().Format(time.RFC3339)}
	}
	r.State = StatePassed
	r.UpdatedAt = now
	return nil
}

// Withdraw withdraws a pending item at the school's request at now. The
// committee's decision and the withdrawal both need the item pending, and
// both run on the locked row, so whichever comes first wins and the other
// is refused. Returns a *TransitionError unless the item is pending, and
// ErrReasonRequired (or ErrReasonInvalid) for a missing or bad reason.
func (r *Review) Withdraw(reason string, now time.Time) error {
	if r.State != StatePending {
		return &TransitionError{ApplicationID: r.ApplicationID, From: r.State, Action: "withdraw it (the school's review has already decided it)"}
	}
	if err := CheckReason(reason, true); err != nil {
		return err
	}
	r.State = StateWithdrawn
	r.HardshipLevel = catalog.LevelUnspecified
	r.AmountFen = r.BaseAmountFen
	r.Reason = reason
	r.Reviewer = ""
	r.NoticeEndsAt = time.Time{}
	r.UpdatedAt = now
	return nil
}
