package telemetry_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/edubureau/studentaid/pkg/telemetry"
)

func TestStoredTraceContextRoundTrip(t *testing.T) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c},
		SpanID:     trace.SpanID{0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31},
		TraceFlags: trace.FlagsSampled,
	})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	tp, ts := telemetry.TraceContextOf(ctx)
	if tp != "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" || ts != "" {
		t.Fatalf("stored %q %q", tp, ts)
	}
	got := telemetry.SpanContextOf(tp, ts)
	if !got.IsValid() || !got.IsRemote() || got.TraceID() != sc.TraceID() || got.SpanID() != sc.SpanID() || !got.IsSampled() {
		t.Fatalf("read back %+v", got)
	}
	if parent := trace.SpanContextFromContext(telemetry.WithRemoteParent(context.Background(), tp, ts)); parent.SpanID() != sc.SpanID() {
		t.Fatalf("remote parent %+v", parent)
	}
}

func TestStoredTraceContextAbsentOrMalformed(t *testing.T) {
	if tp, ts := telemetry.TraceContextOf(context.Background()); tp != "" || ts != "" {
		t.Fatalf("no span stored as %q %q", tp, ts)
	}
	for _, tp := range []string{"", "garbage", "00-00000000000000000000000000000000-0000000000000000-01"} {
		if telemetry.SpanContextOf(tp, "").IsValid() {
			t.Errorf("%q parsed as a valid span context", tp)
		}
	}
}
