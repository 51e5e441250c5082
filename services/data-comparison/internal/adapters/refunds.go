package adapters

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/services/data-comparison/internal/domain"
)

// InsertRefund opens a refund order.
func InsertRefund(ctx context.Context, tx db.Tx, r domain.Refund) error {
	_, err := tx.Exec(ctx, `INSERT INTO refunds (id, clue_id, record_id, payment_id, school_code, program_code, term,
		amount_fen, status, account, opened_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'open', $9, $10)`,
		r.ID, r.ClueID, r.RecordID, r.PaymentID, r.SchoolCode, r.ProgramCode, r.Term, r.AmountFen, r.Account, r.OpenedAt)
	if err != nil {
		return fmt.Errorf("open refund for clue %s: %w", r.ClueID, err)
	}
	return nil
}

const refundColumns = `id::text, clue_id::text, record_id::text, payment_id, school_code, program_code, term, amount_fen,
	received_fen, status, account, opened_at, coalesce(closed_at, '0001-01-01Z')`

func scanRefund(row pgx.CollectableRow) (domain.Refund, error) {
	var r domain.Refund
	err := row.Scan(&r.ID, &r.ClueID, &r.RecordID, &r.PaymentID, &r.SchoolCode, &r.ProgramCode, &r.Term, &r.AmountFen,
		&r.ReceivedFen, &r.Status, &r.Account, &r.OpenedAt, &r.ClosedAt)
	return r, err
}

// GetRefund reads a refund with its receipts, locked for update when lock is set.
func GetRefund(ctx context.Context, q db.Querier, id string, lock bool) (domain.Refund, error) {
	sql := `SELECT ` + refundColumns + ` FROM refunds WHERE id = $1`
	if lock {
		sql += ` FOR UPDATE`
	}
	rows, err := q.Query(ctx, sql, id)
	if err != nil {
		return domain.Refund{}, fmt.Errorf("read refund %s: %w", id, err)
	}
	r, err := pgx.CollectExactlyOneRow(rows, scanRefund)
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return r, ErrNotFound
		}
		return r, fmt.Errorf("read refund %s: %w", id, err)
	}
	rows, err = q.Query(ctx, `SELECT amount_fen, bank_ref, account, received_at, recorded_by FROM receipts WHERE refund_id = $1 ORDER BY recorded_at, bank_ref`, id)
	if err != nil {
		return r, fmt.Errorf("read receipts of %s: %w", id, err)
	}
	r.Receipts, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.Receipt, error) {
		var rc domain.Receipt
		err := row.Scan(&rc.AmountFen, &rc.BankRef, &rc.Account, &rc.ReceivedAt, &rc.RecordedBy)
		return rc, err
	})
	return r, err
}

// ReceiptByRef reads the receipt with a bank reference, if any: its refund
// and amount.
func ReceiptByRef(ctx context.Context, q db.Querier, bankRef string) (refundID string, amount int64, found bool, err error) {
	err = q.QueryRow(ctx, `SELECT refund_id::text, amount_fen FROM receipts WHERE bank_ref = $1`, bankRef).Scan(&refundID, &amount)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", 0, false, nil
	}
	return refundID, amount, err == nil, err
}

// AddReceipt records rc against r and writes r's new totals and status.
func AddReceipt(ctx context.Context, tx db.Tx, r domain.Refund, rc domain.Receipt, at any) error {
	if _, err := tx.Exec(ctx, `INSERT INTO receipts (refund_id, bank_ref, amount_fen, account, received_at, recorded_by, recorded_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, r.ID, rc.BankRef, rc.AmountFen, rc.Account, rc.ReceivedAt, rc.RecordedBy, at); err != nil {
		return fmt.Errorf("record receipt on %s: %w", r.ID, err)
	}
	var closed any
	if r.Status == domain.RefundClosed {
		closed = r.ClosedAt
	}
	if _, err := tx.Exec(ctx, `UPDATE refunds SET received_fen = $2, status = $3, closed_at = $4 WHERE id = $1`, r.ID, r.ReceivedFen, r.Status, closed); err != nil {
		return fmt.Errorf("update refund %s: %w", r.ID, err)
	}
	return nil
}

// ListRefunds lists refunds oldest first after the cursor.
func ListRefunds(ctx context.Context, q db.Querier, status, afterID string, limit int) ([]domain.Refund, error) {
	// refunds.id: the uuid column, not the select list's text of it.
	rows, err := q.Query(ctx, `SELECT `+refundColumns+` FROM refunds WHERE ($1 = '' OR status = $1) AND ($2 = '' OR id > $2::uuid)
		ORDER BY refunds.id LIMIT $3`, status, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("list refunds: %w", err)
	}
	rs, err := pgx.CollectRows(rows, scanRefund)
	if err != nil || len(rs) == 0 {
		return rs, err
	}
	// The page's receipts in one statement (receipts_refund), each under
	// its refund in the order GetRefund gives.
	ids := make([]string, len(rs))
	at := make(map[string]int, len(rs))
	for i, r := range rs {
		ids[i], at[r.ID] = r.ID, i
	}
	rows, err = q.Query(ctx, `SELECT refund_id::text, amount_fen, bank_ref, account, received_at, recorded_by FROM receipts
		WHERE refund_id = ANY($1::uuid[]) ORDER BY refund_id, recorded_at, bank_ref`, ids)
	if err != nil {
		return nil, fmt.Errorf("list receipts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var rc domain.Receipt
		if err := rows.Scan(&id, &rc.AmountFen, &rc.BankRef, &rc.Account, &rc.ReceivedAt, &rc.RecordedBy); err != nil {
			return nil, fmt.Errorf("list receipts: %w", err)
		}
		rs[at[id]].Receipts = append(rs[at[id]].Receipts, rc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list receipts: %w", err)
	}
	return rs, nil
}
