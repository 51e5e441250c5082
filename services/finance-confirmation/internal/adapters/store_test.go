package adapters_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/edubureau/studentaid/internal/devtools/testenv"
	"github.com/edubureau/studentaid/pkg/audit"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/outbox"
	"github.com/edubureau/studentaid/services/finance-confirmation/internal/adapters"
	"github.com/edubureau/studentaid/services/finance-confirmation/internal/domain"
	"github.com/edubureau/studentaid/services/finance-confirmation/migrations"
)

// closer and confirmer are the two finance officers a batch takes.
var (
	closer    = auth.Identity{UserID: "fin-1", Role: auth.RoleFinanceOfficer, Org: auth.OrgFinance}
	confirmer = auth.Identity{UserID: "fin-2", Role: auth.RoleFinanceOfficer, Org: auth.OrgFinance}
)

func migrated(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, _ := testenv.Pool(t, "finance_confirmation")
	if err := db.Migrate(context.Background(), pool, "finance_confirmation", outbox.Migrations(), audit.Migrations(), migrations.FS()); err != nil {
		t.Fatal(err)
	}
	return pool
}

// rolledBackTx begins a transaction on pool that is rolled back when the
// test ends.
func rolledBackTx(t *testing.T, pool *pgxpool.Pool) (context.Context, pgx.Tx) {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback(ctx) })
	return ctx, tx
}

func item(amount int64) domain.ApprovedItem {
	return domain.ApprovedItem{ApplicationID: uuid.NewString(), SchoolCode: "S001", AmountFen: amount, Term: "2017-autumn",
		ProgramCode: "PRESCHOOL_AID", FundingSource: "government",
		Reviewers: domain.Reviewers{SubmittedBy: "off", SchoolReviewer: "rev", BureauReviewer: "bur"}}
}

// TestConcurrentCreatorsShareOneOpenBatch races two transactions that both
// find no open batch: the second waits on the partial unique index, does
// nothing, and joins the batch the first created.
func TestConcurrentCreatorsShareOneOpenBatch(t *testing.T) {
	t.Parallel()
	pool := migrated(t)
	ctx := context.Background()
	tx1, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx1.Rollback(ctx)
	first, added, err := adapters.AddItem(ctx, tx1, item(50000))
	if err != nil || !added {
		t.Fatalf("first: %v %v", added, err)
	}

	type result struct {
		batch string
		err   error
	}
	done := make(chan result, 1)
	go func() {
		tx2, err := pool.Begin(ctx)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer tx2.Rollback(ctx)
		batch, _, err := adapters.AddItem(ctx, tx2, item(50000))
		if err == nil {
			err = tx2.Commit(ctx)
		}
		done <- result{batch, err}
	}()
	// The second creator must be blocked behind the first's uncommitted batch.
	eventuallyBlocked(t, pool)
	if err := tx1.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.batch != first {
		t.Errorf("second item went to %s, want the first's batch %s", r.batch, first)
	}
	var batches, count, sum int64
	if err := pool.QueryRow(ctx, `SELECT count(*), sum(control_count), sum(control_sum_fen) FROM batches`).Scan(&batches, &count, &sum); err != nil {
		t.Fatal(err)
	}
	if batches != 1 || count != 2 || sum != 100000 {
		t.Errorf("%d batches holding %d items / %d fen, want 1 / 2 / 100000", batches, count, sum)
	}
}

func eventuallyBlocked(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var waiting int
		if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the second creator never waited for the first")
}

