// Package stack brings up the whole system on one machine, for `make run`,
// the end-to-end tests and the load generator: PostgreSQL (the one named by
// DATABASE_URL, or a throwaway cluster), NATS JetStream (the one named by
// NATS_URL, or an embedded server), optionally Jaeger, the bank simulator,
// the services as separate processes and the gateway in front of them.
package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/internal/devtools/natsdev"
	"github.com/edubureau/studentaid/internal/devtools/pgroles"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/config"
	"github.com/edubureau/studentaid/pkg/natsx"
)

// Services are the services, in start order: the five of the chain, then
// the data office (data-comparison) and the statistics and annual report
// (reporting).
var Services = []string{"application", "school-review", "bureau-review", "finance-confirmation", "payout", "data-comparison", "reporting"}

// Options configure a stack.
type Options struct {
	// Dir holds the throwaway cluster, NATS store, keys and logs.
	Dir string
	// BinDir holds the built binaries: the five services and banksim.
	BinDir string
	// DatabaseURL of an existing server; empty starts a throwaway cluster.
	// Either way the stack creates a fresh database in it when FreshDatabase is set.
	DatabaseURL   string
	FreshDatabase bool
	// Replicas, when 2 or more, runs that many processes of every service
	// on the same database and NATS: the first is "<service>" (Endpoints
	// name it), the others "<service>-r2", "<service>-r3", … with ports of
	// their own (ReplicaEndpoints), competing for the same durable consumers
	// and leases.
	Replicas int
	// Standby, with no DatabaseURL, starts the throwaway cluster as a
	// primary with a synchronous streaming standby (StartReplicated) and
	// gives the services the multi-host URL of the pair; FailOver promotes
	// the standby and kills the primary.
	Standby bool
	// NATSURL of an existing server; empty starts one as a child process
	// (`devstack natsd`, from BinDir) with its store under Dir/nats.
	NATSURL string
	// NATSNodes, when 3 or more, starts a JetStream cluster of that many
	// nodes instead (processes "nats", "nats-2", …, stores under
	// Dir/nats, Dir/nats-2, …) with every stream replicated on all of them
	// (R3 for three); the services get every node's URL.
	NATSNodes int
	// JaegerBin, when set, starts Jaeger and exports traces to it.
	JaegerBin string
	// JaegerUIAssets is a Jaeger UI build folder served by Jaeger, if given.
	JaegerUIAssets string
	// EventStreamMaxBytes caps the event stream (0:
	// natsx.DevEventStreamMaxBytes; a soak sets it low to run with the
	// stream at its limit).
	EventStreamMaxBytes int64
	// JaegerMaxTraces bounds Jaeger's in-memory store (0:
	// DefaultJaegerMaxTraces); a soak sets it low so the store is full, and
	// its memory level, long before the soak's baseline.
	JaegerMaxTraces int
	// Env is added to every service's environment.
	Env map[string]string
	// GatewayEnv is added to the gateway's environment (AID_GATEWAY_RATE, …).
	GatewayEnv map[string]string
	// ConsoleEnv is added to the console's environment.
	ConsoleEnv map[string]string
	// BankEnv is added to the bank simulator's environment.
	BankEnv map[string]string
	// Logs receives every process's output; nil writes per-process files under Dir/logs.
	Logs io.Writer
	// PreferredPorts uses the documented default ports (services 9101-9105
	// and 8101-8105, bank 8600, Jaeger 16686 and 4317) where they are free,
	// so that `make run` matches the README; otherwise ports are picked free.
	PreferredPorts bool
}

// defaultPorts are the documented ports of `make run`, by process.
var defaultPorts = map[string][2]int{
	"application": {9101, 8101}, "school-review": {9102, 8102}, "bureau-review": {9103, 8103},
	"finance-confirmation": {9104, 8104}, "payout": {9105, 8105}, "data-comparison": {9106, 8106},
	"reporting": {9107, 8107},
}

