// Package adapters is the data-comparison service's PostgreSQL: its copy of
// the payment records, the reference imports, the comparison's set-based
// statements, and the clues, their trails and the refunds.
package adapters

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/services/data-comparison/internal/domain"
)

// ErrNoRecord means an event names a record the service has not seen yet.
var ErrNoRecord = errors.New("no such record")

// Submitted is an application as the chain submitted it.
type Submitted struct {
	ApplicationID   string
	StudentIDHash   string
	StudentIDMasked string
	SchoolCode      string
	ProgramCode     string
	Term            domain.Term
	Stage           string
	AppliedFen      int64
	// BirthMonth is the first of the birth month; zero when not known.
	BirthMonth time.Time
	At         time.Time
	// BackPayClueID is the missed-student clue a back-pay application
	// fulfils; "" for the others.
	BackPayClueID string
}

// AddSubmitted records a submitted application once; it reports whether
// the record is new.
func AddSubmitted(ctx context.Context, tx db.Tx, s Submitted) (bool, error) {
	var birth *time.Time
	if !s.BirthMonth.IsZero() {
		birth = &s.BirthMonth
	}
	tag, err := tx.Exec(ctx, `INSERT INTO records (id, origin, student_id_hash, student_id_masked, school_code, program_code,
			term, term_ord, term_start, stage, applied_fen, status, updated_at, back_pay_clue_id, birth_month)
		VALUES ($1, 'chain', $2, $3, $4, $5, $6, $7, $8, $9, $10, 'applied', $11, $12, $13) ON CONFLICT (id) DO NOTHING`,
		s.ApplicationID, s.StudentIDHash, s.StudentIDMasked, s.SchoolCode, s.ProgramCode,
		s.Term.Name, s.Term.Ord, s.Term.Start, s.Stage, s.AppliedFen, s.At, s.BackPayClueID, birth)
	if err != nil {
		return false, fmt.Errorf("add record %s: %w", s.ApplicationID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Outcome is a later step's effect on a record.
type Outcome struct {
	ApplicationID string
	// Status is the record's new status: rejected, paid or failed; empty
	// keeps it (a school approval sets the level and amount).
	Status        string
	HardshipLevel string
	AmountFen     int64
	PaymentID     string
	At            time.Time
}

// ApplyOutcome applies o to its record. A paid record stays paid: a
// rejection or failure arriving after the payment does not undo it. For a
// payment it returns the record's back-pay clue ID ("" for the others).
func ApplyOutcome(ctx context.Context, tx db.Tx, o Outcome) (backPayClueID string, err error) {
	var tag pgconn.CommandTag
	switch o.Status {
	case "":
		tag, err = tx.Exec(ctx, `UPDATE records SET hardship_level = $2, applied_fen = $3, updated_at = $4 WHERE id = $1 AND origin = 'chain'`,
			o.ApplicationID, o.HardshipLevel, o.AmountFen, o.At)
	case "paid":
		err = tx.QueryRow(ctx, `UPDATE records SET status = 'paid', paid_fen = $2, payment_id = $3, updated_at = $4
			WHERE id = $1 AND origin = 'chain' RETURNING back_pay_clue_id`,
			o.ApplicationID, o.AmountFen, o.PaymentID, o.At).Scan(&backPayClueID)
		if errors.Is(err, pgx.ErrNoRows) {
			return "", fmt.Errorf("%w: %s", ErrNoRecord, o.ApplicationID)
		}
		if err != nil {
			return "", fmt.Errorf("apply %s to record %s: %w", o.Status, o.ApplicationID, err)
		}
		return backPayClueID, nil
	default:
		tag, err = tx.Exec(ctx, `UPDATE records SET status = CASE WHEN status = 'paid' THEN status ELSE $2 END, updated_at = $3 WHERE id = $1 AND origin = 'chain'`,
			o.ApplicationID, o.Status, o.At)
	}
	if err != nil {
		return "", fmt.Errorf("apply %s to record %s: %w", o.Status, o.ApplicationID, err)
	}
	if tag.RowsAffected() == 0 {
		return "", fmt.Errorf("%w: %s", ErrNoRecord, o.ApplicationID)
	}
	return "", nil
}

// Record is one payment record as a refund needs it.
type Record struct {
	ID          string
	Origin      string
	SchoolCode  string
	ProgramCode string
	Term        string
	PaidFen     int64
	PaymentID   string
}

// Records reads the records with ids.
func Records(ctx context.Context, q db.Querier, ids []string) ([]Record, error) {
	rows, err := q.Query(ctx, `SELECT id::text, origin, school_code, program_code, term, paid_fen, payment_id FROM records WHERE id = ANY($1::uuid[]) ORDER BY term_ord, updated_at, id`, ids)
	if err != nil {
		return nil, fmt.Errorf("read records: %w", err)
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		var r Record
		if err := rows.Scan(&r.ID, &r.Origin, &r.SchoolCode, &r.ProgramCode, &r.Term, &r.PaidFen, &r.PaymentID); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
