package app

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/edubureau/studentaid/services/bureau-review/internal/domain"
)

// traceContext is the W3C Trace Context propagator, used to store a span
// context with a review item and read it back later for a span link.
var traceContext = propagation.TraceContext{}

// traceContextOf returns the W3C traceparent and tracestate of ctx's span.
func traceContextOf(ctx context.Context) (traceparent, tracestate string) {
	c := propagation.MapCarrier{}
	traceContext.Inject(ctx, c)
	return c.Get("traceparent"), c.Get("tracestate")
}

// SpanContextOf parses a stored traceparent/tracestate; the result is not
// valid when they are empty or malformed.
func SpanContextOf(traceparent, tracestate string) trace.SpanContext {
	if traceparent == "" {
		return trace.SpanContext{}
	}
	c := propagation.MapCarrier{"traceparent": traceparent}
	if tracestate != "" {
		c["tracestate"] = tracestate
	}
	return trace.SpanContextFromContext(traceContext.Extract(context.Background(), c))
}

// linkArrivals links ctx's span to the trace in which each of rs arrived at
// the bureau (which continues the school's and the submission's trace). The
// tracing SDK keeps the first 128 links of a span and drops the rest.
func linkArrivals(ctx context.Context, rs []*domain.Review) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	for _, r := range rs {
		if sc := SpanContextOf(r.TraceParent, r.TraceState); sc.IsValid() {
			span.AddLink(trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{
				attribute.String("application.id", r.ApplicationID),
				attribute.String("link.kind", "school_review"),
			}})
		}
	}
}
