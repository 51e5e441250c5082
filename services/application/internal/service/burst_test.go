package service_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/natsx"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
	commonv1 "github.com/edubureau/studentaid/proto/gen/aid/common/v1"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
)

// step is one event of an application's expected trail.
type step struct {
	ev     *eventsv1.Event
	status commonv1.ApplicationStatus
	batch  string
}

// publishBurst publishes evs asynchronously, in order, as fast as JetStream
// takes them; msgIDs[i] is the Nats-Msg-Id of evs[i].
func (e *env) publishBurst(t *testing.T, evs []*eventsv1.Event, msgIDs []string) {
	t.Helper()
	for i, ev := range evs {
		b, err := events.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		m := nats.NewMsg(events.Subject(ev.GetType()))
		m.Data = b
		m.Header.Set(jetstream.MsgIDHeader, msgIDs[i])
		if _, err := e.js.PublishMsgAsync(m); err != nil {
			t.Fatalf("publish %s: %v", ev.GetType(), err)
		}
	}
	select {
	case <-e.js.PublishAsyncComplete():
	case <-time.After(15 * time.Second):
		t.Fatal("burst not acknowledged by JetStream in time")
	}
}

// TestBurstOfEvents publishes a few hundred events about many applications
// at once, so that the consumer applies them in batches in which several
// events move the same application, with duplicates, an early event and an
// impossible one, and checks every application's status and full trail.
func TestBurstOfEvents(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := context.Background()
	officer := e.officer("S001")
	auditor := e.client("aud-1", auth.RoleAuditor, "AUDIT")
	const n = 100
	var news []*applicationv1.NewApplication
	for range n {
		news = append(news, boarding(newStudent()))
	}
	apps := submit(t, officer, "S001", news...)
	S := func(s string) commonv1.ApplicationStatus {
		return commonv1.ApplicationStatus(commonv1.ApplicationStatus_value["APPLICATION_STATUS_"+s])
	}
	trails := make([][]step, n) // the expected trail of each application after submission
	var burst []*eventsv1.Event
	var msgIDs []string
	add := func(i int, ev *eventsv1.Event, status, batch string) {
		trails[i] = append(trails[i], step{ev, S(status), batch})
		burst, msgIDs = append(burst, ev), append(msgIDs, ev.GetEventId())
	}
	batch1, batch2 := uuid.NewString(), uuid.NewString()

	// Burst 1, step by step across the applications: all approved, passed
	// the notice and approved by the bureau; the first 20 also batched,
	// ordered and paid.
	for i, a := range apps {
		add(i, downstream(a, schoolReviewer, "", &eventsv1.SchoolReviewApproved{HardshipLevel: "difficult", AmountFen: 50000}), "IN_NOTICE", "")
	}
	// A duplicate in the same batch, re-published under another message ID.
	burst, msgIDs = append(burst, trails[5][0].ev), append(msgIDs, trails[5][0].ev.GetEventId()+"-again")
	for i, a := range apps {
		add(i, downstream(a, noticeTimer, "", &eventsv1.NoticePassed{HardshipLevel: "difficult", AmountFen: 50000}), "SCHOOL_APPROVED", "")
	}
	for i, a := range apps {
		add(i, downstream(a, bureauReviewer, "", &eventsv1.BureauApproved{AmountFen: 50000}), "BUREAU_APPROVED", "")
	}
	// The paid ones one application after the other.
	for i, a := range apps[:20] {
		pay := fmt.Sprintf("pay-%03d", i)
		add(i, downstream(a, financeSystem, batch1, &eventsv1.ItemBatched{AmountFen: 50000}), "BUREAU_APPROVED", batch1)
		add(i, downstream(a, financeOfficer, batch1, &eventsv1.PaymentOrdered{PaymentId: pay, AmountFen: 50000, Attempt: 1}), "CONFIRMED", batch1)
		add(i, downstream(a, payoutSystem, batch1, &eventsv1.PaymentSucceeded{PaymentId: pay, AmountFen: 50000, BankRef: "R" + pay}), "PAID", batch1)
	}
	burst1 := len(burst)

	// Hold the consumer on the first application's row until the whole
	// burst has been delivered to it, so that the rest forms full batches.
	lock, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback(ctx)
	if _, err := lock.Exec(ctx, `SELECT 1 FROM applications WHERE id = $1 FOR UPDATE`, apps[0].GetApplicationId()); err != nil {
		t.Fatal(err)
	}
	e.publishBurst(t, burst, msgIDs)
	cons, err := e.js.Consumer(ctx, natsx.EventStream, "application")
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.NumAckPending >= len(burst) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events delivered to the consumer", info.NumAckPending, len(burst))
		}
	}
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range apps {
		last := trails[i][len(trails[i])-1]
		e.waitFor(t, auditor, apps[i].GetApplicationId(), last.status.String(), hasStatus(last.status))
	}
	// The burst went in a few transactions (trail entries of one share
	// recorded_at), not one per event, several events of one application in one.
	var txs, maxPerApp int
	ids := make([]string, burst1)
	for i, ev := range burst[:burst1] {
		ids[i] = ev.GetEventId()
	}
	if err := e.pool.QueryRow(ctx, `SELECT count(DISTINCT recorded_at),
		  (SELECT max(c) FROM (SELECT count(*) AS c FROM trail WHERE event_id = ANY($1::uuid[]) GROUP BY application_id, recorded_at) x)
		FROM trail WHERE event_id = ANY($1::uuid[])`, ids).Scan(&txs, &maxPerApp); err != nil {
		t.Fatal(err)
	}
	if txs > 10 || maxPerApp < 3 {
		t.Fatalf("burst of %d events applied in %d transactions, at most %d events of one application in one", burst1, txs, maxPerApp)
	}

	// Burst 2: applications 20..39 batched and ordered, application 20's
	// order before its batching (it waits and is retried), a re-published
	// event applied long ago, and an impossible rejection of a paid one.
	burst, msgIDs = nil, nil
	for i := 20; i < 40; i++ {
		a := apps[i]
		batched := downstream(a, financeSystem, batch2, &eventsv1.ItemBatched{AmountFen: 50000})
		ordered := downstream(a, financeOfficer, batch2, &eventsv1.PaymentOrdered{PaymentId: fmt.Sprintf("pay-%03d", i), AmountFen: 50000, Attempt: 1})
		if i == 20 {
			burst, msgIDs = append(burst, ordered), append(msgIDs, ordered.GetEventId())
			trails[i] = append(trails[i], step{batched, S("BUREAU_APPROVED"), batch2}, step{ordered, S("CONFIRMED"), batch2})
			burst, msgIDs = append(burst, batched), append(msgIDs, batched.GetEventId())
			continue
		}
		add(i, batched, "BUREAU_APPROVED", batch2)
		add(i, ordered, "CONFIRMED", batch2)
	}
	burst, msgIDs = append(burst, trails[7][1].ev), append(msgIDs, trails[7][1].ev.GetEventId()+"-again")
	late := downstream(apps[0], bureauReviewer, "", &eventsv1.BureauRejected{Reason: "too late"})
	burst, msgIDs = append(burst, late), append(msgIDs, late.GetEventId())
	e.publishBurst(t, burst, msgIDs)
	for i := 20; i < 40; i++ {
		e.waitFor(t, auditor, apps[i].GetApplicationId(), "CONFIRMED", hasStatus(S("CONFIRMED")))
	}
	if dead := e.deadLetter(t, late.GetEventId()); !strings.Contains(dead.Headers().Get(natsx.HeaderError), "impossible") {
		t.Fatalf("dead letter error %q", dead.Headers().Get(natsx.HeaderError))
	}

	// Every application: status, amount, batch and the full trail in order.
	for i, a := range apps {
		id := a.GetApplicationId()
		want := trails[i]
		last := want[len(want)-1]
		cur, err := auditor.GetApplication(ctx, &applicationv1.GetApplicationRequest{ApplicationId: id})
		if err != nil {
			t.Fatal(err)
		}
		if cur.GetStatus() != last.status || cur.GetAmountFen() != 50000 || cur.GetBatchId() != last.batch || cur.GetHardshipLevel() != "difficult" {
			t.Errorf("application %d: %v", i, cur)
		}
		tr := trailOf(t, auditor, id)
		if len(tr) != len(want)+1 {
			t.Errorf("application %d: trail has %d entries, want %d", i, len(tr), len(want)+1)
			continue
		}
		if tr[0].GetType() != events.TypeApplicationSubmitted || tr[0].GetPrevHash() != strings.Repeat("0", 64) {
			t.Errorf("application %d: trail[0] = %v", i, tr[0])
		}
		for j, w := range want {
			x := tr[j+1]
			if x.GetPosition() != int64(j+2) || x.GetEventId() != w.ev.GetEventId() || x.GetType() != w.ev.GetType() ||
				x.GetStatus() != w.status || x.GetAmountFen() != 50000 || x.GetBatchId() != w.batch ||
				x.GetActor().GetUserId() != w.ev.GetActor().GetUserId() || x.GetPrevHash() != tr[j].GetHash() ||
				!x.GetOccurredAt().AsTime().Equal(w.ev.GetOccurredAt().AsTime().Truncate(time.Microsecond)) {
				t.Errorf("application %d: trail[%d] = %v, want %s -> %s", i, j+1, x, w.ev.GetType(), w.status)
			}
		}
		v, err := auditor.VerifyTrail(ctx, &applicationv1.VerifyTrailRequest{ApplicationId: id})
		if err != nil || !v.GetOk() || v.GetLength() != int64(len(want)+1) {
			t.Errorf("application %d: verify %v %v", i, v, err)
		}
	}
}
