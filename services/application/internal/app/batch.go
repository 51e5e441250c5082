package app

import (
	"context"
	"fmt"
	"maps"

	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/services/application/internal/adapters"
	"github.com/edubureau/studentaid/services/application/internal/domain"
)

// ApplyEvents applies evs in order inside tx, with the outcome of calling
// ApplyEvent for each in turn, in three statements whatever their number:
// one reads and locks every application they touch, one UPDATE stores the
// applications' new states and one COPY appends the trail entries. Several
// events about one application chain onto each other in memory.
//
// It is all or nothing: if any event cannot be applied it returns that
// event's error (wrapping what ApplyEvent would return: domain.ErrNotYet,
// domain.ErrImpossible, ErrUnknownApplication, ErrKeysMismatch) having
// written nothing, and the caller rolls tx back and applies the events one at
// a time to sort the good from the bad.
func (s *Service) ApplyEvents(ctx context.Context, tx db.Tx, evs []Event) error {
	if len(evs) == 0 {
		return nil
	}
	// The applications in the order the batch first touches them.
	var ids []string
	seen := make(map[string]bool, len(evs))
	for _, ev := range evs {
		if !seen[ev.ApplicationID] {
			seen[ev.ApplicationID] = true
			ids = append(ids, ev.ApplicationID)
		}
	}
	read, err := s.store.LockHeads(ctx, tx, ids)
	if err != nil {
		return err
	}
	heads := make(map[string]adapters.Head, len(read))
	maps.Copy(heads, read)
	entries := make([]adapters.Appended, 0, len(evs))
	for _, ev := range evs {
		head, found := heads[ev.ApplicationID]
		if !found {
			return fmt.Errorf("event %s: %w %s", ev.ID, ErrUnknownApplication, ev.ApplicationID)
		}
		if !keysMatch(ev, head) {
			return fmt.Errorf("event %s: %w: application %s is %s/%s/%s", ev.ID, ErrKeysMismatch, ev.ApplicationID, head.SchoolCode, head.ProgramCode, head.Term)
		}
		next, err := domain.Apply(head.State, ev.Change)
		if err != nil {
			return fmt.Errorf("event %s: application %s: %w", ev.ID, ev.ApplicationID, err)
		}
		entry := domain.Chain(head.TrailLength, head.TrailHead, trailEntry(ev, next))
		entries = append(entries, adapters.Appended{TrailEntry: entry, SchoolCode: head.SchoolCode, Previous: head.State.Status})
		heads[ev.ApplicationID] = advance(head, next, entry)
	}
	moves := make([]adapters.Move, len(ids))
	for i, id := range ids {
		from, to := read[id], heads[id]
		moves[i] = adapters.Move{ID: id, FromLength: from.TrailLength, FromHead: from.TrailHead,
			State: to.State, Length: to.TrailLength, Head: to.TrailHead}
	}
	if err := s.store.ApplyChanges(ctx, tx, moves, s.clock(), entries); err != nil {
		return err
	}
	// The heads are only a hint for ApplyEvent (its writes are conditional),
	// so a rolled-back transaction leaving them ahead of the rows is harmless.
	for _, id := range ids {
		s.heads.put(id, heads[id])
	}
	return nil
}
