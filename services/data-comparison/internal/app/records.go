package app

import (
	"context"
	"errors"
	"fmt"

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

// ApplySubmitted records a submitted application (once) inside tx.
func (s *Service) ApplySubmitted(ctx context.Context, tx db.Tx, sub Submitted, term string) error {
	t, err := domain.ParseTerm(term)
	if err != nil {
		return fmt.Errorf("%w: application %s: %w", ErrBadEvent, sub.ApplicationID, err)
	}
	sub.Term = t
	return adapters.AddSubmitted(ctx, tx, sub)
}

// ApplyOutcome applies a later step to its record inside tx.
func (s *Service) ApplyOutcome(ctx context.Context, tx db.Tx, o Outcome) error {
	err := adapters.ApplyOutcome(ctx, tx, o)
	if errors.Is(err, adapters.ErrNoRecord) {
		return fmt.Errorf("%w: %w", ErrNotYet, err)
	}
	return err
}
