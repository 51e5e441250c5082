// Package adapters keeps finance-confirmation's batches and items in
// PostgreSQL. Bulk changes (ordering every item of a batch) are single
// set-based statements; every change runs in the caller's transaction so the
// events describing it commit with it.
package adapters

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/db"

	"github.com/edubureau/studentaid/services/finance-confirmation/internal/domain"
)

// Errors of the store.
var (
	// ErrNotFound: no such batch, item or payment.
	ErrNotFound = errors.New("not found")
	// ErrPaymentMismatch: a payment result does not fit the item it names.
	ErrPaymentMismatch = errors.New("payment result does not match its item")
)

const batchColumns = `batch_id::text, term, program_code, funding_source, status, control_count, control_sum_fen,
	paid_count, paid_sum_fen, failed_count, closed_by, closed_by_org, confirmed_by, created_at, confirmed_at`

func scanBatch(row pgx.Row) (domain.Batch, error) {
	var b domain.Batch
	var status string
	var confirmedAt *time.Time
	err := row.Scan(&b.ID, &b.Term, &b.ProgramCode, &b.FundingSource, &status, &b.ControlCount, &b.ControlSumFen,
		&b.PaidCount, &b.PaidSumFen, &b.FailedCount, &b.ClosedBy, &b.ClosedByOrg, &b.ConfirmedBy, &b.CreatedAt, &confirmedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Batch{}, ErrNotFound
	}
	if err != nil {
		return domain.Batch{}, err
	}
	b.Status = domain.BatchStatus(status)
	b.CreatedAt = b.CreatedAt.UTC()
	if confirmedAt != nil {
		b.ConfirmedAt = confirmedAt.UTC()
	}
	return b, nil
}

const itemColumns = `batch_id::text, application_id::text, school_code, amount_fen, status, reason,
	coalesce(payment_id::text, ''), attempt, corrected, submitted_by, school_reviewer, bureau_reviewer`

func scanItem(row pgx.Row) (domain.Item, error) {
	var it domain.Item
	var status string
	err := row.Scan(&it.BatchID, &it.ApplicationID, &it.SchoolCode, &it.AmountFen, &status, &it.Reason,
		&it.PaymentID, &it.Attempt, &it.Corrected, &it.SubmittedBy, &it.SchoolReviewer, &it.BureauReviewer)
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Item{}, ErrNotFound
	}
	it.Status = domain.ItemStatus(status)
	return it, err
}

// AddItem puts it into the OPEN batch of its term, program and funding
// source, creating that batch when none is open, and adds it to the batch's
// control totals in the same statement. added is false when the application
// already has a live item (a repeated approval): nothing changes then.
//
// Creation is race-safe: the partial unique index batches_one_open lets only
// one OPEN batch exist per key, so concurrent creators insert with
// ON CONFLICT DO NOTHING and then join whichever batch won.
func AddItem(ctx context.Context, tx db.Tx, it domain.ApprovedItem) (batchID string, added bool, err error) {
	for range 3 {
		var updated, inserted *string
		err := tx.QueryRow(ctx, `WITH b AS (
  UPDATE batches
     SET control_count = control_count + 1, control_sum_fen = control_sum_fen + $4, updated_at = now()
   WHERE term = $1 AND program_code = $2 AND funding_source = $3 AND status = 'OPEN'
     AND NOT EXISTS (SELECT 1 FROM items WHERE application_id = $5 AND status <> 'RETURNED')
  RETURNING batch_id
), i AS (
  INSERT INTO items (batch_id, application_id, school_code, amount_fen, submitted_by, school_reviewer, bureau_reviewer)
  SELECT batch_id, $5, $6, $4, $7, $8, $9 FROM b
  ON CONFLICT (batch_id, application_id) DO UPDATE
     SET status = 'PENDING', reason = '', school_code = EXCLUDED.school_code, amount_fen = EXCLUDED.amount_fen,
         submitted_by = EXCLUDED.submitted_by, school_reviewer = EXCLUDED.school_reviewer,
         bureau_reviewer = EXCLUDED.bureau_reviewer, updated_at = now()
   WHERE items.status = 'RETURNED'
  RETURNING batch_id
)
SELECT (SELECT batch_id::text FROM b), (SELECT batch_id::text FROM i)`,
			it.Term, it.ProgramCode, it.FundingSource, it.AmountFen, it.ApplicationID, it.SchoolCode,
			it.SubmittedBy, it.SchoolReviewer, it.BureauReviewer).Scan(&updated, &inserted)
		if err != nil {
			return "", false, fmt.Errorf("add item %s: %w", it.ApplicationID, err)
		}
		switch {
		case updated != nil && inserted != nil:
			return *inserted, true, nil
		case updated != nil:
			// Counted but not inserted: a concurrent writer made the item
			// live in this batch. Roll back rather than keep wrong totals.
			return "", false, fmt.Errorf("add item %s: the item became live concurrently", it.ApplicationID)
		}
		var live bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM items WHERE application_id = $1 AND status <> 'RETURNED')`,
			it.ApplicationID).Scan(&live); err != nil {
			return "", false, fmt.Errorf("add item %s: %w", it.ApplicationID, err)
		}
		if live {
			return "", false, nil
		}
		id, err := uuid.NewV7()
		if err != nil {
			return "", false, err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO batches (batch_id, term, program_code, funding_source)
VALUES ($1, $2, $3, $4)
ON CONFLICT (term, program_code, funding_source) WHERE status = 'OPEN' DO NOTHING`,
			id, it.Term, it.ProgramCode, it.FundingSource); err != nil {
			return "", false, fmt.Errorf("open batch: %w", err)
		}
		// The next round's statement takes a new snapshot and sees the open batch,
		// ours or the one a concurrent creator committed.
	}
	return "", false, fmt.Errorf("add item %s: no open batch after retries", it.ApplicationID)
}

