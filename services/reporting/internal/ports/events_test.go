package ports

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/proto"

	"github.com/edubureau/studentaid/internal/devtools/testenv"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/natsx"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	"github.com/edubureau/studentaid/services/reporting/internal/app"
	"github.com/edubureau/studentaid/services/reporting/migrations"
)

// mixedEvents is a seeded random chain: applications of students shared
// across schools, terms and programs walking the steps (objections,
// rejections and withdrawals with reasons, failed payments ordered again),
// paid grants and loans, refunds with receipts (some before their
// payment), clues, comparisons and loan repayments; shuffled, with one
// event in five delivered twice.
func mixedEvents(seed uint64) []*eventsv1.Event {
	r := rand.New(rand.NewPCG(seed, 7))
	start := time.Date(2017, time.March, 1, 0, 0, 0, 0, time.UTC)
	terms := []string{"2016-autumn", "2017-spring", "2017-autumn"}
	progs := []struct{ code, stage string }{{"PRESCHOOL_AID", "preschool"}, {"HS_NATIONAL_GRANT", "high_school"}, {"STUDENT_LOAN", "university"}}
	actor := events.Actor("test", "service", "BUREAU")
	var out []*eventsv1.Event
	for i := range 400 {
		p := progs[r.IntN(len(progs))]
		keys := events.Keys{ApplicationID: fmt.Sprintf("00000000-0000-0000-0008-%012d", i), SchoolCode: fmt.Sprintf("S%d", r.IntN(3)),
			ProgramCode: p.code, Term: terms[r.IntN(len(terms))]}
		at := start.Add(time.Duration(r.Int64N(int64(100 * 24 * time.Hour)))).Truncate(time.Microsecond)
		ev := func(body proto.Message) {
			at = at.Add(time.Duration(r.Int64N(int64(3 * 24 * time.Hour)))).Truncate(time.Microsecond)
			if r.IntN(8) == 0 {
				at = at.Add(-time.Duration(r.Int64N(int64(time.Hour)))) // out of order in time
			}
			out = append(out, events.MustNew(at, actor, keys, body))
		}
		reason := func() string { return fmt.Sprintf(" reason %d ", r.IntN(4)) }
		ev(&eventsv1.ApplicationSubmitted{StudentIdHash: fmt.Sprintf("h%d", r.IntN(40)), Stage: p.stage, FundingSource: "government",
			AmountFen: 50_000, PolicyVersion: 1, GovernmentTotal: r.IntN(4) != 0,
			FundingSharesBp: map[string]int32{"central_provincial": 8000, "municipal": 2000}})
		switch r.IntN(8) {
		case 0:
			ev(&eventsv1.SchoolReviewRejected{Reason: reason()})
			continue
		case 1:
			ev(&eventsv1.SchoolReviewWithdrawn{Reason: reason()})
			continue
		}
		ev(&eventsv1.SchoolReviewApproved{})
		if r.IntN(5) == 0 {
			ev(&eventsv1.NoticeObjected{Reason: reason()})
			ev(&eventsv1.SchoolReviewApproved{})
		}
		ev(&eventsv1.NoticePassed{})
		if r.IntN(6) == 0 {
			ev(&eventsv1.BureauRejected{Reason: reason()})
			continue
		}
		ev(&eventsv1.BureauApproved{})
		ev(&eventsv1.ItemBatched{})
		if r.IntN(6) == 0 {
			ev(&eventsv1.ItemReturnedToBureau{Reason: reason()})
			ev(&eventsv1.BureauApproved{})
			ev(&eventsv1.ItemBatched{})
		}
		ev(&eventsv1.PaymentOrdered{})
		if r.IntN(5) == 0 {
			ev(&eventsv1.PaymentFailed{Reason: reason()})
			ev(&eventsv1.PaymentOrdered{})
		}
		if r.IntN(6) == 0 {
			continue // not paid yet
		}
		pay := fmt.Sprintf("p%d", i)
		loan := ""
		if p.code == "STUDENT_LOAN" {
			loan = "LOAN-" + pay
		}
		amount := int64(40_000 + 5_000*r.IntN(3))
		ev(&eventsv1.PaymentSucceeded{PaymentId: pay, AmountFen: amount, LoanContractNumber: loan})
		if loan != "" && r.IntN(2) == 0 {
			ev(&eventsv1.LoanRepaymentRecorded{RepaymentId: "rp" + pay, ContractNumber: loan, Kind: "REPAYMENT", AmountFen: 1_000,
				PaidOn: at.Format(time.DateOnly)})
		}
		if r.IntN(3) == 0 {
			clue := "c" + pay
			ev(&eventsv1.ClueRaised{ClueId: clue, Kind: "duplicate", Origin: "comparison", StudentIdHash: "h", AmountFen: amount})
			ev(&eventsv1.ClueVerified{ClueId: clue, Ineligible: true})
			ev(&eventsv1.RefundOpened{RefundId: "r" + pay, PaymentId: pay, ClueId: clue, AmountFen: amount})
			part := amount
			if r.IntN(2) == 0 {
				part = amount / 2
				ev(&eventsv1.RefundReceiptRecorded{RefundId: "r" + pay, AmountFen: amount - part})
			}
			ev(&eventsv1.RefundReceiptRecorded{RefundId: "r" + pay, AmountFen: part})
		}
	}
	for i := range 5 {
		out = append(out, events.MustNew(start.Add(time.Duration(i)*24*time.Hour), actor, events.Keys{},
			&eventsv1.ComparisonCompleted{RunId: int64(i + 1), FromTerm: "2016-autumn", ToTerm: "2017-autumn", Records: 10, NewClues: 1}))
	}
	// Mostly in order, interleaved; one event in sixty far from its place,
	// and one in five again later.
	type keyed struct {
		key int
		ev  *eventsv1.Event
	}
	var all []keyed
	for i, ev := range out {
		k := i*10 + r.IntN(12)
		if r.IntN(60) == 0 {
			k = r.IntN(len(out) * 10)
		}
		all = append(all, keyed{k, ev})
		if i%5 == 0 {
			all = append(all, keyed{k + r.IntN(len(out)*10), ev})
		}
	}
	slices.SortStableFunc(all, func(a, b keyed) int { return a.key - b.key })
	out = out[:0]
	for _, k := range all {
		out = append(out, k.ev)
	}
	return out
}

