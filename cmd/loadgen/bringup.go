package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/edubureau/studentaid/cmd/loadgen/internal/driver"
	"github.com/edubureau/studentaid/internal/devtools/stack"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/natsx"
)

// defaultEndpoints are the services' default ports (docs/architecture.md).
const defaultEndpoints = "application=127.0.0.1:9101/127.0.0.1:8101," +
	"school-review=127.0.0.1:9102/127.0.0.1:8102," +
	"bureau-review=127.0.0.1:9103/127.0.0.1:8103," +
	"finance-confirmation=127.0.0.1:9104/127.0.0.1:8104," +
	"payout=127.0.0.1:9105/127.0.0.1:8105," +
	"data-comparison=127.0.0.1:9106/127.0.0.1:8106," +
	"reporting=127.0.0.1:9107/127.0.0.1:8107"

// bringUp is the first phase: the stack (started, or the running one
// described), clients of its APIs, the load's users, the recorder and the
// outbox backlog probe.
func bringUp(ctx context.Context, c config, logf func(string, ...any)) (_ *load, err error) {
	gen, err := driver.NewGenerator(driver.GeneratorConfig{Schools: c.Schools, Term: c.Term, Program: c.Program, Seed: c.Seed})
	if err != nil {
		return nil, err
	}
	sys, err := startSystem(ctx, c, logf)
	if err != nil {
		return nil, err
	}
	l := &load{c: c, logf: logf, sys: sys, gen: gen}
	defer func() {
		if err != nil {
			l.close()
		}
	}()
	if l.clients, err = driver.Dial(sys.endpoints, sys.tokens); err != nil {
		return nil, err
	}
	if l.who, err = newActors(l.clients, gen.SchoolCodes()); err != nil {
		return nil, err
	}
	l.res = &result{
		Started:  time.Now().UTC(),
		Config:   c,
		Machine:  readMachine(),
		Sampling: sys.sampling,
	}
	l.rec = driver.NewRecorder(c.N)
	services := map[string]string{}
	for _, name := range stack.Services {
		services[name] = sys.endpoints[name].HTTP
	}
	l.probe = &driver.BacklogProbe{Services: services, HTTP: l.clients.HTTPClient(), Poll: 100 * time.Millisecond}
	if sys.databaseURL != "" {
		if l.countPool, err = db.Connect(ctx, sys.databaseURL, db.Options{MaxConns: 2}); err != nil {
			return nil, err
		}
		l.probe.Exact = exactBacklog(l.countPool)
		l.res.BacklogSource = "unpublished outbox rows counted in each service's schema (the aid_outbox_backlog gauges are scraped too)"
	} else {
		l.res.BacklogSource = "aid_outbox_backlog gauges at /metrics (refreshed only while a relay idles)"
	}
	if _, err := l.probe.Once(ctx); err != nil {
		logf("warning: outbox backlog metric: %v", err)
	}
	return l, nil
}

// close stops what bringUp started, last first.
func (l *load) close() {
	if l.countPool != nil {
		l.countPool.Close()
	}
	if l.clients != nil {
		_ = l.clients.Close()
	}
	l.sys.stop()
}

// system is the stack under load and what to measure in it.
type system struct {
	endpoints map[string]stack.Endpoint
	tokens    driver.TokenSource
	groups    []driver.ProcessGroup
	sampling  string
	// databaseURL and natsURL are set when loadgen started the stack.
	databaseURL string
	natsURL     string
	// natsSeed is the load generator's own NATS identity's seed.
	natsSeed string
	stop     func()
}

