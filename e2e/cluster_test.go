package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/edubureau/studentaid/internal/devtools/stack"
	"github.com/edubureau/studentaid/pkg/catalog"
	"github.com/edubureau/studentaid/pkg/natsx"
)

// TestNATSClusterLosesANode runs the chain on a three-node JetStream
// cluster (separate nats-server processes, every stream R3, fsync on every
// write) with the services connected to all three nodes; one node is
// SIGKILLed while applications are in the chain and comes back later.
// Every application still ends PAID at its amount.
func TestNATSClusterLosesANode(t *testing.T) {
	s := startStackWith(t, map[string]string{"SCHOOL_REVIEW_NOTICE_PERIOD": "2s"}, false, func(o *stack.Options) { o.NATSNodes = 3 })
	if n := strings.Count(s.NATSURL, ",") + 1; n != 3 {
		t.Fatalf("the services were given %d NATS URLs (%s), want 3", n, s.NATSURL)
	}
	ctx := ctxT(t)
	nc, js, err := natsx.Connect(s.NATSURL, "cluster-test", natsx.WithNKeySeed(s.NATSSeed(natsx.AdminIdentity)))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for _, name := range []string{natsx.EventStream, natsx.DeadStream} {
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.Config.Replicas != 3 || info.Config.Storage != jetstream.FileStorage || len(info.Cluster.Replicas) != 2 {
			t.Fatalf("stream %s: %d replicas (%d peers beside the leader), storage %v; want R3 on file", name, info.Config.Replicas, len(info.Cluster.Replicas), info.Config.Storage)
		}
	}

	cases := []*policyCase{
		{name: "preschool", school: "S006", term: "2017-autumn", program: "PRESCHOOL_AID", stage: catalog.StagePreschool, born: 2013, wantFen: 50000, wantPolicy: 1},
		{name: "boarding", school: "S004", term: "2017-autumn", program: "BOARDING_SUBSIDY", stage: catalog.StageJunior, born: 2004, boarding: true, wantFen: 62500, wantPolicy: 1},
		{name: "grant", school: "S008", term: "2017-autumn", program: "HS_NATIONAL_GRANT", stage: catalog.StageHighSchool, born: 2001, level: catalog.LevelDifficult, wantFen: 100000, wantPolicy: 1},
		{name: "waiver", school: "S008", term: "2017-autumn", program: "HS_TUITION_WAIVER", stage: catalog.StageHighSchool, born: 2001, wantFen: 86500, wantPolicy: 1},
	}
	submitCases(t, s, cases, 200)

	// One node dies with the events of the submissions in flight; the
	// other two keep a quorum.
	victim := s.Process("nats-2")
	if victim == nil {
		t.Fatal("no process nats-2")
	}
	victim.Kill()
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(8 * time.Second)
		rctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := victim.Start(rctx); err != nil {
			t.Errorf("restart nats-2: %v", err)
		}
	}()
	driveToPaid(t, s, cases)
	<-done
}
