package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/edubureau/studentaid/cmd/loadgen/internal/driver"
	"github.com/edubureau/studentaid/internal/devtools/stack"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/natsx"
	financev1 "github.com/edubureau/studentaid/proto/gen/aid/finance/v1"
)

// defaultEndpoints are the services' default ports (docs/architecture.md).
const defaultEndpoints = "application=127.0.0.1:9101/127.0.0.1:8101," +
	"school-review=127.0.0.1:9102/127.0.0.1:8102," +
	"bureau-review=127.0.0.1:9103/127.0.0.1:8103," +
	"finance-confirmation=127.0.0.1:9104/127.0.0.1:8104," +
	"payout=127.0.0.1:9105/127.0.0.1:8105"

// system is the stack under load and what to measure in it.
type system struct {
	endpoints map[string]stack.Endpoint
	tokens    driver.TokenSource
	groups    []driver.ProcessGroup
	sampling  string
	// databaseURL and natsURL are set when loadgen started the stack.
	databaseURL string
	natsURL     string
	stop        func()
}

// bringUp starts the stack, or describes the running one.
func bringUp(ctx context.Context, c config, logf func(string, ...any)) (*system, error) {
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
		groups = append(groups, driver.ProcessGroup{Name: "loadgen", Pid: os.Getpid()})
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
		Dir:       dir,
		BinDir:    c.BinDir,
		JaegerBin: jaeger,
		Env: map[string]string{
			"SCHOOL_REVIEW_NOTICE_PERIOD": c.Notice,
			"OTEL_TRACES_SAMPLER":         "parentbased_traceidratio",
			"OTEL_TRACES_SAMPLER_ARG":     ratio,
			"LOG_LEVEL":                   c.LogLevel,
		},
		BankEnv: map[string]string{"BANKSIM_LATENCY": "0s"},
	}
	logf("starting the stack in %s (PostgreSQL fsync on, NATS SyncAlways, notice period %s, bank latency 0, sampling %s)…", dir, c.Notice, ratio)
	started := time.Now()
	s, err := stack.Start(ctx, opts)
	if err != nil {
		return nil, err
	}
	logf("stack up in %s", time.Since(started).Round(time.Millisecond))
	sys := &system{endpoints: s.Endpoints, tokens: s, databaseURL: s.DatabaseURL, natsURL: s.NATSURL}
	for _, name := range append(append([]string{}, stack.Services...), "banksim", "nats") {
		if p := s.Process(name); p != nil && p.Pid() != 0 {
			sys.groups = append(sys.groups, driver.ProcessGroup{Name: name, Pid: p.Pid()})
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
				sys.groups = append(sys.groups, driver.ProcessGroup{Name: "jaeger", Pid: pid})
			}
		}
	}
	sys.groups = append(sys.groups, driver.ProcessGroup{Name: "loadgen", Pid: os.Getpid()})
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
	for _, part := range strings.Split(s, ",") {
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
	for _, part := range strings.Split(s, ",") {
		name, p, ok := strings.Cut(strings.TrimSpace(part), "=")
		pid, err := strconv.Atoi(p)
		if !ok || err != nil || pid <= 0 {
			return nil, fmt.Errorf("-pids: %q is not name=pid", part)
		}
		out = append(out, driver.ProcessGroup{Name: name, Pid: pid, WithChildren: name == "postgres"})
	}
	return out, nil
}

// actors are the load's users.
type actors struct {
	officers []*driver.Officer
	school   []*driver.SchoolReviewer
	bureau   *driver.BureauReviewer
	finance  *driver.FinanceOfficer
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
	if a.auditor, err = cl.Auditor(driver.AuditorUser); err != nil {
		return nil, err
	}
	return a, nil
}

