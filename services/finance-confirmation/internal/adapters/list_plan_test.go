package adapters

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/edubureau/studentaid/internal/devtools/testenv"
	"github.com/edubureau/studentaid/pkg/audit"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/outbox"
	"github.com/edubureau/studentaid/services/finance-confirmation/migrations"
)

// TestListItemsWalksThePrimaryKey: a batch's page of items is read in
// primary-key order, never sorted whole (docs/performance.md, "Console at 1
// million applications": ordering by the select list's
// application_id::text took 230 ms for 25,000 items).
func TestListItemsWalksThePrimaryKey(t *testing.T) {
	pool, _ := testenv.Pool(t, "finance_confirmation")
	ctx := context.Background()
	if err := db.Migrate(ctx, pool, "finance_confirmation", outbox.Migrations(), audit.Migrations(), migrations.FS()); err != nil {
		t.Fatal(err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var batch string
	if err := tx.QueryRow(ctx, `INSERT INTO batches (batch_id, term, program_code, funding_source) VALUES (gen_random_uuid(), '2017-autumn', 'PRESCHOOL_AID', 'government')
		RETURNING batch_id::text`).Scan(&batch); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO items (batch_id, application_id, school_code, amount_fen)
		SELECT $1, gen_random_uuid(), 'S001', 50000 FROM generate_series(1, 20000)`, batch); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `ANALYZE items`); err != nil {
		t.Fatal(err)
	}
	for _, after := range []any{nil, "7f000000-0000-0000-0000-000000000000"} {
		var plan []map[string]any
		if err := tx.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+listItemsSQL, batch, "", after, 51).Scan(&plan); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(plan)
		if strings.Contains(string(b), `"Sort"`) || !strings.Contains(string(b), "Index Scan") {
			t.Errorf("after %v: the plan sorts or reads no index: %s", after, b)
		}
	}
}
