// Package adapters stores the school's review items in PostgreSQL (the
// service's own schema, table review). Every write takes the caller's
// transaction so that state and outbox events commit together; bulk writes
// are single multi-row statements.
package adapters

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/edubureau/studentaid/pkg/catalog"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/services/school-review/internal/domain"
)

// ErrNotFound means there is no review item with the ID.
var ErrNotFound = errors.New("review not found")

const columns = `application_id::text, school_code, term, program_code, stage, student_id_masked,
	student_name_masked, student_id_hash, tiered, base_amount_fen, amount_fen, funding_source, submitted_by,
	state, hardship_level, reason, reviewer, notice_ends_at, objections, traceparent, tracestate, updated_at`

func scan(row pgx.Row) (*domain.Review, error) {
	var (
		r       domain.Review
		state   string
		level   string
		endsAt  pgtype.Timestamptz
		updated time.Time
	)
	err := row.Scan(&r.ApplicationID, &r.SchoolCode, &r.Term, &r.ProgramCode, &r.Stage, &r.StudentIDMasked,
		&r.StudentNameMasked, &r.StudentIDHash, &r.Tiered, &r.BaseAmountFen, &r.AmountFen, &r.FundingSource, &r.SubmittedBy,
		&state, &level, &r.Reason, &r.Reviewer, &endsAt, &r.Objections, &r.TraceParent, &r.TraceState, &updated)
	if err != nil {
		return nil, err
	}
	r.State = domain.State(state)
	r.HardshipLevel = catalog.HardshipLevel(level)
	if endsAt.Valid {
		r.NoticeEndsAt = endsAt.Time.UTC()
	}
	r.UpdatedAt = updated.UTC()
	return &r, nil
}