func run(ctx context.Context, c config) error {
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
	}
	gen, err := driver.NewGenerator(driver.GeneratorConfig{Schools: c.Schools, Term: c.Term, Program: c.Program, Seed: c.Seed})
	if err != nil {
		return err
	}
	sys, err := bringUp(ctx, c, logf)
	if err != nil {
		return err
	}
	defer sys.stop()
	cl, err := driver.Dial(sys.endpoints, sys.tokens)
	if err != nil {
		return err
	}
	defer cl.Close()
	who, err := newActors(cl, gen.SchoolCodes())
	if err != nil {
		return err
	}

	res := &result{
		Started:  time.Now().UTC(),
		Config:   c,
		Machine:  readMachine(),
		Sampling: sys.sampling,
	}
	rec := driver.NewRecorder(c.N)
	services := map[string]string{}
	for _, name := range stack.Services {
		services[name] = sys.endpoints[name].HTTP
	}
	probe := &driver.BacklogProbe{Services: services, HTTP: cl.HTTPClient(), Poll: 100 * time.Millisecond}
	var countPool *pgxpool.Pool // set when loadgen started the stack
	if sys.databaseURL != "" {
		pool, err := db.Connect(ctx, sys.databaseURL, db.Options{MaxConns: 2})
		if err != nil {
			return err
		}
		defer pool.Close()
		probe.Exact = exactBacklog(pool)
		countPool = pool
		res.BacklogSource = "unpublished outbox rows counted in each service's schema (the aid_outbox_backlog gauges are scraped too)"
	} else {
		res.BacklogSource = "aid_outbox_backlog gauges at /metrics (refreshed only while a relay idles)"
	}
	if _, err := probe.Once(ctx); err != nil {
		logf("warning: outbox backlog metric: %v", err)
	}

	// Bots run until the chain is done.
	botCtx, stopBots := context.WithCancel(ctx)
	defer stopBots()
	var bots sync.WaitGroup
	watcher := &driver.Watcher{Finance: who.finance, Auditor: who.auditor, Poll: c.WatchPoll, Recorder: rec}
	finance := &driver.FinanceBot{Officer: who.finance, Term: c.Term, Every: c.FinanceEvery, Recorder: rec, Watcher: watcher}
	if !c.SubmitOnly {
		for i, r := range who.school {
			b := &driver.SchoolBot{Reviewer: r, Term: c.Term, RejectRate: c.RejectSchool, Poll: c.Poll, Recorder: rec, Seed: c.Seed + uint64(i)}
			bots.Go(func() { b.Run(botCtx) })
		}
		bb := &driver.BureauBot{Reviewer: who.bureau, Term: c.Term, RejectRate: c.RejectBureau, Poll: c.Poll, Recorder: rec, Seed: c.Seed}
		bots.Go(func() { bb.Run(botCtx) })
		bots.Go(func() { watcher.Run(botCtx) })
		if !c.SingleBatch {
			bots.Go(func() { finance.Run(botCtx) })
		}
	}
	probeCtx, stopProbe := context.WithCancel(ctx)
	defer stopProbe()
	var probeDone sync.WaitGroup
	probeDone.Go(func() { probe.Run(probeCtx) })

	cpuBefore := sampleGroups(sys.groups)
	mode := "gRPC"
	if c.REST {
		mode = "REST/JSON"
	}
	logf("submitting %d applications over %s from %d schools (batch %d, concurrency %d, rate %s)…",
		c.N, mode, c.Schools, c.Batch, c.Concurrency, rateString(c.Rate))
	sub := &driver.Submitter{
		Config:    driver.SubmitConfig{N: c.N, Rate: c.Rate, Concurrency: c.Concurrency, Batch: c.Batch, REST: c.REST},
		Generator: gen, Officers: who.officers, Recorder: rec,
	}
	progressCtx, stopProgress := context.WithCancel(ctx)
	go reportProgress(progressCtx, rec, watcher, logf)
	sr, err := sub.Run(ctx)
	if err != nil {
		stopProgress()
		return err
	}
	probe.Mark("after_submit", sr.End)
	res.Submit = submitSummary{Accepted: sr.Accepted, Failed: sr.Failed, Calls: sr.Calls,
		Seconds: sec(sr.End.Sub(sr.Start)), MaxLagMs: float64(sr.MaxLag.Milliseconds())}
	if d := sr.End.Sub(sr.Start); d > 0 {
		res.Submit.PerSecond = float64(sr.Accepted) / d.Seconds()
	}
	logf("submitted %d (%d failed) in %s: %.1f applications/s", sr.Accepted, sr.Failed, sr.End.Sub(sr.Start).Round(time.Millisecond), res.Submit.PerSecond)

	deadline := time.Now().Add(c.Timeout)
	var chainEnd time.Time
	switch {
	case c.SubmitOnly:
		chainEnd = sr.End
	case c.SingleBatch:
		sb, err := singleBatch(ctx, c, sr.Accepted, rec, finance, watcher, deadline, logf)
		res.SingleBatch = sb
		if err != nil {
			logf("single batch: %v", err)
			res.Problems = append(res.Problems, err.Error())
		}
		chainEnd = time.Now()
	default:
		chainEnd, err = waitChain(ctx, rec, sr.Accepted, deadline)
		if err != nil {
			logf("%v", err)
			res.Problems = append(res.Problems, err.Error())
		}
	}
	stopProgress()
	cpuAfter := sampleGroups(sys.groups)
	probe.Mark("after_chain", time.Now())
	stopBots()
	bots.Wait()

	if !c.SubmitOnly {
		// The application service learns of payments last; give it a moment.
		collectShown(ctx, who.auditor, c.Term, rec, c.ShownWait, logf)
	}
	// Wait (bounded) for the outbox backlogs to drain.
	drainDeadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(drainDeadline) && ctx.Err() == nil {
		_, ok1 := probe.Drained("after_submit")
		_, ok2 := probe.Drained("after_chain")
		if ok1 && ok2 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopProbe()
	probeDone.Wait()

	first, _ := rec.Window()
	res.Report = rec.Report()
	p := rec.Progress()
	res.Outcomes = map[string]int{
		"pending": p.Outcomes[driver.OutcomePending], "school_rejected": p.Outcomes[driver.OutcomeSchoolRejected],
		"bureau_rejected": p.Outcomes[driver.OutcomeBureauRejected], "paid": p.Outcomes[driver.OutcomePaid],
		"payment_failed": p.Outcomes[driver.OutcomePaymentFailed],
	}
	res.Errors = rec.Errors()
	if !chainEnd.IsZero() && chainEnd.After(first) {
		res.ChainSeconds = sec(chainEnd.Sub(first))
	}
	final := p.Outcomes[driver.OutcomePaid] + p.Outcomes[driver.OutcomeSchoolRejected] + p.Outcomes[driver.OutcomeBureauRejected] + p.Outcomes[driver.OutcomePaymentFailed]
	if finalAt := rec.FinalAt(); !c.SubmitOnly && final > 0 && finalAt.After(first) {
		// Sustained end to end: applications that reached a final state (paid
		// at payout, returned by the bank, or rejected) per second, from the
		// first submission to the moment the last one got there.
		res.EndToEndPerSecond = float64(final) / finalAt.Sub(first).Seconds()
		res.EndToEndSeconds = sec(finalAt.Sub(first))
	}
	res.Shown = shownSummary{PaidAtPayout: p.Outcomes[driver.OutcomePaid], ShownPaid: p.Reached[driver.StepShownPaid], WaitedS: c.ShownWait.Seconds()}
	if last := rec.LastAt(driver.StepShownPaid); !last.IsZero() && last.After(first) {
		res.Shown.LastShownAfterS = sec(last.Sub(first))
	}
	res.Processes = processResults(sys.groups, cpuBefore, cpuAfter, sr.Accepted, chainEnd.Sub(sr.Start))
	res.Backlog.Max = probe.Max()
	res.Backlog.Last = probe.Last()
	res.Backlog.MaxConsumerLag = probe.MaxLag()
	if d, ok := probe.Drained("after_submit"); ok {
		v := sec(d)
		res.Backlog.DrainAfterSubmitS = &v
	}
	if d, ok := probe.Drained("after_chain"); ok {
		v := sec(d)
		res.Backlog.DrainAfterChainS = &v
	}
	if c.PgbenchTPS > 0 && res.EndToEndPerSecond > 0 {
		res.PgbenchTPS = c.PgbenchTPS
		res.PerThousandTPS = res.EndToEndPerSecond / c.PgbenchTPS * 1000
	}
	if countPool != nil {
		res.Stream = streamUse(ctx, countPool, sys.natsURL, logf)
	}
	printResult(os.Stdout, res)
	if c.JSON != "" {
		if err := writeJSON(c.JSON, res); err != nil {
			return err
		}
		logf("results written to %s", c.JSON)
	}
	if len(res.Problems) > 0 {
		return errors.New(strings.Join(res.Problems, "; "))
	}
	return nil
}

