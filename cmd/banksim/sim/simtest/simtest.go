// Package simtest starts the simulated bank for tests: a fresh PostgreSQL
// schema per call, served through httptest, all torn down in t.Cleanup.
package simtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/edubureau/studentaid/cmd/banksim/sim"
	"github.com/edubureau/studentaid/pkg/config"
	"github.com/edubureau/studentaid/pkg/db"
)

// Env is a running simulated bank.
type Env struct {
	// Server serves the bank's API; Server.URL is its base URL.
	Server *httptest.Server
	Ledger *sim.Ledger
	Pool   *pgxpool.Pool
	Schema string
	// Logs holds everything the bank logged, for checks that no card number
	// or name leaks into logs.
	Logs *Buffer
}

// DatabaseURL is $DATABASE_URL, or the local test database.
func DatabaseURL() string {
	return config.Env("DATABASE_URL", sim.DefaultDatabaseURL)
}

// Start migrates a new schema banksim_test_<random> and serves a bank over it
// with faults. The schema is dropped when the test ends.
func Start(t testing.TB, faults sim.Faults, opts ...sim.Option) *Env {
	t.Helper()
	ctx := context.Background()
	pool, err := db.Connect(ctx, DatabaseURL(), db.Options{MaxConns: 24})
	if err != nil {
		t.Fatalf("connect to PostgreSQL: %v", err)
	}
	t.Cleanup(pool.Close)

	schema := "banksim_test_" + randomHex(t, 8)
	t.Cleanup(func() {
		if _, err := pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	if err := sim.Migrate(ctx, pool, schema); err != nil {
		t.Fatalf("migrate: %v", err)
	}

	logs := &Buffer{tee: t.Output()}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ledger := sim.NewLedger(pool, schema)
	srv := httptest.NewServer(sim.NewBank(ledger, faults, logger, opts...).Handler())
	t.Cleanup(srv.Close)
	return &Env{Server: srv, Ledger: ledger, Pool: pool, Schema: schema, Logs: logs}
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random: %v", err)
	}
	return hex.EncodeToString(b)
}

// Buffer is a goroutine-safe log sink that also copies to the test's output.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	tee io.Writer
}

// Write records p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tee != nil {
		_, _ = b.tee.Write(p)
	}
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