func collect(rows pgx.Rows) ([]*domain.Review, error) {
	defer rows.Close()
	var out []*domain.Review
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// InsertSubmitted stores a new pending item; it reports false when the
// application is already under review (a redelivered or repeated submission).
func InsertSubmitted(ctx context.Context, q db.Querier, r domain.Review, at time.Time) (bool, error) {
	tag, err := q.Exec(ctx, `INSERT INTO review (application_id, school_code, term, program_code, stage,
		student_id_masked, student_name_masked, student_id_hash, tiered, base_amount_fen, amount_fen,
		funding_source, submitted_by, state, traceparent, tracestate, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $17)
		ON CONFLICT (application_id) DO NOTHING`,
		r.ApplicationID, r.SchoolCode, r.Term, r.ProgramCode, r.Stage, r.StudentIDMasked, r.StudentNameMasked,
		r.StudentIDHash, r.Tiered, r.BaseAmountFen, r.AmountFen, r.FundingSource, r.SubmittedBy, string(r.State),
		r.TraceParent, r.TraceState, at)
	if err != nil {
		return false, fmt.Errorf("insert review %s: %w", r.ApplicationID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Get returns one item, or ErrNotFound.
func Get(ctx context.Context, q db.Querier, applicationID string) (*domain.Review, error) {
	r, err := scan(q.QueryRow(ctx, `SELECT `+columns+` FROM review WHERE application_id = $1`, applicationID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get review %s: %w", applicationID, err)
	}
	return r, nil
}

// LockForUpdate loads and row-locks the items with the given IDs, in ID
// order so that concurrent bulk decisions cannot deadlock. Missing IDs are
// absent from the map.
func LockForUpdate(ctx context.Context, tx pgx.Tx, ids []string) (map[string]*domain.Review, error) {
	rows, err := tx.Query(ctx, `SELECT `+columns+` FROM review WHERE application_id = ANY($1::uuid[])
		ORDER BY application_id FOR UPDATE`, ids)
	if err != nil {
		return nil, fmt.Errorf("lock %d reviews: %w", len(ids), err)
	}
	list, err := collect(rows)
	if err != nil {
		return nil, fmt.Errorf("lock %d reviews: %w", len(ids), err)
	}
	out := make(map[string]*domain.Review, len(list))
	for _, r := range list {
		out[r.ApplicationID] = r
	}
	return out, nil
}

// LockDueNotices loads and row-locks up to limit items whose notice ended by
// now, skipping rows another transaction holds (an objection being raised,
// or another instance's timer).
func LockDueNotices(ctx context.Context, tx pgx.Tx, now time.Time, limit int) ([]*domain.Review, error) {
	rows, err := tx.Query(ctx, `SELECT `+columns+` FROM review
		WHERE state = 'IN_NOTICE' AND notice_ends_at <= $1
		ORDER BY notice_ends_at LIMIT $2 FOR UPDATE SKIP LOCKED`, now, limit)
	if err != nil {
		return nil, fmt.Errorf("lock due notices: %w", err)
	}
	list, err := collect(rows)
	if err != nil {
		return nil, fmt.Errorf("lock due notices: %w", err)
	}
	return list, nil
}

// Save writes the mutable fields of rs (state, level, amount, reason,
// reviewer, notice deadline, objections, updated_at) in one statement.
func Save(ctx context.Context, tx pgx.Tx, rs []*domain.Review) error {
	if len(rs) == 0 {
		return nil
	}
	n := len(rs)
	ids := make([]string, n)
	states := make([]string, n)
	levels := make([]string, n)
	amounts := make([]int64, n)
	reasons := make([]string, n)
	reviewers := make([]string, n)
	ends := make([]pgtype.Timestamptz, n)
	objections := make([]int32, n)
	updated := make([]time.Time, n)
	for i, r := range rs {
		ids[i], states[i], levels[i], amounts[i] = r.ApplicationID, string(r.State), string(r.HardshipLevel), r.AmountFen
		reasons[i], reviewers[i], objections[i], updated[i] = r.Reason, r.Reviewer, r.Objections, r.UpdatedAt
		if !r.NoticeEndsAt.IsZero() {
			ends[i] = pgtype.Timestamptz{Time: r.NoticeEndsAt, Valid: true}
		}
	}
	tag, err := tx.Exec(ctx, `UPDATE review AS r SET state = d.state, hardship_level = d.level, amount_fen = d.amount,
		reason = d.reason, reviewer = d.reviewer, notice_ends_at = d.ends, objections = d.objections, updated_at = d.updated
		FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::timestamptz[], $8::int[], $9::timestamptz[])
		  AS d(id, state, level, amount, reason, reviewer, ends, objections, updated)
		WHERE r.application_id = d.id`,
		ids, states, levels, amounts, reasons, reviewers, ends, objections, updated)
	if err != nil {
		return fmt.Errorf("save %d reviews: %w", n, err)
	}
	if int(tag.RowsAffected()) != n {
		return fmt.Errorf("save %d reviews: %d rows updated", n, tag.RowsAffected())
	}
	return nil
}

// Filter selects items for a list. Empty fields do not filter.
type Filter struct {
	SchoolCode  string
	Term        string
	ProgramCode string
	State       domain.State
	// After is the last application ID of the previous page.
	After string
	Limit int
}

// List returns up to f.Limit items matching f in application ID order.
func List(ctx context.Context, q db.Querier, f Filter) ([]*domain.Review, error) {
	var w db.Where
	w.Add("state = ?", string(f.State))
	w.AddIf("school_code = ?", f.SchoolCode)
	w.AddIf("term = ?", f.Term)
	w.AddIf("program_code = ?", f.ProgramCode)
	w.AddIf("application_id > ?::uuid", f.After)
	sql := `SELECT ` + columns + ` FROM review` + w.SQL() + ` ORDER BY application_id LIMIT ` + w.Arg(f.Limit)
	rows, err := q.Query(ctx, sql, w.Args...)
	if err != nil {
		return nil, fmt.Errorf("list reviews: %w", err)
	}
	list, err := collect(rows)
	if err != nil {
		return nil, fmt.Errorf("list reviews: %w", err)
	}
	return list, nil
}