// GetBatch reads a batch.
func GetBatch(ctx context.Context, q db.Querier, id string) (domain.Batch, error) {
	return scanBatch(q.QueryRow(ctx, `SELECT `+batchColumns+` FROM batches WHERE batch_id = $1`, id))
}

// LockBatch reads a batch and locks it until tx ends.
func LockBatch(ctx context.Context, tx db.Tx, id string) (domain.Batch, error) {
	return scanBatch(tx.QueryRow(ctx, `SELECT `+batchColumns+` FROM batches WHERE batch_id = $1 FOR UPDATE`, id))
}

// CloseBatch stores a closed batch and who closed it.
func CloseBatch(ctx context.Context, tx db.Tx, b domain.Batch) error {
	_, err := tx.Exec(ctx, `UPDATE batches SET status = $2, closed_by = $3, closed_by_org = $4, closed_at = now(), updated_at = now()
WHERE batch_id = $1`, b.ID, string(b.Status), b.ClosedBy, b.ClosedByOrg)
	return err
}

// SaveTotals stores a batch's control totals after an item left it.
func SaveTotals(ctx context.Context, tx db.Tx, b domain.Batch) error {
	_, err := tx.Exec(ctx, `UPDATE batches SET control_count = $2, control_sum_fen = $3, updated_at = now()
WHERE batch_id = $1`, b.ID, b.ControlCount, b.ControlSumFen)
	return err
}

// SaveFailedCount stores a batch's failed count after a reissue.
func SaveFailedCount(ctx context.Context, tx db.Tx, b domain.Batch) error {
	_, err := tx.Exec(ctx, `UPDATE batches SET failed_count = $2, updated_at = now() WHERE batch_id = $1`, b.ID, b.FailedCount)
	return err
}

