package adapters

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/edubureau/studentaid/pkg/db"
)

// stmts are statements sent together (one round trip), each seeing the
// ones before it, with what reads each one's result.
type stmts struct {
	b     pgx.Batch
	reads []func(r results) error
}

// exec queues a statement whose result is only checked for an error.
func (s *stmts) exec(what, sql string, args ...any) {
	s.add(func(r results) error {
		if _, err := r.Exec(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}, sql, args...)
}

// add queues a statement whose result read reads.
func (s *stmts) add(read func(r results) error, sql string, args ...any) {
	s.b.Queue(sql, args...)
	s.reads = append(s.reads, read)
}

// run sends the statements in tx and reads their results in order; it
// stops at the first error.
func (s *stmts) run(ctx context.Context, tx db.Tx) error {
	if len(s.reads) == 0 {
		return nil
	}
	res := send(ctx, tx, &s.b)
	for _, read := range s.reads {
		if err := read(res); err != nil {
			_ = res.Close()
			return err
		}
	}
	err := res.Close()
	s.b, s.reads = pgx.Batch{}, nil
	return err
}

// results are a sent batch's results, read in order.
type results interface {
	Exec() (pgconn.CommandTag, error)
	Query() (pgx.Rows, error)
	QueryRow() pgx.Row
	Close() error
}

// send sends b's statements together when tx can (a pgx.Tx), else one at
// a time.
func send(ctx context.Context, tx db.Tx, b *pgx.Batch) results {
	if s, ok := tx.(interface {
		SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
	}); ok {
		return s.SendBatch(ctx, b)
	}
	return &serial{ctx: ctx, tx: tx, qs: b.QueuedQueries}
}

// serial runs a batch's statements one at a time, as they are read.
type serial struct {
	ctx context.Context //nolint:containedctx // the context of the batch it stands for
	tx  db.Tx
	qs  []*pgx.QueuedQuery
}

func (s *serial) next() *pgx.QueuedQuery {
	q := s.qs[0]
	s.qs = s.qs[1:]
	return q
}

func (s *serial) Exec() (pgconn.CommandTag, error) {
	q := s.next()
	return s.tx.Exec(s.ctx, q.SQL, q.Arguments...)
}

func (s *serial) Query() (pgx.Rows, error) {
	q := s.next()
	return s.tx.Query(s.ctx, q.SQL, q.Arguments...)
}

func (s *serial) QueryRow() pgx.Row {
	q := s.next()
	return s.tx.QueryRow(s.ctx, q.SQL, q.Arguments...)
}

func (s *serial) Close() error { return nil }
