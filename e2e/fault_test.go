package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edubureau/studentaid/internal/devtools/stack"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/idnumber"
	"github.com/edubureau/studentaid/pkg/pii"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
	bureaureviewv1 "github.com/edubureau/studentaid/proto/gen/aid/bureaureview/v1"
	commonv1 "github.com/edubureau/studentaid/proto/gen/aid/common/v1"
	financev1 "github.com/edubureau/studentaid/proto/gen/aid/finance/v1"
	schoolreviewv1 "github.com/edubureau/studentaid/proto/gen/aid/schoolreview/v1"
)

func envInt(key string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(key)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestFault runs applications through the whole chain, on three replicas of
// every service, a three-node JetStream cluster and a PostgreSQL primary
// with a synchronous standby, while it SIGKILLs a random replica every few
// seconds and restarts it, kills one NATS node and restarts it, and fails
// PostgreSQL over to the standby once, with the bank failing and timing out
// now and then.
// At the end every application must be where its decisions lead, the bank
// must hold exactly one credit per paid item, every trail must hold each
// event once and in order, and the batches must add up to what was paid.
// `make fault` runs the full version (AID_FAULT_APPLICATIONS=3000).
func TestFault(t *testing.T) {
	n := envInt("AID_FAULT_APPLICATIONS", 600)
	killEvery := time.Duration(envInt("AID_FAULT_KILL_EVERY_MS", 3000)) * time.Millisecond
	s := startFaultStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()

	apps := faultPlan(n)
	byID := sync.Map{}
	officers, reviewers := map[string]*user{}, map[string]*user{}
	for _, sc := range schools {
		officers[sc] = newUser(t, s, "officer-"+sc, auth.RoleSchoolOfficer, sc)
		reviewers[sc] = newUser(t, s, "reviewer-"+sc, auth.RoleSchoolReviewer, sc)
	}
	bureau := newUser(t, s, "bureau-1", auth.RoleBureauReviewer, auth.OrgBureau)
	finance := newUser(t, s, "finance-1", auth.RoleFinanceOfficer, auth.OrgFinance)
	confirmer := newUser(t, s, "finance-2", auth.RoleFinanceOfficer, auth.OrgFinance)
	auditor := newUser(t, s, "auditor-1", auth.RoleAuditor, auth.OrgBureau)

	// Chaos: kill and restart replicas of the services at random; one NATS
	// node and one PostgreSQL failover once each.
	processes := slices.Clone(stack.Services)
	for r := 2; r <= envInt("AID_FAULT_REPLICAS", 3); r++ {
		for _, name := range stack.Services {
			processes = append(processes, fmt.Sprintf("%s-r%d", name, r))
		}
	}
	chaosCtx, stopChaos := context.WithCancel(ctx)
	var kills, restarts atomic.Int32
	var natsLost, failedOver atomic.Bool
	var chaosWG sync.WaitGroup
	chaosWG.Go(func() {
		rng := rand.New(rand.NewPCG(1, 2))
		round := 0
		for {
			select {
			case <-chaosCtx.Done():
				return
			case <-time.After(killEvery):
			}
			round++
			switch round {
			case 2:
				// One NATS node (the cluster keeps a quorum), or the only one.
				node := s.Process("nats-2")
				if node == nil {
					if err := s.RestartNATS(chaosCtx); err != nil {
						t.Errorf("restart NATS: %v", err)
					}
					t.Log("chaos: killed and restarted NATS")
					break
				}
				node.Kill()
				time.Sleep(killEvery)
				if err := node.Start(chaosCtx); err != nil && chaosCtx.Err() == nil {
					t.Errorf("restart nats-2: %v", err)
				}
				t.Log("chaos: killed NATS node nats-2 and restarted it")
				natsLost.Store(true)
			case 4:
				if err := s.FailOver(chaosCtx); err != nil {
					t.Errorf("PostgreSQL failover: %v", err)
				}
				t.Log("chaos: promoted the standby and killed the primary")
				failedOver.Store(true)
			default:
				name := processes[rng.IntN(len(processes))]
				p := s.Process(name)
				p.Kill()
				kills.Add(1)
				if err := p.Start(chaosCtx); err != nil && chaosCtx.Err() == nil {
					t.Errorf("restart %s: %v", name, err)
				}
			}
			// A service that died on its own is a bug, but restart it so the
			// run can finish and report everything else.
			for _, name := range processes {
				if !s.Process(name).Running() {
					restarts.Add(1)
					t.Errorf("%s exited by itself", name)
					_ = s.Process(name).Start(chaosCtx)
				}
			}
		}
	})

	// Submitters: chunks of 50 with an idempotency key, retried until accepted.
	var submitWG sync.WaitGroup
	for _, sc := range schools {
		submitWG.Go(func() {
			var mine []*planned
			for _, p := range apps {
				if p.school == sc {
					mine = append(mine, p)
				}
			}
			for lo := 0; lo < len(mine); lo += 50 {
				chunk := mine[lo:min(lo+50, len(mine))]
				reqs := make([]*applicationv1.NewApplication, len(chunk))
				for i, p := range chunk {
					reqs[i] = p.req
				}
				key := fmt.Sprintf("fault-%s-%d", sc, lo)
				for ctx.Err() == nil {
					cctx, c := context.WithTimeout(ctx, 10*time.Second)
					resp, err := officers[sc].app.SubmitApplications(cctx, &applicationv1.SubmitApplicationsRequest{SchoolCode: sc, Term: chunk[0].term, Applications: reqs, IdempotencyKey: key})
					c()
					if err == nil {
						for i, a := range resp.GetApplications() {
							chunk[i].id = a.GetApplicationId()
							byID.Store(a.GetApplicationId(), chunk[i])
						}
						break
					}
					time.Sleep(200 * time.Millisecond)
				}
			}
		})
	}

	// Bots decide whatever is pending, forever, tolerating restarts.
	botCtx, stopBots := context.WithCancel(ctx)
	var botWG sync.WaitGroup
	bot := func(f func(ctx context.Context)) {
		botWG.Go(func() {
			for botCtx.Err() == nil {
				cctx, c := context.WithTimeout(botCtx, 15*time.Second)
				f(cctx)
				c()
				time.Sleep(300 * time.Millisecond)
			}
		})
	}
	for _, sc := range schools {
		bot(func(ctx context.Context) {
			resp, err := reviewers[sc].school.ListReviews(ctx, &schoolreviewv1.ListReviewsRequest{SchoolCode: sc, State: schoolreviewv1.ReviewState_REVIEW_STATE_PENDING, PageSize: 500})
			if err != nil || len(resp.GetReviews()) == 0 {
				return
			}
			var ds []*schoolreviewv1.Decision
			for _, r := range resp.GetReviews() {
				v, ok := byID.Load(r.GetApplicationId())
				if !ok {
					continue // the submit answer is still on its way
				}
				p := v.(*planned)
				ds = append(ds, &schoolreviewv1.Decision{ApplicationId: p.id, Approve: !p.schoolReject, HardshipLevel: string(p.level), Reason: reasonIf(p.schoolReject, "不符合资助条件")})
			}
			if len(ds) > 0 {
				_, _ = reviewers[sc].school.Decide(ctx, &schoolreviewv1.DecideRequest{Decisions: ds})
			}
		})
	}
	bot(func(ctx context.Context) {
		resp, err := bureau.bureau.ListReviews(ctx, &bureaureviewv1.ListReviewsRequest{State: bureaureviewv1.ReviewState_REVIEW_STATE_PENDING, PageSize: 500})
		if err != nil || len(resp.GetReviews()) == 0 {
			return
		}
		var ds []*bureaureviewv1.Decision
		for _, r := range resp.GetReviews() {
			v, ok := byID.Load(r.GetApplicationId())
			if !ok {
				continue
			}
			p := v.(*planned)
			ds = append(ds, &bureaureviewv1.Decision{ApplicationId: p.id, Approve: !p.bureauReject, Reason: reasonIf(p.bureauReject, "比对不一致")})
		}
		_, _ = bureau.bureau.Decide(ctx, &bureaureviewv1.DecideRequest{Decisions: ds})
	})
	bot(func(ctx context.Context) {
		for _, st := range []financev1.BatchStatus{financev1.BatchStatus_BATCH_STATUS_OPEN, financev1.BatchStatus_BATCH_STATUS_CLOSED} {
			resp, err := finance.finance.ListBatches(ctx, &financev1.ListBatchesRequest{Status: st, PageSize: 100})
			if err != nil {
				return
			}
			for _, b := range resp.GetBatches() {
				closed, err := finance.finance.CloseBatch(ctx, &financev1.CloseBatchRequest{BatchId: b.GetBatchId()})
				if err != nil {
					if closed, err = finance.finance.GetBatch(ctx, &financev1.GetBatchRequest{BatchId: b.GetBatchId()}); err != nil {
						continue
					}
				}
				if closed.GetControlCount() > 0 {
					_, _ = confirmer.finance.ConfirmBatch(ctx, &financev1.ConfirmBatchRequest{BatchId: b.GetBatchId(), ControlCount: closed.GetControlCount(), ControlSumFen: closed.GetControlSumFen()})
				}
			}
		}
	})

	submitWG.Wait()
	t.Logf("all %d applications accepted", n)
	// Keep the chaos going a little longer, then let the system settle.
	minChaos := time.Duration(envInt("AID_FAULT_MIN_CHAOS_S", 30)) * time.Second
	time.Sleep(minChaos)
	stopChaos()
	chaosWG.Wait()
	if !natsLost.Load() || !failedOver.Load() {
		t.Errorf("the chaos ended before its NATS node loss (%v) and PostgreSQL failover (%v); raise AID_FAULT_MIN_CHAOS_S", natsLost.Load(), failedOver.Load())
	}

	final := func() (map[commonv1.ApplicationStatus]int, error) {
		counts := map[commonv1.ApplicationStatus]int{}
		token := ""
		for {
			cctx, c := context.WithTimeout(ctx, 20*time.Second)
			resp, err := auditor.app.ListApplications(cctx, &applicationv1.ListApplicationsRequest{PageSize: 500, PageToken: token, Purpose: "fault test: final statuses"})
			c()
			if err != nil {
				return nil, err
			}
			for _, a := range resp.GetApplications() {
				counts[a.GetStatus()]++
			}
			if token = resp.GetNextPageToken(); token == "" {
				return counts, nil
			}
		}
	}
	want := map[commonv1.ApplicationStatus]int{}
	var paidSum int64
	for _, p := range apps {
		want[p.finalStatus()]++
		if p.paid() {
			paidSum += p.amount
		}
	}
	eventually(t, "every application final after the faults", 8*time.Minute, func() error {
		got, err := final()
		if err != nil {
			return err
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("statuses %v, want %v", got, want)
		}
		return nil
	})
	stopBots()
	botWG.Wait()

	paid := want[commonv1.ApplicationStatus_APPLICATION_STATUS_PAID]
	ledger := readLedger(t, s.BankURL)
	// Finance records payment results from its own consumer; give it time to catch up.
	var batchPaid, batchCount int64
	var batchErr error
	eventually(t, "batches record every payment", 2*time.Minute, func() error {
		batchPaid, batchCount, batchErr = 0, 0, nil
		for _, b := range listBatches(t, finance, financev1.BatchStatus_BATCH_STATUS_CONFIRMED) {
			if b.GetPaidSumFen() != b.GetControlSumFen() || b.GetPaidCount() != b.GetControlCount() {
				batchErr = fmt.Errorf("batch %s: control %d / %d fen but paid %d / %d fen", b.GetBatchId(), b.GetControlCount(), b.GetControlSumFen(), b.GetPaidCount(), b.GetPaidSumFen())
			}
			batchPaid += b.GetPaidSumFen()
			batchCount += b.GetPaidCount()
		}
		if batchErr == nil && batchCount != int64(paid) {
			batchErr = fmt.Errorf("batches paid %d items, want %d", batchCount, paid)
		}
		return batchErr
	})
	badTrails := 0
	for _, p := range apps {
		tr, err := auditor.app.GetTrail(ctx, &applicationv1.GetTrailRequest{ApplicationId: p.id})
		if err != nil {
			t.Fatal(err)
		}
		var types []string
		for _, e := range tr.GetEvents() {
			types = append(types, e.GetType())
		}
		if fmt.Sprint(types) != fmt.Sprint(p.expectedTrail()) {
			badTrails++
			if badTrails <= 5 {
				t.Errorf("application %d trail:\n got %v\nwant %v", p.idx, types, p.expectedTrail())
			}
		}
	}
	t.Logf("fault run: %d applications, %d service kills, %d unexpected exits; statuses %v", n, kills.Load(), restarts.Load(), want)
	t.Logf("paid %d items / %d fen; bank ledger %d credits / %d fen / %d rejected; batches paid %d / %d fen; bad trails %d",
		paid, paidSum, ledger.creditedCount, ledger.creditedSum, ledger.rejectedCount, batchCount, batchPaid, badTrails)
	if ledger.creditedCount != int64(paid) || ledger.creditedSum != paidSum || ledger.rejectedCount != 0 {
		t.Errorf("bank ledger %d credits / %d fen / %d rejected, want %d / %d / 0", ledger.creditedCount, ledger.creditedSum, ledger.rejectedCount, paid, paidSum)
	}
	if batchCount != int64(paid) || batchPaid != paidSum {
		t.Errorf("batches paid %d / %d fen, want %d / %d", batchCount, batchPaid, paid, paidSum)
	}
	if badTrails > 0 {
		t.Errorf("%d trails differ from their decisions", badTrails)
	}
}

func startFaultStack(t *testing.T) *stack.Stack {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := stack.Start(ctx, stack.Options{
		Dir:    dir,
		BinDir: binDir,
		// Three replicas of every service (AID_FAULT_REPLICAS), a
		// three-node JetStream cluster (AID_FAULT_NATS_NODES) and a
		// primary with a synchronous standby, its own throwaway ones, so
		// the test can crash them.
		Replicas:  envInt("AID_FAULT_REPLICAS", 3),
		NATSNodes: envInt("AID_FAULT_NATS_NODES", 3),
		Standby:   true,
		Env: map[string]string{
			"SCHOOL_REVIEW_NOTICE_PERIOD": "1s",
			"PAYOUT_BANK_TIMEOUT":         "1s",
			"SHUTDOWN_TIMEOUT":            "5s",
		},
		BankEnv: map[string]string{
			"BANKSIM_FAILURE_RATE":  "0.02",
			"BANKSIM_TIMEOUT_RATE":  "0.02",
			"BANKSIM_TIMEOUT_DELAY": "2s",
		},
	})
	if err != nil {
		dumpLogs(t, dir)
		t.Fatalf("start stack: %v", err)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			dumpLogs(t, dir)
		}
	})
	return s
}

