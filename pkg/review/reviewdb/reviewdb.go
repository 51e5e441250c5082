// Package reviewdb stores review items in PostgreSQL, in a service's review
// table: the columns every review item has (review.Item) plus the ones the
// service lists as its own. Every write takes the caller's transaction so
// that state and outbox events commit together; bulk writes are single
// multi-row statements.
package reviewdb

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/review"
)

// ErrNotFound means there is no review item with the ID.
var ErrNotFound = errors.New("review not found")

// Column is one of a service's own columns of its review table.
type Column[R any] struct {
	name    string
	sqlType string
	mutable bool
	// cast, when set, turns the unnested value into the column's type in
	// Save (for arrays, which unnest would flatten).
	cast   string
	target func(r R) any
	value  func(r R) any
	values func(rs []R) any
}

// Fixed is a column written once, when the item is inserted; field points
// at the row's field, sqlType is its PostgreSQL type.
func Fixed[R, V any](name, sqlType string, field func(r R) *V) Column[R] {
	return Column[R]{
		name: name, sqlType: sqlType,
		target: func(r R) any { return field(r) },
		value:  func(r R) any { return *field(r) },
		values: func(rs []R) any {
			out := make([]V, len(rs))
			for i, r := range rs {
				out[i] = *field(r)
			}
			return out
		},
	}
}

// Mutable is a column Save writes as well.
func Mutable[R, V any](name, sqlType string, field func(r R) *V) Column[R] {
	c := Fixed(name, sqlType, field)
	c.mutable = true
	return c
}

// MutableTime is a nullable timestamptz column that Save writes: the zero
// time is stored as NULL and NULL reads back as the zero time, in UTC.
func MutableTime[R any](name string, field func(r R) *time.Time) Column[R] {
	stored := func(t time.Time) pgtype.Timestamptz { return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()} }
	return Column[R]{
		name: name, sqlType: "timestamptz", mutable: true,
		target: func(r R) any { return optionalTime{field(r)} },
		value:  func(r R) any { return stored(*field(r)) },
		values: func(rs []R) any {
			out := make([]pgtype.Timestamptz, len(rs))
			for i, r := range rs {
				out[i] = stored(*field(r))
			}
			return out
		},
	}
}

// MutableStrings is a text[] column (NOT NULL) that Save writes: a nil
// slice is stored as the empty array and reads back as an empty slice.
func MutableStrings[R any](name string, field func(r R) *[]string) Column[R] {
	stored := func(v []string) []string {
		if v == nil {
			return []string{}
		}
		return v
	}
	return Column[R]{
		name: name, sqlType: "text", mutable: true, cast: "text[]",
		target: func(r R) any { return field(r) },
		value:  func(r R) any { return stored(*field(r)) },
		values: func(rs []R) any {
			// Save unnests one array per column, so each row's array goes
			// as its literal and is cast back.
			out := make([]string, len(rs))
			for i, r := range rs {
				out[i] = arrayLiteral(*field(r))
			}
			return out
		},
	}
}

