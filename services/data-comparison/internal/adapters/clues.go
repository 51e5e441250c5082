package adapters

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/services/data-comparison/internal/domain"
)

// ErrNotFound means there is no such clue or refund.
var ErrNotFound = errors.New("not found")

const clueColumns = `c.id::text, c.kind, c.origin, coalesce(c.run_id, 0), c.status, c.student_id_hash, c.student_id_masked,
	c.school_code, c.program_code, c.term, c.amount_fen, c.detail, c.record_ids::text[], c.refs, c.assignee, c.findings,
	c.evidence, c.ineligible, coalesce(r.id::text, ''), c.back_pay_status, c.back_pay_application_id,
	c.trail_length, c.trail_head, c.created_at, c.updated_at`

const clueFrom = ` FROM clues c LEFT JOIN refunds r ON r.clue_id = c.id`

func scanClue(row pgx.CollectableRow) (domain.Clue, error) {
	var c domain.Clue
	err := row.Scan(&c.ID, &c.Kind, &c.Origin, &c.RunID, &c.Status, &c.StudentIDHash, &c.StudentIDMasked,
		&c.SchoolCode, &c.ProgramCode, &c.Term, &c.AmountFen, &c.Detail, &c.RecordIDs, &c.Refs, &c.Assignee, &c.Findings,
		&c.Evidence, &c.Ineligible, &c.RefundID, &c.BackPay, &c.BackPayApplicationID,
		&c.TrailLength, &c.TrailHead, &c.CreatedAt, &c.UpdatedAt)
	return c, err
}

// InsertClue adds a hand-entered clue (with its first trail step written
// separately by AppendSteps).
func InsertClue(ctx context.Context, tx db.Tx, c domain.Clue) error {
	_, err := tx.Exec(ctx, `INSERT INTO clues (id, natural_key, kind, origin, status, student_id_hash, student_id_masked,
			school_code, program_code, term, amount_fen, detail, record_ids, refs, trail_length, trail_head, created_at, updated_at)
		VALUES ($1::text::uuid, 'manual|' || $1::text, $2, 'manual', 'open', $3, $4, $5, $6, $7, $8, $9, $10, '[]', 0, '', $11, $11)`,
		c.ID, string(c.Kind), c.StudentIDHash, c.StudentIDMasked, c.SchoolCode, c.ProgramCode, c.Term, c.AmountFen, c.Detail,
		c.RecordIDs, c.CreatedAt)
	if err != nil {
		return fmt.Errorf("insert clue: %w", err)
	}
	return nil
}

// GetClues reads clues by ID, locking them for update when lock is set.
func GetClues(ctx context.Context, q db.Querier, ids []string, lock bool) ([]domain.Clue, error) {
	sql := `SELECT ` + clueColumns + clueFrom + ` WHERE c.id = ANY($1::uuid[]) ORDER BY c.id`
	if lock {
		sql += ` FOR UPDATE OF c`
	}
	rows, err := q.Query(ctx, sql, ids)
	if err != nil {
		return nil, fmt.Errorf("read clues: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanClue)
	if err != nil {
		return nil, fmt.Errorf("read clues: %w", err)
	}
	return out, nil
}

// ClueFilter selects clues to list; Cursor is the last clue of the previous page.
type ClueFilter struct {
	Kind, Status, SchoolCode, Term, Assignee string
	RunID                                    int64
	AfterTime                                time.Time
	AfterID                                  string
	Limit                                    int
}

// ListClues lists clues oldest first.
func ListClues(ctx context.Context, q db.Querier, f ClueFilter) ([]domain.Clue, error) {
	var w db.Where
	w.AddIf("c.kind = ?", f.Kind)
	w.AddIf("c.status = ?", f.Status)
	w.AddIf("c.school_code = ?", f.SchoolCode)
	w.AddIf("c.term = ?", f.Term)
	w.AddIf("c.assignee = ?", f.Assignee)
	if f.RunID != 0 {
		w.Add("c.run_id = ?", f.RunID)
	}
	if f.AfterID != "" {
		at := w.Arg(f.AfterTime)
		w.Add("(c.created_at, c.id) > ("+at+", ?::uuid)", f.AfterID)
	}
	rows, err := q.Query(ctx, `SELECT `+clueColumns+clueFrom+w.SQL()+` ORDER BY c.created_at, c.id LIMIT `+w.Arg(f.Limit), w.Args...)
	if err != nil {
		return nil, fmt.Errorf("list clues: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanClue)
	if err != nil {
		return nil, fmt.Errorf("list clues: %w", err)
	}
	return out, nil
}

// UpdateClue writes a worked clue's state and trail head.
func UpdateClue(ctx context.Context, tx db.Tx, c domain.Clue) error {
	_, err := tx.Exec(ctx, `UPDATE clues SET status = $2, assignee = $3, findings = $4, evidence = $5, ineligible = $6,
		trail_length = $7, trail_head = $8, updated_at = $9, back_pay_status = $10, back_pay_application_id = $11 WHERE id = $1`,
		c.ID, string(c.Status), c.Assignee, c.Findings, c.Evidence, c.Ineligible, c.TrailLength, c.TrailHead, c.UpdatedAt,
		string(c.BackPay), c.BackPayApplicationID)
	if err != nil {
		return fmt.Errorf("update clue %s: %w", c.ID, err)
	}
	return nil
}

// AppendSteps writes trail steps and moves each clue's trail head to its
// last step.
func AppendSteps(ctx context.Context, tx db.Tx, steps []domain.Step) error {
	rows := make([][]any, len(steps))
	ids, lengths, heads := make([]string, 0, len(steps)), make([]int64, 0, len(steps)), make([]string, 0, len(steps))
	for i, s := range steps {
		rows[i] = []any{s.ClueID, s.Position, s.EventID, s.Type, s.OccurredAt, s.ActorUser, s.ActorRole, s.ActorOrg, string(s.Status), s.Note, s.PrevHash, s.Hash}
		ids, lengths, heads = append(ids, s.ClueID), append(lengths, s.Position), append(heads, s.Hash)
	}
	if err := db.InsertRows(ctx, tx, "clue_trail", []string{"clue_id", "position", "event_id", "type", "occurred_at",
		"actor_user", "actor_role", "actor_org", "status", "note", "prev_hash", "hash"}, rows); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `UPDATE clues c SET trail_length = h.len, trail_head = h.head
		FROM (SELECT DISTINCT ON (id) id, len, head FROM unnest($1::uuid[], $2::bigint[], $3::text[]) AS u (id, len, head) ORDER BY id, len DESC) h
		WHERE c.id = h.id`, ids, lengths, heads)
	if err != nil {
		return fmt.Errorf("move trail heads: %w", err)
	}
	return nil
}

// Trail reads a clue's trail in order.
func Trail(ctx context.Context, q db.Querier, clueID string) ([]domain.Step, error) {
	rows, err := q.Query(ctx, `SELECT clue_id::text, position, event_id::text, type, occurred_at, actor_user, actor_role, actor_org,
		status, note, prev_hash, hash FROM clue_trail WHERE clue_id = $1 ORDER BY position`, clueID)
	if err != nil {
		return nil, fmt.Errorf("read trail of %s: %w", clueID, err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.Step, error) {
		var s domain.Step
		err := row.Scan(&s.ClueID, &s.Position, &s.EventID, &s.Type, &s.OccurredAt, &s.ActorUser, &s.ActorRole, &s.ActorOrg,
			&s.Status, &s.Note, &s.PrevHash, &s.Hash)
		return s, err
	})
}
