package adapters

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/db"
)

// BackPayOrder is a missed student's back-pay (补发) a school is to submit.
type BackPayOrder struct {
	ClueID          string
	SchoolCode      string
	ProgramCode     string
	Term            string
	StudentIDHash   string
	StudentIDMasked string
	EstimatedFen    int64
	OpenedAt        time.Time
	EventID         string
	// ApplicationID is the application that fulfils the order; "" while open.
	ApplicationID string
}

// InsertBackPayOrder records an order; an order already recorded (the same
// event delivered again) is left as it is. It reports whether it was new.
func (Store) InsertBackPayOrder(ctx context.Context, tx db.Tx, o BackPayOrder) (bool, error) {
	tag, err := tx.Exec(ctx, `INSERT INTO back_pay_orders (clue_id, school_code, program_code, term,
			student_id_hash, student_id_masked, estimated_fen, opened_at, event_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (clue_id) DO NOTHING`,
		o.ClueID, o.SchoolCode, o.ProgramCode, o.Term, o.StudentIDHash, o.StudentIDMasked, o.EstimatedFen, o.OpenedAt, o.EventID)
	if err != nil {
		return false, fmt.Errorf("insert back-pay order %s: %w", o.ClueID, err)
	}
	return tag.RowsAffected() == 1, nil
}

const backPayColumns = `clue_id::text, school_code, program_code, term, student_id_hash, student_id_masked,
	estimated_fen, opened_at, event_id, coalesce(application_id::text, '')`

func scanBackPayOrder(r pgx.CollectableRow) (BackPayOrder, error) {
	var o BackPayOrder
	err := r.Scan(&o.ClueID, &o.SchoolCode, &o.ProgramCode, &o.Term, &o.StudentIDHash, &o.StudentIDMasked,
		&o.EstimatedFen, &o.OpenedAt, &o.EventID, &o.ApplicationID)
	return o, err
}

// LockBackPayOrders reads the orders of clueIDs and locks them until tx
// ends, so that two submissions cannot both fulfil one. Orders that do not
// exist are missing from the answer.
func (Store) LockBackPayOrders(ctx context.Context, tx db.Tx, clueIDs []string) (map[string]BackPayOrder, error) {
	rows, err := tx.Query(ctx, `SELECT `+backPayColumns+` FROM back_pay_orders
		WHERE clue_id = ANY($1::uuid[]) ORDER BY clue_id FOR UPDATE`, clueIDs)
	if err != nil {
		return nil, fmt.Errorf("lock back-pay orders: %w", err)
	}
	list, err := pgx.CollectRows(rows, scanBackPayOrder)
	if err != nil {
		return nil, fmt.Errorf("lock back-pay orders: %w", err)
	}
	out := make(map[string]BackPayOrder, len(list))
	for _, o := range list {
		out[o.ClueID] = o
	}
	return out, nil
}

// FulfilBackPayOrders records which application fulfils each order
// (clue ID → application ID). The orders must be open and locked by tx.
func (Store) FulfilBackPayOrders(ctx context.Context, tx db.Tx, byClue map[string]string) error {
	clues := make([]string, 0, len(byClue))
	apps := make([]string, 0, len(byClue))
	for c, a := range byClue {
		clues, apps = append(clues, c), append(apps, a)
	}
	tag, err := tx.Exec(ctx, `UPDATE back_pay_orders o SET application_id = f.application_id
		FROM unnest($1::uuid[], $2::uuid[]) AS f (clue_id, application_id)
		WHERE o.clue_id = f.clue_id AND o.application_id IS NULL`, clues, apps)
	if err != nil {
		return fmt.Errorf("fulfil back-pay orders: %w", err)
	}
	if int(tag.RowsAffected()) != len(byClue) {
		return fmt.Errorf("fulfil back-pay orders: %d of %d were open", tag.RowsAffected(), len(byClue))
	}
	return nil
}

// BackPayCursor is the position of an order in a school's listing: open
// orders first, then fulfilled ones, each oldest first.
type BackPayCursor struct {
	Fulfilled bool
	OpenedAt  time.Time
	ClueID    string
}

// ListBackPayOrders returns up to limit orders of school after the cursor.
func (Store) ListBackPayOrders(ctx context.Context, q db.Querier, school string, openOnly bool, after *BackPayCursor, limit int) ([]BackPayOrder, error) {
	args := []any{school, openOnly, limit}
	where := ""
	if after != nil {
		args = append(args, after.Fulfilled, after.OpenedAt, after.ClueID)
		where = ` AND ((application_id IS NOT NULL), opened_at, clue_id) > ($4, $5, $6::uuid)`
	}
	rows, err := q.Query(ctx, `SELECT `+backPayColumns+` FROM back_pay_orders
		WHERE school_code = $1 AND (NOT $2 OR application_id IS NULL)`+where+`
		ORDER BY (application_id IS NOT NULL), opened_at, clue_id LIMIT $3`, args...)
	if err != nil {
		return nil, fmt.Errorf("list back-pay orders: %w", err)
	}
	list, err := pgx.CollectRows(rows, scanBackPayOrder)
	if err != nil {
		return nil, fmt.Errorf("list back-pay orders: %w", err)
	}
	return list, nil
}
