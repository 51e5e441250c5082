package app

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/edubureau/studentaid/services/application/internal/domain"
)

// groupBy counts the applications per status the slow way, for comparison.
func groupBy(t *testing.T, pool *pgxpool.Pool) map[domain.Status]int64 {
	t.Helper()
	out := make(map[domain.Status]int64)
	for _, st := range domain.Statuses {
		out[st] = 0
	}
	rows, err := pool.Query(context.Background(), `SELECT status, count(*) FROM applications GROUP BY status`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var st string
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			t.Fatal(err)
		}
		out[domain.Status(st)] = n
	}
	return out
}

func wantCounts(t *testing.T, s *Service, pool *pgxpool.Pool, want map[domain.Status]int64) {
	t.Helper()
	got, err := s.StatusCounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(domain.Statuses) {
		t.Fatalf("StatusCounts has %d statuses, want all %d: %v", len(got), len(domain.Statuses), got)
	}
	for _, st := range domain.Statuses {
		if got[st] != want[st] {
			t.Fatalf("%s: %d, want %d (all: %v)", st, got[st], want[st], got)
		}
	}
	slow := groupBy(t, pool)
	for st, n := range got {
		if slow[st] != n {
			t.Fatalf("%s: maintained count %d, GROUP BY says %d", st, n, slow[st])
		}
	}
}

func TestStatusCountsFollowEveryChange(t *testing.T) {
	t.Parallel()
	s, pool := newService(t)
	ids := submitN(t, s, 5)
	wantCounts(t, s, pool, map[domain.Status]int64{domain.StatusSubmitted: 5})

	for _, id := range ids[:3] {
		if err := apply(s, pool, ev(id, domain.KindSchoolApproved), false); err != nil {
			t.Fatal(err)
		}
	}
	// A rolled-back change counts for nothing.
	if err := apply(s, pool, ev(ids[3], domain.KindSchoolApproved), true); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, s, pool, map[domain.Status]int64{domain.StatusSubmitted: 2, domain.StatusInNotice: 3})

	// The set-based path: one statement for the batch.
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if err := s.ApplyEvents(ctx, tx, []Event{ev(ids[3], domain.KindSchoolRejected), ev(ids[4], domain.KindSchoolRejected),
		ev(ids[0], domain.KindNoticePassed)}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// SUBMITTED dropped to zero and says so.
	wantCounts(t, s, pool, map[domain.Status]int64{domain.StatusInNotice: 2, domain.StatusSchoolRejected: 2, domain.StatusSchoolApproved: 1})
}

// Replicas fold the deltas at the same time: each delta counts once.
func TestStatusCountsFoldedByReplicasAtOnce(t *testing.T) {
	t.Parallel()
	s, pool := newService(t)
	replicas := []*Service{s, serviceOn(t, pool), serviceOn(t, pool)}
	var wg sync.WaitGroup
	for round := range 4 {
		ids := submitN(t, s, 20)
		for _, id := range ids[:round*5] {
			if err := apply(s, pool, ev(id, domain.KindSchoolApproved), false); err != nil {
				t.Fatal(err)
			}
		}
		for _, r := range replicas {
			wg.Go(func() {
				if _, err := r.StatusCounts(context.Background()); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	// 80 submitted, 0+5+10+15 of them approved.
	wantCounts(t, s, pool, map[domain.Status]int64{domain.StatusSubmitted: 50, domain.StatusInNotice: 30})
}
