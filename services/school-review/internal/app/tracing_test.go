package app

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/edubureau/studentaid/pkg/telemetry"
	"github.com/edubureau/studentaid/services/school-review/internal/domain"
)

func TestDecisionLinksToSubmission(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tracer := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)).Tracer("test")

	consumeCtx, consume := tracer.Start(context.Background(), "process aid.application.submitted.v1")
	tp, ts := telemetry.TraceContextOf(consumeCtx)
	consume.End()
	if tp == "" {
		t.Fatal("no traceparent stored for the submission")
	}

	decideCtx, decide := tracer.Start(context.Background(), "Decide")
	linkSubmissions(decideCtx, []*domain.Review{
		{ApplicationID: "a1", TraceParent: tp, TraceState: ts},
		{ApplicationID: "a2"},                         // no stored context: no link
		{ApplicationID: "a3", TraceParent: "garbage"}, // unreadable: no link
	})
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
		t.Fatalf("link to span %s, want the submission's %s", got, want)
	}
	if got, want := links[0].SpanContext.TraceID(), consume.SpanContext().TraceID(); got != want {
		t.Fatalf("link to trace %s, want %s", got, want)
	}
	if ended[1].SpanContext().TraceID() == consume.SpanContext().TraceID() {
		t.Fatal("the decision should have its own trace, linked to the submission")
	}
}

func TestQuietContextRecordsNothing(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tracer := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)).Tracer("test")
	_, span := tracer.Start(quietContext(context.Background()), "SELECT due notices")
	span.End()
	if span.IsRecording() || len(rec.Ended()) != 0 {
		t.Fatal("a polling query under quietContext was recorded")
	}
}
