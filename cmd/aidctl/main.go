// Command aidctl is the operator's tool: re-publish a range of a service's
// outbox, and list or replay dead-lettered events.
//
//	aidctl republish -service application -from 1 -to 5000
//	aidctl dead list [-consumer payout]
//	aidctl dead replay -seq 12
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"syscall"

	"github.com/edubureau/studentaid/pkg/config"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/natsx"
	"github.com/edubureau/studentaid/pkg/outbox"
	"github.com/edubureau/studentaid/pkg/service"
)

func main() {
	if err := runWithSignals(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "aidctl:", err)
		os.Exit(1)
	}
}

// runWithSignals runs the command until it ends or SIGINT or SIGTERM arrives.
func runWithSignals(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, args)
}

const usage = `usage:
  aidctl republish -service NAME [-from ID] [-to ID]   re-publish outbox rows (consumers ignore duplicates)
  aidctl dead list [-consumer NAME]                    list dead-lettered events
  aidctl dead replay -seq N                            replay one dead letter on its original subject`

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%s", usage)
	}
	natsURL := config.Env("NATS_URL", config.DefaultNATSURL)
	switch args[0] {
	case "republish":
		fs := flag.NewFlagSet("republish", flag.ContinueOnError)
		svc := fs.String("service", "", "service whose outbox to re-publish")
		from := fs.Int64("from", 1, "first outbox id")
		to := fs.Int64("to", math.MaxInt64, "last outbox id")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *svc == "" {
			return fmt.Errorf("-service is required\n%s", usage)
		}
		schema := service.Schema(*svc)
		pool, err := db.Connect(ctx, config.Env("DATABASE_URL", config.DefaultDatabaseURL), db.Options{SearchPath: schema})
		if err != nil {
			return err
		}
		defer pool.Close()
		nc, js, err := natsx.Connect(natsURL, "aidctl")
		if err != nil {
			return err
		}
		defer nc.Close()
		n, err := outbox.Republish(ctx, pool, js, *from, *to)
		fmt.Printf("re-published %d events from %s's outbox\n", n, *svc)
		return err
	case "dead":
		if len(args) < 2 {
			return fmt.Errorf("%s", usage)
		}
		fs := flag.NewFlagSet("dead", flag.ContinueOnError)
		consumer := fs.String("consumer", "", "only this consumer's dead letters")
		seq := fs.Uint64("seq", 0, "dead letter sequence to replay")
		if err := fs.Parse(args[2:]); err != nil {
			return err
		}
		nc, js, err := natsx.Connect(natsURL, "aidctl")
		if err != nil {
			return err
		}
		defer nc.Close()
		switch args[1] {
		case "list":
			dls, err := natsx.ListDead(ctx, js, *consumer)
			if err != nil {
				return err
			}
			for _, d := range dls {
				fmt.Printf("%d\t%s\t%s\t%s\t%s\n", d.Sequence, d.At.UTC().Format("2006-01-02T15:04:05Z"), d.Consumer, d.OriginalSubject, d.Error)
			}
			fmt.Printf("%d dead letters\n", len(dls))
			return nil
		case "replay":
			if *seq == 0 {
				return errors.New("-seq is required")
			}
			if err := natsx.ReplayDead(ctx, js, *seq); err != nil {
				return err
			}
			fmt.Printf("replayed dead letter %d\n", *seq)
			return nil
		}
	}
	return fmt.Errorf("%s", usage)
}
