package domain

import (
	"fmt"

	"github.com/edubureau/studentaid/pkg/auth"
)

// ConfirmerRole is the role that orders payments: it confirms batches and
// reissues failed payments.
const ConfirmerRole = auth.RoleFinanceOfficer

// Reviewers are the people who handled an item before finance.
type Reviewers struct {
	SubmittedBy    string
	SchoolReviewer string
	BureauReviewer string
}

// Involves reports whether user submitted or reviewed the item.
func (r Reviewers) Involves(user string) bool {
	return user != "" && (user == r.SubmittedBy || user == r.SchoolReviewer || user == r.BureauReviewer)
}

// InvolvedError names the item an officer handled before finance.
type InvolvedError struct {
	ApplicationID string
}

// Error says which application the officer handled.
func (e *InvolvedError) Error() string {
	return fmt.Sprintf("%s: application %s", ErrReviewedOwnItem, e.ApplicationID)
}

// Unwrap makes errors.Is(err, ErrReviewedOwnItem) hold.
func (e *InvolvedError) Unwrap() error { return ErrReviewedOwnItem }

// CheckConfirmer decides who may order payment of items (every item of a
// batch on confirmation, one failed item on reissue): an officer in
// ConfirmerRole who neither submitted nor reviewed, at the school or the
// bureau, any of them. Returns ErrNotConfirmer, or an *InvolvedError naming
// the first item the officer handled.
func CheckConfirmer(officer auth.Identity, items ...Item) error {
	if officer.Role != ConfirmerRole {
		return fmt.Errorf("%w: %s", ErrNotConfirmer, officer.Role)
	}
	for _, it := range items {
		if it.Involves(officer.UserID) {
			return &InvolvedError{ApplicationID: it.ApplicationID}
		}
	}
	return nil
}
