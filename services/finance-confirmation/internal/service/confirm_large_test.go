package service_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	financev1 "github.com/edubureau/studentaid/proto/gen/aid/finance/v1"
)

// TestConfirmFiftyThousandItems confirms a batch of 50,000 items: one
// transaction, set-based, in a few seconds. Under the race detector it
// confirms 10,000 and does not time them.
func TestConfirmFiftyThousandItems(t *testing.T) {
	t.Parallel()
	n := int64(50000)
	if raceDetector {
		n = 10000
	}
	h := start(t)
	ctx := context.Background()
	batchID := uuid.NewString()
	// Seeded in SQL: publishing 50,000 approvals is the consumer's test, not this one's.
	if _, err := h.pool.Exec(ctx, `INSERT INTO batches (batch_id, term, program_code, funding_source, control_count, control_sum_fen, status, closed_by, closed_by_org, closed_at)
VALUES ($1, '2017-autumn', 'BOARDING_SUBSIDY', 'government', $2::bigint, $2::bigint * 62500, 'CLOSED', 'fin-closer', 'FINANCE', now())`, batchID, n); err != nil {
		t.Fatal(err)
	}
	if _, err := h.pool.Exec(ctx, `INSERT INTO items (batch_id, application_id, school_code, amount_fen, submitted_by, school_reviewer, bureau_reviewer)
SELECT $1, gen_random_uuid(), 'S' || (g % 40), 62500, 'off', 'rev', 'bur' FROM generate_series(1, $2) g`, batchID, n); err != nil {
		t.Fatal(err)
	}
	fin := h.officer("fin-1")
	began := time.Now()
	b, err := fin.ConfirmBatch(ctx, &financev1.ConfirmBatchRequest{BatchId: batchID, ControlCount: n, ControlSumFen: n * 62500})
	took := time.Since(began)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("confirmed %d items in %v", n, took)
	if b.GetStatus() != financev1.BatchStatus_BATCH_STATUS_CONFIRMED {
		t.Fatalf("status %v", b.GetStatus())
	}
	if !raceDetector && took > 15*time.Second {
		t.Errorf("confirming %d items took %v", n, took)
	}
	var ordered, payments, outboxRows int64
	if err := h.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'ORDERED' AND attempt = 1), count(DISTINCT payment_id),
  (SELECT count(*) FROM outbox WHERE subject = 'aid.finance.payment_ordered.v1')
FROM items WHERE batch_id = $1`, batchID).Scan(&ordered, &payments, &outboxRows); err != nil {
		t.Fatal(err)
	}
	if ordered != n || payments != n || outboxRows != n {
		t.Errorf("ordered %d, distinct payments %d, payment_ordered rows %d; want %d each", ordered, payments, outboxRows, n)
	}
}