// ConfirmBatch stores the confirmed batch b and, in one statement, orders
// every PENDING item of it: ORDERED, attempt 1, a new payment ID each. It
// returns the ordered items with their reviewers, for the caller to check
// (domain.CheckConfirmer, Batch.CheckOrdered) before it commits.
func ConfirmBatch(ctx context.Context, tx db.Tx, b domain.Batch) ([]domain.Item, error) {
	tag, err := tx.Exec(ctx, `UPDATE batches SET status = $2, confirmed_by = $3, confirmed_at = $4, updated_at = now()
WHERE batch_id = $1`, b.ID, string(b.Status), b.ConfirmedBy, b.ConfirmedAt)
	if err != nil {
		return nil, fmt.Errorf("confirm batch %s: %w", b.ID, err)
	}
	if tag.RowsAffected() != 1 {
		return nil, fmt.Errorf("confirm batch %s: %w", b.ID, ErrNotFound)
	}
	rows, err := tx.Query(ctx, `UPDATE items
   SET status = 'ORDERED', payment_id = gen_random_uuid(), attempt = 1, updated_at = now()
 WHERE batch_id = $1 AND status = 'PENDING'
RETURNING `+itemColumns, b.ID)
	if err != nil {
		return nil, fmt.Errorf("order items of batch %s: %w", b.ID, err)
	}
	items := make([]domain.Item, 0, b.ControlCount)
	for rows.Next() {
		it, err := scanItem(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("order items of batch %s: %w", b.ID, err)
		}
		items = append(items, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("order items of batch %s: %w", b.ID, err)
	}
	return items, nil
}

// LockItem reads an item of a batch and locks it until tx ends.
func LockItem(ctx context.Context, tx db.Tx, batchID, applicationID string) (domain.Item, error) {
	return scanItem(tx.QueryRow(ctx, `SELECT `+itemColumns+` FROM items
WHERE batch_id = $1 AND application_id = $2 FOR UPDATE`, batchID, applicationID))
}

// ReturnItem stores a returned item.
func ReturnItem(ctx context.Context, tx db.Tx, it domain.Item) error {
	_, err := tx.Exec(ctx, `UPDATE items SET status = $3, reason = $4, updated_at = now()
WHERE batch_id = $1 AND application_id = $2`, it.BatchID, it.ApplicationID, string(it.Status), it.Reason)
	return err
}

// ReissueItem stores a reissued item with its new payment ID and attempt.
func ReissueItem(ctx context.Context, tx db.Tx, it domain.Item) error {
	_, err := tx.Exec(ctx, `UPDATE items SET status = $3, payment_id = $4, attempt = $5, reason = $6, corrected = $7, updated_at = now()
WHERE batch_id = $1 AND application_id = $2`,
		it.BatchID, it.ApplicationID, string(it.Status), it.PaymentID, it.Attempt, it.Reason, it.Corrected)
	return err
}

// RecordPaymentResult is RecordPaymentResults for one result, telling why
// it changed nothing: applied is false when the result was already
// recorded; it returns ErrNotFound for an unknown payment and
// ErrPaymentMismatch when the amount differs or the item already has the
// other result.
func RecordPaymentResult(ctx context.Context, tx db.Tx, r domain.PaymentResult) (applied bool, err error) {
	n, err := RecordPaymentResults(ctx, tx, []domain.PaymentResult{r})
	if err != nil {
		return false, fmt.Errorf("record payment %s: %w", r.PaymentID, err)
	}
	if n == 1 {
		return true, nil
	}
	status := resultStatus(r)
	var curStatus string
	var curAmount int64
	err = tx.QueryRow(ctx, `SELECT status, amount_fen FROM items WHERE payment_id = $1`, r.PaymentID).Scan(&curStatus, &curAmount)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return false, fmt.Errorf("payment %s: %w", r.PaymentID, ErrNotFound)
	case err != nil:
		return false, fmt.Errorf("record payment %s: %w", r.PaymentID, err)
	case curAmount != r.AmountFen:
		return false, fmt.Errorf("payment %s: %w: %d fen reported, %d fen ordered", r.PaymentID, ErrPaymentMismatch, r.AmountFen, curAmount)
	case curStatus == string(status):
		return false, nil
	default:
		return false, fmt.Errorf("payment %s: %w: %s reported for a %s item", r.PaymentID, ErrPaymentMismatch, status, curStatus)
	}
}

// resultStatus is the status a payment result gives its item.
func resultStatus(r domain.PaymentResult) domain.ItemStatus {
	if r.Paid {
		return domain.ItemPaid
	}
	return domain.ItemFailed
}

// MarkCorrected records that the payee of applicationID's FAILED item was
// corrected. It reports the status of the application's live item ("" when
// there is none), so the caller can tell a correction that arrived before the
// failure from one that concerns nothing finance holds.
func MarkCorrected(ctx context.Context, tx db.Tx, applicationID string) (liveStatus domain.ItemStatus, err error) {
	var status string
	err = tx.QueryRow(ctx, `WITH u AS (
  UPDATE items SET corrected = true, updated_at = now()
   WHERE application_id = $1 AND status = 'FAILED'
  RETURNING status
)
SELECT coalesce((SELECT status FROM u), (SELECT status FROM items WHERE application_id = $1 AND status <> 'RETURNED'), '')`,
		applicationID).Scan(&status)
	if err != nil {
		return "", fmt.Errorf("mark payee corrected for %s: %w", applicationID, err)
	}
	return domain.ItemStatus(status), nil
}

