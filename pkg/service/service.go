// Package service hosts one of the five services: it reads the
// configuration, sets up telemetry, opens the database under the service's
// own role (its schema migrated beforehand by `<service> migrate`), connects
// to JetStream, and runs the gRPC server, the REST gateway, the outbox relay,
// the event consumers and any background workers, stopping them in order on
// shutdown.
package service

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/edubureau/studentaid/pkg/audit"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/config"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/grpcx"
	"github.com/edubureau/studentaid/pkg/lease"
	"github.com/edubureau/studentaid/pkg/natsx"
	"github.com/edubureau/studentaid/pkg/outbox"
	"github.com/edubureau/studentaid/pkg/pii"
	"github.com/edubureau/studentaid/pkg/telemetry"
)

// RelayLease is the lease under which one replica of a service relays its
// outbox. Two relays at once would be safe (rows are claimed with SKIP
// LOCKED and JetStream drops a message ID it has seen) but slower: each
// would publish smaller frames, out of id order between them.
const RelayLease = "outbox-relay"

// RelayLeaseTTL bounds how long the outbox waits for a new relay after its
// owner died without releasing the lease.
const RelayLeaseTTL = 3 * time.Second

// ConsumerLeasePrefix names the lease under which one replica runs a
// consumer ("consumer:application"); its TTL is RelayLeaseTTL.
const ConsumerLeasePrefix = "consumer:"

// consumerRuns returns how each consumer runs: one replica at a time
// (ConsumerLeasePrefix) unless AID_CONSUMERS_COMPETE lets every replica
// pull from the durable.
func (h *Host) consumerRuns(service string) ([]func(context.Context) error, error) {
	compete, err := config.Bool("AID_CONSUMERS_COMPETE", false)
	if err != nil {
		return nil, err
	}
	runs := make([]func(context.Context) error, len(h.consumers))
	for i, c := range h.consumers {
		runs[i] = c.Run
		if !compete {
			runs[i] = exclusive(h.Pool, c, h.Log, h.Tel.Registry, service)
		}
	}
	return runs, nil
}

// exclusive runs c only while this process holds its lease: one replica
// consumes, the others stand by and take over when it stops or dies (its
// unacknowledged messages are redelivered to the next holder). One
// consumer sees a service's events in stream order and applies them in
// large batches, where competing replicas would each apply a share in
// smaller transactions and make an event that comes before its
// prerequisite wait for a redelivery (docs/architecture.md, Replicas).
// Events are applied exactly once in effect whoever applies them, so no
// write needs fencing: the lease only keeps the consumption in one place.
func exclusive(pool *pgxpool.Pool, c *natsx.Consumer, log *slog.Logger, reg prometheus.Registerer, service string) func(context.Context) error {
	r := lease.NewRunner(pool, ConsumerLeasePrefix+c.Name, lease.WithTTL(RelayLeaseTTL), lease.WithLogger(log), lease.WithRegisterer(reg, service))
	return func(ctx context.Context) error {
		return r.Run(ctx, func(lctx context.Context, _ lease.Lease) error {
			// A lost lease cancels lctx: the consumer stops, which is no failure.
			if err := c.Run(lctx); err != nil && lctx.Err() == nil {
				return err
			}
			return nil
		})
	}
}

// Spec describes a service to host.
type Spec struct {
	// Name is the service's name: its schema (with '-' as '_'), durable
	// consumer and service.name.
	Name            string
	DefaultGRPCAddr string
	DefaultHTTPAddr string
	// Migrations are the service's own NNN_name.up.sql files.
	Migrations fs.FS
	// AppendOnly names the service's tables its role may only read and add
	// rows to (a trail); the platform's audit_log is always one.
	AppendOnly []string
	// Policy says which roles may call each RPC.
	Policy grpcx.Policy
	// Setup registers the service's gRPC and REST handlers, consumers and workers.
	Setup func(ctx context.Context, h *Host) error
	// Needs says which keys the service uses: the host loads only those
	// (Host.Sealer and Host.Hasher are nil otherwise), and production
	// refuses to hand a service a key it does not use.
	Needs config.KeyNeeds
}

// Host gives a service's Setup what it needs and collects what it registers.
type Host struct {
	Config config.Service
	Log    *slog.Logger
	Pool   *pgxpool.Pool
	JS     jetstream.JetStream
	Relay  *outbox.Relay
	GRPC   *grpc.Server
	// Sealer seals and opens personal data; nil unless Spec.Needs.Seal.
	Sealer *pii.Sealer
	// Hasher fingerprints ID numbers; nil unless Spec.Needs.Hash.
	Hasher *pii.Hasher
	Tel    *telemetry.Telemetry

	consumerMetrics *natsx.ConsumerMetrics
	consumers       []*natsx.Consumer
	workers         []worker
	gateways        []grpcx.GatewayRegistrar
	routes          []grpcx.HTTPRoute
}

