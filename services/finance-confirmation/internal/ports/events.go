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

// BatchHandler applies a fetched batch of new events in stream order inside
// the consumer's transaction: each run of approvals, and each run of payment
// results, is applied by a few set-based statements; other events one by one
// between them. Any error rolls the batch back and the consumer applies its
// events singly through EventHandler.
func BatchHandler(a *app.Service) natsx.BatchHandler {
	single := EventHandler(a)
	return func(_ context.Context, tx pgx.Tx, ds []natsx.Delivery) error {
		for len(ds) > 0 {
			n := 1
			for n < len(ds) && kind(ds[n].Event) == kind(ds[0].Event) {
				n++
			}
			run := ds[:n]
			ds = ds[n:]
			var err error
			switch kind(run[0].Event) {
			case kindApproval:
				err = a.AddApprovedBatch(tx, run)
			case kindResult:
				err = a.RecordPaymentResults(tx, run)
			default:
				for _, d := range run {
					if err = single(d.Ctx, tx, d.Event); err != nil {
						break
					}
				}
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
}

const (
	kindOther = iota
	kindApproval
	kindResult
)

// kind groups the event types BatchHandler applies together.
func kind(ev *eventsv1.Event) int {
	switch ev.GetType() {
	case events.TypeBureauApproved:
		return kindApproval
	case events.TypePaymentSucceeded, events.TypePaymentFailed:
		return kindResult
	}
	return kindOther
}
