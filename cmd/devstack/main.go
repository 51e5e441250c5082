// Command devstack runs the whole system on this machine for development:
// PostgreSQL (DATABASE_URL, or a throwaway cluster under .devstack/pg), NATS
// JetStream (NATS_URL, or an embedded server), Jaeger, the bank simulator and
// the five services as separate processes. It prints the endpoints and stops
// everything on Ctrl-C.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/edubureau/studentaid/internal/devtools/natsdev"
	"github.com/edubureau/studentaid/internal/devtools/stack"
	"github.com/edubureau/studentaid/pkg/config"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

// run does what the command line asks until it is done or SIGINT or SIGTERM
// arrives.
func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir := config.Env("AID_DEV_DIR", ".devstack")
	if len(os.Args) > 2 && os.Args[1] == "exec" {
		return execWithDatabase(ctx, dir, os.Args[2:])
	}
	if len(os.Args) > 1 && os.Args[1] == "natsd" {
		return natsd(ctx, os.Args[2:])
	}
	if len(os.Args) == 3 && os.Args[1] == "nats-keys" {
		return natsKeys(os.Args[2])
	}
	if len(os.Args) == 3 && os.Args[1] == "nats-conf" {
		return natsdev.WriteAuthorizationConf(os.Args[2])
	}
	opts := stack.Options{
		Dir:            dir,
		BinDir:         config.Env("AID_BIN_DIR", "bin"),
		DatabaseURL:    config.Env("DATABASE_URL", ""),
		NATSURL:        config.Env("NATS_URL", ""),
		JaegerBin:      config.Env("JAEGER_BIN", filepath.Join(".cache", "bin", "jaeger")),
		JaegerUIAssets: config.Env("JAEGER_UI_ASSETS", ""),
		PreferredPorts: true,
		Env: map[string]string{
			"SCHOOL_REVIEW_NOTICE_PERIOD": config.Env("SCHOOL_REVIEW_NOTICE_PERIOD", "5wd"),
			"LOG_LEVEL":                   config.Env("LOG_LEVEL", "info"),
		},
	}
	if _, err := os.Stat(opts.JaegerBin); err != nil {
		fmt.Fprintf(os.Stderr, "devstack: no Jaeger binary at %s (run `make jaeger`); running without traces export\n", opts.JaegerBin)
		opts.JaegerBin = ""
	}
	fmt.Println("starting the student aid stack…")
	s, err := stack.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer s.Stop()

	fmt.Println()
	fmt.Println("PostgreSQL  ", s.DatabaseURL)
	fmt.Println("NATS        ", s.NATSURL, " (NKey seeds, one per identity: "+s.NATSKeyDir+")")
	if s.JaegerQuery != "" {
		fmt.Println("Jaeger UI/API", s.JaegerQuery, " (search by tag application.id=<id>)")
	}
	fmt.Println("API (one base URL, REST and gRPC):", "http://"+s.Gateway, " (OpenAPI: http://"+s.Gateway+"/openapi.json)")
	fmt.Println("Console (development sign-in):", "http://"+s.Console)
	fmt.Println("Bank sim    ", s.BankURL, " (ledger: "+s.BankURL+"/v1/ledger)")
	names := append([]string(nil), stack.Services...)
	sort.Strings(names)
	for _, n := range names {
		ep := s.Endpoints[n]
		fmt.Printf("%-21s gRPC %s   REST http://%s/v1/…   metrics http://%s/metrics   (internal)\n", n, ep.GRPC, ep.HTTP, ep.HTTP)
	}
	fmt.Printf("\nlogs: %s\n", filepath.Join(dir, "logs"))
	fmt.Println("\nDevelopment tokens (signed with", filepath.Join(s.KeyDir, "auth.pem")+"):")
	fmt.Println("  go run ./cmd/devtoken -role school_officer  -org S001 -user officer1")
	fmt.Println("  go run ./cmd/devtoken -role school_reviewer -org S001 -user reviewer1")
	fmt.Println("  go run ./cmd/devtoken -role bureau_reviewer -org BUREAU -user bureau1")
	fmt.Println("  go run ./cmd/devtoken -role finance_officer -org FINANCE -user finance1")
	fmt.Println("  go run ./cmd/devtoken -role auditor -org BUREAU -user auditor1")
	fmt.Println("\nPress Ctrl-C to stop.")
	<-ctx.Done()
	fmt.Println("\nstopping…")
	return nil
}

