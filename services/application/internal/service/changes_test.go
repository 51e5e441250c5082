package service_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/auth"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
	commonv1 "github.com/edubureau/studentaid/proto/gen/aid/common/v1"
	"github.com/edubureau/studentaid/services/application/internal/adapters"
	"github.com/edubureau/studentaid/services/application/internal/domain"
)

// changeKey names one change: an application and its trail position.
func changeKey(c *applicationv1.Change) string {
	return fmt.Sprintf("%s/%d", c.GetApplicationId(), c.GetTrailPosition())
}

// follower reads a school's feed from its cursor and counts what it saw.
type follower struct {
	c      applicationv1.ApplicationServiceClient
	school string
	cursor string
	seen   map[string]int
	order  []string
}

func newFollower(c applicationv1.ApplicationServiceClient, school string) *follower {
	return &follower{c: c, school: school, seen: map[string]int{}}
}

// read makes one call and returns how many changes came.
func (f *follower) read(t *testing.T, size, wait int32) int {
	t.Helper()
	resp, err := f.c.ListChanges(context.Background(), &applicationv1.ListChangesRequest{SchoolCode: f.school, After: f.cursor, PageSize: size, WaitSeconds: wait})
	if err != nil {
		t.Fatalf("list changes after %q: %v", f.cursor, err)
	}
	for _, c := range resp.GetChanges() {
		k := changeKey(c)
		f.seen[k]++
		f.order = append(f.order, k)
	}
	f.cursor = resp.GetNextCursor()
	return len(resp.GetChanges())
}

// readUntil follows the feed with long-polls until it has seen n distinct
// changes, or fails after a while. An answer with fewer changes than are
// committed is not the end: the feed holds back changes that committed
// behind an older transaction still in flight (of any database of the
// cluster) until that one ends.
func (f *follower) readUntil(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for len(f.seen) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d distinct changes seen, want %d: the feed skipped some", len(f.seen), n)
		}
		f.read(t, 50, 1)
	}
}

// appendTrail appends trail entry position of application id of school SA
// inside tx through the store, as the event consumer does (the hashes do not
// matter to the feed).
func appendTrail(ctx context.Context, t *testing.T, tx pgx.Tx, id string, position int) {
	t.Helper()
	if err := writeEntry(ctx, tx, "SA", id, position); err != nil {
		t.Fatalf("append trail %s/%d: %v", id, position, err)
	}
}

func writeEntry(ctx context.Context, tx pgx.Tx, school, id string, position int) error {
	return adapters.Store{}.InsertTrail(ctx, tx, []adapters.Appended{{
		TrailEntry: domain.TrailEntry{ApplicationID: id, Position: int64(position), EventID: uuid.NewString(), Type: "test",
			OccurredAt: time.Now().UTC(), ActorUser: "u", ActorRole: "service", ActorOrg: "IT",
			Status: domain.StatusSchoolApproved, PrevHash: "x", Hash: "y"},
		SchoolCode: school, Previous: domain.StatusSubmitted,
	}})
}