type batchKey struct{ term, program, funding string }

// AddItems is AddItem for many items in two statements: it opens the
// batches that are missing, then puts every item whose application has no
// live item into the OPEN batch of its key and adds them to the batches'
// control totals. added maps each added application to its batch; an
// application listed twice is added once. A concurrent change (a batch
// closed in between, an item made live by another transaction) fails the
// call, and the caller falls back to AddItem.
func AddItems(ctx context.Context, tx db.Tx, its []domain.ApprovedItem) (added map[string]string, err error) {
	n := len(its)
	apps, schools, terms, programs, fundings := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	amounts := make([]int64, n)
	subs, schoolRevs, bureauRevs := make([]string, n), make([]string, n), make([]string, n)
	seen := map[batchKey]bool{}
	var kIDs, kTerms, kPrograms, kFundings []string
	for i, it := range its {
		apps[i], schools[i], terms[i], programs[i], fundings[i] = it.ApplicationID, it.SchoolCode, it.Term, it.ProgramCode, it.FundingSource
		amounts[i] = it.AmountFen
		subs[i], schoolRevs[i], bureauRevs[i] = it.SubmittedBy, it.SchoolReviewer, it.BureauReviewer
		k := batchKey{it.Term, it.ProgramCode, it.FundingSource}
		if seen[k] {
			continue
		}
		seen[k] = true
		id, err := uuid.NewV7()
		if err != nil {
			return nil, err
		}
		kIDs, kTerms, kPrograms, kFundings = append(kIDs, id.String()), append(kTerms, k.term), append(kPrograms, k.program), append(kFundings, k.funding)
	}
	// Open a batch for each key that gets an item and has none open; a
	// concurrent creator's batch wins (ON CONFLICT waits for it) and the next
	// statement, in a new snapshot, joins it.
	if _, err := tx.Exec(ctx, `INSERT INTO batches (batch_id, term, program_code, funding_source)
SELECT k.batch_id, k.term, k.program_code, k.funding_source
  FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS k(batch_id, term, program_code, funding_source)
 WHERE NOT EXISTS (SELECT 1 FROM batches b WHERE b.status = 'OPEN'
                      AND (b.term, b.program_code, b.funding_source) = (k.term, k.program_code, k.funding_source))
   AND EXISTS (SELECT 1 FROM unnest($5::uuid[], $6::text[], $7::text[], $8::text[]) AS r(application_id, term, program_code, funding_source)
                WHERE (r.term, r.program_code, r.funding_source) = (k.term, k.program_code, k.funding_source)
                  AND NOT EXISTS (SELECT 1 FROM items i WHERE i.application_id = r.application_id AND i.status <> 'RETURNED'))
ON CONFLICT (term, program_code, funding_source) WHERE status = 'OPEN' DO NOTHING`,
		kIDs, kTerms, kPrograms, kFundings, apps, terms, programs, fundings); err != nil {
		return nil, fmt.Errorf("open batches: %w", err)
	}
	var addedApps, addedBatches []string
	var unbatched, closedMeanwhile int
	err = tx.QueryRow(ctx, `WITH r AS MATERIALIZED (
  SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[])
    WITH ORDINALITY AS r(application_id, school_code, amount_fen, term, program_code, funding_source, submitted_by, school_reviewer, bureau_reviewer, ord)
   WHERE NOT EXISTS (SELECT 1 FROM items i WHERE i.application_id = r.application_id AND i.status <> 'RETURNED')
), f AS (
  SELECT DISTINCT ON (r.application_id) r.*, b.batch_id
    FROM r JOIN batches b ON b.status = 'OPEN'
     AND (b.term, b.program_code, b.funding_source) = (r.term, r.program_code, r.funding_source)
   ORDER BY r.application_id, r.ord
), i AS (
  INSERT INTO items (batch_id, application_id, school_code, amount_fen, submitted_by, school_reviewer, bureau_reviewer)
  SELECT batch_id, application_id, school_code, amount_fen, submitted_by, school_reviewer, bureau_reviewer FROM f
  ON CONFLICT (batch_id, application_id) DO UPDATE
     SET status = 'PENDING', reason = '', school_code = EXCLUDED.school_code, amount_fen = EXCLUDED.amount_fen,
         submitted_by = EXCLUDED.submitted_by, school_reviewer = EXCLUDED.school_reviewer,
         bureau_reviewer = EXCLUDED.bureau_reviewer, updated_at = now()
   WHERE items.status = 'RETURNED'
  RETURNING batch_id, application_id, amount_fen
), t AS (
  UPDATE batches b
     SET control_count = b.control_count + s.n, control_sum_fen = b.control_sum_fen + s.sum_fen, updated_at = now()
    FROM (SELECT batch_id, count(*) AS n, sum(amount_fen) AS sum_fen FROM i GROUP BY batch_id) s
   WHERE b.batch_id = s.batch_id AND b.status = 'OPEN'
  RETURNING b.batch_id
)
SELECT coalesce(array_agg(application_id::text), '{}'), coalesce(array_agg(batch_id::text), '{}'),
       (SELECT count(DISTINCT application_id) FROM r) - (SELECT count(*) FROM f),
       (SELECT count(DISTINCT batch_id) FROM i) - (SELECT count(*) FROM t)
  FROM i`,
		apps, schools, amounts, terms, programs, fundings, subs, schoolRevs, bureauRevs).Scan(&addedApps, &addedBatches, &unbatched, &closedMeanwhile)
	if err != nil {
		return nil, fmt.Errorf("add %d items: %w", n, err)
	}
	if unbatched != 0 {
		return nil, fmt.Errorf("add %d items: %d found no open batch", n, unbatched)
	}
	// A batch closed or confirmed by a concurrent transaction after this
	// statement's snapshot must not take items or change its totals: the
	// UPDATE re-checks the status under the row lock, and a batch it skipped
	// fails the call (the transaction rolls back and the caller falls back to
	// AddItem, which joins or opens a batch that is really open).
	if closedMeanwhile != 0 {
		return nil, fmt.Errorf("add %d items: %d batches closed concurrently", n, closedMeanwhile)
	}
	added = make(map[string]string, len(addedApps))
	for i, app := range addedApps {
		added[app] = addedBatches[i]
	}
	return added, nil
}