type worker struct {
	name string
	run  func(ctx context.Context) error
}

// Schema returns the PostgreSQL schema a service owns.
func Schema(name string) string {
	out := []byte(name)
	for i, c := range out {
		if c == '-' {
			out[i] = '_'
		}
	}
	return string(out)
}

// AddConsumer runs c (durable name = service name unless set) for the
// lifetime of the service.
func (h *Host) AddConsumer(c *natsx.Consumer) {
	if c.Name == "" {
		c.Name = h.Config.Name
	}
	if c.AfterCommit == nil {
		c.AfterCommit = h.Relay.Notify
	}
	c.Bind(h.Pool, h.JS, h.Log.With("consumer", c.Name), h.consumerMetrics)
	h.consumers = append(h.consumers, c)
}

// AddWorker runs fn until the service stops; fn returns when ctx is done.
func (h *Host) AddWorker(name string, fn func(ctx context.Context) error) {
	h.workers = append(h.workers, worker{name, fn})
}

// AddGateway registers a REST gateway for one of the service's gRPC services.
func (h *Host) AddGateway(r grpcx.GatewayRegistrar) { h.gateways = append(h.gateways, r) }

// AddRoute serves a plain HTTP handler beside the REST gateway.
func (h *Host) AddRoute(r grpcx.HTTPRoute) { h.routes = append(h.routes, r) }

// Main runs spec until SIGINT or SIGTERM and exits non-zero on failure;
// `<service> migrate` instead applies its migrations as the schema's owner
// and grants the service's role its rights (see [Migrate]), then exits.
func Main(spec Spec) {
	run := runUntilSignal
	if len(os.Args) > 1 && os.Args[1] == "migrate" {
		run = migrateUntilSignal
	}
	if err := run(spec); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", spec.Name, err)
		os.Exit(1)
	}
}

func runUntilSignal(spec Spec) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, spec)
}

// migrateUntilSignal is `<service> migrate`: Migrate with the configuration
// from the environment.
func migrateUntilSignal(spec Spec) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := config.LoadMigrate(spec.Name)
	if err != nil {
		return err
	}
	if err := Migrate(ctx, spec, cfg); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%s: schema %s migrated; role %s granted\n", spec.Name, Schema(spec.Name), cfg.Role)
	return nil
}

// Migrate applies spec's migrations (the outbox's, the audit log's and the
// service's own) to its schema, logged in as the schema's owner
// (cfg.DatabaseURL), then grants the service's role (cfg.Role) its rights
// there: rows only, and on the append-only tables (the audit log and
// spec.AppendOnly) only reading and adding (db.Grant). It is idempotent. The
// service itself runs under its role and never holds the owner's login.
func Migrate(ctx context.Context, spec Spec, cfg config.Migrate) error {
	schema := Schema(spec.Name)
	pool, err := db.Connect(ctx, cfg.DatabaseURL, db.Options{MaxConns: 2})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer pool.Close()
	if err := db.Migrate(ctx, pool, schema, migrationSets(spec)...); err != nil {
		return err
	}
	return db.Grant(ctx, pool, db.Grants{Schema: schema, Role: cfg.Role, AppendOnly: append(audit.AppendOnly(), spec.AppendOnly...)})
}

// migrationSets are every migration a service's schema holds.
func migrationSets(spec Spec) []fs.FS {
	sets := []fs.FS{outbox.Migrations(), audit.Migrations()}
	if spec.Migrations != nil {
		sets = append(sets, spec.Migrations)
	}
	return sets
}

// checkDatabase refuses a schema the migrate step has not brought up to
// date and, in production, a login with more rights than the service's own
// role (a superuser, the schema's owner…); in development it logs them.
func checkDatabase(ctx context.Context, pool *pgxpool.Pool, spec Spec, cfg config.Service, log *slog.Logger) error {
	schema := Schema(spec.Name)
	over, err := db.OverPrivileged(ctx, pool, schema)
	if err != nil {
		return err
	}
	if len(over) > 0 {
		if cfg.Production {
			return fmt.Errorf("AID_ENV=production refuses DATABASE_URL: %s; log in as the service's own role (docs/operations.md)", strings.Join(over, "; "))
		}
		for _, o := range over {
			log.Warn("database login has more rights than the service's role; AID_ENV=production refuses it", "problem", o)
		}
	}
	pending, err := db.Pending(ctx, pool, schema, migrationSets(spec)...)
	if err != nil {
		return err
	}
	if len(pending) > 0 {
		return fmt.Errorf("schema %s lacks migrations %s: run `%s migrate` (as the schema's owner, AID_MIGRATE_DATABASE_URL) first", schema, strings.Join(pending, ", "), spec.Name)
	}
	return nil
}

