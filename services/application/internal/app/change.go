package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/services/application/internal/adapters"
	"github.com/edubureau/studentaid/services/application/internal/domain"
)

// Errors of ApplyEvent besides those of domain.Apply. Compare with errors.Is.
var (
	// ErrUnknownApplication means an event names an application this
	// service never took.
	ErrUnknownApplication = errors.New("unknown application")
	// ErrKeysMismatch means an event's school, program or term differ from
	// its application's.
	ErrKeysMismatch = errors.New("event keys do not match the application")
)

// Event is a fact from a later step of the chain about one application.
type Event struct {
	ID            string
	OccurredAt    time.Time
	ActorUser     string
	ActorRole     string
	ActorOrg      string
	ApplicationID string
	SchoolCode    string
	ProgramCode   string
	Term          string
	BatchID       string
	Change        domain.Change
}

// ApplyEvent moves the event's application to its next status and appends the
// event to its trail, inside tx. Errors wrap domain.ErrNotYet (retry later),
// domain.ErrImpossible, ErrUnknownApplication or ErrKeysMismatch (never
// applicable), or are internal.
func (s *Service) ApplyEvent(ctx context.Context, tx db.Tx, ev Event) error {
	// Fast path: decide on the cached head and write only if the row still
	// matches it. Any doubt (a refusal, a moved trail) goes to the row itself.
	if head, ok := s.heads.get(ev.ApplicationID); ok && keysMatch(ev, head) {
		if next, err := domain.Apply(head.State, ev.Change); err == nil {
			entry := domain.Chain(head.TrailLength, head.TrailHead, trailEntry(ev, next))
			applied, err := s.store.ApplyChange(ctx, tx, next, s.clock(), appended(head, entry))
			if err != nil {
				return err
			}
			if applied {
				s.heads.put(ev.ApplicationID, advance(head, next, entry))
				return nil
			}
		}
	}
	head, found, err := s.store.LockHead(ctx, tx, ev.ApplicationID)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%w %s", ErrUnknownApplication, ev.ApplicationID)
	}
	s.heads.put(ev.ApplicationID, head)
	if !keysMatch(ev, head) {
		return fmt.Errorf("%w: application %s is %s/%s/%s", ErrKeysMismatch, ev.ApplicationID, head.SchoolCode, head.ProgramCode, head.Term)
	}
	next, err := domain.Apply(head.State, ev.Change)
	if err != nil {
		return fmt.Errorf("application %s: %w", ev.ApplicationID, err)
	}
	entry := domain.Chain(head.TrailLength, head.TrailHead, trailEntry(ev, next))
	applied, err := s.store.ApplyChange(ctx, tx, next, s.clock(), appended(head, entry))
	if err != nil {
		return err
	}
	if !applied {
		// Unreachable while the row is locked; retried if it happens.
		return fmt.Errorf("apply %s to %s: the trail moved while locked", ev.Change.Kind, ev.ApplicationID)
	}
	s.heads.put(ev.ApplicationID, advance(head, next, entry))
	return nil
}

// appended is entry as it follows head.
func appended(head adapters.Head, entry domain.TrailEntry) adapters.Appended {
	return adapters.Appended{TrailEntry: entry, SchoolCode: head.SchoolCode, Previous: head.State.Status}
}

// advance returns head after next was stored with entry.
func advance(head adapters.Head, next domain.State, entry domain.TrailEntry) adapters.Head {
	head.State, head.TrailLength, head.TrailHead = next, entry.Position, entry.Hash
	return head
}

func keysMatch(ev Event, head adapters.Head) bool {
	return !mismatch(ev.SchoolCode, head.SchoolCode) && !mismatch(ev.ProgramCode, head.ProgramCode) && !mismatch(ev.Term, head.Term)
}

func mismatch(got, want string) bool { return got != "" && got != want }

// trailEntry is the trail entry of ev that led to state next, not yet chained.
func trailEntry(ev Event, next domain.State) domain.TrailEntry {
	amount := next.AmountFen
	if ev.Change.HasAmount() {
		amount = ev.Change.AmountFen
	}
	batch := ev.BatchID
	if batch == "" {
		batch = next.BatchID
	}
	return domain.TrailEntry{
		ApplicationID: ev.ApplicationID, EventID: ev.ID, Type: string(ev.Change.Kind), OccurredAt: ev.OccurredAt,
		ActorUser: ev.ActorUser, ActorRole: ev.ActorRole, ActorOrg: ev.ActorOrg,
		Status: next.Status, Reason: ev.Change.Reason, AmountFen: amount, BatchID: batch,
	}
}

// headOf is the head of a stored application.
func headOf(a domain.Application) adapters.Head {
	return adapters.Head{SchoolCode: a.SchoolCode, ProgramCode: a.ProgramCode, Term: a.Term,
		State: a.State, TrailLength: a.TrailLength, TrailHead: a.TrailHead}
}
