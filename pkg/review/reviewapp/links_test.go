package reviewapp_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/edubureau/studentaid/pkg/review"
	"github.com/edubureau/studentaid/pkg/review/reviewapp"
	"github.com/edubureau/studentaid/pkg/telemetry"
)

type state string

// TestAddLinksToArrival checks that a decision's span links to the span in
// which each item arrived, with its own trace, and skips items without a
// readable stored context.
func TestAddLinksToArrival(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"submission", "school_review"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			rec := tracetest.NewSpanRecorder()
			tracer := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)).Tracer("test")

			consumeCtx, consume := tracer.Start(context.Background(), "process an arrival")
			tp, ts := telemetry.TraceContextOf(consumeCtx)
			consume.End()
			if tp == "" {
				t.Fatal("no traceparent stored for the arrival")
			}

			decideCtx, decide := tracer.Start(context.Background(), "Decide")
			reviewapp.AddLinks(decideCtx, []*review.Item[state]{
				{Arrival: review.Arrival{ApplicationID: "a1"}, TraceParent: tp, TraceState: ts},
				{Arrival: review.Arrival{ApplicationID: "a2"}},                         // no stored context: no link
				{Arrival: review.Arrival{ApplicationID: "a3"}, TraceParent: "garbage"}, // unreadable: no link
				{Arrival: review.Arrival{ApplicationID: "a4"}, TraceParent: "00-zz"},   // unreadable: no link
			}, kind)
			decide.End()

			ended := rec.Ended()
			if len(ended) != 2 {
				t.Fatalf("%d spans ended", len(ended))
			}
			links := ended[1].Links()
			if len(links) != 1 {
				t.Fatalf("%d links, want 1", len(links))
			}
			if got, want := links[0].SpanContext.SpanID(), consume.SpanContext().SpanID(); got != want {
				t.Fatalf("link to span %s, want the arrival's %s", got, want)
			}
			if got, want := links[0].SpanContext.TraceID(), consume.SpanContext().TraceID(); got != want {
				t.Fatalf("link to trace %s, want %s", got, want)
			}
			attrs := attribute.NewSet(links[0].Attributes...)
			if v, _ := attrs.Value("link.kind"); v.AsString() != kind {
				t.Fatalf("link kind %q, want %q", v.AsString(), kind)
			}
			if v, _ := attrs.Value("application.id"); v.AsString() != "a1" {
				t.Fatalf("link application %q, want a1", v.AsString())
			}
			if ended[1].SpanContext().TraceID() == consume.SpanContext().TraceID() {
				t.Fatal("the decision should have its own trace, linked to the arrival")
			}
		})
	}
}