// RecordPaymentResults records payment results in one statement: each
// ORDERED item whose payment and amount match becomes PAID or FAILED (with
// the bank's reason, awaiting a new payee correction) and its batch counts
// it. applied is the number of items changed; results that changed nothing
// (repeated, unknown or mismatched) are left for the caller to tell apart
// with RecordPaymentResult.
func RecordPaymentResults(ctx context.Context, tx db.Tx, rs []domain.PaymentResult) (applied int, err error) {
	n := len(rs)
	ids, statuses, reasons := make([]string, n), make([]string, n), make([]string, n)
	amounts := make([]int64, n)
	for i, r := range rs {
		ids[i], amounts[i], statuses[i], reasons[i] = r.PaymentID, r.AmountFen, string(resultStatus(r)), r.Reason
		if r.Paid {
			reasons[i] = ""
		}
	}
	err = tx.QueryRow(ctx, `WITH i AS (
  UPDATE items SET status = r.status, reason = r.reason, corrected = false, updated_at = now()
    FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[]) AS r(payment_id, amount_fen, status, reason)
   WHERE items.payment_id = r.payment_id AND items.status = 'ORDERED' AND items.amount_fen = r.amount_fen
  RETURNING items.batch_id, items.amount_fen, items.status
), t AS (
  UPDATE batches b
     SET paid_count = b.paid_count + s.paid, paid_sum_fen = b.paid_sum_fen + s.paid_sum, failed_count = b.failed_count + s.failed,
         updated_at = now()
    FROM (SELECT batch_id, count(*) FILTER (WHERE status = 'PAID') AS paid,
                 coalesce(sum(amount_fen) FILTER (WHERE status = 'PAID'), 0) AS paid_sum,
                 count(*) FILTER (WHERE status = 'FAILED') AS failed
            FROM i GROUP BY batch_id) s
   WHERE b.batch_id = s.batch_id
)
SELECT count(*) FROM i`, ids, amounts, statuses, reasons).Scan(&applied)
	if err != nil {
		return 0, fmt.Errorf("record %d payment results: %w", n, err)
	}
	return applied, nil
}