// execWithDatabase runs args with DATABASE_URL pointing at a PostgreSQL
// server: the one already named by DATABASE_URL, or a throwaway cluster that
// is removed afterwards. `make test` runs the test suite this way.
func execWithDatabase(ctx context.Context, dir string, args []string) error {
	if args[0] == "--" {
		args = args[1:]
	}
	env := os.Environ()
	if config.Env("DATABASE_URL", "") == "" {
		pgDir := filepath.Join(dir, "test-pg")
		_ = os.RemoveAll(pgDir)
		pg, err := stack.StartPostgres(ctx, pgDir)
		if err != nil {
			return err
		}
		defer func() {
			_ = pg.Stop()
			_ = os.RemoveAll(pgDir)
		}()
		fmt.Fprintln(os.Stderr, "devstack: throwaway PostgreSQL at", pg.URL)
		env = append(env, "DATABASE_URL="+pg.URL)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...) //nolint:gosec // G702: running the command given on devstack's own command line is what `devstack exec` is for
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", args[0], err)
	}
	return nil
}

// natsd serves NATS with JetStream (fsync on every write) until SIGTERM:
// `devstack natsd <store-dir> <port> <monitor-port> <keys-dir>`, admitting
// only the NKey users whose seeds are in keys-dir (natsdev.LoadOrCreateKeys),
// with the permissions of natsx.Identities. The stack runs NATS this way, as
// a process of its own that fault tests can kill.
//
// With three more arguments, `<node-name> <cluster-port> <cluster-ports>`
// (the comma-separated cluster ports of every node, its own included), it is
// a node of a JetStream cluster on loopback (natsdev.JoinCluster).
//
// AID_NATS_PROF_PORT, when set, serves the server's Go profiles
// (/debug/pprof) on that loopback port, for finding where its memory goes
// (docs/performance.md).
func natsd(ctx context.Context, args []string) error {
	const usage = "usage: devstack natsd <store-dir> <port> <monitor-port> <keys-dir> [<node-name> <cluster-port> <cluster-ports,...>]"
	if len(args) != 4 && len(args) != 7 {
		return errors.New(usage)
	}
	port, err1 := strconv.Atoi(args[1])
	monitor, err2 := strconv.Atoi(args[2])
	if err1 != nil || err2 != nil {
		return errors.New("natsd: ports must be numbers")
	}
	keys, err := natsdev.LoadOrCreateKeys(args[3])
	if err != nil {
		return err
	}
	opts, err := natsdev.ServerOptions(args[0], port, monitor, keys)
	if err != nil {
		return err
	}
	if p := os.Getenv("AID_NATS_PROF_PORT"); p != "" {
		if opts.ProfPort, err = strconv.Atoi(p); err != nil {
			return errors.New("natsd: AID_NATS_PROF_PORT must be a port number")
		}
	}
	if len(args) == 7 {
		clusterPort, err := strconv.Atoi(args[5])
		if err != nil {
			return errors.New("natsd: the cluster port must be a number")
		}
		var peers []int
		for f := range strings.SplitSeq(args[6], ",") {
			p, err := strconv.Atoi(f)
			if err != nil {
				return errors.New(usage)
			}
			peers = append(peers, p)
		}
		natsdev.JoinCluster(opts, args[4], clusterPort, peers)
	}
	ns, err := natsdev.StartServer(opts)
	if err != nil {
		return err
	}
	<-ctx.Done()
	ns.Shutdown()
	ns.WaitForShutdown()
	return nil
}

// natsKeys writes a seed per NATS identity under dir (kept ones are kept)
// and dir/nkeys.conf with their public keys, for a deployment
// (deploy/README.md): `devstack nats-keys <dir>`.
func natsKeys(dir string) error {
	keys, err := natsdev.LoadOrCreateKeys(dir)
	if err != nil {
		return err
	}
	conf, err := natsdev.NKeysConf(keys)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "nkeys.conf"), []byte(conf), 0o644); err != nil { //nolint:gosec // G306: public keys
		return err
	}
	fmt.Printf("seeds in %s/<identity>.nk (secret: one to each service, admin to aidctl), public keys in %s/nkeys.conf\n", dir, dir)
	return nil
}