// port returns preferred if the stack prefers it and it is free, else a free
// port, never one it handed out before: the processes bind their ports only
// when they start, so the kernel may offer a port twice meanwhile.
func (s *Stack) port(ctx context.Context, preferred int) (int, error) {
	if s.opts.PreferredPorts && preferred > 0 && !s.handedOut[preferred] {
		var lc net.ListenConfig
		if l, err := lc.Listen(ctx, "tcp", "127.0.0.1:"+strconv.Itoa(preferred)); err == nil {
			_ = l.Close() // the listen showed the port free; closing hands it on
			s.handedOut[preferred] = true
			return preferred, nil
		}
	}
	for {
		p, err := FreePort(ctx)
		if err != nil || !s.handedOut[p] {
			s.handedOut[p] = true
			return p, err
		}
	}
}

// Endpoint is where a service listens.
type Endpoint struct {
	GRPC string
	HTTP string
}

// Stack is a running system.
type Stack struct {
	opts Options
	// DatabaseURL logs in as the superuser; the services log in as their own
	// roles (ServiceDatabaseURL), the migrate steps as the owner
	// (OwnerDatabaseURL).
	DatabaseURL string
	NATSURL     string
	// JaegerQuery is Jaeger's HTTP query address (http://host:port), if started.
	JaegerQuery string
	OTLP        string
	BankURL     string
	// Gateway is the one entry point of the public API (host:port): REST
	// and gRPC (h2c) of every service, rate-limited per organisation.
	Gateway string
	// Console is the web console's address (host:port), in front of the
	// gateway, with the development sign-in.
	Console   string
	Endpoints map[string]Endpoint
	// ReplicaEndpoints are the second and later replicas' (Options.Replicas).
	ReplicaEndpoints map[string][]Endpoint
	Signer           *auth.Signer
	KeyDir           string
	// NATSKeyDir holds one NKey seed file per NATS identity
	// (natsdev.SeedFile); NATSKeys are those seeds.
	NATSKeyDir string
	NATSKeys   natsdev.Keys

	pg    *Postgres
	roles pgroles.Roles
	nats  *Process
	// standby is the synchronous standby of pg (Options.Standby).
	standby *Postgres
	// natsPeers are the other nodes of a NATS cluster (Options.NATSNodes).
	natsPeers []*Process
	mu        sync.Mutex
	procs     map[string]*Process
	// handedOut are the ports port has given out.
	handedOut map[int]bool
	jaeger    *Process
	bank      *Process
	gateway   *Process
	console   *Process
}

