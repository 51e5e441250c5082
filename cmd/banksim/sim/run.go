package sim

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/edubureau/studentaid/pkg/db"
)

// ShutdownTimeout bounds how long Run waits for in-flight requests, including
// responses held back by timeout injection, when ctx ends.
const ShutdownTimeout = 15 * time.Second

// Run migrates the ledger, serves the bank on cfg.Addr until ctx ends, then
// stops accepting, drains in-flight requests and closes the pool. When ready
// is not nil it receives the bound address once the listener is open.
func Run(ctx context.Context, cfg Config, logger *slog.Logger, ready func(net.Addr)) error {
	pool, err := db.Connect(ctx, cfg.DatabaseURL, db.Options{MaxConns: cmp.Or(cfg.DBMaxConns, DefaultDBMaxConns)})
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer pool.Close()
	if err := Migrate(ctx, pool, cfg.Schema); err != nil {
		return err
	}
	bank := NewBank(NewLedger(pool, cfg.Schema), cfg.Faults, logger)

	var lc net.ListenConfig
	lis, err := lc.Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{
		Handler:           bank.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	logger.Info("banksim listening",
		"addr", lis.Addr().String(), "schema", cfg.Schema,
		"latency", cfg.Faults.Latency, "failure_rate", cfg.Faults.FailureRate,
		"timeout_rate", cfg.Faults.TimeoutRate, "timeout_delay", cfg.Faults.TimeoutDelay,
		"seed", cfg.Faults.Seed)
	if ready != nil {
		ready(lis.Addr())
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(lis) }()
	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("banksim shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	logger.Info("banksim stopped")
	return nil
}
