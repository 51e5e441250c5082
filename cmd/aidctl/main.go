// Command aidctl is the operator's tool: re-publish a range of a service's
// outbox, list or replay dead-lettered events, move a service's sealed
// data and hashes onto its current keys, and export and verify the trail
// anchor's checkpoints (the auditor's part).
//
//	aidctl republish -service application -from 1 -to 5000
//	aidctl dead list [-consumer payout]
//	aidctl dead replay -seq 12
//	AID_TOKEN=<ops token> aidctl rotate-key -service application [-addr host:port] [-batch 500]
//	AID_TOKEN=<auditor token> aidctl checkpoint export -out checkpoint.json
//	AID_TOKEN=<auditor token> aidctl trail export -out leaves.json
//	aidctl verify -leaves leaves.json -checkpoint checkpoint.json -keys <id>:<public key> [-application ID]
//	AID_TOKEN=<auditor token> aidctl stats -from 2017-spring -to 2017-autumn [-schools S01,S02] [-stage S] [-program P]
//	AID_TOKEN=<auditor token> aidctl export-payments -from 2017-spring -to 2017-autumn -format xlsx -out payments.xlsx
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/edubureau/studentaid/pkg/config"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/grpcx"
	"github.com/edubureau/studentaid/pkg/keyrotation"
	"github.com/edubureau/studentaid/pkg/natsx"
	"github.com/edubureau/studentaid/pkg/outbox"
	"github.com/edubureau/studentaid/pkg/service"
	keysv1 "github.com/edubureau/studentaid/proto/gen/aid/keys/v1"
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
  aidctl nats-setup                                    create or update the JetStream streams (the NATS admin identity)
  aidctl republish -service NAME [-from ID] [-to ID]   re-publish outbox rows (consumers ignore duplicates)
  aidctl dead list [-consumer NAME]                    list dead-lettered events
  aidctl dead replay -seq N                            replay one dead letter on its original subject
  aidctl rotate-key -service application|payout [-addr HOST:PORT] [-batch N] [-from TOKEN]
                                                       re-seal (and re-hash) everything under the current keys;
                                                       AID_TOKEN holds an ops token
  aidctl checkpoint export [-addr HOST:PORT] [-out FILE]
                                                       the latest signed trail checkpoint (AID_TOKEN: auditor)
  aidctl trail export [-from N] [-to N] [-out FILE]   tree leaves with their trail entries (AID_TOKEN: auditor)
  aidctl trail proof -application ID [-keys KEYS]     an application's inclusion proof, checked (AID_TOKEN: auditor)
  aidctl trail public-key                              the verify keys of AID_TRAIL_SIGNING_KEYS
  aidctl verify -leaves FILE [-checkpoint FILE] [-keys KEYS] [-application ID]
                                                       check an export offline: signature, entries, root
  aidctl stats -from TERM [-to TERM] [-schools A,B] [-stage S] [-program P] [-addr HOST:PORT]
                                                       paid, persons, funding split, refunds and loans
                                                       (AID_TOKEN: a reporting reader)
  aidctl export-payments -from TERM [-to TERM] [-schools A,B] [-stage S] [-program P] [-as-of T]
                         [-format xlsx|csv|json] [-language zh|en] -out FILE [-api URL]
                                                       every paid record of the selection as a file
                                                       (AID_TOKEN: a reporting reader)`

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%s", usage)
	}
	switch args[0] {
	case "stats":
		return stats(ctx, args[1:])
	case "export-payments":
		return exportPayments(ctx, args[1:])
	case "nats-setup":
		return natsSetup(ctx)
	case "republish":
		return republish(ctx, args[1:])
	case "dead":
		if len(args) < 2 {
			return fmt.Errorf("%s", usage)
		}
		return dead(ctx, args[1], args[2:])
	case "rotate-key":
		return rotateKey(ctx, args[1:])
	case "verify":
		return verifyOffline(os.Stdout, args[1:])
	case "checkpoint":
		if len(args) > 1 && args[1] == "export" {
			return checkpointExport(ctx, os.Stdout, args[2:])
		}
	case "trail":
		if len(args) > 1 {
			switch args[1] {
			case "export":
				return trailExport(ctx, os.Stdout, args[2:])
			case "proof":
				return trailProof(ctx, os.Stdout, args[2:])
			case "public-key":
				return publicKey(os.Stdout)
			}
		}
	}
	return fmt.Errorf("%s", usage)
}

// connectNATS logs in to NATS_URL as the admin identity (AID_NATS_NKEY_SEED
// or AID_NATS_NKEY_SEED_FILE): setting up streams, replaying dead letters
// and re-publishing other services' events need its rights.
func connectNATS() (*nats.Conn, jetstream.JetStream, error) {
	seed, caFile, err := config.NATSCredentials()
	if err != nil {
		return nil, nil, err
	}
	return natsx.Connect(config.Env("NATS_URL", config.DefaultNATSURL), "aidctl", natsx.WithNKeySeed(seed), natsx.WithRootCA(caFile))
}

// natsSetup creates or updates the streams (natsx.Streams).
func natsSetup(ctx context.Context) error {
	nc, js, err := connectNATS()
	if err != nil {
		return err
	}
	defer nc.Close()
	replicas, err := config.Int("AID_NATS_STREAM_REPLICAS", 1)
	if err != nil {
		return err
	}
	maxBytes, err := config.Int("AID_NATS_EVENT_STREAM_MAX_BYTES", int(natsx.EventStreamMaxBytes))
	if err != nil {
		return err
	}
	if maxBytes < 1<<30 {
		return fmt.Errorf("AID_NATS_EVENT_STREAM_MAX_BYTES is %d: the event stream needs at least 1 GiB (1073741824)", maxBytes)
	}
	if err := natsx.EnsureStreamsWith(ctx, js, natsx.StreamSetup{Replicas: replicas, EventMaxBytes: int64(maxBytes)}); err != nil {
		return err
	}
	for _, st := range natsx.Streams() {
		fmt.Println("stream", st.Name, "is set up on", replicas, "replicas")
	}
	return nil
}

// republish re-publishes a range of a service's outbox.
func republish(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("republish", flag.ContinueOnError)
	svc := fs.String("service", "", "service whose outbox to re-publish")
	from := fs.Int64("from", 1, "first outbox id")
	to := fs.Int64("to", math.MaxInt64, "last outbox id")
	if err := fs.Parse(args); err != nil {
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
	nc, js, err := connectNATS()
	if err != nil {
		return err
	}
	defer nc.Close()
	n, err := outbox.Republish(ctx, pool, js, *from, *to)
	fmt.Printf("re-published %d events from %s's outbox\n", n, *svc)
	return err
}

// dead lists or replays dead letters.
func dead(ctx context.Context, cmd string, args []string) error {
	fs := flag.NewFlagSet("dead", flag.ContinueOnError)
	consumer := fs.String("consumer", "", "only this consumer's dead letters")
	seq := fs.Uint64("seq", 0, "dead letter sequence to replay")
	if err := fs.Parse(args); err != nil {
		return err
	}
	nc, js, err := connectNATS()
	if err != nil {
		return err
	}
	defer nc.Close()
	switch cmd {
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
	return fmt.Errorf("%s", usage)
}

// rotationAddrs are the default gRPC addresses of the services that hold
// sealed data.
var rotationAddrs = map[string]string{"application": "127.0.0.1:9101", "payout": "127.0.0.1:9105"}

// rotateKey calls the service's RotateKeys until it is done. The service
// does the work under its own keys and database role; aidctl holds neither,
// only an ops token. It prints the token to resume from after each batch.
func rotateKey(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("rotate-key", flag.ContinueOnError)
	svc := fs.String("service", "", "application or payout")
	addr := fs.String("addr", "", "the service's gRPC address (default: <SERVICE>_GRPC_ADDR or its default)")
	batch := fs.Int("batch", keyrotation.DefaultBatchSize, "rows per batch")
	from := fs.String("from", "", "resume from this page token")
	if err := fs.Parse(args); err != nil {
		return err
	}
	def, ok := rotationAddrs[*svc]
	if !ok {
		return fmt.Errorf("-service must be application or payout\n%s", usage)
	}
	if *addr == "" {
		*addr = config.Env(strings.ToUpper(*svc)+"_GRPC_ADDR", def)
	}
	token := config.Env("AID_TOKEN", "")
	if token == "" {
		return errors.New("AID_TOKEN is not set: an ops token is required")
	}
	conn, err := grpcx.Dial(*addr, token)
	if err != nil {
		return err
	}
	defer conn.Close()
	client := keysv1.NewKeyRotationServiceClient(conn)
	var resealed, rehashed int64
	page := *from
	for {
		resp, err := client.RotateKeys(ctx, &keysv1.RotateKeysRequest{BatchSize: int32(min(*batch, keyrotation.MaxBatchSize)), PageToken: page}) //nolint:gosec // G115: bounded by MaxBatchSize
		if err != nil {
			return fmt.Errorf("rotate %s (resume with -from %q): %w", *svc, page, err)
		}
		resealed, rehashed = resealed+resp.GetResealed(), rehashed+resp.GetRehashed()
		if resp.GetDone() {
			fmt.Printf("%s: every value is under seal key %s%s; re-sealed %d, re-hashed %d; the older keys may be removed\n",
				*svc, resp.GetSealKeyId(), hashKeyNote(resp.GetHashKeyId()), resealed, rehashed)
			return nil
		}
		page = resp.GetNextPageToken()
		fmt.Printf("%s: %s: re-sealed %d, re-hashed %d so far; next %s\n", *svc, resp.GetTable(), resealed, rehashed, page)
	}
}

func hashKeyNote(id string) string {
	if id == "" {
		return ""
	}
	return " and hash key " + id
}
