// Package outbox writes events in the caller's transaction and relays them to
// JetStream, with the event ID as the message ID and the writer's trace
// context in the message headers.
package outbox

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/telemetry"
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

// Traced is an event with the context of the work that caused it; its trace
// context is stored with the event.
type Traced struct {
	Ctx   context.Context //nolint:containedctx // read once, for its trace context, when the row is written
	Event *eventsv1.Event
}

// Append writes evs to the outbox inside tx. The trace context of ctx is
// stored with each event so that publishing and consuming it continue the
// same trace.
func Append(ctx context.Context, tx db.Tx, evs ...*eventsv1.Event) error {
	items := make([]Traced, len(evs))
	for i, ev := range evs {
		items[i] = Traced{Ctx: ctx, Event: ev}
	}
	return AppendTraced(ctx, tx, items...)
}

// AppendTraced writes events that belong to different traces (a batch of
// consumed events, a group of payments) inside tx, each with its own trace
// context.
func AppendTraced(ctx context.Context, tx db.Tx, items ...Traced) error {
	if len(items) == 0 {
		return nil
	}
	rows := make([][]any, 0, len(items))
	for i, it := range items {
		recordDecision(it, i)
		payload, err := events.Marshal(it.Event)
		if err != nil {
			return fmt.Errorf("outbox: encode %s: %w", it.Event.GetType(), err)
		}
		traceparent, tracestate := telemetry.TraceContextOf(it.Ctx)
		rows = append(rows, []any{it.Event.GetEventId(), events.Subject(it.Event.GetType()), payload, traceparent, tracestate})
	}
	return db.InsertRows(ctx, tx, "outbox", []string{"event_id", "subject", "payload", "traceparent", "tracestate"}, rows)
}

// maxDecisionEvents bounds the span events one span gets for the facts it
// writes (the SDK keeps 128 by default).
const maxDecisionEvents = 100

// recordDecision adds the fact an event states (approved, rejected,
// confirmed, paid, …) as a span event of the span that decided it, with
// the application or batch it is about, so that a trace shows what was
// decided, not only that SQL ran.
func recordDecision(it Traced, i int) {
	span := trace.SpanFromContext(it.Ctx)
	if i >= maxDecisionEvents || !span.IsRecording() {
		return
	}
	attrs := make([]attribute.KeyValue, 0, 3)
	attrs = append(attrs, attribute.String("event.type", it.Event.GetType()))
	if id := it.Event.GetApplicationId(); id != "" {
		attrs = append(attrs, attribute.String("application.id", id))
	}
	if id := it.Event.GetBatchId(); id != "" {
		attrs = append(attrs, attribute.String("batch.id", id))
	}
	span.AddEvent(it.Event.GetType(), trace.WithAttributes(attrs...))
}
