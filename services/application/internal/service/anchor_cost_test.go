package service_test

import (
	"context"
	"testing"
	"time"

	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/events"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	appservice "github.com/edubureau/studentaid/services/application/internal/service"
)

// TestAnchorCostPerEntry measures what the anchor costs per trail entry
// (docs/performance.md, Anchored trail): the sequencer's time to add
// entries to the tree and sign (one checkpoint over 5,000 new entries), and
// the bytes it stores per entry (the trail's tx column index and the leaf
// row with its indexes). Run with -v to read the figures.
func TestAnchorCostPerEntry(t *testing.T) {
	if testing.Short() {
		t.Skip("-short (make test-short) leaves out this measurement of 5,000 applications")
	}
	e := startWith(t, appservice.Options{CheckpointInterval: time.Hour})
	ctx := context.Background()
	officer := e.officer("S001")
	auditor := e.client("aud-1", auth.RoleAuditor, "AUDIT")
	// The first checkpoint, of the empty tree, is signed at start.
	first := waitCheckpoint(t, auditor, 0, 0)
	const rounds, per = 5, 1000
	for range rounds {
		apps := make([]*applicationv1.NewApplication, per)
		for i := range apps {
			apps[i] = boarding(newStudent())
		}
		submit(t, officer, "S001", apps...)
	}
	var before int64
	if err := e.pool.QueryRow(ctx, `SELECT pg_relation_size('trail_tx') + pg_total_relation_size('trail_leaves')`).Scan(&before); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	batch := events.MustNew(time.Now(), financeOfficer, events.Keys{BatchID: "B-cost"}, &eventsv1.BatchConfirmed{})
	e.publish(t, batch, batch.GetEventId())
	for e.count(t, `SELECT count(*) FROM trail_checkpoints WHERE reason = 'batch B-cost confirmed'`) != 1 {
		if time.Since(start) > 60*time.Second {
			t.Fatal("no checkpoint in time")
		}
		time.Sleep(5 * time.Millisecond)
	}
	took := time.Since(start)
	cp := waitCheckpoint(t, auditor, rounds*per, first.GetCheckpoint().GetStreamSequence())
	var txIndex, leaves int64
	if err := e.pool.QueryRow(ctx, `SELECT pg_relation_size('trail_tx'), pg_total_relation_size('trail_leaves')`).Scan(&txIndex, &leaves); err != nil {
		t.Fatal(err)
	}
	n := int64(cp.GetCheckpoint().GetTreeSize())
	t.Logf("checkpoint over %d new entries: %v from the event's publication to the committed checkpoint (%.1f µs per entry)",
		n, took, float64(took.Microseconds())/float64(n))
	t.Logf("storage per entry: trail.tx index %d B, trail_leaves with its indexes %d B (%d B before the entries)", txIndex/n, leaves/n, before)
	start = time.Now()
	v, err := auditor.VerifyTrail(ctx, &applicationv1.VerifyTrailRequest{ApplicationId: mustFirstID(t, e)})
	if err != nil || !v.GetOk() {
		t.Fatalf("VerifyTrail: %v %v", v, err)
	}
	t.Logf("VerifyTrail of one application against a tree of %d leaves: %v", n, time.Since(start))
	if per := took / time.Duration(n); per > time.Millisecond {
		t.Errorf("the anchor costs %v per entry; want well under a millisecond", per)
	}
}

func mustFirstID(t *testing.T, e *env) string {
	t.Helper()
	var id string
	if err := e.pool.QueryRow(context.Background(), `SELECT id::text FROM applications LIMIT 1`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}
