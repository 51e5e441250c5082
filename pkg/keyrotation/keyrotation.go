// Package keyrotation moves what a service protects onto its current keys,
// in batches that can be repeated or resumed: every sealed value is
// re-sealed under the current sealing key (pii.Sealer.Reseal, same
// binding), and a service that hashes adds a pass of its own that
// recomputes hashes under the current hashing key. The services holding
// sealed data serve it as aid.keys.v1.KeyRotationService (see NewServer);
// `aidctl rotate-key` calls it until done. The keys never leave the
// service, and the caller needs the ops role, not database credentials.
package keyrotation

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/audit"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/pii"
)

// Batch sizes of a step.
const (
	DefaultBatchSize = 500
	MaxBatchSize     = 5000
)

// Batch is what one pass did in one transaction.
type Batch struct {
	Resealed, Rehashed int64
	// Last is the key of the last row looked at: the next batch starts
	// after it.
	Last string
	// More is false when the pass has seen its last row.
	More bool
}

// Pass is one walk over one table, in primary-key order.
type Pass struct {
	// Table names the table in results and the audit log.
	Table string
	// Run moves up to limit rows whose key is greater than after ("" for
	// the first batch), in tx.
	Run func(ctx context.Context, tx pgx.Tx, after string, limit int) (Batch, error)
}

// Column is a sealed column and the binding (pii.Binding) its values were
// sealed under, given the row's binding column.
type Column struct {
	Name    string
	Binding func(row string) []byte
}

// Table is a table with sealed columns.
type Table struct {
	Name string
	// Key is the uuid primary key column, the order of the walk.
	Key string
	// Bind is the column whose value the bindings name (often Key; payout's
	// payments name their application).
	Bind    string
	Columns []Column
	// Where, if set, limits the walk to the rows that hold sealed values
	// (an SQL condition from the service's code, never from a request).
	Where string
}

// ResealPass returns the pass that re-seals t's columns under s's current
// key. Rows whose values all carry the current key's header are skipped in
// SQL. Identifiers come from the service's code, never from a request.
func ResealPass(t Table, s *pii.Sealer) Pass {
	cols := make([]string, len(t.Columns))
	stale := make([]string, len(t.Columns))
	sets := make([]string, len(t.Columns))
	casts := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = c.Name
		stale[i] = fmt.Sprintf("substring(%s for $3) <> $4", c.Name)
		sets[i] = fmt.Sprintf("%s = u.c%d", c.Name, i)
		casts[i] = fmt.Sprintf("$%d::bytea[]", i+2)
	}
	where := cmp.Or(t.Where, "true")
	sel := fmt.Sprintf(`SELECT %[2]s::text, %[3]s::text, %[4]s FROM %[1]s
		WHERE ($1 = '' OR %[2]s > $1::uuid) AND (%[5]s) AND (%[6]s)
		ORDER BY %[2]s LIMIT $2 FOR UPDATE`, t.Name, t.Key, t.Bind, strings.Join(cols, ", "), strings.Join(stale, " OR "), where)
	aliases := make([]string, len(t.Columns))
	for i := range aliases {
		aliases[i] = fmt.Sprintf("c%d", i)
	}
	upd := fmt.Sprintf(`UPDATE %[1]s SET %[2]s FROM unnest($1::uuid[], %[3]s) AS u (k, %[4]s) WHERE %[1]s.%[5]s = u.k`,
		t.Name, strings.Join(sets, ", "), strings.Join(casts, ", "), strings.Join(aliases, ", "), t.Key)
	return Pass{Table: t.Name, Run: func(ctx context.Context, tx pgx.Tx, after string, limit int) (Batch, error) {
		hdr := s.CurrentHeader()
		rows, err := tx.Query(ctx, sel, after, limit, len(hdr), hdr)
		if err != nil {
			return Batch{}, fmt.Errorf("reseal %s: %w", t.Name, err)
		}
		var keys []string
		values := make([][][]byte, len(t.Columns))
		var out Batch
		for rows.Next() {
			var key, bind string
			vals := make([][]byte, len(t.Columns))
			dst := []any{&key, &bind}
			for i := range vals {
				dst = append(dst, &vals[i])
			}
			if err := rows.Scan(dst...); err != nil {
				rows.Close()
				return Batch{}, fmt.Errorf("reseal %s: %w", t.Name, err)
			}
			for i, c := range t.Columns {
				v, changed, err := s.Reseal(vals[i], c.Binding(bind))
				if err != nil {
					rows.Close()
					return Batch{}, fmt.Errorf("reseal %s.%s of %s: %w", t.Name, c.Name, key, err)
				}
				if changed {
					out.Resealed++
				}
				values[i] = append(values[i], v)
			}
			keys = append(keys, key)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return Batch{}, fmt.Errorf("reseal %s: %w", t.Name, err)
		}
		if len(keys) == 0 {
			return out, nil
		}
		args := []any{keys}
		for _, v := range values {
			args = append(args, v)
		}
		if _, err := tx.Exec(ctx, upd, args...); err != nil {
			return Batch{}, fmt.Errorf("reseal %s: %w", t.Name, err)
		}
		out.Last, out.More = keys[len(keys)-1], len(keys) == limit
		return out, nil
	}}
}