// Run hosts spec until ctx is done, then shuts down in order: stop taking
// requests and let in-flight ones finish, stop the consumers, flush the
// outbox relay, close NATS and the pool, flush traces.
func Run(ctx context.Context, spec Spec) error {
	cfg, err := config.LoadService(spec.Name, spec.DefaultGRPCAddr, spec.DefaultHTTPAddr)
	if err != nil {
		return err
	}
	if cfg, err = cfg.WithKeys(spec.Needs); err != nil {
		return err
	}
	return RunWithConfig(ctx, spec, cfg)
}

// RunWithConfig is Run with the configuration given rather than read from
// the environment; tests use it to host a service in-process.
func RunWithConfig(ctx context.Context, spec Spec, cfg config.Service) error {
	tel, err := telemetry.Setup(ctx, spec.Name, cfg.LogLevel, cfg.Telemetry)
	if err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	log := tel.Log
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tel.Shutdown(sctx); err != nil {
			log.Warn("trace flush failed", "err", err)
		}
	}()

	keys, err := auth.LoadPublicKeys(cfg.AuthPublicKeys)
	if err != nil {
		return fmt.Errorf("auth keys: %w", err)
	}
	for _, u := range cfg.Unsafe() {
		log.Warn("development default in use; AID_ENV=production refuses it", "setting", u)
	}
	sealer, hasher, err := loadKeys(spec.Needs, cfg)
	if err != nil {
		return err
	}

	schema := Schema(spec.Name)
	pool, err := db.Connect(ctx, cfg.DatabaseURL, db.Options{MaxConns: cfg.DBMaxConns, Trace: cfg.TraceDB, SearchPath: schema})
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := checkDatabase(ctx, pool, spec, cfg, log); err != nil {
		return err
	}

	nc, js, err := natsx.Connect(cfg.NATSURL, spec.Name, natsx.WithNKeySeed(cfg.NATSSeed), natsx.WithRootCA(cfg.NATSCAFile))
	if err != nil {
		return err
	}
	defer nc.Close()
	// The streams are made by the setup step under the admin identity; a
	// service's NATS user may not create them.
	if err := natsx.CheckStreams(ctx, js, 30*time.Second); err != nil {
		return err
	}

	// One replica relays the outbox at a time (RelayLease): it reads the
	// rows in id order and publishes them in large frames, and its poll
	// picks up what the other replicas commit (their own commits wake only
	// their own process).
	poll, err := config.Duration("AID_OUTBOX_POLL_INTERVAL", 50*time.Millisecond)
	if err != nil {
		return err
	}
	relay := outbox.NewRelay(pool, js, log, outbox.WithRegisterer(tel.Registry, spec.Name), outbox.WithPollInterval(poll))
	srv := grpcx.NewServer(grpcx.ServerDeps{
		Log:      log,
		Verifier: auth.NewVerifier(auth.TokenPolicy{Audience: cfg.AuthAudience, Issuer: cfg.AuthIssuer, MaxLifetime: cfg.MaxTokenLifetime}, keys...),
		Policy:   spec.Policy,
		Audit:    pool,
		Registry: tel.Registry,
	})
	healthSrv := health.NewServer()
	healthpb.RegisterHealthServer(srv, healthSrv)

	h := &Host{
		Config: cfg, Log: log, Pool: pool, JS: js, Relay: relay, GRPC: srv,
		Sealer: sealer, Hasher: hasher, Tel: tel,
		consumerMetrics: natsx.NewConsumerMetrics(tel.Registry),
	}
	if err := spec.Setup(ctx, h); err != nil {
		return fmt.Errorf("setup: %w", err)
	}

	var lc net.ListenConfig
	grpcLis, err := lc.Listen(ctx, "tcp", cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("listen grpc: %w", err)
	}
	httpLis, err := lc.Listen(ctx, "tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen http: %w", err)
	}
	handler, err := grpcx.NewHTTPHandler(ctx, grpcx.HTTPDeps{
		GRPCAddr:   grpcLis.Addr().String(),
		Gatherer:   tel.Registry,
		Registrars: h.gateways,
		Routes:     h.routes,
		Ready: func(ctx context.Context) error {
			if nc.Status() != nats.CONNECTED {
				return errors.New("nats not connected")
			}
			return pool.Ping(ctx)
		},
	})
	if err != nil {
		return err
	}
	httpSrv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}

	// Background work stops when bgCtx is cancelled, after the servers.
	bgCtx, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()
	var consumersWG, relayWG sync.WaitGroup
	errc := make(chan error, 4+len(h.workers)+len(h.consumers))
	runs, err := h.consumerRuns(spec.Name)
	if err != nil {
		return err
	}
	for i, run := range runs {
		consumersWG.Go(func() {
			if err := run(bgCtx); err != nil {
				errc <- fmt.Errorf("consumer %s: %w", h.consumers[i].Name, err)
			}
		})
	}
	for _, w := range h.workers {
		consumersWG.Go(func() {
			if err := w.run(bgCtx); err != nil && bgCtx.Err() == nil {
				errc <- fmt.Errorf("worker %s: %w", w.name, err)
			}
		})
	}
	relayCtx, stopRelay := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRelay()
	relayLease := lease.NewRunner(pool, RelayLease, lease.WithTTL(RelayLeaseTTL), lease.WithLogger(log), lease.WithRegisterer(tel.Registry, spec.Name))
	relayWG.Go(func() {
		err := relayLease.Run(relayCtx, func(ctx context.Context, _ lease.Lease) error { return relay.Run(ctx) })
		if err != nil {
			log.Error("outbox relay stopped", "err", err)
		}
	})
	if cfg.DebugAddr != "" {
		stopDebug, err := serveDebug(ctx, cfg.DebugAddr, log)
		if err != nil {
			return err
		}
		defer stopDebug()
	}
	go func() { errc <- srv.Serve(grpcLis) }()
	go func() {
		if err := httpSrv.Serve(httpLis); !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	healthSrv.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	log.Info("service started", "grpc", grpcLis.Addr().String(), "http", httpLis.Addr().String(), "schema", schema)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		log.Error("service failed", "err", runErr)
	}

	log.Info("shutting down")
	healthSrv.Shutdown()
	// Every step shares one deadline; a step that overruns it is cut short
	// (in-flight RPCs cancelled, consumers' unacked messages redelivered
	// later), so the process always exits within ShutdownTimeout or so.
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	_ = httpSrv.Shutdown(sctx)
	if !within(sctx, srv.GracefulStop) {
		log.Error("in-flight requests did not finish in time; stopping hard")
		srv.Stop()
	}
	stopBG()
	if !within(sctx, consumersWG.Wait) {
		log.Error("consumers or workers did not stop in time")
		runErr = errors.Join(runErr, errors.New("shutdown timed out"))
	}
	stopRelay()
	if !within(sctx, relayWG.Wait) {
		log.Error("outbox relay did not flush in time; the rows stay for the next start")
		runErr = errors.Join(runErr, errors.New("shutdown timed out"))
	}
	if err := nc.Drain(); err != nil {
		log.Warn("nats drain", "err", err)
	}
	log.Info("stopped")
	return runErr
}

