package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// traceContext is the W3C Trace Context propagator. Rows that outlive a
// request (outbox events, review items, payments) store their writer's span
// context in its two W3C fields, so that later work can continue or link to
// that trace.
var traceContext = propagation.TraceContext{}

// TraceContextOf returns the W3C traceparent and tracestate of ctx's span
// (empty when there is none), to be stored with a row.
func TraceContextOf(ctx context.Context) (traceparent, tracestate string) {
	c := propagation.MapCarrier{}
	traceContext.Inject(ctx, c)
	return c.Get("traceparent"), c.Get("tracestate")
}

// WithRemoteParent returns ctx carrying a stored traceparent/tracestate as
// its remote span context, so that a span started from it continues that
// trace. Empty or malformed fields leave ctx without one.
func WithRemoteParent(ctx context.Context, traceparent, tracestate string) context.Context {
	if traceparent == "" {
		return ctx
	}
	c := propagation.MapCarrier{"traceparent": traceparent}
	if tracestate != "" {
		c["tracestate"] = tracestate
	}
	return traceContext.Extract(ctx, c)
}

// SpanContextOf parses a stored traceparent/tracestate, e.g. for a span
// link; the result is not valid when they are empty or malformed.
func SpanContextOf(traceparent, tracestate string) trace.SpanContext {
	return trace.SpanContextFromContext(WithRemoteParent(context.Background(), traceparent, tracestate))
}
