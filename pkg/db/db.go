// Package db opens PostgreSQL pools, applies a service's embedded migrations
// to the schema it owns, and runs work inside transactions.
package db

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Options tune a pool.
type Options struct {
	// MaxConns caps the pool; zero keeps pgx's default.
	MaxConns int32
	// Trace adds an OpenTelemetry tracer so queries appear as spans.
	Trace bool
	// SearchPath, when set, becomes the search_path of every connection.
	SearchPath string
}

// Querier runs statements; pools, connections and transactions satisfy it.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Tx is the unit of work a use case writes in: the statements of one open
// transaction. pgx.Tx satisfies it. The application layers take a Tx, never
// a driver type, so the transaction's owner (a consumer's inbox, a command
// handler) stays outside them.
type Tx interface {
	Querier
	CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, rows pgx.CopyFromSource) (int64, error)
}

// Connect opens a pool to url and checks that the server answers.
func Connect(ctx context.Context, url string, opt Options) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	if opt.MaxConns > 0 {
		cfg.MaxConns = opt.MaxConns
	}
	if opt.Trace {
		cfg.ConnConfig.Tracer = otelpgx.NewTracer()
	}
	if opt.SearchPath != "" {
		cfg.ConnConfig.RuntimeParams["search_path"] = opt.SearchPath
	}
	cfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open pool: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ping database: %w", err)
	}
	return pool, nil
}

// Beginner starts transactions; *pgxpool.Pool and pgx.Tx both satisfy it.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// InTx runs fn inside a transaction, committing when fn returns nil and
// rolling back otherwise. Serialization failures and deadlocks are retried a
// few times, so fn must be safe to run again.
func InTx(ctx context.Context, b Beginner, fn func(tx pgx.Tx) error) error {
	const attempts = 5
	var err error
	for i := range attempts {
		err = inTxOnce(ctx, b, fn)
		if !IsRetryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(time.Duration(i+1) * 5 * time.Millisecond):
		}
	}
	return err
}

func inTxOnce(ctx context.Context, b Beginner, fn func(tx pgx.Tx) error) (err error) {
	tx, err := b.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// IsRetryable reports whether err is a serialization failure or deadlock.
func IsRetryable(err error) bool {
	if pg, ok := errors.AsType[*pgconn.PgError](err); ok {
		return pg.Code == "40001" || pg.Code == "40P01"
	}
	return false
}

// IsUniqueViolation reports whether err is a unique constraint violation,
// optionally of the named constraint.
func IsUniqueViolation(err error, constraint string) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) && pg.Code == "23505" {
		return constraint == "" || pg.ConstraintName == constraint
	}
	return false
}

// Migrate applies, in name order, every `NNN_name.up.sql` file of migrations
// that schema has not seen yet, each in its own transaction, and records it in
// schema.schema_migrations. A PostgreSQL advisory lock keeps concurrent
// starters of the same service from racing.
//
// Several file systems may be given (the platform's shared tables and the
// service's own); their file names must not collide.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schema string, sets ...fs.FS) error {
	if !validIdent(schema) {
		return fmt.Errorf("migrate: invalid schema name %q", schema)
	}
	files, err := migrationFiles(schema, sets)
	if err != nil {
		return err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate %s: acquire: %w", schema, err)
	}
	defer conn.Release()
	lockKey := int64(hashString("migrate:" + schema))
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", lockKey); err != nil {
		return fmt.Errorf("migrate %s: lock: %w", schema, err)
	}
	defer func() { _, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", lockKey) }()

	setup := fmt.Sprintf(`CREATE SCHEMA IF NOT EXISTS %[1]s;
CREATE TABLE IF NOT EXISTS %[1]s.schema_migrations (
  version text PRIMARY KEY,
  applied_at timestamptz NOT NULL DEFAULT now()
)`, schema)
	if _, err := conn.Exec(ctx, setup); err != nil {
		return fmt.Errorf("migrate %s: setup: %w", schema, err)
	}
	for _, f := range files {
		name, version := f.name, f.version
		body, err := fs.ReadFile(f.set, name)
		if err != nil {
			return fmt.Errorf("migrate %s: read %s: %w", schema, name, err)
		}
		err = InTx(ctx, conn, func(tx pgx.Tx) error {
			var done bool
			q := fmt.Sprintf("SELECT EXISTS (SELECT 1 FROM %s.schema_migrations WHERE version = $1)", schema)
			if err := tx.QueryRow(ctx, q, version).Scan(&done); err != nil {
				return err
			}
			if done {
				return nil
			}
			if _, err := tx.Exec(ctx, "SET LOCAL search_path TO "+schema); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return fmt.Errorf("apply %s: %w", name, err)
			}
			_, err := tx.Exec(ctx, fmt.Sprintf("INSERT INTO %s.schema_migrations (version) VALUES ($1)", schema), version)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate %s: %w", schema, err)
		}
	}
	return nil
}

// migrationFile is one NNN_name.up.sql file of a set.
type migrationFile struct {
	name    string
	version string
	set     fs.FS
}

// migrationFiles lists the migrations of sets in the order they apply.
func migrationFiles(schema string, sets []fs.FS) ([]migrationFile, error) {
	var files []migrationFile
	for _, set := range sets {
		names, err := fs.Glob(set, "*.up.sql")
		if err != nil {
			return nil, fmt.Errorf("migrate %s: list: %w", schema, err)
		}
		for _, n := range names {
			files = append(files, migrationFile{name: n, version: strings.TrimSuffix(path.Base(n), ".up.sql"), set: set})
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	return files, nil
}

func validIdent(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r == '_':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func hashString(s string) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(s)) // a hash.Hash never fails to write
	return h.Sum32()
}
