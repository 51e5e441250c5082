package domain

import (
	"errors"
	"fmt"
	"time"

	"github.com/edubureau/studentaid/pkg/auth"
)

// PayeeCorrection is a new bank card entered by a school's aid officer after
// a bank return. It takes effect only when a second person approves it:
// until then the application keeps paying (or rather, not paying) the old
// card. Cards are kept masked, with their keyed fingerprint, and the new one
// sealed until the decision.
type PayeeCorrection struct {
	ID            string
	ApplicationID string

	CardMasked              string
	CardFingerprint         string
	PreviousCardMasked      string
	PreviousCardFingerprint string
	// CardSealed and AccountNameSealed hold the new payee until the
	// decision; they are erased once it is made.
	CardSealed        []byte
	AccountNameSealed []byte

	EnteredBy auth.Identity
	EnteredAt time.Time
}

// PayeeApproverRole is the role that approves or rejects payee corrections.
const PayeeApproverRole = auth.RoleSchoolReviewer

// Refusals of CheckPayeeApprover. Compare with errors.Is.
var (
	// ErrPayeeApproverRole means the approver is not a school reviewer.
	ErrPayeeApproverRole = errors.New("only a school reviewer may decide a payee correction")
	// ErrPayeeApproverOtherSchool means the approver belongs to another school.
	ErrPayeeApproverOtherSchool = errors.New("the approver is not of the application's school")
	// ErrPayeeSelfApproval means the approver entered the correction.
	ErrPayeeSelfApproval = errors.New("the officer who entered a payee correction cannot decide it")
)

// CheckPayeeApprover decides who may approve or reject c, a correction of an
// application of school: a school reviewer of that school who is not the
// person who entered it (the same user ID in the same organisation, whatever
// role the token names). It returns nil or one of the errors above.
func CheckPayeeApprover(c PayeeCorrection, school string, approver auth.Identity) error {
	switch {
	case approver.Role != PayeeApproverRole:
		return ErrPayeeApproverRole
	case approver.Org != school:
		return ErrPayeeApproverOtherSchool
	case approver.UserID == c.EnteredBy.UserID && approver.Org == c.EnteredBy.Org:
		return ErrPayeeSelfApproval
	}
	return nil
}

// PayeeTrailReason is the trail's reason for a step of c (kind is
// KindPayeeCorrectionEntered, KindPayeeCorrected or
// KindPayeeCorrectionRejected): the old and the new card, masked and by
// fingerprint, who entered the correction, and the reviewer's reason. The
// trail's hash covers it, so the cards an application was paid to cannot be
// changed afterwards unnoticed.
func PayeeTrailReason(kind Kind, c PayeeCorrection, reason string) string {
	s := fmt.Sprintf("correction %s: old card %s fingerprint %s; new card %s fingerprint %s; entered by %s at %s",
		c.ID, c.PreviousCardMasked, c.PreviousCardFingerprint, c.CardMasked, c.CardFingerprint, c.EnteredBy.UserID, c.EnteredBy.Org)
	switch kind {
	case KindPayeeCorrected:
		return s + "; approved"
	case KindPayeeCorrectionRejected:
		return s + "; rejected: " + reason
	default:
		return s + "; awaiting a school reviewer's approval"
	}
}