// readModel reads every table of the read model (all but the
// migrations' own), each row as text, in a
// fixed order.
func readModel(ctx context.Context, t *testing.T, pool *pgxpool.Pool) map[string][]string {
	t.Helper()
	rows, err := pool.Query(ctx, `SELECT table_name::text FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name <> 'schema_migrations' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, table := range tables {
		rows, err := pool.Query(ctx, `SELECT t::text FROM `+pgx.Identifier{table}.Sanitize()+` t ORDER BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		if out[table], err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// consume applies evs as the consumer does, each event once (the inbox):
// in batches of random sizes through HandleBatch, or one at a time through
// Handle when batches is false or a batch fails; an event not yet
// applicable goes back to the end of the queue. It returns how many
// batches HandleBatch applied.
func consume(ctx context.Context, t *testing.T, pool *pgxpool.Pool, c *natsx.Consumer, evs []*eventsv1.Event, batches bool, seed uint64) int {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 9))
	applied := map[string]bool{}
	queue := append([]*eventsv1.Event(nil), evs...)
	var applies, waits int
	single := func(ev *eventsv1.Event) {
		err := db.InTx(ctx, pool, func(tx pgx.Tx) error { return c.Handle(ctx, tx, ev) })
		switch {
		case err == nil:
			applied[ev.GetEventId()] = true
		case errors.Is(err, natsx.ErrNotYet):
			waits++
			queue = append(queue, ev)
		default:
			t.Fatalf("%s %s: %v", ev.GetType(), ev.GetEventId(), err)
		}
	}
	for len(queue) > 0 {
		if waits > 100*len(evs) {
			t.Fatalf("%d events never applied", len(queue))
		}
		n := 1
		if batches {
			n = 1 + r.IntN(80)
		}
		var batch []*eventsv1.Event
		seen := map[string]bool{}
		for len(queue) > 0 && len(batch) < n {
			ev := queue[0]
			queue = queue[1:]
			if applied[ev.GetEventId()] || seen[ev.GetEventId()] {
				continue // a redelivery: the inbox drops it
			}
			seen[ev.GetEventId()] = true
			batch = append(batch, ev)
		}
		if len(batch) == 0 {
			continue
		}
		if len(batch) == 1 {
			single(batch[0])
			continue
		}
		ds := make([]natsx.Delivery, len(batch))
		for i, ev := range batch {
			ds[i] = natsx.Delivery{Ctx: ctx, Event: ev}
		}
		if err := db.InTx(ctx, pool, func(tx pgx.Tx) error { return c.HandleBatch(ctx, tx, ds) }); err == nil {
			applies++
			for _, ev := range batch {
				applied[ev.GetEventId()] = true
			}
			continue
		} else if !errors.Is(err, natsx.ErrNotYet) {
			t.Fatalf("batch of %d: %v", len(batch), err)
		}
		for _, ev := range batch {
			single(ev)
		}
	}
	t.Logf("%d batches applied by HandleBatch; %d events waited", applies, waits)
	return applies
}

// TestHandleBatchKeepsWhatHandleKeeps applies the same shuffled events,
// with redeliveries and events that come before those they need, once one
// by one through Handle and once in batches through HandleBatch, and
// compares every table of the two read models row by row.
func TestHandleBatchKeepsWhatHandleKeeps(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	evs := mixedEvents(21)
	models := make([]map[string][]string, 2)
	for i, batches := range []bool{false, true} {
		pool, _ := testenv.Pool(t, "reporting")
		if err := db.Migrate(ctx, pool, "reporting", migrations.FS()); err != nil {
			t.Fatal(err)
		}
		applies := consume(ctx, t, pool, Consumer(app.New(app.Deps{Pool: pool})), evs, batches, 5)
		if batches && applies < 20 {
			t.Fatalf("HandleBatch applied only %d batches: the comparison says little", applies)
		}
		models[i] = readModel(ctx, t, pool)
	}
	one, batched := models[0], models[1]
	if len(one["step_visits"]) < 500 || len(one["payments"]) < 60 || len(one["refund_receipts"]) < 20 || len(one["person_runs_log"]) == 0 {
		t.Fatalf("too little kept to compare: %d visits, %d payments, %d receipts", len(one["step_visits"]), len(one["payments"]),
			len(one["refund_receipts"]))
	}
	for table, want := range one {
		if got := batched[table]; !reflect.DeepEqual(got, want) {
			t.Errorf("%s: through HandleBatch (%d rows)\n%s\none by one through Handle (%d rows)\n%s", table, len(got),
				strings.Join(got, "\n"), len(want), strings.Join(want, "\n"))
		}
	}
	if len(batched) != len(one) {
		t.Errorf("%d tables through HandleBatch, %d one by one", len(batched), len(one))
	}
}
