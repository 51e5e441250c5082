package adapters_test

import (
	"context"
	"fmt"
	"maps"
	"testing"

	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/services/finance-confirmation/internal/adapters"
	"github.com/edubureau/studentaid/services/finance-confirmation/internal/domain"
)

// TestAddItemsMatchesAddItem holds the set-based AddItems to AddItem, the
// one-event path that is the rule for gathering approvals into batches: the
// same approvals, taken in one by one in one database and all at once in
// another, leave the same items in batches of the same keys with the same
// control totals, and report the same applications as added. The approvals
// cover a key with no open batch, a second key, an application approved
// twice in the list, one already live before the list, and one returned and
// approved again.
func TestAddItemsMatchesAddItem(t *testing.T) {
	t.Parallel()
	live, returned := item(10000), item(15000)
	a, b, c, d := item(20000), item(30000), item(40000), item(45000)
	c.ProgramCode = "OTHER_AID"
	d.FundingSource = "charity"
	before := []domain.ApprovedItem{live, returned}
	approvals := []domain.ApprovedItem{a, b, a, live, c, returned, d}

	type outcome struct {
		added   map[string]bool
		items   map[string]string // application → "term/program/funding status amount"
		batches map[string]string // "term/program/funding" → "status count sum"
	}
	run := func(name string, apply func(ctx context.Context, tx db.Tx) (map[string]bool, error)) outcome {
		t.Helper()
		pool := migrated(t)
		ctx, tx := rolledBackTx(t, pool)
		for _, it := range before {
			if _, added, err := adapters.AddItem(ctx, tx, it); err != nil || !added {
				t.Fatalf("%s: seed %s: %v %v", name, it.ApplicationID, added, err)
			}
		}
		// Finance sent one item back: out of its batch's totals, RETURNED.
		if _, err := tx.Exec(ctx, `WITH i AS (UPDATE items SET status = 'RETURNED', reason = 'wrong amount'
  WHERE application_id = $1 RETURNING batch_id, amount_fen)
UPDATE batches b SET control_count = control_count - 1, control_sum_fen = control_sum_fen - i.amount_fen FROM i
 WHERE b.batch_id = i.batch_id`, returned.ApplicationID); err != nil {
			t.Fatal(err)
		}
		added, err := apply(ctx, tx)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		o := outcome{added: added, items: map[string]string{}, batches: map[string]string{}}
		rows, err := tx.Query(ctx, `SELECT i.application_id::text, b.term || '/' || b.program_code || '/' || b.funding_source,
  i.status, i.amount_fen FROM items i JOIN batches b USING (batch_id)`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var app, key, status string
			var amount int64
			if err := rows.Scan(&app, &key, &status, &amount); err != nil {
				t.Fatal(err)
			}
			o.items[app] = fmt.Sprintf("%s %s %d", key, status, amount)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows, err = tx.Query(ctx, `SELECT term || '/' || program_code || '/' || funding_source, status, control_count, control_sum_fen FROM batches`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var key, status string
			var count, sum int64
			if err := rows.Scan(&key, &status, &count, &sum); err != nil {
				t.Fatal(err)
			}
			if _, dup := o.batches[key]; dup {
				t.Fatalf("%s: two batches of %s", name, key)
			}
			o.batches[key] = fmt.Sprintf("%s %d %d", status, count, sum)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return o
	}

	one := run("AddItem", func(ctx context.Context, tx db.Tx) (map[string]bool, error) {
		added := map[string]bool{}
		for _, it := range approvals {
			_, ok, err := adapters.AddItem(ctx, tx, it)
			if err != nil {
				return nil, err
			}
			if ok {
				added[it.ApplicationID] = true
			}
		}
		return added, nil
	})
	all := run("AddItems", func(ctx context.Context, tx db.Tx) (map[string]bool, error) {
		batched, err := adapters.AddItems(ctx, tx, approvals)
		added := map[string]bool{}
		for app := range batched {
			added[app] = true
		}
		return added, err
	})

	if !maps.Equal(one.added, all.added) {
		t.Errorf("added: AddItem %v, AddItems %v", one.added, all.added)
	}
	if !maps.Equal(one.items, all.items) {
		t.Errorf("items: AddItem %v, AddItems %v", one.items, all.items)
	}
	if !maps.Equal(one.batches, all.batches) {
		t.Errorf("batches: AddItem %v, AddItems %v", one.batches, all.batches)
	}
	// The expectation itself, from the approvals above and not from either
	// function: a, b and the re-approved item join the first key's batch
	// beside the live one; c and d open batches of their own.
	want := map[string]string{
		"2017-autumn/PRESCHOOL_AID/government": "OPEN 4 75000",
		"2017-autumn/OTHER_AID/government":     "OPEN 1 40000",
		"2017-autumn/PRESCHOOL_AID/charity":    "OPEN 1 45000",
	}
	if !maps.Equal(all.batches, want) {
		t.Errorf("batches %v, want %v", all.batches, want)
	}
	if len(all.added) != 5 || all.added[live.ApplicationID] {
		t.Errorf("added %v, want a, b, c, d and the re-approved item, not the live one", all.added)
	}
}