// checkFeedMirrorsTrail fails unless the change feed holds exactly one row
// per trail entry, with the application's school, the entry's type and
// status, and the status of the entry before it as the previous status.
func checkFeedMirrorsTrail(t *testing.T, e *env) {
	t.Helper()
	var entries, mirrored int
	if err := e.pool.QueryRow(context.Background(), `SELECT
		  (SELECT count(*) FROM trail),
		  (SELECT count(*) FROM trail t
		   JOIN applications a ON a.id = t.application_id
		   LEFT JOIN trail p ON p.application_id = t.application_id AND p.position = t.position - 1
		   JOIN changes c ON c.application_id = t.application_id AND c.position = t.position
		   WHERE c.school_code = a.school_code AND c.type = t.type AND c.status = t.status
		     AND c.previous_status = coalesce(p.status, '') AND c.occurred_at = t.occurred_at
		     AND c.recorded_at = t.recorded_at AND c.xid = t.tx)`).Scan(&entries, &mirrored); err != nil {
		t.Fatal(err)
	}
	var rows int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM changes`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if entries == 0 || mirrored != entries || rows != entries {
		t.Fatalf("%d trail entries, %d mirrored in the change feed, %d feed rows: want one matching row per entry", entries, mirrored, rows)
	}
}

// TestChangesOutOfOrderCommits commits two transactions in the opposite
// order to the one they wrote in, in both orders of the identity they took:
// a reader between the two commits must not move its cursor past the one
// still in flight, and afterwards sees both exactly once.
func TestChangesOutOfOrderCommits(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := context.Background()
	officer := e.officer("SA")
	apps := submit(t, officer, "SA", boarding(newStudent()), boarding(newStudent()))
	f := newFollower(officer, "SA")
	f.readUntil(t, 2)

	for i, name := range []string{"first writer takes the smaller seq", "first writer takes the larger seq"} {
		t.Run(name, func(t *testing.T) {
			position := 2 + i
			early, err := e.pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = early.Rollback(ctx) }()
			late, err := e.pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = late.Rollback(ctx) }()
			if i == 0 {
				appendTrail(ctx, t, early, apps[0].GetApplicationId(), position)
				appendTrail(ctx, t, late, apps[1].GetApplicationId(), position)
			} else {
				// early gets its transaction ID first, then late takes
				// the smaller seq.
				if _, err := early.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil {
					t.Fatal(err)
				}
				appendTrail(ctx, t, late, apps[1].GetApplicationId(), position)
				appendTrail(ctx, t, early, apps[0].GetApplicationId(), position)
			}
			if err := late.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			// late is committed, early is not: a reader given late's
			// change now would have passed early's and never see it.
			f.read(t, 100, 0)
			lateKey := fmt.Sprintf("%s/%d", apps[1].GetApplicationId(), position)
			if f.seen[lateKey] != 0 {
				t.Fatalf("the feed gave %s while an older transaction was still in flight", lateKey)
			}
			if err := early.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			f.readUntil(t, 2+2*(i+1))
			for _, a := range apps {
				if k := fmt.Sprintf("%s/%d", a.GetApplicationId(), position); f.seen[k] != 1 {
					t.Errorf("change %s seen %d times, want once (feed order %v)", k, f.seen[k], f.order)
				}
			}
		})
	}
}

// TestChangesConcurrentWriters has writers commit many small transactions
// at random moments while a reader follows the feed in small pages: the
// reader must end with every change exactly once.
func TestChangesConcurrentWriters(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := context.Background()
	officer := e.officer("SB")
	const writers, perWriter = 6, 30
	news := make([]*applicationv1.NewApplication, writers)
	for i := range news {
		news[i] = boarding(newStudent())
	}
	apps := submit(t, officer, "SB", news...)
	f := newFollower(officer, "SB")

	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w, a := range apps {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for p := 2; p < 2+perWriter; p++ {
				tx, err := e.pool.Begin(ctx)
				if err != nil {
					errs <- err
					return
				}
				if err := writeEntry(ctx, tx, "SB", a.GetApplicationId(), p); err != nil {
					_ = tx.Rollback(ctx)
					errs <- err
					return
				}
				// Hold the transaction open a random while, so commits
				// land out of the order the rows were written in.
				time.Sleep(time.Duration(r.IntN(5000)) * time.Microsecond)
				if err := tx.Commit(ctx); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	want := writers * (1 + perWriter)
	writing := true
	for writing {
		select {
		case <-done:
			writing = false
		default:
		}
		f.read(t, 5, 0)
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	f.readUntil(t, want)
	f.read(t, 50, 0)
	if len(f.order) != want || len(f.seen) != want {
		t.Fatalf("read %d changes (%d distinct), want %d each once", len(f.order), len(f.seen), want)
	}
	for k, n := range f.seen {
		if n != 1 {
			t.Errorf("change %s seen %d times", k, n)
		}
	}
	// Each application's changes arrive in trail order.
	last := map[string]int{}
	for _, k := range f.order {
		var id string
		var p int
		if _, err := fmt.Sscanf(k, "%36s/%d", &id, &p); err != nil {
			t.Fatal(err)
		}
		if p <= last[id] {
			t.Errorf("application %s: position %d after %d", id, p, last[id])
		}
		last[id] = p
	}
}

// TestChangesLongPollWakes waits on an empty feed and is answered with the
// submission that commits while it waits.
func TestChangesLongPollWakes(t *testing.T) {
	t.Parallel()
	e := start(t)
	officer := e.officer("SI")
	f := newFollower(officer, "SI")
	if n := f.read(t, 10, 0); n != 0 {
		t.Fatalf("a new school's feed has %d changes", n)
	}
	got := make(chan int, 1)
	go func() {
		resp, err := officer.ListChanges(context.Background(), &applicationv1.ListChangesRequest{SchoolCode: "SI", After: f.cursor, WaitSeconds: 30})
		if err != nil {
			t.Error(err)
		}
		got <- len(resp.GetChanges())
	}()
	a := submit(t, officer, "SI", boarding(newStudent()))[0]
	if n := <-got; n != 1 {
		t.Fatalf("the long-poll got %d changes, want the submission", n)
	}
	f.read(t, 10, 0)
	c := f.order
	if len(c) != 1 || c[0] != a.GetApplicationId()+"/1" {
		t.Fatalf("feed %v, want the submission of %s", c, a.GetApplicationId())
	}
}

// TestChangesScopeAndInput refuses another school's officer, accepts a
// bureau reviewer, and rejects cursors the feed did not give.
func TestChangesScopeAndInput(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := context.Background()
	officer := e.officer("SJ")
	a := submit(t, officer, "SJ", boarding(newStudent()))[0]

	other := e.officer("SK")
	_, err := other.ListChanges(ctx, &applicationv1.ListChangesRequest{SchoolCode: "SJ"})
	if st := wantCode(t, err, codes.PermissionDenied); rule(st) != string(apperr.ReasonOwnSchoolOnly) {
		t.Fatalf("reason %q, want %s", rule(st), apperr.ReasonOwnSchoolOnly)
	}
	reviewer := e.client("rev-sj", auth.RoleSchoolReviewer, "SK")
	_, err = reviewer.ListChanges(ctx, &applicationv1.ListChangesRequest{SchoolCode: "SJ"})
	wantCode(t, err, codes.PermissionDenied)

	bureau := e.client("bur-1", auth.RoleBureauReviewer, auth.OrgBureau)
	// With a wait: the submission may be held behind another test's
	// transaction still in flight.
	resp, err := bureau.ListChanges(ctx, &applicationv1.ListChangesRequest{SchoolCode: "SJ", WaitSeconds: 30})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetChanges()) != 1 {
		t.Fatalf("bureau reviewer got %v", resp.GetChanges())
	}
	c := resp.GetChanges()[0]
	if c.GetApplicationId() != a.GetApplicationId() || c.GetStatus() != commonv1.ApplicationStatus_APPLICATION_STATUS_SUBMITTED ||
		c.GetPreviousStatus() != commonv1.ApplicationStatus_APPLICATION_STATUS_UNSPECIFIED || c.GetTrailPosition() != 1 ||
		c.GetCursor() != resp.GetNextCursor() || c.GetRecordedAt().AsTime().Location() != time.UTC {
		t.Fatalf("change %v", c)
	}

	// SK's own feed does not take SJ's cursor.
	for name, req := range map[string]*applicationv1.ListChangesRequest{
		"garbage":          {SchoolCode: "SJ", After: "not a cursor!"},
		"base64 of junk":   {SchoolCode: "SJ", After: "aGVsbG8"},
		"another school's": {SchoolCode: "SK", After: c.GetCursor()},
	} {
		t.Run(name, func(t *testing.T) {
			caller := officer
			if req.GetSchoolCode() == "SK" {
				caller = other
			}
			_, err := caller.ListChanges(ctx, req)
			if v := violations(wantCode(t, err, codes.InvalidArgument)); v["after"] == "" {
				t.Fatalf("violations %v, want one on after", v)
			}
		})
	}
	for name, req := range map[string]*applicationv1.ListChangesRequest{
		"wait_seconds": {SchoolCode: "SJ", WaitSeconds: 31},
		"page_size":    {SchoolCode: "SJ", PageSize: 1001},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := officer.ListChanges(ctx, req)
			if v := violations(wantCode(t, err, codes.InvalidArgument)); v[name] == "" {
				t.Fatalf("violations %v, want one on %s", v, name)
			}
		})
	}
}
