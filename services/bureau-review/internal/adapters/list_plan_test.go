package adapters_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/edubureau/studentaid/internal/devtools/testenv"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/review"
	"github.com/edubureau/studentaid/services/bureau-review/internal/adapters"
	"github.com/edubureau/studentaid/services/bureau-review/internal/domain"
	"github.com/edubureau/studentaid/services/bureau-review/migrations"
)

// TestListWalksTheIndex: the inbox's page, across schools or for one,
// is read in index order and stops at the page's end; it never sorts every
// pending item (docs/performance.md, "Console at 1 million applications":
// ordering by the select list's application_id::text did, 800 ms at
// 500,000 items).
func TestListWalksTheIndex(t *testing.T) {
	pool, _ := testenv.Pool(t, "bureau_review")
	ctx := context.Background()
	if err := db.Migrate(ctx, pool, "bureau_review", migrations.FS()); err != nil {
		t.Fatal(err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `INSERT INTO review (application_id, school_code, term, program_code, stage, student_id_masked, student_id_hash,
		amount_fen, funding_source, submitted_by, school_reviewer, state)
		SELECT gen_random_uuid(), 'S' || (i % 50), '2017-autumn', 'PRESCHOOL_AID', 'preschool', '4201**********0015', md5(i::text),
		  50000, 'government', 'off', 'rev', CASE WHEN i % 3 = 0 THEN 'APPROVED' ELSE 'PENDING' END
		FROM generate_series(1, 20000) AS i`); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `ANALYZE review`); err != nil {
		t.Fatal(err)
	}
	for _, f := range []review.Filter[domain.State]{
		{State: domain.StatePending, Limit: 51},
		{State: domain.StatePending, Term: "2017-autumn", Limit: 51},
		{State: domain.StatePending, SchoolCode: "S7", Limit: 51},
		{State: domain.StateApproved, After: "7f000000-0000-0000-0000-000000000000", Limit: 51},
	} {
		sql, args := adapters.Reviews.ListQuery(f)
		var plan []map[string]any
		if err := tx.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+sql, args...).Scan(&plan); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(plan)
		if strings.Contains(string(b), `"Sort"`) || !strings.Contains(string(b), "Index Scan") {
			t.Errorf("%+v: the plan sorts or reads no index: %s", f, b)
		}
	}
}