// serviceSchemas are the services' PostgreSQL schemas (docs/architecture.md).
var serviceSchemas = map[string]string{
	"application": "application", "school-review": "school_review", "bureau-review": "bureau_review",
	"finance-confirmation": "finance_confirmation", "payout": "payout",
}

// streamUse compares the events the services published (outbox rows) with
// the messages the event stream holds: with frames, many events share one
// message, and JetStream's SyncAlways costs one fsync per message.
func streamUse(ctx context.Context, pool *pgxpool.Pool, natsURL string, logf func(string, ...any)) *streamResult {
	var r streamResult
	for _, schema := range serviceSchemas {
		var n int64
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+schema+".outbox").Scan(&n); err != nil {
			logf("warning: counting %s's events: %v", schema, err)
			return nil
		}
		r.Events += n
	}
	nc, js, err := natsx.Connect(natsURL, "loadgen")
	if err != nil {
		logf("warning: %v", err)
		return nil
	}
	defer nc.Close()
	stream, err := js.Stream(ctx, natsx.EventStream)
	if err != nil {
		logf("warning: event stream: %v", err)
		return nil
	}
	info, err := stream.Info(ctx)
	if err != nil {
		logf("warning: event stream: %v", err)
		return nil
	}
	r.Messages, r.Bytes = info.State.Msgs, info.State.Bytes
	if r.Messages > 0 {
		r.EventsPerMessage = float64(r.Events) / float64(r.Messages)
	}
	return &r
}

