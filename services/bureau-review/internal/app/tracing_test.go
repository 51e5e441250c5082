package app

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/edubureau/studentaid/pkg/telemetry"
	"github.com/edubureau/studentaid/services/bureau-review/internal/domain"
)

func TestDecisionLinksToArrival(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tracer := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)).Tracer("test")

	consumeCtx, consume := tracer.Start(context.Background(), "process aid.schoolreview.notice_passed.v1")
	tp, ts := telemetry.TraceContextOf(consumeCtx)
	consume.End()

	decideCtx, decide := tracer.Start(context.Background(), "Decide")
	linkArrivals(decideCtx, []*domain.Review{
		{ApplicationID: "a1", TraceParent: tp, TraceState: ts},
		{ApplicationID: "a2"},
		{ApplicationID: "a3", TraceParent: "00-zz"},
	})
	decide.End()

	ended := rec.Ended()
	if len(ended) != 2 {
		t.Fatalf("%d spans ended", len(ended))
	}
	links := ended[1].Links()
	if len(links) != 1 || links[0].SpanContext.SpanID() != consume.SpanContext().SpanID() ||
		links[0].SpanContext.TraceID() != consume.SpanContext().TraceID() {
		t.Fatalf("links %+v, want one to span %s", links, consume.SpanContext().SpanID())
	}
}
