package ports

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	"github.com/edubureau/studentaid/internal/devtools/testenv"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/natsx"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	"github.com/edubureau/studentaid/services/reporting/internal/app"
	"github.com/edubureau/studentaid/services/reporting/migrations"
)

// chainOf is application i's events (from start, a minute apart per
// application): the submission, three steps, the payment, and for one
// application in ten a refund and its receipt, as BenchmarkApplyEvents
// applies them. students is how many students the applications share.
func chainOf(i, students int, start time.Time) []*eventsv1.Event {
	keys := events.Keys{ApplicationID: fmt.Sprintf("00000000-0000-0000-0007-%012d", i), SchoolCode: fmt.Sprintf("S%03d", i%500),
		ProgramCode: "PRESCHOOL_AID", Term: "2017-autumn"}
	at := start.Add(time.Duration(i) * time.Minute)
	actor := events.Actor("bench", "service", "BUREAU")
	ev := func(after time.Duration, body proto.Message) *eventsv1.Event {
		return events.MustNew(at.Add(after), actor, keys, body)
	}
	pay := fmt.Sprintf("p%d", i)
	out := []*eventsv1.Event{
		ev(0, &eventsv1.ApplicationSubmitted{StudentIdHash: fmt.Sprintf("h%d", i%students), Stage: "preschool",
			FundingSource: "government", AmountFen: 50_000, PolicyVersion: 1, GovernmentTotal: true,
			FundingSharesBp: map[string]int32{"central_provincial": 8000, "municipal": 2000}}),
		ev(time.Hour, &eventsv1.SchoolReviewApproved{}),
		ev(2*time.Hour, &eventsv1.NoticePassed{}),
		ev(3*time.Hour, &eventsv1.BureauApproved{}),
		ev(30*24*time.Hour, &eventsv1.PaymentSucceeded{PaymentId: pay, AmountFen: 50_000}),
	}
	if i%10 == 0 {
		out = append(out,
			ev(60*24*time.Hour, &eventsv1.RefundOpened{RefundId: "r" + pay, PaymentId: pay, ClueId: "c" + pay, AmountFen: 10_000}),
			ev(70*24*time.Hour, &eventsv1.RefundReceiptRecorded{RefundId: "r" + pay, AmountFen: 10_000}))
	}
	return out
}

// stream is n applications' events as the consumer sees them: each
// application's in order, interleaved with those of the applications
// before and after it (event k of application i comes at i + 37k).
func stream(n int) []*eventsv1.Event {
	start := time.Date(2017, time.March, 1, 0, 0, 0, 0, time.UTC)
	type keyed struct {
		key int
		ev  *eventsv1.Event
	}
	var all []keyed
	for i := range n {
		for k, ev := range chainOf(i, n*7/10+1, start) {
			all = append(all, keyed{i + 37*k, ev})
		}
	}
	slices.SortStableFunc(all, func(a, b keyed) int { return a.key - b.key })
	out := make([]*eventsv1.Event, len(all))
	for i, k := range all {
		out[i] = k.ev
	}
	return out
}

// BenchmarkApplyBatch measures the consumer's cost per application as it
// applies a fetched batch of events (batchEvents of them, about 100
// applications' worth) in one transaction: one by one through Handle (as
// without HandleBatch), and through HandleBatch. One op is one
// application's events (5 or 7).
func BenchmarkApplyBatch(b *testing.B) {
	const batchEvents = 500
	for _, mode := range []string{"Handle", "HandleBatch"} {
		b.Run(mode, func(b *testing.B) {
			ctx := context.Background()
			pool, _ := testenv.Pool(b, "reporting")
			if err := db.Migrate(ctx, pool, "reporting", migrations.FS()); err != nil {
				b.Fatal(err)
			}
			c := Consumer(app.New(app.Deps{Pool: pool}))
			evs := stream(b.N)
			b.ResetTimer()
			for len(evs) > 0 {
				batch := evs[:min(batchEvents, len(evs))]
				evs = evs[len(batch):]
				if err := db.InTx(ctx, pool, func(tx pgx.Tx) error {
					if mode == "HandleBatch" {
						ds := make([]natsx.Delivery, len(batch))
						for i, ev := range batch {
							ds[i] = natsx.Delivery{Ctx: ctx, Event: ev}
						}
						return c.HandleBatch(ctx, tx, ds)
					}
					for _, ev := range batch {
						if err := c.Handle(ctx, tx, ev); err != nil {
							return err
						}
					}
					return nil
				}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
