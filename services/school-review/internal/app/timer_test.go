package app

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

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
