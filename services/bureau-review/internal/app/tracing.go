package app

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/edubureau/studentaid/pkg/telemetry"
	"github.com/edubureau/studentaid/services/bureau-review/internal/domain"
)

// linkArrivals links ctx's span to the trace in which each of rs arrived at
// the bureau (which continues the school's and the submission's trace). The
// tracing SDK keeps the first 128 links of a span and drops the rest.
func linkArrivals(ctx context.Context, rs []*domain.Review) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	for _, r := range rs {
		if sc := telemetry.SpanContextOf(r.TraceParent, r.TraceState); sc.IsValid() {
			span.AddLink(trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{
				attribute.String("application.id", r.ApplicationID),
				attribute.String("link.kind", "school_review"),
			}})
		}
	}
}