// Rotator runs a service's passes in order, one batch per Step.
type Rotator struct {
	Pool   *pgxpool.Pool
	Sealer *pii.Sealer
	// HashKeyID is the current hashing key, "" for a service that does not
	// hash.
	HashKeyID string
	// Begin, if set, runs in the transaction of every batch, before it (the
	// application service makes its current hashing key the one new
	// applications are hashed under, the first time).
	Begin func(ctx context.Context, tx pgx.Tx) error
	// Finish, if set, runs in the transaction of the batch after which
	// every pass is done; an error there means "not done yet" and fails the
	// step (the application service retires the old hashing keys there,
	// once no application is hashed under them).
	Finish func(ctx context.Context, tx pgx.Tx) error
	Passes []Pass
}

// Result is what one Step did and where the next one starts.
type Result struct {
	Table              string
	Resealed, Rehashed int64
	// Next is the page token of the next step; "" when Done.
	Next string
	Done bool
}

// Step runs one batch of at most limit rows (0: DefaultBatchSize) from
// token ("" for the start), audited in the same transaction.
//
// Returns InvalidArgument for a bad token or batch size, FailedPrecondition
// when a value does not open (its key is not configured, or it was altered
// or copied from another row) or a recomputed hash collides with another
// application's.
func (r *Rotator) Step(ctx context.Context, token string, limit int) (Result, error) {
	if limit == 0 {
		limit = DefaultBatchSize
	}
	if limit < 1 || limit > MaxBatchSize {
		return Result{}, &apperr.Error{Code: apperr.Invalid, Message: "invalid batch size", Violations: []apperr.FieldViolation{{
			Field: "batch_size", Description: fmt.Sprintf("must be 1 to %d (0 means %d)", MaxBatchSize, DefaultBatchSize),
		}}}
	}
	pass, after, err := r.parseToken(token)
	if err != nil {
		return Result{}, err
	}
	var res Result
	err = db.InTx(ctx, r.Pool, func(tx pgx.Tx) error {
		res = Result{Table: r.Passes[pass].Table}
		if r.Begin != nil {
			if err := r.Begin(ctx, tx); err != nil {
				return err
			}
		}
		b, err := r.Passes[pass].Run(ctx, tx, after, limit)
		if err != nil {
			return err
		}
		res.Resealed, res.Rehashed = b.Resealed, b.Rehashed
		switch {
		case b.More:
			res.Next = fmt.Sprintf("%d:%s", pass, b.Last)
		case pass+1 < len(r.Passes):
			res.Next = fmt.Sprintf("%d:", pass+1)
		default:
			res.Done = true
			if r.Finish != nil {
				if err := r.Finish(ctx, tx); err != nil {
					return err
				}
			}
		}
		return audit.Record(ctx, tx, audit.Entry{
			Method: "RotateKeys", Outcome: "rotated",
			Detail: fmt.Sprintf("table %s: resealed %d, rehashed %d; seal key %s, hash key %s; done %v",
				res.Table, res.Resealed, res.Rehashed, r.Sealer.CurrentKeyID(), r.HashKeyID, res.Done),
		})
	})
	if err != nil {
		if _, ok := errors.AsType[*apperr.Error](err); ok {
			return Result{}, err
		}
		if errors.Is(err, pii.ErrOpen) || errors.Is(err, pii.ErrUnknownKey) || errors.Is(err, pii.ErrSealFormat) {
			return Result{}, apperr.New(apperr.FailedPrecondition,
				"a sealed value of %s does not open (its key is not configured, or it was altered or copied from another row); nothing of this batch was changed: %v", res.Table, err)
		}
		return Result{}, err
	}
	return res, nil
}

// parseToken reads "<pass>:<after>".
func (r *Rotator) parseToken(token string) (int, string, error) {
	if token == "" {
		return 0, "", nil
	}
	bad := &apperr.Error{Code: apperr.Invalid, Message: "invalid page token", Violations: []apperr.FieldViolation{{
		Field: "page_token", Description: "must be a next_page_token of an earlier answer",
	}}}
	p, after, ok := strings.Cut(token, ":")
	n, err := strconv.Atoi(p)
	if !ok || err != nil || n < 0 || n >= len(r.Passes) {
		return 0, "", bad
	}
	if after != "" {
		var v apperr.Violations
		if v.CheckUUID("page_token", after); v.Err() != nil {
			return 0, "", bad
		}
	}
	return n, after, nil
}
