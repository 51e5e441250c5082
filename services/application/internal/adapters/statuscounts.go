package adapters

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/db"
)

// StatusCounts folds the per-statement deltas the triggers on applications
// wrote (migration 005) into status_counts and returns the applications per
// status; a status with no row has none. It reads a handful of rows however
// many applications there are. Replicas may run it at once: a delta row is
// deleted, and so folded, by one of them.
func (Store) StatusCounts(ctx context.Context, b db.Beginner) (map[string]int64, error) {
	counts := make(map[string]int64)
	err := db.InTx(ctx, b, func(tx pgx.Tx) error {
		clear(counts)
		if _, err := tx.Exec(ctx, `WITH d AS (DELETE FROM status_count_deltas RETURNING status, n)
			INSERT INTO status_counts AS c (status, n)
			SELECT status, sum(n) FROM d GROUP BY status ORDER BY status
			ON CONFLICT (status) DO UPDATE SET n = c.n + EXCLUDED.n`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT status, n FROM status_counts`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var status string
			var n int64
			if err := rows.Scan(&status, &n); err != nil {
				return err
			}
			counts[status] = n
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("status counts: %w", err)
	}
	return counts, nil
}
