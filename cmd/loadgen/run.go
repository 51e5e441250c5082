package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/edubureau/studentaid/cmd/loadgen/internal/driver"
)

// run drives one load through its four phases: bring the stack up, run the
// scenario, measure what it did, report. SIGINT or SIGTERM cuts it short.
func run(c config) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	l, err := bringUp(ctx, c, logToStderrf)
	if err != nil {
		return err
	}
	defer l.close()
	ch, err := l.runScenario(ctx)
	if err != nil {
		return err
	}
	return report(l.measure(ctx, ch), c.JSON, l.logf)
}

// load is one run: the stack under load, its users and the instruments that
// watch it, as bringUp left them.
type load struct {
	c    config
	logf func(string, ...any)
	sys  *system
	gen  *driver.Generator
	// clients and who are the load's users of the public APIs.
	clients *driver.Clients
	who     *actors
	rec     *driver.Recorder
	probe   *driver.BacklogProbe
	// countPool reaches the stack's database; set when loadgen started the stack.
	countPool *pgxpool.Pool
	// res is the result, begun at bring-up and filled in by measure.
	res *result
}

// logToStderrf logs a timestamped line of progress.
func logToStderrf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

func rateString(r float64) string {
	if r <= 0 {
		return "as fast as possible"
	}
	return fmt.Sprintf("%g/s", r)
}

func sec(d time.Duration) float64 { return float64(d.Milliseconds()) / 1000 }

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
