package adapters

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/page"
	"github.com/edubureau/studentaid/services/finance-confirmation/internal/domain"
)

// ListBatches returns up to limit batches matching f, newest first, after
// cursor (from the newest when nil), and whether more follow.
func ListBatches(ctx context.Context, q db.Querier, f domain.BatchFilter, after *domain.BatchCursor, limit int) ([]domain.Batch, bool, error) {
	var at *time.Time
	var id *string
	if after != nil {
		at, id = &after.CreatedAt, &after.BatchID
	}
	rows, err := q.Query(ctx, `SELECT `+batchColumns+` FROM batches
WHERE ($1 = '' OR term = $1) AND ($2 = '' OR program_code = $2) AND ($3 = '' OR status = $3)
  AND ($4::timestamptz IS NULL OR (created_at, batch_id) < ($4, $5::uuid))
ORDER BY created_at DESC, batch_id DESC
LIMIT $6`, f.Term, f.ProgramCode, string(f.Status), at, id, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("list batches: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Batch, error) { return scanBatch(r) })
	if err != nil {
		return nil, false, fmt.Errorf("list batches: %w", err)
	}
	out, more := page.Trim(out, limit)
	return out, more, nil
}

// listItemsSQL orders by items.application_id, not the select list's text
// of it, so that the primary key gives the order (docs/performance.md,
// "Console at 1 million applications").
const listItemsSQL = `SELECT ` + itemColumns + ` FROM items
WHERE batch_id = $1 AND ($2 = '' OR status = $2) AND ($3::uuid IS NULL OR application_id > $3::uuid)
ORDER BY items.application_id
LIMIT $4`

// ListItems returns up to limit items of a batch in application ID order
// after afterApplicationID ("" from the start), optionally only those with
// status, and whether more follow.
func ListItems(ctx context.Context, q db.Querier, batchID string, status domain.ItemStatus, afterApplicationID string, limit int) ([]domain.Item, bool, error) {
	var after *string
	if afterApplicationID != "" {
		after = &afterApplicationID
	}
	rows, err := q.Query(ctx, listItemsSQL, batchID, string(status), after, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("list items of batch %s: %w", batchID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Item, error) { return scanItem(r) })
	if err != nil {
		return nil, false, fmt.Errorf("list items of batch %s: %w", batchID, err)
	}
	out, more := page.Trim(out, limit)
	return out, more, nil
}
