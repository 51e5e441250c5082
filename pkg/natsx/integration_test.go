package natsx_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/edubureau/studentaid/internal/devtools/testenv"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/natsx"
	"github.com/edubureau/studentaid/pkg/outbox"
	"github.com/edubureau/studentaid/pkg/service/servicetest"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
)

type bundle struct {
	reg   *prometheus.Registry
	pool  *pgxpool.Pool
	js    jetstream.JetStream
	nc    *nats.Conn
	url   string
	relay *outbox.Relay
	log   *slog.Logger
}

func setup(t *testing.T) bundle {
	t.Helper()
	ctx := context.Background()
	pool, _ := testenv.Pool(t, "svc")
	if err := db.Migrate(ctx, pool, "svc", outbox.Migrations()); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE effects (application_id text, event_id uuid)`); err != nil {
		t.Fatal(err)
	}
	url := testenv.NATS(t)
	nc, js, err := natsx.Connect(url, "test", natsx.WithNKeySeed(testenv.NATSSeed(t, natsx.AdminIdentity)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if err := natsx.EnsureStreams(ctx, js); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	return bundle{reg: reg, pool: pool, js: js, nc: nc, url: url, relay: outbox.NewRelay(pool, js, log, outbox.WithRegisterer(reg, "svc")), log: log}
}

func submitted(t *testing.T, appID string) *eventsv1.Event {
	t.Helper()
	return events.MustNew(time.Now(), events.Actor("officer-1", "school_officer", "S001"),
		events.Keys{ApplicationID: appID, SchoolCode: "S001", ProgramCode: "PRESCHOOL_AID", Term: "2017-autumn"},
		&eventsv1.ApplicationSubmitted{AmountFen: 50000, Stage: "preschool"})
}

func appendEvents(t *testing.T, b bundle, evs ...*eventsv1.Event) {
	t.Helper()
	err := db.InTx(context.Background(), b.pool, func(tx pgx.Tx) error { return outbox.Append(context.Background(), tx, evs...) })
	if err != nil {
		t.Fatal(err)
	}
}

func runConsumer(t *testing.T, b bundle, c *natsx.Consumer) {
	t.Helper()
	c.Bind(b.pool, b.js, b.log, nil)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := c.Run(ctx); err != nil {
			t.Errorf("consumer: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
}

func recordEffect(ctx context.Context, tx pgx.Tx, ev *eventsv1.Event) error {
	_, err := tx.Exec(ctx, `INSERT INTO effects VALUES ($1, $2)`, ev.GetApplicationId(), ev.GetEventId())
	return err
}

// counter reads a counter from reg.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no counter %s", name)
	return 0
}

func waitCount(t *testing.T, pool *pgxpool.Pool, query string, want int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var got int
	for time.Now().Before(deadline) {
		if err := pool.QueryRow(context.Background(), query).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got == want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: got %d, want %d", query, got, want)
}

// An event written to the outbox is relayed once, consumed once, and a
// second relay of the same rows (a crash before marking them published)
// changes nothing.
func TestOutboxRelayAndIdempotentConsumer(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	evs := make([]*eventsv1.Event, 0, 40)
	for i := range 40 { // above the COPY threshold
		evs = append(evs, submitted(t, "app-"+string(rune('a'+i%26))+string(rune('0'+i/26))))
	}
	appendEvents(t, b, evs...)
	appendEvents(t, b, submitted(t, "single")) // below the threshold: INSERT path

	n, err := b.relay.RelayOnce(ctx)
	if err != nil || n != 41 {
		t.Fatalf("RelayOnce = %d, %v; want 41", n, err)
	}
	if events, msgs := counter(t, b.reg, "aid_outbox_published_total"), counter(t, b.reg, "aid_outbox_messages_total"); events != 41 || msgs != 1 {
		t.Fatalf("relay metrics: %v events in %v messages, want 41 in 1", events, msgs)
	}
	if backlog, _ := outbox.Backlog(ctx, b.pool); backlog != 0 {
		t.Fatalf("backlog after relay = %d", backlog)
	}
	// Simulate a relay that published but crashed before marking the rows.
	if _, err := b.pool.Exec(ctx, `UPDATE outbox SET published_at = NULL`); err != nil {
		t.Fatal(err)
	}
	if n, err := b.relay.RelayOnce(ctx); err != nil || n != 41 {
		t.Fatalf("second RelayOnce = %d, %v", n, err)
	}
	info, err := b.js.Stream(ctx, natsx.EventStream)
	if err != nil {
		t.Fatal(err)
	}
	// The 41 rows of one subject went out as one frame; publishing the same
	// rows again made the same frame, which the stream dropped by its ID.
	si, _ := info.Info(ctx)
	if si.State.Msgs != 1 {
		t.Fatalf("stream holds %d messages, want 1 frame (duplicates must be dropped by message ID)", si.State.Msgs)
	}
	frame, err := info.GetMsg(ctx, si.State.FirstSeq)
	if err != nil {
		t.Fatal(err)
	}
	framed, err := natsx.Unpack(frame.Header, frame.Data)
	if err != nil || len(framed) != 41 || frame.Header.Get(natsx.HeaderFrame) != "41" {
		t.Fatalf("frame: %d events, header %q, %v", len(framed), frame.Header.Get(natsx.HeaderFrame), err)
	}
	for i, r := range framed[:40] {
		if r.Event.GetEventId() != evs[i].GetEventId() {
			t.Fatalf("framed event %d is %s, want %s (outbox order)", i, r.Event.GetEventId(), evs[i].GetEventId())
		}
	}
	if framed[40].Event.GetApplicationId() != "single" {
		t.Fatalf("last framed event is about %s, want single", framed[40].Event.GetApplicationId())
	}

	// Publish one event a third time under a different message ID: the
	// stream keeps it, the consumer's inbox drops it.
	payload, _ := events.Marshal(evs[0])
	msg := nats.NewMsg(events.Subject(evs[0].GetType()))
	msg.Data = payload
	msg.Header.Set(jetstream.MsgIDHeader, "replay-"+evs[0].GetEventId())
	if _, err := b.js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}

	runConsumer(t, b, &natsx.Consumer{Name: "svc", Subjects: []string{"aid.application.>"}, Handle: recordEffect})
	waitCount(t, b.pool, `SELECT count(*) FROM inbox`, 41)
	waitCount(t, b.pool, `SELECT count(*) FROM effects`, 41)
	waitCount(t, b.pool, `SELECT count(DISTINCT event_id) FROM effects`, 41)

	// The operator re-publishes the whole outbox: nothing changes.
	n, err = outbox.Republish(ctx, b.pool, b.js, 1, 1<<62)
	if err != nil || n != 41 {
		t.Fatalf("Republish = %d, %v; want 41", n, err)
	}
	si, _ = info.Info(ctx)
	if si.State.Msgs != 2 {
		t.Fatalf("stream holds %d messages after re-publishing, want 2 (the frame and the replay)", si.State.Msgs)
	}

	// A part of it, framed differently (rows 11–20 of 41), is a new message
	// for the stream; the consumer's inbox drops each of its events.
	var lo, hi int64
	if err := b.pool.QueryRow(ctx, `SELECT min(id) + 10, min(id) + 19 FROM outbox`).Scan(&lo, &hi); err != nil {
		t.Fatal(err)
	}
	if n, err := outbox.Republish(ctx, b.pool, b.js, lo, hi); err != nil || n != 10 {
		t.Fatalf("Republish part = %d, %v; want 10", n, err)
	}
	si, _ = info.Info(ctx)
	if si.State.Msgs != 3 {
		t.Fatalf("stream holds %d messages after re-publishing a part, want 3", si.State.Msgs)
	}
	servicetest.AwaitConsumed(t, b.js, "svc")
	waitCount(t, b.pool, `SELECT count(*) FROM effects`, 41)
}

// A failing handler leaves no effect and no inbox row; the event is
// redelivered and applied once it succeeds. A permanent error dead-letters.
func TestConsumerRetriesAndDeadLetters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	flaky, poison, early := submitted(t, "flaky"), submitted(t, "poison"), submitted(t, "early")
	appendEvents(t, b, flaky, poison, early)
	if _, err := b.relay.RelayOnce(ctx); err != nil {
		t.Fatal(err)
	}
	// The three travel in one frame: the poison event is dead-lettered
	// alone, the others are applied once each whatever their retries.
	stream, err := b.js.Stream(ctx, natsx.EventStream)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := stream.GetLastMsgForSubject(ctx, "aid.>"); err != nil || m.Header.Get(natsx.HeaderFrame) != "3" {
		t.Fatalf("want one frame of 3 events: %v", err)
	}
	var flakyCalls, earlyCalls atomic.Int32
	var fixed atomic.Bool
	runConsumer(t, b, &natsx.Consumer{Name: "svc", Subjects: []string{"aid.>"}, Handle: func(ctx context.Context, tx pgx.Tx, ev *eventsv1.Event) error {
		switch ev.GetApplicationId() {
		case "flaky":
			if flakyCalls.Add(1) < 3 {
				return errors.New("database hiccup")
			}
		case "poison":
			if !fixed.Load() {
				return natsx.Permanent(errors.New("cannot apply"))
			}
		case "early":
			if earlyCalls.Add(1) < 4 {
				return natsx.ErrNotYet
			}
		}
		return recordEffect(ctx, tx, ev)
	}})
	waitCount(t, b.pool, `SELECT count(*) FROM effects`, 2)
	waitCount(t, b.pool, `SELECT count(*) FROM effects WHERE application_id IN ('flaky', 'early')`, 2)
	waitCount(t, b.pool, `SELECT count(*) FROM inbox`, 2)

	dead, err := b.js.Stream(ctx, natsx.DeadStream)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		si, _ := dead.Info(ctx)
		if si.State.Msgs == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dead-letter stream holds %d messages, want 1", si.State.Msgs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	m, err := dead.GetLastMsgForSubject(ctx, natsx.DeadPrefix+">")
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Header.Get(natsx.HeaderError); got == "" || m.Header.Get(natsx.HeaderOriginalSubject) != events.Subject(events.TypeApplicationSubmitted) {
		t.Fatalf("dead letter headers = %v", m.Header)
	}

	// Once the handler is fixed, the operator replays the dead letter; it
	// takes effect once and leaves the dead-letter stream.
	dls, err := natsx.ListDead(ctx, b.js, "svc")
	if err != nil || len(dls) != 1 || dls[0].EventID == "" {
		t.Fatalf("ListDead = %+v, %v", dls, err)
	}
	fixed.Store(true)
	if err := natsx.ReplayDead(ctx, b.js, dls[0].Sequence); err != nil {
		t.Fatal(err)
	}
	waitCount(t, b.pool, `SELECT count(*) FROM effects WHERE application_id = 'poison'`, 1)
	if left, _ := natsx.ListDead(ctx, b.js, ""); len(left) != 0 {
		t.Fatalf("dead letters left after replay: %d", len(left))
	}
}