// Start brings the system up. On error, whatever was started is stopped.
func Start(ctx context.Context, opts Options) (_ *Stack, err error) {
	s := &Stack{opts: opts, procs: map[string]*Process{}, Endpoints: map[string]Endpoint{}, ReplicaEndpoints: map[string][]Endpoint{}, handedOut: map[int]bool{}}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	if err := os.MkdirAll(filepath.Join(opts.Dir, "logs"), 0o755); err != nil {
		return nil, err
	}
	if err := s.keys(); err != nil {
		return nil, err
	}

	if err := s.startDatabase(ctx); err != nil {
		return nil, err
	}

	if s.roles, err = pgroles.Provision(ctx, s.DatabaseURL, append(slices.Clone(Services), "console")); err != nil {
		return nil, err
	}

	// Every identity's NKey: the embedded server admits these users only,
	// and each service gets its own seed. An external server (NATS_URL)
	// must be configured with the same keys (docs/operations.md).
	s.NATSKeyDir = filepath.Join(opts.Dir, "nats-keys")
	if s.NATSKeys, err = natsdev.LoadOrCreateKeys(s.NATSKeyDir); err != nil {
		return nil, err
	}
	s.NATSURL = opts.NATSURL
	if s.NATSURL == "" && opts.NATSNodes >= 3 {
		if err := s.startNATSCluster(ctx, opts.NATSNodes); err != nil {
			return nil, err
		}
	}
	if s.NATSURL == "" {
		port, err := FreePort(ctx)
		if err != nil {
			return nil, err
		}
		monitor, err := FreePort(ctx)
		if err != nil {
			return nil, err
		}
		s.nats = s.newProcess("nats", filepath.Join(opts.BinDir, "devstack"), nil, fmt.Sprintf("http://127.0.0.1:%d/healthz?js-enabled-only=true", monitor))
		s.nats.Args = []string{"natsd", filepath.Join(opts.Dir, "nats"), strconv.Itoa(port), strconv.Itoa(monitor), s.NATSKeyDir}
		if err := s.nats.Start(ctx); err != nil {
			return nil, err
		}
		s.NATSURL = fmt.Sprintf("nats://127.0.0.1:%d", port)
	}
	if err := s.setupNATS(ctx); err != nil {
		return nil, err
	}

	if opts.JaegerBin != "" {
		if err := s.startJaeger(ctx); err != nil {
			return nil, err
		}
	}

	bankPort, err := s.port(ctx, 8600)
	if err != nil {
		return nil, err
	}
	s.BankURL = "http://127.0.0.1:" + strconv.Itoa(bankPort)
	bankEnv := map[string]string{"BANKSIM_ADDR": "127.0.0.1:" + strconv.Itoa(bankPort), "DATABASE_URL": s.DatabaseURL}
	maps.Copy(bankEnv, opts.BankEnv)
	s.bank = s.newProcess("banksim", filepath.Join(opts.BinDir, "banksim"), bankEnv, s.BankURL+"/healthz")
	if err := s.bank.Start(ctx); err != nil {
		return nil, err
	}

	for _, name := range Services {
		gp, err := s.port(ctx, defaultPorts[name][0])
		if err != nil {
			return nil, err
		}
		hp, err := s.port(ctx, defaultPorts[name][1])
		if err != nil {
			return nil, err
		}
		ep := Endpoint{GRPC: "127.0.0.1:" + strconv.Itoa(gp), HTTP: "127.0.0.1:" + strconv.Itoa(hp)}
		s.Endpoints[name] = ep
		p := s.newProcess(name, filepath.Join(opts.BinDir, name), s.serviceEnv(name, ep), "http://"+ep.HTTP+"/readyz")
		s.procs[name] = p
	}
	// Services migrate and start in parallel: each migrates its own schema
	// as the owner, then runs under its own role.
	errc := make(chan error, len(Services))
	for _, name := range Services {
		go func() {
			if err := s.migrate(ctx, name); err != nil {
				errc <- err
				return
			}
			errc <- s.procs[name].Start(ctx)
		}()
	}
	var errs []error
	for range Services {
		errs = append(errs, <-errc)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := s.startReplicas(ctx); err != nil {
		return nil, err
	}
	if err := s.startGateway(ctx); err != nil {
		return nil, err
	}
	if err := s.startConsole(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// startConsole migrates the console's schema and runs it (its development
// sign-in on) against the gateway, minting its users' call tokens with the
// development key.
func (s *Stack) startConsole(ctx context.Context) error {
	if err := s.migrate(ctx, "console"); err != nil {
		return err
	}
	port, err := s.port(ctx, 8090)
	if err != nil {
		return err
	}
	s.Console = "127.0.0.1:" + strconv.Itoa(port)
	env := map[string]string{
		"CONSOLE_ADDR":          s.Console,
		"DATABASE_URL":          s.roles.ServiceURL("console"),
		"AID_CONSOLE_TOKEN_KEY": filepath.Join(s.KeyDir, "auth.pem"),
		"AID_CONSOLE_API_GRPC":  s.Gateway,
		"AID_CONSOLE_API_BASE":  "http://" + s.Gateway,
		"OTEL_SERVICE_NAME":     "console",
	}
	if s.JaegerQuery != "" {
		env["AID_JAEGER_UI"] = s.JaegerQuery
	}
	if s.OTLP != "" {
		env["OTEL_EXPORTER_OTLP_ENDPOINT"] = s.OTLP
		env["OTEL_EXPORTER_OTLP_INSECURE"] = "true"
		env["OTEL_BSP_SCHEDULE_DELAY"] = "500"
	}
	maps.Copy(env, s.opts.ConsoleEnv)
	s.console = s.newProcess("console", filepath.Join(s.opts.BinDir, "console"), env, "http://"+s.Console+"/readyz")
	return s.console.Start(ctx)
}

// startReplicas starts the second and later replicas of every service
// (Options.Replicas), after the first ones migrated their schemas.
func (s *Stack) startReplicas(ctx context.Context) error {
	var procs []*Process
	for _, name := range Services {
		for r := 2; r <= s.opts.Replicas; r++ {
			gp, err := s.port(ctx, 0)
			if err != nil {
				return err
			}
			hp, err := s.port(ctx, 0)
			if err != nil {
				return err
			}
			ep := Endpoint{GRPC: "127.0.0.1:" + strconv.Itoa(gp), HTTP: "127.0.0.1:" + strconv.Itoa(hp)}
			rname := replicaName(name, r)
			p := s.newProcess(rname, filepath.Join(s.opts.BinDir, name), s.serviceEnv(name, ep), "http://"+ep.HTTP+"/readyz")
			s.mu.Lock()
			s.procs[rname] = p
			s.ReplicaEndpoints[name] = append(s.ReplicaEndpoints[name], ep)
			s.mu.Unlock()
			procs = append(procs, p)
		}
	}
	errs := make([]error, len(procs))
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Go(func() { errs[i] = p.Start(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// startGateway runs the entry point (cmd/gateway) in front of the services.
func (s *Stack) startGateway(ctx context.Context) error {
	port, err := s.port(ctx, 8080)
	if err != nil {
		return err
	}
	s.Gateway = "127.0.0.1:" + strconv.Itoa(port)
	env := map[string]string{
		"AID_GATEWAY_ADDR":     s.Gateway,
		"AID_AUTH_PUBLIC_KEYS": filepath.Join(s.KeyDir, "auth.pub.pem"),
	}
	for name, ep := range s.Endpoints {
		env[envPrefix(name)+"GRPC_UPSTREAM"] = ep.GRPC
		env[envPrefix(name)+"HTTP_UPSTREAM"] = ep.HTTP
	}
	maps.Copy(env, s.opts.GatewayEnv)
	s.gateway = s.newProcess("gateway", filepath.Join(s.opts.BinDir, "gateway"), env, "http://"+s.Gateway+"/readyz")
	return s.gateway.Start(ctx)
}

func (s *Stack) serviceEnv(name string, ep Endpoint) map[string]string {
	prefix := envPrefix(name)
	env := map[string]string{
		prefix + "GRPC_ADDR":      ep.GRPC,
		prefix + "HTTP_ADDR":      ep.HTTP,
		"DATABASE_URL":            s.roles.ServiceURL(name),
		"NATS_URL":                s.NATSURL,
		"AID_NATS_NKEY_SEED_FILE": natsdev.SeedFile(s.NATSKeyDir, name),
		"AID_AUTH_PUBLIC_KEYS":    filepath.Join(s.KeyDir, "auth.pub.pem"),
		"PAYOUT_BANK_URL":         s.BankURL,
		"OTEL_SERVICE_NAME":       name,
	}
	// Only the services that use a key get it (config.KeyNeeds).
	switch name {
	case "application":
		env["AID_SEAL_KEYS"], env["AID_HASH_KEYS"] = config.DevSealKeys, config.DevHashKeys
	case "finance-confirmation":
		env["AID_FINANCE_SIGNING_KEYS"] = config.DevFinanceSigningKeys
	case "payout":
		env["AID_SEAL_KEYS"], env["AID_FINANCE_VERIFY_KEYS"] = config.DevSealKeys, config.DevFinanceVerifyKeys
	case "data-comparison":
		env["AID_HASH_KEYS"] = config.DevHashKeys
	}
	if s.OTLP != "" {
		env["OTEL_EXPORTER_OTLP_ENDPOINT"] = s.OTLP
		env["OTEL_EXPORTER_OTLP_INSECURE"] = "true"
		env["OTEL_BSP_SCHEDULE_DELAY"] = "500"
	}
	maps.Copy(env, s.opts.Env)
	return env
}

// setupNATS creates the streams as the admin identity: the privileged setup
// step that `aidctl nats-setup` is in production. The services may only
// check that the streams exist.
func (s *Stack) setupNATS(ctx context.Context) error {
	nc, js, err := natsx.Connect(s.NATSURL, "devstack", natsx.WithNKeySeed(s.NATSKeys.Seed(natsx.AdminIdentity)))
	if err != nil {
		return err
	}
	defer nc.Close()
	capped := s.opts.EventStreamMaxBytes
	if capped <= 0 {
		capped = natsx.DevEventStreamMaxBytes
	}
	return natsx.EnsureStreamsWith(ctx, js, natsx.StreamSetup{Replicas: len(s.natsPeers) + 1, EventMaxBytes: capped})
}

// startDatabase sets DatabaseURL: the given server's, or a throwaway
// cluster's (with a standby when asked), in a fresh database when asked.
func (s *Stack) startDatabase(ctx context.Context) error {
	opts := s.opts
	var err error
	s.DatabaseURL = opts.DatabaseURL
	switch {
	case s.DatabaseURL == "" && opts.Standby:
		if s.pg, s.standby, s.DatabaseURL, err = StartReplicated(ctx, filepath.Join(opts.Dir, "pg")); err != nil {
			return err
		}
	case s.DatabaseURL == "":
		if s.pg, err = StartPostgres(ctx, filepath.Join(opts.Dir, "pg")); err != nil {
			return err
		}
		s.DatabaseURL = s.pg.URL
	}
	if opts.FreshDatabase {
		if s.DatabaseURL, err = freshDatabase(ctx, s.DatabaseURL); err != nil {
			return err
		}
	}
	return nil
}

// startNATSCluster starts n `devstack natsd` nodes routed to each other on
// loopback, and sets NATSURL to all of their client URLs.
func (s *Stack) startNATSCluster(ctx context.Context, n int) error {
	type node struct{ client, monitor, cluster int }
	nodes := make([]node, n)
	clusterPorts := make([]string, n)
	for i := range nodes {
		for _, p := range []*int{&nodes[i].client, &nodes[i].monitor, &nodes[i].cluster} {
			port, err := FreePort(ctx)
			if err != nil {
				return err
			}
			*p = port
		}
		clusterPorts[i] = strconv.Itoa(nodes[i].cluster)
	}
	urls := make([]string, n)
	procs := make([]*Process, n)
	for i, nd := range nodes {
		name := "nats"
		if i > 0 {
			name = fmt.Sprintf("nats-%d", i+1)
		}
		p := s.newProcess(name, filepath.Join(s.opts.BinDir, "devstack"), nil, fmt.Sprintf("http://127.0.0.1:%d/healthz?js-enabled-only=true", nd.monitor))
		p.Args = []string{"natsd", filepath.Join(s.opts.Dir, name), strconv.Itoa(nd.client), strconv.Itoa(nd.monitor), s.NATSKeyDir,
			name, strconv.Itoa(nd.cluster), strings.Join(clusterPorts, ",")}
		procs[i] = p
		urls[i] = fmt.Sprintf("nats://127.0.0.1:%d", nd.client)
	}
	// Started together: a node's JetStream waits for a quorum of its peers.
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Go(func() { errs[i] = p.Start(ctx) })
	}
	wg.Wait()
	s.nats, s.natsPeers = procs[0], procs[1:]
	if err := errors.Join(errs...); err != nil {
		return err
	}
	s.NATSURL = strings.Join(urls, ",")
	return nil
}

// NATSSeed returns the NKey seed of a NATS identity (a service name,
// natsx.AdminIdentity or natsx.LoadgenIdentity).
func (s *Stack) NATSSeed(identity string) string { return s.NATSKeys.Seed(identity) }

// migrate runs `<service> migrate` as the schemas' owner.
func (s *Stack) migrate(ctx context.Context, name string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(s.opts.BinDir, name), "migrate")
	cmd.Env = append(os.Environ(), "AID_MIGRATE_DATABASE_URL="+s.roles.OwnerURL(), envPrefix(name)+"DB_ROLE="+config.DefaultDBRole(name))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s migrate: %w: %s", name, err, out)
	}
	return nil
}

// OwnerDatabaseURL logs in as the role that owns the services' schemas and
// runs their migrations.
func (s *Stack) OwnerDatabaseURL() string { return s.roles.OwnerURL() }

// ServiceDatabaseURL logs in as the named service's own role, as the service
// does: rows of its schema only, no DDL, the trail and audit log append-only.
func (s *Stack) ServiceDatabaseURL(name string) string { return s.roles.ServiceURL(name) }

func envPrefix(name string) string {
	b := []byte(name)
	for i, c := range b {
		switch {
		case c == '-':
			b[i] = '_'
		case c >= 'a' && c <= 'z':
			b[i] = c - 32
		}
	}
	return string(b) + "_"
}

// keys creates (once) the development signing key under Dir/keys.
func (s *Stack) keys() error {
	s.KeyDir = filepath.Join(s.opts.Dir, "keys")
	priv := filepath.Join(s.KeyDir, "auth.pem")
	pub := filepath.Join(s.KeyDir, "auth.pub.pem")
	if _, err := os.Stat(priv); os.IsNotExist(err) {
		if err := os.MkdirAll(s.KeyDir, 0o700); err != nil {
			return err
		}
		pk, sk, err := auth.GenerateKey()
		if err != nil {
			return err
		}
		if err := auth.WriteKeyPair(priv, pub, pk, sk); err != nil {
			return err
		}
	}
	sk, err := auth.LoadPrivateKey(priv)
	if err != nil {
		return err
	}
	s.Signer = auth.NewSigner(sk, config.DevAuthIssuer, "studentaid")
	return nil
}

// Token mints a development token.
func (s *Stack) Token(user string, role auth.Role, org string) (string, error) {
	return s.Signer.Mint(auth.Identity{UserID: user, Role: role, Org: org}, 12*time.Hour)
}

// ProcessNames names the processes Process finds: every replica of every
// service in Services' order (the second and later "<service>-r2", …),
// the bank simulator and every NATS node.
func (s *Stack) ProcessNames() []string {
	var out []string
	for _, name := range Services {
		out = append(out, name)
		for r := 2; r <= s.opts.Replicas; r++ {
			out = append(out, replicaName(name, r))
		}
	}
	out = append(out, "banksim", "nats")
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.natsPeers {
		out = append(out, p.Name)
	}
	return out
}

// replicaName is the r-th replica's name (r ≥ 2) of a service.
func replicaName(service string, r int) string { return fmt.Sprintf("%s-r%d", service, r) }

// Process returns a service's process.
func (s *Stack) Process(name string) *Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch name {
	case "banksim":
		return s.bank
	case "nats":
		return s.nats
	case "gateway":
		return s.gateway
	case "console":
		return s.console
	}
	for _, p := range s.natsPeers {
		if p.Name == name {
			return p
		}
	}
	return s.procs[name]
}

// FailOver promotes the standby (Options.Standby) and kills the old
// primary at once: the services' multi-host URL finds the new primary when
// they reconnect.
func (s *Stack) FailOver(ctx context.Context) error {
	if s.standby == nil {
		return errors.New("no standby: start the stack with Options.Standby")
	}
	if err := s.standby.Promote(ctx); err != nil {
		return err
	}
	if err := s.pg.Kill(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// The promoted standby is the cluster now; the old primary's files stay.
	s.pg, s.standby = s.standby, nil
	return nil
}

// Postgres returns the throwaway cluster, or nil when DATABASE_URL was given.
func (s *Stack) Postgres() *Postgres { return s.pg }

// RestartNATS kills the NATS server (SIGKILL: acknowledged writes must
// survive, since every write is fsynced) and starts it again on the same port
// and store. It fails when NATS_URL pointed elsewhere.
func (s *Stack) RestartNATS(ctx context.Context) error {
	if s.nats == nil {
		return errors.New("NATS is external; cannot restart it")
	}
	s.nats.Kill()
	return s.nats.Start(ctx)
}

// Stop stops the services (SIGTERM, then SIGKILL after a grace period), the
// bank, Jaeger, NATS and the throwaway cluster.
func (s *Stack) Stop() {
	if s.console != nil {
		_ = s.console.Stop(10 * time.Second)
	}
	if s.gateway != nil {
		_ = s.gateway.Stop(20 * time.Second)
	}
	var wg sync.WaitGroup
	for _, p := range s.procs {
		wg.Go(func() { ; _ = p.Stop(20 * time.Second) })
	}
	wg.Wait()
	if s.bank != nil {
		_ = s.bank.Stop(10 * time.Second)
	}
	if s.jaeger != nil {
		_ = s.jaeger.Stop(5 * time.Second)
	}
	for _, p := range s.natsPeers {
		_ = p.Stop(10 * time.Second)
	}
	if s.nats != nil {
		_ = s.nats.Stop(10 * time.Second)
	}
	if s.pg != nil {
		_ = s.pg.Stop()
	}
	if s.standby != nil {
		_ = s.standby.Stop()
	}
}

func (s *Stack) newProcess(name, bin string, env map[string]string, readyURL string) *Process {
	return &Process{Name: name, Bin: bin, Env: env, ReadyURL: readyURL, logs: s.opts.Logs, logDir: filepath.Join(s.opts.Dir, "logs")}
}

// Process is one child process of the stack.
type Process struct {
	Name     string
	Bin      string
	Args     []string
	Env      map[string]string
	ReadyURL string

	logs    io.Writer
	logDir  string
	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	exitErr error
}

// ExitErr is the error of the process's last exit (nil for status 0).
func (p *Process) ExitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exitErr
}

// Start launches the process and waits until ReadyURL answers 200.
func (p *Process) Start(ctx context.Context) error {
	p.mu.Lock()
	// The process outlives ctx, which bounds only the start: Stop and Kill
	// end it, in the stack's order.
	cmd := exec.CommandContext(context.WithoutCancel(ctx), p.Bin, p.Args...)
	cmd.Env = os.Environ()
	for k, v := range p.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out := p.logs
	if out == nil {
		f, err := os.OpenFile(filepath.Join(p.logDir, p.Name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			p.mu.Unlock()
			return err
		}
		out = f
	}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group (a Ctrl-C reaches only the stack, which stops
	// the children in order), and killed if the stack dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		p.mu.Unlock()
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.exitErr = err
		p.mu.Unlock()
		close(done)
	}()
	if p.ReadyURL == "" {
		return nil
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("%s exited during start (see its log in %s)", p.Name, p.logDir)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if p.answersReady(ctx) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready within 60s", p.Name)
}

// answersReady reports whether ReadyURL answers 200.
func (p *Process) answersReady(ctx context.Context) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.ReadyURL, http.NoBody)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close() // only the status matters
	return resp.StatusCode == http.StatusOK
}

// Kill sends SIGKILL and waits for the process to die.
func (p *Process) Kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// Stop sends SIGTERM and waits up to grace before SIGKILL. It reports
// whether the process had to be killed.
func (p *Process) Stop(grace time.Duration) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return nil
	case <-time.After(grace):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
		return fmt.Errorf("%s did not stop within %s; killed", p.Name, grace)
	}
}

// Running reports whether the process is alive.
func (p *Process) Running() bool {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// Pid returns the process ID, 0 if not running.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// FreePort returns a TCP port free on 127.0.0.1 at the time of the call.
func FreePort(ctx context.Context) (int, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, fmt.Errorf("listener on %s is not TCP", l.Addr())
	}
	return addr.Port, nil
}

func freshDatabase(ctx context.Context, base string) (string, error) {
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", fmt.Errorf("connect %s: %w", "database", err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	if _, err := io.ReadFull(randReader, b[:]); err != nil {
		return "", err
	}
	name := fmt.Sprintf("aid_%x", b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", err
	}
	cfg := conn.Config()
	return fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable", cfg.User, net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))), name), nil
}
