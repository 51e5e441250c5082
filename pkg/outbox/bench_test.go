package outbox_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/edubureau/studentaid/internal/devtools/testenv"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/natsx"
	"github.com/edubureau/studentaid/pkg/outbox"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
)

// benchPool is a fresh database with the outbox and inbox tables in schema bench.
func benchPool(b *testing.B) *pgxpool.Pool {
	b.Helper()
	pool, _ := testenv.Pool(b, "bench")
	if err := db.Migrate(context.Background(), pool, "bench", outbox.Migrations()); err != nil {
		b.Fatal(err)
	}
	return pool
}

// benchJetStream is an embedded, durable (SyncAlways) JetStream with the event streams.
func benchJetStream(b *testing.B) jetstream.JetStream {
	b.Helper()
	nc, js, err := natsx.Connect(testenv.NATS(b), "bench", natsx.WithNKeySeed(testenv.NATSSeed(b, natsx.AdminIdentity)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	if err := natsx.EnsureStreams(context.Background(), js); err != nil {
		b.Fatal(err)
	}
	return js
}

// benchEvents returns n application.submitted events, as the application
// service writes them.
func benchEvents(n int) []*eventsv1.Event {
	out := make([]*eventsv1.Event, n)
	actor := events.Actor("officer-S001", "school_officer", "S001")
	for i := range out {
		out[i] = events.MustNew(time.Now(), actor,
			events.Keys{ApplicationID: uuid.NewString(), SchoolCode: "S001", ProgramCode: "BOARDING_SUBSIDY", Term: "2017-autumn"},
			&eventsv1.ApplicationSubmitted{AmountFen: 50000, Stage: "primary"})
	}
	return out
}

// BenchmarkAppend writes events to the outbox in one transaction per
// operation, as a bulk command does: one event (the batch-insert path), 10,
// and 100 (the COPY path). PostgreSQL runs with fsync on.
func BenchmarkAppend(b *testing.B) {
	for _, perTx := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("events=%d", perTx), func(b *testing.B) {
			ctx := context.Background()
			pool := benchPool(b)
			evs := benchEvents(b.N * perTx)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
					return outbox.Append(ctx, tx, evs[i*perTx:(i+1)*perTx]...)
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*perTx)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkRelayOnce publishes 500-row batches from the outbox to a durable
// JetStream and marks them published: one operation is one round.
func BenchmarkRelayOnce(b *testing.B) {
	const batch = 500
	ctx := context.Background()
	pool := benchPool(b)
	js := benchJetStream(b)
	relay := outbox.NewRelay(pool, js, slog.New(slog.DiscardHandler), outbox.WithBatchSize(batch))
	evs := benchEvents(b.N * batch)
	for i := 0; i < len(evs); i += batch {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return outbox.Append(ctx, tx, evs[i:i+batch]...) })
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		n, err := relay.RelayOnce(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if n != batch {
			b.Fatalf("relayed %d rows, want %d", n, batch)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
	left, err := outbox.Backlog(ctx, pool)
	if err != nil {
		b.Fatal(err)
	}
	if left != 0 {
		b.Fatalf("%d rows left unpublished", left)
	}
}