// startSystem starts the stack, or describes the running one.
func startSystem(ctx context.Context, c config, logf func(string, ...any)) (*system, error) {
	if !c.Start {
		eps, err := parseEndpoints(c.Endpoints)
		if err != nil {
			return nil, err
		}
		tokens, err := driver.LoadSignerTokens(c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("-key: %w", err)
		}
		groups, err := parsePIDs(c.PIDs)
		if err != nil {
			return nil, err
		}
		groups = append(groups, driver.ProcessGroup{Name: "loadgen", Pid: os.Getpid(), Tool: true})
		return &system{endpoints: eps, tokens: tokens, groups: groups, sampling: "as configured by the running stack", stop: func() {}}, nil
	}

	dir := c.Dir
	removeDir := false
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "loadgen-"); err != nil {
			return nil, err
		}
		removeDir = !c.Keep
	}
	dir, _ = filepath.Abs(dir)
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return nil, err
	}
	jaeger := c.JaegerBin
	if jaeger != "" {
		if _, err := os.Stat(jaeger); err != nil {
			logf("no Jaeger binary at %s (make jaeger); traces are not exported", jaeger)
			jaeger = ""
		} else {
			jaeger, _ = filepath.Abs(jaeger)
		}
	}
	ratio := strconv.FormatFloat(c.SampleRatio, 'f', -1, 64)
	opts := stack.Options{
		Dir:                 dir,
		BinDir:              c.BinDir,
		JaegerBin:           jaeger,
		JaegerMaxTraces:     c.JaegerMaxTraces,
		EventStreamMaxBytes: c.StreamMaxMiB << 20,
		Env: map[string]string{
			"SCHOOL_REVIEW_NOTICE_PERIOD": c.Notice,
			"OTEL_TRACES_SAMPLER":         "parentbased_traceidratio",
			"OTEL_TRACES_SAMPLER_ARG":     ratio,
			"LOG_LEVEL":                   c.LogLevel,
		},
		BankEnv:   map[string]string{"BANKSIM_LATENCY": "0s"},
		Replicas:  c.Replicas,
		NATSNodes: c.NATSNodes,
	}
	logf("starting the stack in %s (PostgreSQL fsync on, NATS SyncAlways, notice period %s, bank latency 0, sampling %s)…", dir, c.Notice, ratio)
	started := time.Now()
	s, err := stack.Start(ctx, opts)
	if err != nil {
		return nil, err
	}
	logf("stack up in %s", time.Since(started).Round(time.Millisecond))
	sys := &system{endpoints: s.Endpoints, tokens: s, databaseURL: s.DatabaseURL, natsURL: s.NATSURL, natsSeed: s.NATSSeed(natsx.LoadgenIdentity)}
	for _, name := range s.ProcessNames() {
		if p := s.Process(name); p != nil && p.Pid() != 0 {
			sys.groups = append(sys.groups, driver.ProcessGroup{Name: name, Pid: p.Pid(), Tool: name == "banksim"})
		}
	}
	if pg := s.Postgres(); pg != nil {
		if pid, err := driver.PostmasterPID(pg.Dir); err == nil {
			sys.groups = append(sys.groups, driver.ProcessGroup{Name: "postgres", Pid: pid, WithChildren: true})
		}
	}
	if jaeger != "" {
		for _, pid := range driver.Children(os.Getpid()) {
			if p, err := driver.ReadProc(pid); err == nil && p.Comm == "jaeger" {
				sys.groups = append(sys.groups, driver.ProcessGroup{Name: "jaeger", Pid: pid, Tool: true})
			}
		}
	}
	sys.groups = append(sys.groups, driver.ProcessGroup{Name: "loadgen", Pid: os.Getpid(), Tool: true})
	sys.sampling = "parentbased_traceidratio " + ratio
	if jaeger == "" {
		sys.sampling += " (no Jaeger: spans sampled but not exported)"
	} else {
		sys.sampling += ", exported to Jaeger (OTLP)"
	}
	sys.stop = func() {
		logf("stopping the stack…")
		s.Stop()
		if removeDir {
			_ = os.RemoveAll(dir)
		} else {
			logf("stack directory kept: %s", dir)
		}
	}
	return sys, nil
}

func parseEndpoints(s string) (map[string]stack.Endpoint, error) {
	eps := map[string]stack.Endpoint{}
	for part := range strings.SplitSeq(s, ",") {
		name, addrs, ok := strings.Cut(strings.TrimSpace(part), "=")
		grpcAddr, httpAddr, ok2 := strings.Cut(addrs, "/")
		if !ok || !ok2 || grpcAddr == "" || httpAddr == "" {
			return nil, fmt.Errorf("-endpoints: %q is not name=grpc-addr/http-addr", part)
		}
		eps[name] = stack.Endpoint{GRPC: grpcAddr, HTTP: httpAddr}
	}
	for _, name := range stack.Services {
		if _, ok := eps[name]; !ok {
			return nil, fmt.Errorf("-endpoints: no entry for %s", name)
		}
	}
	return eps, nil
}

func parsePIDs(s string) ([]driver.ProcessGroup, error) {
	var out []driver.ProcessGroup
	if s == "" {
		return nil, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		name, p, ok := strings.Cut(strings.TrimSpace(part), "=")
		pid, err := strconv.Atoi(p)
		if !ok || err != nil || pid <= 0 {
			return nil, fmt.Errorf("-pids: %q is not name=pid", part)
		}
		out = append(out, driver.ProcessGroup{Name: name, Pid: pid, WithChildren: name == "postgres", Tool: name == "banksim" || name == "jaeger"})
	}
	return out, nil
}

// actors are the load's users.
type actors struct {
	officers []*driver.Officer
	school   []*driver.SchoolReviewer
	bureau   *driver.BureauReviewer
	finance  *driver.FinanceOfficer
	closer   *driver.FinanceOfficer
	auditor  *driver.Auditor
}

func newActors(cl *driver.Clients, schools []string) (*actors, error) {
	a := &actors{}
	for _, code := range schools {
		o, err := cl.Officer(code)
		if err != nil {
			return nil, err
		}
		r, err := cl.SchoolReviewer(code)
		if err != nil {
			return nil, err
		}
		a.officers = append(a.officers, o)
		a.school = append(a.school, r)
	}
	var err error
	if a.bureau, err = cl.BureauReviewer(driver.BureauUser); err != nil {
		return nil, err
	}
	if a.finance, err = cl.FinanceOfficer(driver.FinanceUser); err != nil {
		return nil, err
	}
	if a.closer, err = cl.FinanceOfficer(driver.FinanceCloserUser); err != nil {
		return nil, err
	}
	if a.auditor, err = cl.Auditor(driver.AuditorUser); err != nil {
		return nil, err
	}
	return a, nil
}
