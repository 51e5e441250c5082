package reviewapp

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/edubureau/studentaid/pkg/review"
	"github.com/edubureau/studentaid/pkg/telemetry"
)

// Links are span links, of the given kind, to the traces in which rs
// arrived in the service, so that a step's trace leads to each item's
// earlier ones. Items without a readable stored context get none.
func Links[S ~string, R review.Reviewed[S]](rs []R, kind string) []trace.Link {
	links := make([]trace.Link, 0, len(rs))
	for _, r := range rs {
		it := r.Shared()
		if sc := telemetry.SpanContextOf(it.TraceParent, it.TraceState); sc.IsValid() {
			links = append(links, trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{
				attribute.String("application.id", it.ApplicationID),
				attribute.String("link.kind", kind),
			}})
		}
	}
	return links
}

// AddLinks adds Links(rs, kind) to ctx's span. The tracing SDK keeps the
// first 128 links of a span and drops the rest.
func AddLinks[S ~string, R review.Reviewed[S]](ctx context.Context, rs []R, kind string) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	for _, l := range Links(rs, kind) {
		span.AddLink(l)
	}
}
