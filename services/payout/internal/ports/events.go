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

// BatchHandler applies a fetched batch of new events in stream order inside
// the consumer's transaction: each run of payment orders is taken in by one
// statement, payee events one by one between them, so a payee that arrives
// before an order in the same batch is stored before it. Any error rolls the
// batch back and the consumer applies its events singly through EventHandler.
func BatchHandler(a *app.Service) natsx.BatchHandler {
	single := EventHandler(a)
	return func(_ context.Context, tx pgx.Tx, ds []natsx.Delivery) error {
		var orders []natsx.Delivery
		for _, d := range ds {
			if d.Event.GetType() == events.TypePaymentOrdered {
				orders = append(orders, d)
				continue
			}
			if err := a.AddPayments(tx, orders); err != nil {
				return err
			}
			orders = orders[:0]
			if err := single(d.Ctx, tx, d.Event); err != nil {
				return err
			}
		}
		return a.AddPayments(tx, orders)
	}
}
