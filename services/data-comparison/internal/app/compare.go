package app

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/catalog"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/outbox"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	"github.com/edubureau/studentaid/services/data-comparison/internal/adapters"
	"github.com/edubureau/studentaid/services/data-comparison/internal/domain"
)

// Run is a comparison run.
type Run = adapters.Run

// rules are the catalog's rules as the comparison's statements take them.
func rules() adapters.Rules {
	r := adapters.Rules{RegistryPrograms: domain.RegistryPrograms()}
	for _, s := range domain.Standards() {
		r.Standards = append(r.Standards, adapters.Standard(s))
	}
	for _, st := range []catalog.Stage{catalog.StagePreschool, catalog.StagePrimary, catalog.StageJunior,
		catalog.StageHighSchool, catalog.StageVocational, catalog.StageUniversity} {
		if p, fen, ok := domain.Entitlement(st); ok {
			r.Entitlements = append(r.Entitlements, adapters.Entitlement{Stage: string(st), Program: p, Fen: fen})
		}
	}
	return r
}

// RunComparison compares the paid records of a term range against the
// current reference versions, one set-based statement per clue kind, in one
// transaction, and adds the clues not found before, each with the first step
// of its trail and a clue_raised event.
func (s *Service) RunComparison(ctx context.Context, by auth.Identity, from, to string) (Run, error) {
	rng, err := domain.ParseTermRange(from, to)
	if err != nil {
		var v apperr.Violations
		v.Addf("term", "%v", err)
		return Run{}, v.Err()
	}
	var run Run
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		cur, err := adapters.CurrentImports(ctx, tx)
		if err != nil {
			return err
		}
		run, err = adapters.BeginRun(ctx, tx, Run{From: rng.From, To: rng.To, ImportIDs: cur.All, RunBy: by.UserID, StartedAt: s.clock()})
		if err != nil {
			return err
		}
		rs := rules()
		run.NewClues = make(map[string]int64, len(domain.ComparedKinds))
		var found []adapters.NewClue
		for _, kind := range domain.ComparedKinds {
			cs, err := adapters.FindClues(ctx, tx, run, kind, cur, rs)
			if err != nil {
				return err
			}
			run.NewClues[string(kind)] = int64(len(cs))
			found = append(found, cs...)
		}
		if err := s.raiseFound(ctx, tx, by, run, found); err != nil {
			return err
		}
		run.FinishedAt = s.clock()
		if err := adapters.FinishRun(ctx, tx, run); err != nil {
			return err
		}
		ev, err := events.New(run.FinishedAt, actorOf(by), events.Keys{}, &eventsv1.ComparisonCompleted{
			RunId: run.ID, FromTerm: rng.From.Name, ToTerm: rng.To.Name, Records: run.Records, NewClues: int64(len(found))})
		if err != nil {
			return err
		}
		return appendEvents(ctx, tx, ev)
	})
	return run, err
}

// raiseFound starts the trail of each new clue and writes its event.
func (s *Service) raiseFound(ctx context.Context, tx pgx.Tx, by auth.Identity, run Run, found []adapters.NewClue) error {
	return s.raise(ctx, tx, by, run.StartedAt, domain.OriginComparison, run.ID, found, func(c adapters.NewClue) string {
		return fmt.Sprintf("run %d: %s", run.ID, c.Detail)
	})
}

// raiseReturned starts the trail of each clue a big-data office list added.
func (s *Service) raiseReturned(ctx context.Context, tx pgx.Tx, by auth.Identity, l adapters.ClueList, added []adapters.NewClue) error {
	return s.raise(ctx, tx, by, l.ImportedAt, domain.OriginBigDataOffice, 0, added, func(c adapters.NewClue) string {
		return clueListNote(l, c.Detail)
	})
}

// raise writes the first trail step and the clue_raised event of each clue.
func (s *Service) raise(ctx context.Context, tx pgx.Tx, by auth.Identity, at time.Time, origin string, runID int64,
	found []adapters.NewClue, note func(adapters.NewClue) string,
) error {
	steps := make([]domain.Step, 0, len(found))
	evs := make([]outbox.Traced, 0, len(found))
	for _, c := range found {
		ev, err := events.New(at, actorOf(by), events.Keys{SchoolCode: c.SchoolCode, ProgramCode: c.ProgramCode, Term: c.Term},
			&eventsv1.ClueRaised{ClueId: c.ID, Kind: string(c.Kind), Origin: origin, StudentIdHash: c.StudentIDHash,
				AmountFen: c.AmountFen, RecordIds: c.RecordIDs, RunId: runID})
		if err != nil {
			return err
		}
		evs = append(evs, outbox.Traced{Ctx: ctx, Event: ev})
		steps = append(steps, domain.Chain(0, "", domain.Step{ClueID: c.ID, EventID: ev.GetEventId(), Type: ev.GetType(),
			OccurredAt: at, ActorUser: by.UserID, ActorRole: string(by.Role), ActorOrg: by.Org,
			Status: domain.ClueOpen, Note: note(c)}))
	}
	if len(steps) == 0 {
		return nil
	}
	if err := adapters.AppendSteps(ctx, tx, steps); err != nil {
		return err
	}
	return outbox.AppendTraced(ctx, tx, evs...)
}
