package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/idnumber"
	"github.com/edubureau/studentaid/pkg/outbox"
	"github.com/edubureau/studentaid/pkg/pii"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
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
			applied, err := s.store.ApplyChange(ctx, tx, next, s.clock(), entry)
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
	applied, err := s.store.ApplyChange(ctx, tx, next, s.clock(), entry)
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

// CorrectPayee replaces the bank card and account name of an application
// whose payment failed, so that finance can order the payment again.
//
// Returns InvalidArgument for a bad ID, card or name, NotFound if the
// application does not exist or belongs to another school, and
// FailedPrecondition unless the payment failed.
func (s *Service) CorrectPayee(ctx context.Context, caller auth.Identity, id, card, accountName string) (domain.Application, error) {
	var v apperr.Violations
	if err := checkID("application_id", id); err != nil {
		return domain.Application{}, err
	}
	if err := pii.ValidateCardNumber(card); err != nil {
		v.Addf("bank_card_number", "%s", cardProblem(err))
	}
	accountName = checkName(&v, "account_name", accountName)
	if err := v.Err(); err != nil {
		return domain.Application{}, err
	}
	cardSealed, err := s.sealer.Seal(card, events.BankCardBinding(id))
	if err != nil {
		return domain.Application{}, err
	}
	nameSealed, err := s.sealer.Seal(accountName, events.AccountNameBinding(id))
	if err != nil {
		return domain.Application{}, err
	}
	cardMasked := idnumber.Mask(card)

	var out domain.Application
	err = db.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		a, found, err := s.store.GetApplication(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if !found || !visible(caller, a) || caller.Role != auth.RoleSchoolOfficer {
			return notFound(id)
		}
		annotate(ctx, a)
		next, err := domain.Apply(a.State, domain.Change{Kind: domain.KindPayeeCorrected})
		if err != nil {
			return apperr.New(apperr.FailedPrecondition,
				"the payee can only be corrected after the bank returned the payment; application %s is %s", id, a.Status)
		}
		now := s.clock()
		ev, err := events.New(now, events.Actor(caller.UserID, string(caller.Role), caller.Org),
			events.Keys{ApplicationID: a.ID, BatchID: a.BatchID, SchoolCode: a.SchoolCode, ProgramCode: a.ProgramCode, Term: a.Term},
			&eventsv1.PayeeCorrected{BankCardSealed: cardSealed, AccountNameSealed: nameSealed, BankCardMasked: cardMasked})
		if err != nil {
			return err
		}
		entry := domain.Chain(a.TrailLength, a.TrailHead, trailEntry(Event{
			ID: ev.GetEventId(), OccurredAt: now, ActorUser: caller.UserID, ActorRole: string(caller.Role), ActorOrg: caller.Org,
			ApplicationID: a.ID, BatchID: a.BatchID, Change: domain.Change{Kind: domain.KindPayeeCorrected},
		}, next))
		if err := s.store.UpdatePayee(ctx, tx, a.ID, cardMasked, cardSealed, nameSealed); err != nil {
			return err
		}
		applied, err := s.store.ApplyChange(ctx, tx, next, now, entry)
		if err != nil {
			return err
		}
		if !applied {
			return fmt.Errorf("correct payee of %s: the trail moved while locked", a.ID)
		}
		if err := outbox.Append(ctx, tx, ev); err != nil {
			return err
		}
		a.State, a.UpdatedAt, a.TrailLength, a.TrailHead = next, now, entry.Position, entry.Hash
		a.BankCardMasked, a.BankCardSealed, a.AccountNameSealed = cardMasked, cardSealed, nameSealed
		out = a
		return nil
	})
	if err != nil {
		return domain.Application{}, err
	}
	s.heads.put(out.ID, headOf(out))
	s.notify()
	return out, nil
}

// headOf is the head of a stored application.
func headOf(a domain.Application) adapters.Head {
	return adapters.Head{SchoolCode: a.SchoolCode, ProgramCode: a.ProgramCode, Term: a.Term,
		State: a.State, TrailLength: a.TrailLength, TrailHead: a.TrailHead}
}