// exactBacklog counts each service's unpublished outbox rows (the partial
// index outbox_unpublished makes this cheap).
func exactBacklog(pool *pgxpool.Pool) func(ctx context.Context) (map[string]float64, error) {
	return func(ctx context.Context) (map[string]float64, error) {
		out := map[string]float64{}
		for name, schema := range serviceSchemas {
			var n int64
			if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+schema+".outbox WHERE published_at IS NULL").Scan(&n); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			out[name] = float64(n)
		}
		return out, nil
	}
}

func rateString(r float64) string {
	if r <= 0 {
		return "as fast as possible"
	}
	return fmt.Sprintf("%g/s", r)
}

func sec(d time.Duration) float64 { return float64(d.Milliseconds()) / 1000 }

// reportProgress logs how far the applications got every 5 seconds.
func reportProgress(ctx context.Context, rec *driver.Recorder, w *driver.Watcher, logf func(string, ...any)) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p := rec.Progress()
			var parts []string
			for s := driver.Step(0); s < driver.StepShownPaid; s++ {
				parts = append(parts, fmt.Sprintf("%s %d", s, p.Reached[s]))
			}
			logf("progress: %s; final %d; open batches watched %d; errors %d", strings.Join(parts, ", "), p.Terminal, w.Open(), p.Errors)
		}
	}
}

