// Command banksim is a simulated bank for payouts: it credits bank cards once
// per idempotency key, keeps its ledger in PostgreSQL schema banksim, and can
// be made slow or unreliable. Configuration is read from the environment; see
// sim.LoadConfig.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"syscall"

	"github.com/edubureau/studentaid/cmd/banksim/sim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "banksim:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	logger := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	cfg, err := sim.LoadConfig(os.LookupEnv, rand.Uint64())
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return sim.Run(ctx, cfg, logger, nil)
}
