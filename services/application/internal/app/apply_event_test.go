package app

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/edubureau/studentaid/internal/devtools/testenv"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/idnumber"
	"github.com/edubureau/studentaid/pkg/outbox"
	"github.com/edubureau/studentaid/pkg/pii"
	"github.com/edubureau/studentaid/services/application/internal/domain"
	"github.com/edubureau/studentaid/services/application/migrations"
)

var officer = auth.Identity{UserID: "officer-1", Role: auth.RoleSchoolOfficer, Org: "S001"}

// newService returns a Service on a fresh, migrated database.
func newService(t testing.TB) (*Service, *pgxpool.Pool) {
	t.Helper()
	pool, _ := testenv.Pool(t, "application")
	if err := db.Migrate(context.Background(), pool, "application", outbox.Migrations(), migrations.FS()); err != nil {
		t.Fatal(err)
	}
	return serviceOn(t, pool), pool
}

// serviceOn returns another Service (as another replica would be) on pool.
func serviceOn(t testing.TB, pool *pgxpool.Pool) *Service {
	t.Helper()
	return New(Deps{Pool: pool, Sealer: testenv.Sealer(t, ""), Hasher: testenv.Hasher(t, "")})
}

var seq atomic.Int64

// submitN submits n boarding-subsidy applications and returns their IDs.
func submitN(t testing.TB, s *Service, n int) []string {
	t.Helper()
	req := SubmitRequest{SchoolCode: "S001", Term: "2017-autumn"}
	for range n {
		k := seq.Add(1)
		req.Applications = append(req.Applications, NewApplication{
			StudentIDNumber: idnumber.Generate("420106", time.Date(2008, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(k/1000)), int(k%1000)),
			StudentName:     "张三", Stage: "primary", ProgramCode: "BOARDING_SUBSIDY", Boarding: true, Rural: true,
			BankCardNumber: pii.GenerateCardNumber("622848", k, 19), AccountName: "张三"})
	}
	apps, err := s.Submit(context.Background(), officer, req)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(apps))
	for i, a := range apps {
		ids[i] = a.ID
	}
	return ids
}

func ev(id string, kind domain.Kind) Event {
	return Event{ID: uuid.NewString(), OccurredAt: time.Now(), ApplicationID: id, ActorUser: "rev-1", ActorRole: "school_reviewer",
		ActorOrg: "S001", SchoolCode: "S001", Change: domain.Change{Kind: kind, AmountFen: 50000}}
}

// apply runs ApplyEvent in its own transaction, committed unless rollback.
func apply(s *Service, pool *pgxpool.Pool, e Event, rollback bool) error {
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if err := s.ApplyEvent(ctx, tx, e); err != nil {
		return err
	}
	if rollback {
		return tx.Rollback(ctx)
	}
	return tx.Commit(ctx)
}

func statusOf(t *testing.T, pool *pgxpool.Pool, id string) (domain.Status, int64) {
	t.Helper()
	var st string
	var n int64
	if err := pool.QueryRow(context.Background(), `SELECT status, (SELECT count(*) FROM trail WHERE application_id = $1) FROM applications WHERE id = $1`, id).Scan(&st, &n); err != nil {
		t.Fatal(err)
	}
	return domain.Status(st), n
}

func TestApplyEventWithStaleHeads(t *testing.T) {
	t.Parallel()
	s, pool := newService(t)
	ids := submitN(t, s, 3)

	// A rolled-back transaction leaves the cached head ahead of the row:
	// the same event applies again, from the row.
	approved := ev(ids[0], domain.KindSchoolApproved)
	if err := apply(s, pool, approved, true); err != nil {
		t.Fatal(err)
	}
	if st, n := statusOf(t, pool, ids[0]); st != domain.StatusSubmitted || n != 1 {
		t.Fatalf("after rollback: %s, %d entries", st, n)
	}
	if err := apply(s, pool, approved, false); err != nil {
		t.Fatalf("reapply after rollback: %v", err)
	}
	if st, n := statusOf(t, pool, ids[0]); st != domain.StatusInNotice || n != 2 {
		t.Fatalf("after reapply: %s, %d entries", st, n)
	}

	// Another replica moves the application on: this one's cached head is
	// behind, and the next event still lands on the real trail end.
	other := serviceOn(t, pool)
	if err := apply(other, pool, ev(ids[0], domain.KindNoticePassed), false); err != nil {
		t.Fatal(err)
	}
	if err := apply(s, pool, ev(ids[0], domain.KindBureauApproved), false); err != nil {
		t.Fatalf("apply with a head behind the row: %v", err)
	}
	if st, n := statusOf(t, pool, ids[0]); st != domain.StatusBureauApproved || n != 4 {
		t.Fatalf("after two replicas: %s, %d entries", st, n)
	}
	entries, err := s.store.Trail(context.Background(), pool, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if v := domain.VerifyTrail(entries, 4); !v.OK {
		t.Fatalf("trail does not verify: %+v", v)
	}

	// A head behind the row must not refuse what the row allows.
	if err := apply(other, pool, ev(ids[1], domain.KindSchoolApproved), false); err != nil {
		t.Fatal(err)
	}
	if err := apply(s, pool, ev(ids[1], domain.KindNoticePassed), false); err != nil {
		t.Fatalf("stale head refused a legal event: %v", err)
	}

	// Refusals.
	for _, tc := range []struct {
		name string
		e    Event
		want error
	}{
		{"early", ev(ids[2], domain.KindNoticePassed), domain.ErrNotYet},
		{"impossible", ev(ids[2], domain.KindSubmitted), domain.ErrImpossible},
		{"unknown application", ev(uuid.NewString(), domain.KindSchoolApproved), ErrUnknownApplication},
		{"other school", func() Event { e := ev(ids[2], domain.KindSchoolApproved); e.SchoolCode = "S999"; return e }(), ErrKeysMismatch},
	} {
		if err := apply(s, pool, tc.e, false); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if st, n := statusOf(t, pool, ids[2]); st != domain.StatusSubmitted || n != 1 {
		t.Fatalf("refused events changed the application: %s, %d entries", st, n)
	}
}

// BenchmarkApplyEvent measures the consumer's work per event: the inbox
// insert and ApplyEvent, 256 events per transaction.
func BenchmarkApplyEvent(b *testing.B) {
	s, pool := newService(b)
	ids := make([]string, 0, b.N)
	for len(ids) < b.N {
		ids = append(ids, submitN(b, s, min(1000, b.N-len(ids)))...)
	}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < len(ids); i += 256 {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			for _, id := range ids[i:min(i+256, len(ids))] {
				e := ev(id, domain.KindSchoolApproved)
				if _, err := tx.Exec(ctx, `INSERT INTO inbox (event_id, subject) VALUES ($1, $2) ON CONFLICT DO NOTHING`, e.ID, "aid."+string(e.Change.Kind)); err != nil {
					return err
				}
				if err := s.ApplyEvent(ctx, tx, e); err != nil {
					return fmt.Errorf("apply: %w", err)
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
