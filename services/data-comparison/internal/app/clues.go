package app

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/idnumber"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	"github.com/edubureau/studentaid/services/data-comparison/internal/adapters"
	"github.com/edubureau/studentaid/services/data-comparison/internal/domain"
)

// MaxBulk bounds the clues one request works.
const MaxBulk = 1000

// Limits on free text.
const (
	maxDetail   = 2000
	maxAssignee = 64
)

// NewClue is a hand-entered clue.
type NewClue struct {
	Kind            string
	StudentIDNumber string
	SchoolCode      string
	ProgramCode     string
	Term            string
	RecordIDs       []string
	AmountFen       int64
	Detail          string
}

// RaiseClue enters a clue by hand.
func (s *Service) RaiseClue(ctx context.Context, by auth.Identity, in NewClue) (domain.Clue, error) {
	var v apperr.Violations
	kind, err := domain.ParseClueKind(in.Kind)
	if err != nil {
		v.Addf("kind", "%v", err)
	}
	id, err := idnumber.ParseAny(domain.NormalizeIDNumber(in.StudentIDNumber))
	if err != nil {
		v.Addf("student_id_number", "%v", err)
	}
	if in.Term != "" {
		if _, err := domain.ParseTerm(in.Term); err != nil {
			v.Addf("term", "%v", err)
		}
	}
	if in.AmountFen < 0 {
		v.Addf("amount_fen", "must not be negative")
	}
	detail := checkText(&v, "detail", in.Detail, maxDetail, true)
	var records []string
	if len(in.RecordIDs) > 0 {
		records = checkIDs(&v, "record_ids", in.RecordIDs, MaxBulk)
	}
	if err := v.Err(); err != nil {
		return domain.Clue{}, err
	}
	now := s.clock()
	c := domain.Clue{ID: uuid.Must(uuid.NewV7()).String(), Kind: kind, Origin: domain.OriginManual, Status: domain.ClueOpen,
		StudentIDHash: s.HashID(id.String()), StudentIDMasked: id.Masked(), SchoolCode: in.SchoolCode, ProgramCode: in.ProgramCode,
		Term: in.Term, AmountFen: in.AmountFen, Detail: detail, RecordIDs: records, CreatedAt: now, UpdatedAt: now}
	if c.RecordIDs == nil {
		c.RecordIDs = []string{}
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if len(records) > 0 {
			got, err := adapters.Records(ctx, tx, records)
			if err != nil {
				return err
			}
			if len(got) != len(records) {
				return apperr.New(apperr.NotFound, "%d of the %d record_ids name no payment record", len(records)-len(got), len(records))
			}
		}
		if err := adapters.InsertClue(ctx, tx, c); err != nil {
			return err
		}
		return s.step(ctx, tx, by, &c, &eventsv1.ClueRaised{ClueId: c.ID, Kind: string(c.Kind), Origin: c.Origin,
			StudentIdHash: c.StudentIDHash, AmountFen: c.AmountFen, RecordIds: c.RecordIDs}, c.Detail)
	})
	return c, err
}

// step writes one step of c's work: its event to the outbox and its entry on
// c's trail, and moves c's trail head.
func (s *Service) step(ctx context.Context, tx pgx.Tx, by auth.Identity, c *domain.Clue, body proto.Message, note string) error {
	ev, err := events.New(c.UpdatedAt, actorOf(by), events.Keys{SchoolCode: c.SchoolCode, ProgramCode: c.ProgramCode, Term: c.Term}, body)
	if err != nil {
		return err
	}
	st := domain.Chain(c.TrailLength, c.TrailHead, domain.Step{ClueID: c.ID, EventID: ev.GetEventId(), Type: ev.GetType(),
		OccurredAt: c.UpdatedAt, ActorUser: by.UserID, ActorRole: string(by.Role), ActorOrg: by.Org, Status: c.Status, Note: note})
	c.TrailLength, c.TrailHead = st.Position, st.Hash
	if err := adapters.AppendSteps(ctx, tx, []domain.Step{st}); err != nil {
		return err
	}
	return appendEvents(ctx, tx, ev)
}

// Work is what is done to a set of clues.
type Work struct {
	ClueIDs    []string
	Assignee   string
	Findings   string
	Evidence   string
	Ineligible bool
	RecoverFen int64
}

// AssignClues assigns clues to an officer, all or nothing.
func (s *Service) AssignClues(ctx context.Context, by auth.Identity, w Work) ([]domain.Clue, error) {
	var v apperr.Violations
	assignee := checkText(&v, "assignee", w.Assignee, maxAssignee, true)
	return s.work(ctx, "AssignClues", w, v, func(ctx context.Context, tx pgx.Tx, c *domain.Clue) error {
		if err := c.Assign(assignee); err != nil {
			return err
		}
		return s.step(ctx, tx, by, c, &eventsv1.ClueAssigned{ClueId: c.ID, Assignee: assignee}, "assigned to "+assignee)
	})
}

