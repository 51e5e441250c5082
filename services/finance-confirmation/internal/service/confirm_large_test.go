package service_test

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/manifest"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
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

	// The same transaction wrote the signed manifest: its header verifies,
	// each of its parts matches, and together they list every ordered item.
	rows, err := h.pool.Query(ctx, `SELECT payload FROM outbox
WHERE subject IN ('aid.finance.batch_confirmed.v1', 'aid.finance.batch_manifest_part.v1') ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	payloads, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		t.Fatal(err)
	}
	if want := 1 + int((n+manifest.PartSize-1)/manifest.PartSize); len(payloads) != want {
		t.Fatalf("%d manifest events, want %d", len(payloads), want)
	}
	evs := make([]*eventsv1.Event, len(payloads))
	for i, p := range payloads {
		if evs[i], err = events.Unmarshal(p); err != nil {
			t.Fatal(err)
		}
	}
	header, err := manifest.HeaderOf(evs[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := devVerifier(t).Verify(header); err != nil {
		t.Fatal(err)
	}
	listed := map[string]int64{}
	for _, ev := range evs[1:] {
		index, items, err := manifest.PartOf(ev)
		if err != nil {
			t.Fatal(err)
		}
		if err := header.CheckPart(index, items); err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			listed[it.ApplicationID+"/"+it.PaymentID] = it.AmountFen
		}
	}
	var matched int64
	if err := h.pool.QueryRow(ctx, `SELECT count(*) FROM items WHERE batch_id = $1 AND amount_fen = 62500 AND application_id::text || '/' || payment_id::text = ANY($2)`,
		batchID, slices.Collect(maps.Keys(listed))).Scan(&matched); err != nil {
		t.Fatal(err)
	}
	if int64(len(listed)) != n || matched != n {
		t.Errorf("the manifest lists %d items, %d of them ordered items of the batch; want %d", len(listed), matched, n)
	}
}
