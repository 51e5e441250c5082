package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/edubureau/studentaid/internal/devtools/stack"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/catalog"
	payoutv1 "github.com/edubureau/studentaid/proto/gen/aid/payout/v1"
)

// TestReplicasCompete runs three replicas of every service on one database
// and NATS, sharing their durable consumers, leases and outboxes, while a
// chaos loop SIGKILLs a random second or third replica every 0.2 to 0.6 s
// and starts it again. Every application ends PAID at its amount, with
// exactly one credit at the bank, checked per application against the
// bank's ledger.
func TestReplicasCompete(t *testing.T) {
	s := startStackWith(t, map[string]string{"SCHOOL_REVIEW_NOTICE_PERIOD": "2s", "SCHOOL_REVIEW_LEASE_TTL": "3s"}, false, func(o *stack.Options) { o.Replicas = 3 })
	for _, name := range stack.Services {
		if n := len(s.ReplicaEndpoints[name]); n != 2 {
			t.Fatalf("%s: %d more replicas, want 2", name, n)
		}
	}
	var cases []*policyCase
	for i := range 60 {
		c := []*policyCase{
			{school: "S006", program: "PRESCHOOL_AID", stage: catalog.StagePreschool, born: 2013, wantFen: 50000},
			{school: "S004", program: "BOARDING_SUBSIDY", stage: catalog.StageJunior, born: 2004, boarding: true, wantFen: 62500},
			{school: "S008", program: "HS_TUITION_WAIVER", stage: catalog.StageHighSchool, born: 2001, wantFen: 86500},
			{school: "S013", program: "HS_NATIONAL_GRANT", stage: catalog.StageHighSchool, born: 2001, level: catalog.LevelGenerallyDifficult, wantFen: 75000},
		}[i%4]
		c.name, c.term, c.wantPolicy = fmt.Sprintf("%s #%d", c.program, i), "2017-autumn", 1
		cases = append(cases, c)
	}

	// Chaos among the second and third replicas: the first ones serve the
	// test's calls and stay up.
	var victims []string
	for _, name := range stack.Services {
		victims = append(victims, name+"-r2", name+"-r3")
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	kills := 0
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(7, 11))
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(200+rng.IntN(400)) * time.Millisecond):
			}
			p := s.Process(victims[rng.IntN(len(victims))])
			p.Kill()
			kills++
			time.Sleep(200 * time.Millisecond)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if err := p.Start(ctx); err != nil {
				t.Errorf("restart %s: %v", p.Name, err)
			}
			cancel()
		}
	})
	submitCases(t, s, cases, 400)
	driveToPaid(t, s, cases)
	close(stop)
	wg.Wait()
	t.Logf("%d replicas killed and restarted during the chain", kills)
	if kills == 0 {
		t.Fatal("the chaos loop killed no replica")
	}

	// One replica of each service relays its outbox: exactly one holds the
	// outbox-relay lease (the killed ones hand it on or never took it), and
	// one consumes its events.
	eventually(t, "one relay per service", 30*time.Second, func() error {
		for _, name := range stack.Services {
			held := 0.0
			for _, ep := range append([]stack.Endpoint{s.Endpoints[name]}, s.ReplicaEndpoints[name]...) {
				held += scrape(t, ep.HTTP)[`aid_lease_held{lease="outbox-relay"}`]
			}
			if held != 1 {
				return fmt.Errorf("%s: %v replicas hold the outbox-relay lease, want 1", name, held)
			}
		}
		// Each service's consumer runs in one replica at a time.
		for _, name := range stack.Services {
			held := 0.0
			for _, ep := range append([]stack.Endpoint{s.Endpoints[name]}, s.ReplicaEndpoints[name]...) {
				held += scrape(t, ep.HTTP)[`aid_lease_held{lease="consumer:`+name+`"}`]
			}
			if held != 1 {
				return fmt.Errorf("%s: %v replicas hold the consumer:%s lease, want 1", name, held, name)
			}
		}
		return nil
	})

	// Exactly one credit per application at the bank, none twice.
	ctx := ctxT(t)
	ledger := readLedger(t, s.BankURL)
	var sum int64
	for _, c := range cases {
		sum += c.wantFen
	}
	if ledger.creditedCount != int64(len(cases)) || ledger.creditedSum != sum {
		t.Errorf("bank ledger: %d credits / %d fen, want %d / %d", ledger.creditedCount, ledger.creditedSum, len(cases), sum)
	}
	auditor := newUser(t, s, "auditor-1", auth.RoleAuditor, auth.OrgBureau)
	for _, c := range cases {
		ps, err := auditor.payout.ListPayments(ctx, &payoutv1.ListPaymentsRequest{ApplicationId: c.id})
		if err != nil {
			t.Fatal(err)
		}
		credited := 0
		for _, py := range ps.GetPayments() {
			if ledger.keys[py.GetPaymentId()] == "credited" {
				credited++
			}
		}
		if credited != 1 {
			t.Errorf("%s (%s): %d credits at the bank, want 1", c.name, c.id, credited)
		}
	}
}
