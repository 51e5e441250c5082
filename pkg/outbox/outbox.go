// Package outbox writes events in the caller's transaction and relays them to
// JetStream, with the event ID as the message ID and the writer's trace
// context in the message headers.
package outbox

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/edubureau/studentaid/pkg/events"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the outbox and inbox tables' migrations, to be applied
// in each service's schema together with its own.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err)
	}
	return sub
}

// copyThreshold is the batch size from which Append uses COPY.
const copyThreshold = 16

// Append writes evs to the outbox inside tx. The trace context of ctx is
// stored with each event so that publishing and consuming it continue the
// same trace.
func Append(ctx context.Context, tx pgx.Tx, evs ...*eventsv1.Event) error {
	if len(evs) == 0 {
		return nil
	}
	carrier := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(ctx, carrier)
	traceparent, tracestate := carrier.Get("traceparent"), carrier.Get("tracestate")

	rows := make([][]any, 0, len(evs))
	for _, ev := range evs {
		payload, err := events.Marshal(ev)
		if err != nil {
			return fmt.Errorf("outbox: encode %s: %w", ev.GetType(), err)
		}
		rows = append(rows, []any{ev.GetEventId(), events.Subject(ev.GetType()), payload, traceparent, tracestate})
	}
	if len(rows) >= copyThreshold {
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"outbox"},
			[]string{"event_id", "subject", "payload", "traceparent", "tracestate"}, pgx.CopyFromRows(rows))
		if err != nil {
			return fmt.Errorf("outbox: copy %d events: %w", len(rows), err)
		}
		return nil
	}
	batch := &pgx.Batch{}
	for _, r := range rows {
		batch.Queue(`INSERT INTO outbox (event_id, subject, payload, traceparent, tracestate) VALUES ($1, $2, $3, $4, $5)`, r...)
	}
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("outbox: insert %d events: %w", len(rows), err)
	}
	return nil
}