// faultPlan spreads n applications over the schools, one term, and the
// programs, with the same rejection rules as the chain test.
func faultPlan(n int) []*planned {
	out := make([]*planned, 0, n)
	for i := range n {
		prog := programsByIndex[i%len(programsByIndex)]
		birth := time.Date(prog.birth, time.Month(1+i%12), 1+i%28, 0, 0, 0, 0, time.UTC)
		p := &planned{
			idx: i, school: schools[i%len(schools)], term: "2018-spring",
			req: &applicationv1.NewApplication{
				StudentIdNumber: idnumber.Generate("420102", birth, i%1000), // sequences repeat; birth dates differ
				StudentName:     "学生" + strconv.Itoa(i),
				Stage:           string(prog.stage),
				ProgramCode:     prog.code,
				Boarding:        prog.code == "BOARDING_SUBSIDY",
				Rural:           prog.code == "BOARDING_SUBSIDY",
				BankCardNumber:  pii.GenerateCardNumber("621700", int64(2000000+i), 19),
				AccountName:     "监护人" + strconv.Itoa(i),
			},
			schoolReject: i%13 == 7,
		}
		p.bureauReject = !p.schoolReject && i%17 == 3
		for body := int64(2000000 + i); p.req.GetBankCardNumber()[len(p.req.GetBankCardNumber())-4:] == "0000"; body += 1000000 {
			p.req.BankCardNumber = pii.GenerateCardNumber("621700", body, 19) // not a closed account
		}
		if prog.code == "HS_NATIONAL_GRANT" {
			p.level = levels[i%len(levels)]
		}
		p.amount = reportFen(prog.code, prog.stage, p.level)
		out = append(out, p)
	}
	return out
}
