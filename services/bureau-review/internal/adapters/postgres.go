// Package adapters stores the bureau's review items in PostgreSQL (the
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

	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/services/bureau-review/internal/domain"
)

// ErrNotFound means there is no review item with the ID.
var ErrNotFound = errors.New("review not found")

const columns = `application_id::text, school_code, term, program_code, stage, student_id_masked, student_id_hash,
	hardship_level, amount_fen, funding_source, submitted_by, school_reviewer, state, reason, reviewer, returns,
	traceparent, tracestate, updated_at`

func scan(row pgx.Row) (*domain.Review, error) {
	var (
		r       domain.Review
		state   string
		updated time.Time
	)
	err := row.Scan(&r.ApplicationID, &r.SchoolCode, &r.Term, &r.ProgramCode, &r.Stage, &r.StudentIDMasked, &r.StudentIDHash,
		&r.HardshipLevel, &r.AmountFen, &r.FundingSource, &r.SubmittedBy, &r.SchoolReviewer, &state, &r.Reason, &r.Reviewer,
		&r.Returns, &r.TraceParent, &r.TraceState, &updated)
	if err != nil {
		return nil, err
	}
	r.State = domain.State(state)
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

// Insert stores a new pending item; it reports false when the application
// is already under the bureau's review.
func Insert(ctx context.Context, q db.Querier, r domain.Review, at time.Time) (bool, error) {
	tag, err := q.Exec(ctx, `INSERT INTO review (application_id, school_code, term, program_code, stage,
		student_id_masked, student_id_hash, hardship_level, amount_fen, funding_source, submitted_by, school_reviewer,
		state, traceparent, tracestate, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)
		ON CONFLICT (application_id) DO NOTHING`,
		r.ApplicationID, r.SchoolCode, r.Term, r.ProgramCode, r.Stage, r.StudentIDMasked, r.StudentIDHash,
		r.HardshipLevel, r.AmountFen, r.FundingSource, r.SubmittedBy, r.SchoolReviewer, string(r.State),
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

// Save writes the mutable fields of rs (state, reason, reviewer, returns,
// updated_at) in one statement.
func Save(ctx context.Context, tx pgx.Tx, rs []*domain.Review) error {
	if len(rs) == 0 {
		return nil
	}
	n := len(rs)
	ids := make([]string, n)
	states := make([]string, n)
	reasons := make([]string, n)
	reviewers := make([]string, n)
	returns := make([]int32, n)
	updated := make([]time.Time, n)
	for i, r := range rs {
		ids[i], states[i], reasons[i], reviewers[i], returns[i], updated[i] = r.ApplicationID, string(r.State), r.Reason, r.Reviewer, r.Returns, r.UpdatedAt
	}
	tag, err := tx.Exec(ctx, `UPDATE review AS r SET state = d.state, reason = d.reason, reviewer = d.reviewer,
		returns = d.returns, updated_at = d.updated
		FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int[], $6::timestamptz[])
		  AS d(id, state, reason, reviewer, returns, updated)
		WHERE r.application_id = d.id`,
		ids, states, reasons, reviewers, returns, updated)
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
