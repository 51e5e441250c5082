package natsx_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/edubureau/studentaid/internal/devtools/testenv"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/natsx"
	"github.com/edubureau/studentaid/pkg/outbox"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
)

// BenchmarkConsumerDedup applies events through a natsx.Consumer with a
// no-op handler: what is measured is the consumer machinery itself — fetch,
// decode, one transaction per fetched batch with an inbox insert per event,
// commit, ack. One operation is one event. In "redelivered", every event is
// in the stream twice (under two message IDs, as after a relay crash past
// JetStream's duplicate window), so half the events are dropped by the inbox.
func BenchmarkConsumerDedup(b *testing.B) {
	for _, copies := range []int{1, 2} {
		name := "fresh"
		if copies == 2 {
			name = "redelivered"
		}
		b.Run(name, func(b *testing.B) { benchConsume(b, copies) })
	}
}

func benchConsume(b *testing.B, copies int) {
	b.Helper()
	ctx := context.Background()
	pool, _ := testenv.Pool(b, "bench")
	if err := db.Migrate(ctx, pool, "bench", outbox.Migrations()); err != nil {
		b.Fatal(err)
	}
	nc, js, err := natsx.Connect(testenv.NATS(b), "bench", natsx.WithNKeySeed(testenv.NATSSeed(b, natsx.AdminIdentity)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	if err := natsx.EnsureStreams(ctx, js); err != nil {
		b.Fatal(err)
	}

	// Publish b.N events in total (b.N/copies distinct ones) before timing.
	distinct := max(b.N/copies, 1)
	subject := events.Subject(events.TypeApplicationSubmitted)
	actor := events.Actor("officer-S001", "school_officer", "S001")
	for i := range distinct {
		ev := events.MustNew(time.Now(), actor,
			events.Keys{ApplicationID: uuid.NewString(), SchoolCode: "S001", ProgramCode: "PRESCHOOL_AID", Term: "2017-autumn"},
			&eventsv1.ApplicationSubmitted{AmountFen: 50000, Stage: "preschool"})
		payload, err := events.Marshal(ev)
		if err != nil {
			b.Fatal(err)
		}
		for c := range copies {
			m := nats.NewMsg(subject)
			m.Data = payload
			m.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("%s-%d", ev.GetEventId(), c))
			if _, err := js.PublishMsgAsync(m); err != nil {
				b.Fatalf("publish %d: %v", i, err)
			}
		}
		if i%1000 == 999 || i == distinct-1 {
			// Stay under the connection's limit of outstanding async publishes.
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(time.Minute):
				b.Fatal("publishing did not complete")
			}
		}
	}
	total := distinct * copies

	var handled atomic.Int64
	cons := &natsx.Consumer{
		Name:     "bench",
		Subjects: []string{subject},
		Handle: func(context.Context, pgx.Tx, *eventsv1.Event) error {
			handled.Add(1)
			return nil
		},
	}
	cons.Bind(pool, js, slog.New(slog.DiscardHandler), nil)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)

	b.ReportAllocs()
	b.ResetTimer()
	go func() { done <- cons.Run(runCtx) }()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		if info, err := benchConsumerInfo(ctx, js); err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.Delivered.Consumer >= uint64(total) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("consumer did not finish: %d of %d handled", handled.Load(), distinct)
		}
		time.Sleep(2 * time.Millisecond)
	}
	b.StopTimer()
	stop()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "events/s")
	if got := handled.Load(); got != int64(distinct) {
		b.Fatalf("handler ran %d times for %d distinct events", got, distinct)
	}
	var inbox int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM inbox`).Scan(&inbox); err != nil {
		b.Fatal(err)
	}
	if inbox != distinct {
		b.Fatalf("inbox holds %d events, want %d", inbox, distinct)
	}
}

func benchConsumerInfo(ctx context.Context, js jetstream.JetStream) (*jetstream.ConsumerInfo, error) {
	c, err := js.Consumer(ctx, natsx.EventStream, "bench")
	if err != nil {
		return nil, err
	}
	return c.Info(ctx)
}
