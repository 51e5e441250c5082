package app

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/edubureau/studentaid/services/application/internal/domain"
)

// applyBatch runs ApplyEvents in its own transaction, committed on success.
func applyBatch(s *Service, pool *pgxpool.Pool, evs []Event) error {
	return pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error {
		return s.ApplyEvents(context.Background(), tx, evs)
	})
}

// lifecycle is the events that take an application from submission to paid.
func lifecycle(id, batch string) []Event {
	kinds := []domain.Kind{domain.KindSchoolApproved, domain.KindNoticePassed, domain.KindBureauApproved,
		domain.KindItemBatched, domain.KindPaymentOrdered, domain.KindPaymentSucceeded}
	out := make([]Event, len(kinds))
	for i, k := range kinds {
		out[i] = ev(id, k)
		out[i].OccurredAt = time.Date(2026, 9, 1, 8, 0, i, 0, time.UTC)
		if k == domain.KindItemBatched || k == domain.KindPaymentOrdered || k == domain.KindPaymentSucceeded {
			out[i].BatchID, out[i].Change.BatchID = batch, batch
		}
		if k == domain.KindPaymentOrdered || k == domain.KindPaymentSucceeded {
			out[i].Change.PaymentID = "pay-" + id[:8]
		}
	}
	return out
}

// TestApplyEventsMatchesApplyEvent applies the same events to two sets of
// applications, one batch at once and one event at a time, and expects the
// same states and the same trails (hashes included) from both.
func TestApplyEventsMatchesApplyEvent(t *testing.T) {
	t.Parallel()
	s, pool := newService(t)
	const n = 5
	ids := submitN(t, s, 2*n)
	batched, single := ids[:n], ids[n:]

	// Interleave the applications' lifecycles; application i gets the first
	// i+2 steps, so some move once and others several times in the batch.
	build := func(apps []string) (lives [][]Event, all []Event) {
		for i, id := range apps {
			lives = append(lives, lifecycle(id, "B-1")[:min(i+2, 6)])
		}
		for step := range 6 {
			for _, l := range lives {
				if step < len(l) {
					all = append(all, l[step])
				}
			}
		}
		return lives, all
	}
	livesB, evsB := build(batched)
	_, evsS := build(single)
	if err := applyBatch(s, pool, evsB); err != nil {
		t.Fatalf("batch: %v", err)
	}
	other := serviceOn(t, pool)
	for _, e := range evsS {
		if err := apply(other, pool, e, false); err != nil {
			t.Fatalf("single %s: %v", e.Change.Kind, err)
		}
	}
	wantStatus := []domain.Status{domain.StatusSchoolApproved, domain.StatusBureauApproved, domain.StatusBureauApproved,
		domain.StatusConfirmed, domain.StatusPaid}
	ctx := context.Background()
	for i := range n {
		a, _, err := s.store.GetApplication(ctx, pool, batched[i], false)
		if err != nil {
			t.Fatal(err)
		}
		b, _, err := s.store.GetApplication(ctx, pool, single[i], false)
		if err != nil {
			t.Fatal(err)
		}
		if a.Status != wantStatus[i] || a.Status != b.Status || a.AmountFen != b.AmountFen || a.BatchID != b.BatchID ||
			a.PaymentID != b.PaymentID || a.HardshipLevel != b.HardshipLevel || a.TrailLength != int64(i+3) || a.TrailLength != b.TrailLength {
			t.Errorf("application %d: batch %+v %d, single %+v %d, want %s", i, a.State, a.TrailLength, b.State, b.TrailLength, wantStatus[i])
		}
		ta, err := s.store.Trail(ctx, pool, batched[i])
		if err != nil {
			t.Fatal(err)
		}
		tb, err := s.store.Trail(ctx, pool, single[i])
		if err != nil {
			t.Fatal(err)
		}
		if v := domain.VerifyTrail(ta, a.TrailLength); !v.OK || a.TrailHead != ta[len(ta)-1].Hash {
			t.Errorf("application %d: trail does not verify: %+v", i, v)
		}
		for j := 1; j < len(ta); j++ {
			// The application's events in order, with the same content as
			// the single path's apart from which application.
			x, y := ta[j], tb[j]
			if x.EventID != livesB[i][j-1].ID || x.Type != y.Type || x.Status != y.Status || x.AmountFen != y.AmountFen ||
				x.BatchID != y.BatchID || x.Position != y.Position || !x.OccurredAt.Equal(y.OccurredAt) {
				t.Errorf("application %d trail[%d]: batch %+v, single %+v", i, j, x, y)
			}
		}
	}
}