func TestAddItemTwiceAndAfterReturn(t *testing.T) {
	t.Parallel()
	pool := migrated(t)
	ctx, tx := rolledBackTx(t, pool)
	it := item(62500)
	batch, added, err := adapters.AddItem(ctx, tx, it)
	if err != nil || !added {
		t.Fatal(added, err)
	}
	if _, added, err := adapters.AddItem(ctx, tx, it); err != nil || added {
		t.Fatalf("repeat: added %v err %v, want ignored", added, err)
	}
	b, err := adapters.LockBatch(ctx, tx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if b.ControlCount != 1 || b.ControlSumFen != 62500 {
		t.Fatalf("totals %d / %d after a repeated approval", b.ControlCount, b.ControlSumFen)
	}
	stored, err := adapters.LockItem(ctx, tx, batch, it.ApplicationID)
	if err != nil {
		t.Fatal(err)
	}
	if err := stored.Return("wrong program"); err != nil {
		t.Fatal(err)
	}
	if err := b.RemoveItem(stored.AmountFen); err != nil {
		t.Fatal(err)
	}
	if err := adapters.ReturnItem(ctx, tx, stored); err != nil {
		t.Fatal(err)
	}
	if err := adapters.SaveTotals(ctx, tx, b); err != nil {
		t.Fatal(err)
	}
	again, added, err := adapters.AddItem(ctx, tx, it)
	if err != nil || !added || again != batch {
		t.Fatalf("re-approval: %s %v %v", again, added, err)
	}
	b, err = adapters.LockBatch(ctx, tx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if b.ControlCount != 1 || b.ControlSumFen != 62500 {
		t.Errorf("totals %d / %d after re-approval", b.ControlCount, b.ControlSumFen)
	}
	// The batch row's totals must match its items at confirmation.
	if err := b.Close(closer); err != nil {
		t.Fatal(err)
	}
	if err := b.Confirm(confirmer, 1, 62500, time.Now()); err != nil {
		t.Fatal(err)
	}
	ordered, err := adapters.ConfirmBatch(ctx, tx, b)
	if err != nil || len(ordered) != 1 || ordered[0].ApplicationID != it.ApplicationID {
		t.Fatalf("confirm: %v %v", ordered, err)
	}
}

func TestConfirmRefusesTotalsThatDisagreeWithItems(t *testing.T) {
	t.Parallel()
	pool := migrated(t)
	ctx, tx := rolledBackTx(t, pool)
	batch, _, err := adapters.AddItem(ctx, tx, item(50000))
	if err != nil {
		t.Fatal(err)
	}
	// A manual edit that bypassed the item.
	if _, err := tx.Exec(ctx, `UPDATE batches SET control_sum_fen = 40000 WHERE batch_id = $1`, batch); err != nil {
		t.Fatal(err)
	}
	b, err := adapters.LockBatch(ctx, tx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(closer); err != nil {
		t.Fatal(err)
	}
	if err := b.Confirm(confirmer, 1, 40000, time.Now()); err != nil {
		t.Fatal(err)
	}
	ordered, err := adapters.ConfirmBatch(ctx, tx, b)
	if err == nil {
		err = b.CheckOrdered(ordered)
	}
	if !errors.Is(err, domain.ErrTotalsMismatch) {
		t.Fatalf("confirmed a batch whose row disagrees with its items: %v", err)
	}
}

// TestAddItemsAndRecordResultsInBulk adds approvals in one call (a repeat,
// one already live, two keys) and records their payment results in one
// call, checking the control, paid and failed totals the set-based
// statements keep.
func TestAddItemsAndRecordResultsInBulk(t *testing.T) {
	t.Parallel()
	pool := migrated(t)
	ctx, tx := rolledBackTx(t, pool)

	live := item(10000)
	liveBatch, added, err := adapters.AddItem(ctx, tx, live)
	if err != nil || !added {
		t.Fatalf("add live item: %v %v", added, err)
	}
	a, b, c := item(20000), item(30000), item(40000)
	c.ProgramCode = "OTHER_AID"
	added2, err := adapters.AddItems(ctx, tx, []domain.ApprovedItem{a, b, a, live, c})
	if err != nil {
		t.Fatal(err)
	}
	if len(added2) != 3 || added2[a.ApplicationID] != liveBatch || added2[b.ApplicationID] != liveBatch ||
		added2[c.ApplicationID] == "" || added2[c.ApplicationID] == liveBatch {
		t.Fatalf("added %v, want a and b in %s and c in a batch of its own", added2, liveBatch)
	}
	for _, want := range []struct {
		batch string
		count int64
		sum   int64
	}{{liveBatch, 3, 60000}, {added2[c.ApplicationID], 1, 40000}} {
		got, err := adapters.GetBatch(ctx, tx, want.batch)
		if err != nil {
			t.Fatal(err)
		}
		if got.ControlCount != want.count || got.ControlSumFen != want.sum {
			t.Errorf("batch %s totals %d / %d fen, want %d / %d", want.batch, got.ControlCount, got.ControlSumFen, want.count, want.sum)
		}
	}

	bt, err := adapters.LockBatch(ctx, tx, liveBatch)
	if err != nil {
		t.Fatal(err)
	}
	if err := bt.Close(closer); err != nil {
		t.Fatal(err)
	}
	if err := bt.Confirm(confirmer, bt.ControlCount, bt.ControlSumFen, time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	ordered, err := adapters.ConfirmBatch(ctx, tx, bt)
	if err != nil {
		t.Fatal(err)
	}
	pay := map[string]domain.Item{}
	for _, o := range ordered {
		pay[o.ApplicationID] = o
	}
	results := []domain.PaymentResult{
		{PaymentID: pay[live.ApplicationID].PaymentID, AmountFen: 10000, Paid: true},
		{PaymentID: pay[a.ApplicationID].PaymentID, AmountFen: 20000, Paid: true},
		{PaymentID: pay[b.ApplicationID].PaymentID, AmountFen: 30000, Reason: "ACCOUNT_CLOSED"},
	}
	applied, err := adapters.RecordPaymentResults(ctx, tx, results)
	if err != nil || applied != 3 {
		t.Fatalf("applied %d, %v; want 3", applied, err)
	}
	got, err := adapters.GetBatch(ctx, tx, liveBatch)
	if err != nil {
		t.Fatal(err)
	}
	if got.PaidCount != 2 || got.PaidSumFen != 30000 || got.FailedCount != 1 {
		t.Errorf("paid %d / %d fen, failed %d; want 2 / 30000, 1", got.PaidCount, got.PaidSumFen, got.FailedCount)
	}
	// Repeated and mismatched results change nothing and are not counted.
	results[2].AmountFen = 1
	if applied, err := adapters.RecordPaymentResults(ctx, tx, results); err != nil || applied != 0 {
		t.Fatalf("repeat applied %d, %v; want 0", applied, err)
	}
	if again, err := adapters.GetBatch(ctx, tx, liveBatch); err != nil || again.PaidCount != 2 || again.FailedCount != 1 {
		t.Errorf("after repeat: %+v, %v", again, err)
	}
}

// TestAddItemsDoesNotJoinABatchConfirmedMeanwhile races a bulk add with a
// confirmation: the add's snapshot still sees the batch OPEN, but the batch
// is confirmed (and committed) while the add waits for its row. The add must
// fail rather than put unordered items into a confirmed batch or change its
// control totals.
func TestAddItemsDoesNotJoinABatchConfirmedMeanwhile(t *testing.T) {
	t.Parallel()
	pool := migrated(t)
	ctx := context.Background()
	var batchID string
	if err := db.InTx(ctx, pool, func(tx pgx.Tx) error {
		var err error
		batchID, _, err = adapters.AddItem(ctx, tx, item(50000))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	confirm, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer confirm.Rollback(ctx)
	if _, err := confirm.Exec(ctx, `UPDATE batches SET status = 'CONFIRMED', confirmed_at = now() WHERE batch_id = $1`, batchID); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- db.InTx(ctx, pool, func(tx pgx.Tx) error {
			_, err := adapters.AddItems(ctx, tx, []domain.ApprovedItem{item(50000), item(50000)})
			return err
		})
	}()
	eventuallyBlocked(t, pool)
	if err := confirm.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Fatal("AddItems joined a batch confirmed while it waited")
	}
	var count, pending int64
	if err := pool.QueryRow(ctx, `SELECT control_count, (SELECT count(*) FROM items WHERE batch_id = $1 AND status = 'PENDING') FROM batches WHERE batch_id = $1`, batchID).Scan(&count, &pending); err != nil {
		t.Fatal(err)
	}
	if count != 1 || pending != 1 {
		t.Fatalf("confirmed batch now counts %d items with %d pending, want 1 and 1", count, pending)
	}
}
