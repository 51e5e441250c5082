package reviewapp

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/page"
	"github.com/edubureau/studentaid/pkg/review"
	"github.com/edubureau/studentaid/pkg/review/reviewdb"
)

// Reader reads a service's review items.
type Reader[S ~string, R any] interface {
	Get(ctx context.Context, q db.Querier, applicationID string) (R, error)
	List(ctx context.Context, q db.Querier, f review.Filter[S]) ([]R, error)
}

// Get returns one item; notFound(applicationID) when there is none or the
// caller may not see it (visible, when set, says whether it may). The span
// carries the item's keys.
func Get[S ~string, R review.Reviewed[S]](ctx context.Context, q db.Querier, t Reader[S, R], applicationID string,
	visible func(R) bool, notFound func(applicationID string) error) (R, error) {
	r, err := t.Get(ctx, q, applicationID)
	if errors.Is(err, reviewdb.ErrNotFound) || (err == nil && visible != nil && !visible(r)) {
		var zero R
		return zero, notFound(applicationID)
	}
	if err != nil {
		return r, err
	}
	SetSpanKeys(ctx, r.Shared())
	return r, nil
}

// List returns up to f.Limit items matching f and whether there are more.
// The span carries the school filtered on.
func List[S ~string, R any](ctx context.Context, q db.Querier, t Reader[S, R], f review.Filter[S]) ([]R, bool, error) {
	if f.SchoolCode != "" {
		trace.SpanFromContext(ctx).SetAttributes(attribute.String("school.code", f.SchoolCode))
	}
	limit := f.Limit
	f.Limit = limit + 1
	list, err := t.List(ctx, q, f)
	if err != nil {
		return nil, false, err
	}
	list, more := page.Trim(list, limit)
	return list, more, nil
}
