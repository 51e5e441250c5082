package app

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/db"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	"github.com/edubureau/studentaid/services/data-comparison/internal/adapters"
	"github.com/edubureau/studentaid/services/data-comparison/internal/domain"
)

// openBackPay orders the back-pay (补发) of a verified missed-student clue
// from its school: the application service records the order from the
// event, the school submits the student's application naming the clue, and
// it goes through the whole chain.
func (s *Service) openBackPay(ctx context.Context, tx pgx.Tx, by auth.Identity, c *domain.Clue) error {
	if err := c.OpenBackPay(); err != nil {
		return err
	}
	return s.step(ctx, tx, by, c, &eventsv1.BackPayOpened{ClueId: c.ID, SchoolCode: c.SchoolCode, ProgramCode: c.ProgramCode,
		Term: c.Term, StudentIdHash: c.StudentIDHash, StudentIdMasked: c.StudentIDMasked, AmountFen: c.AmountFen},
		fmt.Sprintf("back-pay ordered from school %s for %s in %s (estimated %d fen)", c.SchoolCode, c.ProgramCode, c.Term, c.AmountFen))
}

// Cause is the chain event a consumer applies, as a clue's trail records it.
type Cause struct {
	EventID   string
	Type      string
	At        time.Time
	ActorUser string
	ActorRole string
	ActorOrg  string
}

// backPayStep moves the back-pay of clueID to status, inside the consumer's
// transaction tx, and records the chain event that moved it on the clue's
// trail. A clue whose back-pay is already there (a redelivered event) is
// left as it is.
func (s *Service) backPayStep(ctx context.Context, tx db.Tx, clueID string, from, to domain.BackPayStatus, applicationID string, cause Cause, note string) error {
	cs, err := adapters.GetClues(ctx, tx, []string{clueID}, true)
	if err != nil {
		return err
	}
	if len(cs) == 0 {
		return fmt.Errorf("%w: %s names back-pay clue %s, which this service does not hold", ErrBadEvent, cause.EventID, clueID)
	}
	c := cs[0]
	if c.BackPay != from {
		return nil
	}
	c.BackPay, c.BackPayApplicationID, c.UpdatedAt = to, applicationID, cause.At
	st := domain.Chain(c.TrailLength, c.TrailHead, domain.Step{ClueID: c.ID, EventID: cause.EventID, Type: cause.Type,
		OccurredAt: cause.At, ActorUser: cause.ActorUser, ActorRole: cause.ActorRole, ActorOrg: cause.ActorOrg,
		Status: c.Status, Note: note})
	c.TrailLength, c.TrailHead = st.Position, st.Hash
	if err := adapters.AppendSteps(ctx, tx, []domain.Step{st}); err != nil {
		return err
	}
	return adapters.UpdateClue(ctx, tx, c)
}