// TestApplyEventsAllOrNothing checks that one event the batch cannot apply
// refuses the batch with that event's error and writes nothing.
func TestApplyEventsAllOrNothing(t *testing.T) {
	t.Parallel()
	s, pool := newService(t)
	ids := submitN(t, s, 3)
	good := []Event{ev(ids[0], domain.KindSchoolApproved), ev(ids[1], domain.KindSchoolApproved), ev(ids[1], domain.KindNoticePassed)}
	for _, tc := range []struct {
		name string
		bad  Event
		want error
	}{
		{"early", ev(ids[2], domain.KindNoticePassed), domain.ErrNotYet},
		{"early after an earlier event of the batch", ev(ids[0], domain.KindBureauApproved), domain.ErrNotYet},
		{"impossible", ev(ids[2], domain.KindSubmitted), domain.ErrImpossible},
		{"unknown application", ev(uuid.NewString(), domain.KindSchoolApproved), ErrUnknownApplication},
		{"other school", func() Event { e := ev(ids[2], domain.KindSchoolApproved); e.SchoolCode = "S999"; return e }(), ErrKeysMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs := append(append([]Event{}, good...), tc.bad)
			err := applyBatch(s, pool, evs)
			if !errors.Is(err, tc.want) {
				t.Fatalf("%v, want %v", err, tc.want)
			}
			for _, id := range ids {
				if st, n := statusOf(t, pool, id); st != domain.StatusSubmitted || n != 1 {
					t.Fatalf("refused batch changed %s: %s, %d entries", id, st, n)
				}
			}
		})
	}
	// The same good events then apply, and the cached heads they left do not
	// mislead the single path.
	if err := applyBatch(s, pool, good); err != nil {
		t.Fatal(err)
	}
	if err := apply(s, pool, ev(ids[0], domain.KindNoticePassed), false); err != nil {
		t.Fatal(err)
	}
	for i, want := range []domain.Status{domain.StatusSchoolApproved, domain.StatusSchoolApproved, domain.StatusSubmitted} {
		if st, n := statusOf(t, pool, ids[i]); st != want || n != int64(map[int]int{0: 3, 1: 3, 2: 1}[i]) {
			t.Errorf("application %d: %s, %d entries", i, st, n)
		}
	}
}

// BenchmarkApplyEvents measures the consumer's batch path per event: the
// inbox insert of 256 events in one statement and ApplyEvents of them.
func BenchmarkApplyEvents(b *testing.B) {
	s, pool := newService(b)
	ids := make([]string, 0, b.N)
	for len(ids) < b.N {
		ids = append(ids, submitN(b, s, min(1000, b.N-len(ids)))...)
	}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < len(ids); i += 256 {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			var evs []Event
			var evIDs, subjects []string
			for _, id := range ids[i:min(i+256, len(ids))] {
				e := ev(id, domain.KindSchoolApproved)
				evs = append(evs, e)
				evIDs, subjects = append(evIDs, e.ID), append(subjects, "aid."+string(e.Change.Kind))
			}
			if _, err := tx.Exec(ctx, `INSERT INTO inbox (event_id, subject)
				SELECT * FROM unnest($1::uuid[], $2::text[]) ON CONFLICT DO NOTHING`, evIDs, subjects); err != nil {
				return err
			}
			if err := s.ApplyEvents(ctx, tx, evs); err != nil {
				return fmt.Errorf("apply: %w", err)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
