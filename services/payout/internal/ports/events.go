package ports

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/natsx"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	"github.com/edubureau/studentaid/services/payout/internal/app"
)

// Subjects are the event subjects payout consumes.
func Subjects() []string {
	return []string{
		events.Subject(events.TypeApplicationSubmitted),
		events.Subject(events.TypePayeeCorrected),
		events.Subject(events.TypePaymentOrdered),
	}
}

// EventHandler applies one consumed event inside the consumer's transaction.
func EventHandler(a *app.Service) natsx.Handler {
	return func(ctx context.Context, tx pgx.Tx, ev *eventsv1.Event) error {
		switch ev.GetType() {
		case events.TypeApplicationSubmitted, events.TypePayeeCorrected:
			return a.SavePayee(ctx, tx, ev)
		case events.TypePaymentOrdered:
			return a.AddPayment(ctx, tx, ev)
		}
		return natsx.Permanent(fmt.Errorf("payout does not consume %s", ev.GetType()))
	}
}