// waitChain waits until every accepted application reached a final state.
func waitChain(ctx context.Context, rec *driver.Recorder, accepted int, deadline time.Time) (time.Time, error) {
	for {
		p := rec.Progress()
		if p.Terminal >= accepted {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Now(), fmt.Errorf("timed out: %d of %d applications reached a final state", p.Terminal, accepted)
		}
		select {
		case <-ctx.Done():
			return time.Now(), ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// collectShown lists the PAID applications until the application service
// shows every paid one, for at most wait.
func collectShown(ctx context.Context, a *driver.Auditor, term string, rec *driver.Recorder, wait time.Duration, logf func(string, ...any)) {
	deadline := time.Now().Add(wait)
	for {
		n, err := driver.CollectShownPaid(ctx, a, term, rec)
		p := rec.Progress()
		paid := p.Outcomes[driver.OutcomePaid]
		if err != nil {
			logf("listing PAID applications: %v", err)
		}
		if (err == nil && p.Reached[driver.StepShownPaid] >= paid) || time.Now().After(deadline) || ctx.Err() != nil {
			logf("application service shows %d applications of %s as PAID (%d paid at payout)", n, term, paid)
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// singleBatch waits until every accepted application sits in an open batch,
// confirms the batch(es) and times confirm → all paid.
func singleBatch(ctx context.Context, c config, accepted int, rec *driver.Recorder, fin *driver.FinanceBot,
	w *driver.Watcher, deadline time.Time, logf func(string, ...any)) (*singleBatchResult, error) {
	out := &singleBatchResult{Items: accepted, Program: c.Program}
	logf("single batch: waiting for the bots to approve all %d applications…", accepted)
	for {
		p := rec.Progress()
		if p.Reached[driver.StepBureauDecided] >= accepted {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return out, fmt.Errorf("only %d of %d applications were approved by the bureau before the deadline", p.Reached[driver.StepBureauDecided], accepted)
		}
		time.Sleep(200 * time.Millisecond)
	}
	approved := time.Now()
	logf("single batch: all approved; waiting until they sit in open batches…")
	var batches []*financev1.Batch
	for {
		var err error
		batches, err = fin.Unconfirmed(ctx, c.Program)
		if err != nil {
			rec.Error(driver.StepBatched, err)
		}
		var n int64
		for _, b := range batches {
			n += b.GetControlCount()
		}
		if n >= int64(accepted) {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return out, fmt.Errorf("only %d of %d items reached a batch before the deadline", n, accepted)
		}
		time.Sleep(200 * time.Millisecond)
	}
	out.AllBatchedAfterApprovalS = sec(time.Since(approved))
	out.Batches = len(batches)
	if len(batches) > 1 {
		logf("single batch: the items sit in %d batches, not one; confirming all of them", len(batches))
	}
	type prepared struct {
		batch *financev1.Batch
		ids   []string
	}
	var ready []prepared
	for _, b := range batches {
		got, ids, err := fin.Prepare(ctx, b)
		if err != nil {
			return out, err
		}
		ready = append(ready, prepared{got, ids})
		out.ControlSumFen += got.GetControlSumFen()
	}
	logf("single batch: confirming %d items…", accepted)
	t0 := time.Now()
	for _, p := range ready {
		if _, err := fin.Confirm(ctx, p.batch, p.ids); err != nil {
			return out, err
		}
	}
	out.ConfirmCallMs = float64(time.Since(t0).Microseconds()) / 1000
	var observed, lastPaid time.Time
	for _, p := range ready {
		for {
			d, ok := w.Done(p.batch.GetBatchId())
			if ok {
				observed = maxTime(observed, d.ObservedAt)
				lastPaid = maxTime(lastPaid, d.LastPaidAt)
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return out, fmt.Errorf("batch %s not paid before the deadline", p.batch.GetBatchId())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	out.ConfirmToAllPaidS = sec(lastPaid.Sub(t0))
	out.ConfirmToObservedS = sec(observed.Sub(t0))
	logf("single batch: confirm → all %d paid at payout in %.2fs (finance showed all paid after %.2fs)", accepted, out.ConfirmToAllPaidS, out.ConfirmToObservedS)
	return out, nil
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func sampleGroups(groups []driver.ProcessGroup) map[string]driver.GroupSample {
	out := map[string]driver.GroupSample{}
	for _, g := range groups {
		if s, err := g.Sample(); err == nil {
			out[g.Name] = s
		}
	}
	return out
}

func processResults(groups []driver.ProcessGroup, before, after map[string]driver.GroupSample, apps int, wall time.Duration) []processResult {
	var out []processResult
	for _, g := range groups {
		b, ok1 := before[g.Name]
		a, ok2 := after[g.Name]
		if !ok1 || !ok2 {
			continue
		}
		r := processResult{Name: g.Name, Pid: g.Pid, Processes: a.Procs,
			PeakRSSMiB: float64(a.PeakRSS) / (1 << 20), CPUSeconds: (a.CPU - b.CPU).Seconds()}
		if apps > 0 {
			r.CPUMsPerApp = r.CPUSeconds * 1000 / float64(apps)
		}
		if wall > 0 {
			r.AvgCores = r.CPUSeconds / wall.Seconds()
		}
		out = append(out, r)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CPUSeconds > out[j].CPUSeconds })
	return out
}

func readMachine() machine {
	m := machine{CPUs: numCPU()}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if strings.HasPrefix(line, "MemTotal:") {
				f := strings.Fields(line)
				if len(f) >= 2 {
					kb, _ := strconv.ParseFloat(f[1], 64)
					m.MemGiB = kb / (1 << 20)
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvg = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if strings.HasPrefix(line, "model name") {
				_, v, _ := strings.Cut(line, ":")
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}