// arrayLiteral is v as a PostgreSQL array literal, every element quoted.
func arrayLiteral(v []string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, e := range v {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		b.WriteString(strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(e))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// optionalTime scans a nullable timestamptz into a time.Time.
type optionalTime struct{ t *time.Time }

func (o optionalTime) ScanTimestamptz(v pgtype.Timestamptz) error {
	*o.t = time.Time{}
	if v.Valid {
		*o.t = v.Time.UTC()
	}
	return nil
}

// Table is a service's review table: the shared columns, then Own.
type Table[S ~string, R review.Reviewed[S]] struct {
	// New returns an empty row to scan into.
	New func() R
	// Own are the service's own columns.
	Own []Column[R]
}

// shared are the columns of review.Item, in the order of sharedTargets and
// sharedValues.
var shared = []string{"application_id", "school_code", "term", "program_code", "stage", "student_id_masked",
	"student_id_hash", "amount_fen", "funding_source", "submitted_by", "state", "reason", "reviewer",
	"traceparent", "tracestate"}

func sharedTargets[S ~string](it *review.Item[S]) []any {
	return []any{&it.ApplicationID, &it.SchoolCode, &it.Term, &it.ProgramCode, &it.Stage, &it.StudentIDMasked,
		&it.StudentIDHash, &it.AmountFen, &it.FundingSource, &it.SubmittedBy, &it.State, &it.Reason, &it.Reviewer,
		&it.TraceParent, &it.TraceState}
}

func sharedValues[S ~string](it *review.Item[S]) []any {
	return []any{it.ApplicationID, it.SchoolCode, it.Term, it.ProgramCode, it.Stage, it.StudentIDMasked,
		it.StudentIDHash, it.AmountFen, it.FundingSource, it.SubmittedBy, string(it.State), it.Reason, it.Reviewer,
		it.TraceParent, it.TraceState}
}

func (t *Table[S, R]) selectList() string {
	cols := append([]string{"application_id::text"}, shared[1:]...)
	for _, c := range t.Own {
		cols = append(cols, c.name)
	}
	return strings.Join(append(cols, "updated_at"), ", ")
}

func (t *Table[S, R]) scan(row pgx.Row) (R, error) {
	r := t.New()
	it := r.Shared()
	targets := sharedTargets(it)
	for _, c := range t.Own {
		targets = append(targets, c.target(r))
	}
	if err := row.Scan(append(targets, &it.UpdatedAt)...); err != nil {
		var zero R
		return zero, err
	}
	it.UpdatedAt = it.UpdatedAt.UTC()
	return r, nil
}

// Select returns the rows that the SQL after "FROM review" (conditions,
// order, locks) selects.
func (t *Table[S, R]) Select(ctx context.Context, q db.Querier, rest string, args ...any) ([]R, error) {
	rows, err := q.Query(ctx, `SELECT `+t.selectList()+` FROM review `+rest, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []R
	for rows.Next() {
		r, err := t.scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Insert stores a new item created at at; it reports false when the
// application is already under review (a redelivered or repeated event).
func (t *Table[S, R]) Insert(ctx context.Context, q db.Querier, r R, at time.Time) (bool, error) {
	it := r.Shared()
	cols, args := append([]string(nil), shared...), sharedValues(it)
	for _, c := range t.Own {
		cols, args = append(cols, c.name), append(args, c.value(r))
	}
	cols, args = append(cols, "created_at", "updated_at"), append(args, at, at)
	tag, err := q.Exec(ctx, `INSERT INTO review (`+strings.Join(cols, ", ")+`) VALUES (`+placeholders(len(cols))+`)
		ON CONFLICT (application_id) DO NOTHING`, args...)
	if err != nil {
		return false, fmt.Errorf("insert review %s: %w", it.ApplicationID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Get returns one item, or ErrNotFound.
func (t *Table[S, R]) Get(ctx context.Context, q db.Querier, applicationID string) (R, error) {
	r, err := t.scan(q.QueryRow(ctx, `SELECT `+t.selectList()+` FROM review WHERE application_id = $1`, applicationID))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, ErrNotFound
	}
	if err != nil {
		return r, fmt.Errorf("get review %s: %w", applicationID, err)
	}
	return r, nil
}

// LockForUpdate loads and row-locks the items with the given IDs, in ID
// order so that concurrent bulk decisions cannot deadlock. Missing IDs are
// absent from the map.
func (t *Table[S, R]) LockForUpdate(ctx context.Context, tx db.Tx, ids []string) (map[string]R, error) {
	list, err := t.Select(ctx, tx, `WHERE application_id = ANY($1::uuid[]) ORDER BY review.application_id FOR UPDATE`, ids)
	if err != nil {
		return nil, fmt.Errorf("lock %d reviews: %w", len(ids), err)
	}
	out := make(map[string]R, len(list))
	for _, r := range list {
		out[r.Shared().ApplicationID] = r
	}
	return out, nil
}

// Save writes the mutable fields of rs (state, amount, reason, reviewer,
// the service's mutable columns, updated_at) in one statement.
func (t *Table[S, R]) Save(ctx context.Context, tx db.Tx, rs []R) error {
	if len(rs) == 0 {
		return nil
	}
	n := len(rs)
	ids, states, amounts := make([]string, n), make([]string, n), make([]int64, n)
	reasons, reviewers, updated := make([]string, n), make([]string, n), make([]time.Time, n)
	for i, r := range rs {
		it := r.Shared()
		ids[i], states[i], amounts[i] = it.ApplicationID, string(it.State), it.AmountFen
		reasons[i], reviewers[i], updated[i] = it.Reason, it.Reviewer, it.UpdatedAt
	}
	names := []string{"state", "amount_fen", "reason", "reviewer", "updated_at"}
	types := []string{"uuid", "text", "bigint", "text", "text", "timestamptz"}
	args := []any{ids, states, amounts, reasons, reviewers, updated}
	casts := []string{"", "", "", "", ""} // the shared columns: none
	for _, c := range t.Own {
		if c.mutable {
			names, types, args = append(names, c.name), append(types, c.sqlType), append(args, c.values(rs))
			casts = append(casts, c.cast)
		}
	}
	set := make([]string, len(names))
	for i, name := range names {
		set[i] = name + " = d." + name
		if casts[i] != "" {
			set[i] += "::" + casts[i]
		}
	}
	unnest := make([]string, len(types))
	for i, typ := range types {
		unnest[i] = "$" + strconv.Itoa(i+1) + "::" + typ + "[]"
	}
	tag, err := tx.Exec(ctx, `UPDATE review AS r SET `+strings.Join(set, ", ")+`
		FROM unnest(`+strings.Join(unnest, ", ")+`) AS d(id, `+strings.Join(names, ", ")+`)
		WHERE r.application_id = d.id`, args...)
	if err != nil {
		return fmt.Errorf("save %d reviews: %w", n, err)
	}
	if int(tag.RowsAffected()) != n {
		return fmt.Errorf("save %d reviews: %d rows updated", n, tag.RowsAffected())
	}
	return nil
}

// List returns up to f.Limit items matching f in application ID order.
func (t *Table[S, R]) List(ctx context.Context, q db.Querier, f review.Filter[S]) ([]R, error) {
	rest, args := listQuery(f)
	list, err := t.Select(ctx, q, rest, args...)
	if err != nil {
		return nil, fmt.Errorf("list reviews: %w", err)
	}
	return list, nil
}

// ListQuery is the statement List runs for f and its arguments, for tests
// of its plan.
func (t *Table[S, R]) ListQuery(f review.Filter[S]) (string, []any) {
	rest, args := listQuery(f)
	return `SELECT ` + t.selectList() + ` FROM review ` + rest, args
}

func listQuery[S ~string](f review.Filter[S]) (string, []any) {
	var w db.Where
	w.Add("state = ?", string(f.State))
	w.AddIf("school_code = ?", f.SchoolCode)
	w.AddIf("term = ?", f.Term)
	w.AddIf("program_code = ?", f.ProgramCode)
	w.AddIf("application_id > ?::uuid", f.After)
	// The order names the table's column: the select list's
	// application_id::text takes the bare name, and ordering by the text
	// sorts every matching row instead of walking the (state,
	// application_id) index (800 ms for the bureau's inbox at 500,000
	// items; docs/performance.md, "Console at 1 million applications").
	return strings.TrimPrefix(w.SQL(), " ") + ` ORDER BY review.application_id LIMIT ` + w.Arg(f.Limit), w.Args
}

// placeholders is "$1, $2, … $n".
func placeholders(n int) string {
	ps := make([]string, n)
	for i := range ps {
		ps[i] = "$" + strconv.Itoa(i+1)
	}
	return strings.Join(ps, ", ")
}
