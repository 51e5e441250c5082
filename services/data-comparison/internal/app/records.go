package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/services/data-comparison/internal/adapters"
	"github.com/edubureau/studentaid/services/data-comparison/internal/domain"
)

// Errors of applying the chain's events.
var (
	// ErrNotYet means the event names an application not seen yet.
	ErrNotYet = errors.New("application not seen yet")
	// ErrBadEvent means the event can never apply.
	ErrBadEvent = errors.New("bad event")
)

// Submitted is an application.submitted event.
type Submitted = adapters.Submitted

// Outcome is a later step's event about an application.
type Outcome = adapters.Outcome

// ApplySubmitted records a submitted application (once) inside tx; a
// back-pay application moves its clue's back-pay to applied. An empty or
// malformed birth month (YYYY-MM) is recorded as not known: the record is
// kept, and its age is not checked.
func (s *Service) ApplySubmitted(ctx context.Context, tx db.Tx, sub Submitted, term, birthMonth string, cause Cause) error {
	t, err := domain.ParseTerm(term)
	if err != nil {
		return fmt.Errorf("%w: application %s: %w", ErrBadEvent, sub.ApplicationID, err)
	}
	sub.Term = t
	sub.BirthMonth, _ = domain.ParseBirthMonth(birthMonth)
	if sub.BackPayClueID != "" {
		clue, err := uuid.Parse(sub.BackPayClueID)
		if err != nil {
			return fmt.Errorf("%w: application %s: bad back-pay clue id", ErrBadEvent, sub.ApplicationID)
		}
		sub.BackPayClueID = clue.String()
	}
	added, err := adapters.AddSubmitted(ctx, tx, sub)
	if err != nil || !added || sub.BackPayClueID == "" {
		return err
	}
	return s.backPayStep(ctx, tx, sub.BackPayClueID, domain.BackPayOpened, domain.BackPayApplied, sub.ApplicationID, cause,
		fmt.Sprintf("back-pay applied for by school %s: application %s", sub.SchoolCode, sub.ApplicationID))
}

// ApplyOutcome applies a later step to its record inside tx; the payment of
// a back-pay application moves its clue's back-pay to paid.
func (s *Service) ApplyOutcome(ctx context.Context, tx db.Tx, o Outcome, cause Cause) error {
	clue, err := adapters.ApplyOutcome(ctx, tx, o)
	if errors.Is(err, adapters.ErrNoRecord) {
		return fmt.Errorf("%w: %w", ErrNotYet, err)
	}
	if err != nil || clue == "" {
		return err
	}
	return s.backPayStep(ctx, tx, clue, domain.BackPayApplied, domain.BackPayPaid, o.ApplicationID, cause,
		fmt.Sprintf("back-pay paid: application %s, payment %s, %d fen", o.ApplicationID, o.PaymentID, o.AmountFen))
}
