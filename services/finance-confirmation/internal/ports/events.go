package ports

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/natsx"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	"github.com/edubureau/studentaid/services/finance-confirmation/internal/app"
)

// Subjects are the event subjects finance-confirmation consumes.
func Subjects() []string {
	return []string{
		events.Subject(events.TypeBureauApproved),
		events.Subject(events.TypePaymentSucceeded),
		events.Subject(events.TypePaymentFailed),
		events.Subject(events.TypePayeeCorrected),
	}
}

// EventHandler applies one consumed event inside the consumer's transaction.
func EventHandler(a *app.Service) natsx.Handler {
	return func(ctx context.Context, tx pgx.Tx, ev *eventsv1.Event) error {
		switch ev.GetType() {
		case events.TypeBureauApproved:
			return a.AddApproved(ctx, tx, ev)
		case events.TypePaymentSucceeded, events.TypePaymentFailed:
			return a.RecordPaymentResult(ctx, tx, ev)
		case events.TypePayeeCorrected:
			return a.RecordPayeeCorrected(ctx, tx, ev)
		}
		return natsx.Permanent(fmt.Errorf("finance-confirmation does not consume %s", ev.GetType()))
	}
}