// VerifyClues records clues as checked and true (查实), all or nothing; an
// ineligible finding opens a refund order for each clue, and a verified
// missed student (应助未助) orders back-pay from the school.
func (s *Service) VerifyClues(ctx context.Context, by auth.Identity, w Work) ([]domain.Clue, error) {
	var v apperr.Violations
	findings := checkText(&v, "findings", w.Findings, maxDetail, true)
	evidence := checkText(&v, "evidence", w.Evidence, maxDetail, false)
	if w.RecoverFen < 0 || (w.RecoverFen > 0 && !w.Ineligible) {
		v.Addf("recover_fen", "is a positive amount, given only with ineligible")
	}
	return s.work(ctx, "VerifyClues", w, v, func(ctx context.Context, tx pgx.Tx, c *domain.Clue) error {
		if err := c.Verify(by.UserID, findings, evidence, w.Ineligible); err != nil {
			return err
		}
		if err := s.step(ctx, tx, by, c, &eventsv1.ClueVerified{ClueId: c.ID, Findings: findings, Ineligible: w.Ineligible, Kind: string(c.Kind)},
			fmt.Sprintf("verified (ineligible: %t): %s | evidence: %s", w.Ineligible, findings, evidence)); err != nil {
			return err
		}
		switch {
		case w.Ineligible:
			return s.openRefund(ctx, tx, by, c, w.RecoverFen)
		case c.Kind == domain.KindMissed:
			return s.openBackPay(ctx, tx, by, c)
		}
		return nil
	})
}

// DismissClues closes clues found unfounded, all or nothing.
func (s *Service) DismissClues(ctx context.Context, by auth.Identity, w Work) ([]domain.Clue, error) {
	var v apperr.Violations
	findings := checkText(&v, "findings", w.Findings, maxDetail, true)
	evidence := checkText(&v, "evidence", w.Evidence, maxDetail, false)
	return s.work(ctx, "DismissClues", w, v, func(ctx context.Context, tx pgx.Tx, c *domain.Clue) error {
		if err := c.Dismiss(by.UserID, findings, evidence); err != nil {
			return err
		}
		return s.step(ctx, tx, by, c, &eventsv1.ClueDismissed{ClueId: c.ID, Findings: findings},
			fmt.Sprintf("dismissed: %s | evidence: %s", findings, evidence))
	})
}

// work locks the clues of w and applies fn to each in one transaction; a
// rule fn breaks refuses the whole request, naming the rule.
func (s *Service) work(ctx context.Context, useCase string, w Work, v apperr.Violations,
	fn func(ctx context.Context, tx pgx.Tx, c *domain.Clue) error,
) ([]domain.Clue, error) {
	ids := checkIDs(&v, "clue_ids", w.ClueIDs, MaxBulk)
	if err := v.Err(); err != nil {
		return nil, err
	}
	var out []domain.Clue
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		cs, err := adapters.GetClues(ctx, tx, ids, true)
		if err != nil {
			return err
		}
		if len(cs) != len(ids) {
			return apperr.New(apperr.NotFound, "%d of the %d clues do not exist", len(ids)-len(cs), len(ids))
		}
		now := s.clock()
		for i := range cs {
			cs[i].UpdatedAt = now
			if err := fn(ctx, tx, &cs[i]); err != nil {
				return err
			}
			if err := adapters.UpdateClue(ctx, tx, cs[i]); err != nil {
				return err
			}
		}
		out = cs
		return nil
	})
	if err != nil {
		return nil, s.refuse(ctx, useCase, err)
	}
	return out, nil
}

// GetClue reads one clue.
func (s *Service) GetClue(ctx context.Context, id string) (domain.Clue, error) {
	var v apperr.Violations
	ids := checkIDs(&v, "clue_id", []string{id}, 1)
	if err := v.Err(); err != nil {
		return domain.Clue{}, err
	}
	cs, err := adapters.GetClues(ctx, s.pool, ids, false)
	if err != nil {
		return domain.Clue{}, err
	}
	if len(cs) == 0 {
		return domain.Clue{}, apperr.New(apperr.NotFound, "clue %s not found", id)
	}
	return cs[0], nil
}

// ClueFilter selects clues.
type ClueFilter = adapters.ClueFilter

// ListClues lists clues oldest first.
func (s *Service) ListClues(ctx context.Context, f ClueFilter) ([]domain.Clue, error) {
	return adapters.ListClues(ctx, s.pool, f)
}

// ClueTrail is a clue's trail and whether it is intact.
type ClueTrail struct {
	Steps            []domain.Step
	FirstBadPosition int64
}

// Trail reads and verifies a clue's trail.
func (s *Service) Trail(ctx context.Context, id string) (ClueTrail, error) {
	c, err := s.GetClue(ctx, id)
	if err != nil {
		return ClueTrail{}, err
	}
	steps, err := adapters.Trail(ctx, s.pool, c.ID)
	if err != nil {
		return ClueTrail{}, err
	}
	return ClueTrail{Steps: steps, FirstBadPosition: domain.VerifyChain(steps, c.TrailLength)}, nil
}