// loadKeys builds the Sealer and the Hasher the service needs from cfg's
// key sets; a service gets nil for a key it does not use.
func loadKeys(need config.KeyNeeds, cfg config.Service) (*pii.Sealer, *pii.Hasher, error) {
	var sealer *pii.Sealer
	var hasher *pii.Hasher
	if need.Seal {
		keys, err := pii.ParseKeys(cfg.SealKeys)
		if err != nil {
			return nil, nil, fmt.Errorf("AID_SEAL_KEYS: %w", err)
		}
		if sealer, err = pii.NewSealer(keys...); err != nil {
			return nil, nil, fmt.Errorf("AID_SEAL_KEYS: %w", err)
		}
	}
	if need.Hash {
		keys, err := pii.ParseKeys(cfg.HashKeys)
		if err != nil {
			return nil, nil, fmt.Errorf("AID_HASH_KEYS: %w", err)
		}
		if hasher, err = pii.NewHasher(keys...); err != nil {
			return nil, nil, fmt.Errorf("AID_HASH_KEYS: %w", err)
		}
	}
	return sealer, hasher, nil
}

// within runs fn and reports whether it returned before ctx ended; if not,
// fn keeps running in the background.
func within(ctx context.Context, fn func()) bool {
	done := make(chan struct{})
	go func() { fn(); close(done) }()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// serveDebug serves net/http/pprof on addr, for profiling under load.
func serveDebug(ctx context.Context, addr string, log *slog.Logger) (stop func(), err error) {
	var lc net.ListenConfig
	lis, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen debug: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(lis) }()
	log.Info("profiles served", "debug", lis.Addr().String())
	return func() { _ = srv.Close() }, nil
}
