package sim

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/edubureau/studentaid/pkg/db"
)

//go:embed migrations/*.up.sql
var migrations embed.FS

// Migrate creates or updates the ledger in schema.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	// db.Migrate looks for NNN_name.up.sql at the root of the FS it is given.
	dir, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	return db.Migrate(ctx, pool, schema, dir)
}

// Ledger is the simulated bank's book of credits, one per idempotency key,
// and of the loan contracts it opened, one per idempotency key.
type Ledger struct {
	pool    *pgxpool.Pool
	credits string // quoted schema.credits
	loans   string // quoted schema.loans
}

// NewLedger uses the credits and loans tables in schema, which Migrate has prepared.
func NewLedger(pool *pgxpool.Pool, schema string) *Ledger {
	return &Ledger{pool: pool, credits: pgx.Identifier{schema, "credits"}.Sanitize(), loans: pgx.Identifier{schema, "loans"}.Sanitize()}
}

const creditColumns = `idempotency_key, bank_ref, card_number, account_name, amount_fen, status, reason, created_at` //nolint:gosec // G101: a list of the credits table's column names, not a credential

// Pay executes p at most once per key. The first call records the bank's
// verdict (credited or rejected) and reports created; later calls with the
// same payment return that record unchanged. Returns ErrInvalidPayment for a
// malformed p and ErrKeyReused when the key was used for a different card,
// name or amount.
func (l *Ledger) Pay(ctx context.Context, p Payment, now time.Time) (c Credit, created bool, err error) {
	if err := p.Validate(); err != nil {
		return Credit{}, false, err
	}
	status, reason := Decide(p)
	bankRef := "BSIM-" + uuid.NewString()
	err = db.InTx(ctx, l.pool, func(tx pgx.Tx) error {
		// ON CONFLICT DO NOTHING waits for a concurrent insert of the same key
		// to commit, so the read below always sees the one winning row.
		tag, err := tx.Exec(ctx, `INSERT INTO `+l.credits+` (`+creditColumns+`)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (idempotency_key) DO NOTHING`,
			p.IdempotencyKey, bankRef, p.CardNumber, p.AccountName, p.AmountFen, string(status), reason, now)
		if err != nil {
			return fmt.Errorf("insert credit: %w", err)
		}
		created = tag.RowsAffected() == 1
		c, err = l.get(ctx, tx, p.IdempotencyKey)
		return err
	})
	if err != nil {
		return Credit{}, false, fmt.Errorf("pay %s: %w", p.IdempotencyKey, err)
	}
	if c.CardNumber != p.CardNumber || c.AccountName != p.AccountName || c.AmountFen != p.AmountFen {
		return Credit{}, false, fmt.Errorf("pay %s: %w", p.IdempotencyKey, ErrKeyReused)
	}
	return c, created, nil
}

// Get returns the credit recorded under key, or ErrNotFound.
func (l *Ledger) Get(ctx context.Context, key string) (Credit, error) {
	c, err := l.get(ctx, l.pool, key)
	if err != nil {
		return Credit{}, fmt.Errorf("get %s: %w", key, err)
	}
	return c, nil
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (l *Ledger) get(ctx context.Context, q querier, key string) (Credit, error) {
	row := q.QueryRow(ctx, `SELECT `+creditColumns+` FROM `+l.credits+` WHERE idempotency_key = $1`, key)
	c, err := scanCredit(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return Credit{}, ErrNotFound
	}
	return c, err
}

func scanCredit(row pgx.Row) (Credit, error) {
	var c Credit
	var status string
	err := row.Scan(&c.IdempotencyKey, &c.BankRef, &c.CardNumber, &c.AccountName, &c.AmountFen, &status, &c.Reason, &c.CreatedAt)
	c.Status = Status(status)
	return c, err
}

// Totals sum up the whole ledger.
type Totals struct {
	CreditedCount  int64
	CreditedSumFen int64
	RejectedCount  int64
}

// Page is one slice of the ledger in idempotency-key order.
type Page struct {
	Credits []Credit
	// NextAfter is the key to pass as after for the next page; empty on the last page.
	NextAfter string
	// Totals cover the whole ledger, read in the same snapshot as Credits.
	Totals Totals
}

// List returns up to limit credits whose key sorts after the given one
// (from the start when after is empty), with ledger-wide totals.
func (l *Ledger) List(ctx context.Context, after string, limit int) (Page, error) {
	if limit <= 0 {
		return Page{}, fmt.Errorf("list: %w: limit must be positive", ErrInvalidPayment)
	}
	var page Page
	err := db.InTx(ctx, l.pool, func(tx pgx.Tx) error {
		page = Page{}
		if _, err := tx.Exec(ctx, `SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY`); err != nil {
			return fmt.Errorf("set isolation: %w", err)
		}
		rows, err := tx.Query(ctx, `SELECT `+creditColumns+` FROM `+l.credits+`
WHERE idempotency_key > $1 ORDER BY idempotency_key LIMIT $2`, after, limit+1)
		if err != nil {
			return fmt.Errorf("query credits: %w", err)
		}
		page.Credits, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Credit, error) { return scanCredit(r) })
		if err != nil {
			return fmt.Errorf("scan credits: %w", err)
		}
		if len(page.Credits) > limit {
			page.Credits = page.Credits[:limit]
			page.NextAfter = page.Credits[limit-1].IdempotencyKey
		}
		err = tx.QueryRow(ctx, `SELECT
  count(*) FILTER (WHERE status = 'credited'),
  coalesce(sum(amount_fen) FILTER (WHERE status = 'credited'), 0)::bigint,
  count(*) FILTER (WHERE status = 'rejected')
FROM `+l.credits).Scan(&page.Totals.CreditedCount, &page.Totals.CreditedSumFen, &page.Totals.RejectedCount)
		if err != nil {
			return fmt.Errorf("totals: %w", err)
		}
		return nil
	})
	if err != nil {
		return Page{}, fmt.Errorf("list after %q: %w", after, err)
	}
	return page, nil
}

// Ping checks that the database answers.
func (l *Ledger) Ping(ctx context.Context) error {
	return l.pool.Ping(ctx)
}
