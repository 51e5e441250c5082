package driver_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/edubureau/studentaid/cmd/loadgen/internal/driver"
	"github.com/edubureau/studentaid/internal/devtools/stack"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
)

// TestBotsDriveTheWholeChain runs the real system (the binaries in
// AID_BIN_DIR, as `make test` sets it) and drives a few hundred
// applications through it with the generator, the bots and the watcher,
// over gRPC and REST.
func TestBotsDriveTheWholeChain(t *testing.T) {
	ci := os.Getenv("CI") != ""
	if testing.Short() {
		if ci {
			t.Fatal("-short in CI: CI must run the whole-stack test")
		}
		t.Skip("-short (make test-short) leaves out this test: it starts PostgreSQL, NATS and every service")
	}
	binDir := os.Getenv("AID_BIN_DIR")
	if binDir == "" {
		if ci {
			t.Fatal("AID_BIN_DIR is not set in CI: `make test` sets it to the built binaries")
		}
		t.Skip("AID_BIN_DIR is not set: no built binaries to start (make test builds them and sets it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dbURL := os.Getenv("DATABASE_URL")
	if dbURL == "" {
		dbURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	dir := t.TempDir()
	s, err := stack.Start(ctx, stack.Options{
		Dir: dir, BinDir: binDir, DatabaseURL: dbURL, FreshDatabase: true,
		Env:     map[string]string{"SCHOOL_REVIEW_NOTICE_PERIOD": "1ms", "LOG_LEVEL": "warn"},
		BankEnv: map[string]string{"BANKSIM_LATENCY": "0s"},
	})
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	t.Cleanup(s.Stop)

	const (
		term    = "2017-autumn"
		schools = 4
		perCall = 50
		calls   = 6 // 300 applications over gRPC
		rest    = 20
	)
	gen, err := driver.NewGenerator(driver.GeneratorConfig{Schools: schools, Term: term, Seed: 42})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := driver.Dial(s.Endpoints, s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	rec := driver.NewRecorder(calls*perCall + rest)

	var officers []*driver.Officer
	var bots sync.WaitGroup
	botCtx, stopBots := context.WithCancel(ctx)
	defer func() { stopBots(); bots.Wait() }()
	for i, code := range gen.SchoolCodes() {
		o, err := cl.Officer(code)
		if err != nil {
			t.Fatal(err)
		}
		officers = append(officers, o)
		r, err := cl.SchoolReviewer(code)
		if err != nil {
			t.Fatal(err)
		}
		b := &driver.SchoolBot{Reviewer: r, Term: term, RejectRate: 0.1, Poll: 100 * time.Millisecond, Recorder: rec, Seed: uint64(i)}
		bots.Go(func() { b.Run(botCtx) })
	}
	bureau, err := cl.BureauReviewer(driver.BureauUser)
	if err != nil {
		t.Fatal(err)
	}
	fin, err := cl.FinanceOfficer(driver.FinanceUser)
	if err != nil {
		t.Fatal(err)
	}
	closer, err := cl.FinanceOfficer(driver.FinanceCloserUser)
	if err != nil {
		t.Fatal(err)
	}
	aud, err := cl.Auditor(driver.AuditorUser)
	if err != nil {
		t.Fatal(err)
	}
	w := &driver.Watcher{Finance: fin, Auditor: aud, Poll: 200 * time.Millisecond, Recorder: rec}
	bb := &driver.BureauBot{Reviewer: bureau, Term: term, RejectRate: 0.1, Poll: 100 * time.Millisecond, Recorder: rec, Seed: 7}
	fb := &driver.FinanceBot{Officer: fin, Closer: closer, Term: term, Every: 300 * time.Millisecond, Recorder: rec, Watcher: w}
	bots.Go(func() { bb.Run(botCtx) })
	bots.Go(func() { fb.Run(botCtx) })
	bots.Go(func() { w.Run(botCtx) })

	sub := &driver.Submitter{
		Config:    driver.SubmitConfig{N: calls * perCall, Concurrency: 3, Batch: perCall},
		Generator: gen, Officers: officers, Recorder: rec,
	}
	res, err := sub.Run(ctx)
	if err != nil || res.Accepted != calls*perCall || res.Failed != 0 {
		t.Fatalf("gRPC submission: %+v, %v", res, err)
	}
	restSub := &driver.Submitter{
		Config:    driver.SubmitConfig{N: rest, Concurrency: 2, Batch: 1, REST: true},
		Generator: gen, Officers: officers, Recorder: rec,
	}
	if res, err := restSub.Run(ctx); err != nil || res.Accepted != rest || res.Calls != rest {
		t.Fatalf("REST submission: %+v, %v", res, err)
	}

	// Bad input over REST comes back as InvalidArgument, as over gRPC.
	bad := gen.Applications(0, 1)
	bad[0].StudentIdNumber = "not an ID number"
	if _, err := officers[0].SubmitREST(ctx, term, "bad-request-key-1", bad); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("bad REST submission: got %v, want InvalidArgument", err)
	}
	// A school officer cannot submit for another school.
	other := gen.Applications(1, 1)
	if _, err := officers[0].API.SubmitApplications(ctx, &applicationv1.SubmitApplicationsRequest{
		SchoolCode: gen.SchoolCodes()[1], Term: term, Applications: other,
	}, officers[0].Call); status.Code(err) != codes.PermissionDenied && status.Code(err) != codes.InvalidArgument {
		t.Fatalf("submission for another school: got %v, want a refusal", err)
	}

	total := calls*perCall + rest
	deadline := time.Now().Add(90 * time.Second)
	for {
		p := rec.Progress()
		if p.Terminal == total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d applications reached a final state: %+v", p.Terminal, total, p)
		}
		time.Sleep(100 * time.Millisecond)
	}
	p := rec.Progress()
	paid := p.Outcomes[driver.OutcomePaid]
	rejected := p.Outcomes[driver.OutcomeSchoolRejected] + p.Outcomes[driver.OutcomeBureauRejected]
	if paid+rejected != total || p.Outcomes[driver.OutcomePaymentFailed] != 0 {
		t.Fatalf("outcomes %v", p.Outcomes)
	}
	if rejected == 0 || paid == 0 {
		t.Fatalf("want both rejections and payments at 10%% reject rates, got %v", p.Outcomes)
	}
	for _, step := range []driver.Step{driver.StepBatched, driver.StepConfirmed, driver.StepPaid} {
		if p.Reached[step] != paid {
			t.Errorf("%d applications reached %s, want every paid one (%d)", p.Reached[step], step, paid)
		}
	}
	shownDeadline := time.Now().Add(30 * time.Second)
	for {
		n, err := driver.CollectShownPaid(ctx, aud, term, rec)
		if err != nil {
			t.Fatal(err)
		}
		if n == paid {
			break
		}
		if n > paid || time.Now().After(shownDeadline) {
			t.Fatalf("application service shows %d applications PAID, payout paid %d", n, paid)
		}
		time.Sleep(200 * time.Millisecond)
	}
	rep := rec.Report()
	if rep.ToShownPaid.Count != paid || rep.ToShownPaid.P50Ms <= 0 {
		t.Fatalf("end to end %+v", rep.ToShownPaid)
	}
	if errs := rec.Errors(); len(errs) != 0 {
		t.Fatalf("errors during the run: %v", errs)
	}

	// Every service exports its outbox backlog, and it drains.
	probe := &driver.BacklogProbe{Services: map[string]string{}, HTTP: cl.HTTPClient()}
	for _, name := range stack.Services {
		probe.Services[name] = s.Endpoints[name].HTTP
	}
	drainDeadline := time.Now().Add(10 * time.Second)
	for {
		zero, err := probe.Once(ctx)
		if err != nil && !strings.Contains(err.Error(), "no aid_outbox_backlog") {
			t.Fatal(err)
		}
		if zero {
			break
		}
		if time.Now().After(drainDeadline) {
			t.Fatalf("outbox backlog did not drain: %v (%v)", probe.Last(), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
