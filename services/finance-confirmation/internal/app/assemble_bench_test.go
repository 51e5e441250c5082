package app

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/internal/devtools/testenv"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/natsx"
	"github.com/edubureau/studentaid/pkg/outbox"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	"github.com/edubureau/studentaid/services/finance-confirmation/migrations"
)

// BenchmarkAssembleBatches measures batch assembly per approval, as the
// consumer runs it: groups of 256 bureau approvals from 20 schools and two
// programs, each group added to the open batches of its program and term
// (AddApprovedBatch: one set-based insert, the item_batched events by COPY)
// in one transaction.
func BenchmarkAssembleBatches(b *testing.B) {
	ctx := context.Background()
	pool, _ := testenv.Pool(b, "finance")
	if err := db.Migrate(ctx, pool, "finance", outbox.Migrations(), migrations.FS()); err != nil {
		b.Fatal(err)
	}
	s := New(pool, slog.New(slog.NewTextHandler(io.Discard, nil)), func() {})
	actor := events.Actor("bureau-1", "bureau_reviewer", "BUREAU")
	programs := []struct {
		code   string
		amount int64
	}{{"POVERTY_EXTENSION", 50000}, {"BOARDING_SUBSIDY", 62500}}
	approvals := make([]natsx.Delivery, b.N)
	for i := range approvals {
		p := programs[i%len(programs)]
		school := []string{"S001", "S002", "S003", "S004", "S005", "S006", "S007", "S008", "S009", "S010",
			"S011", "S012", "S013", "S014", "S015", "S016", "S017", "S018", "S019", "S020"}[i%20]
		approvals[i] = natsx.Delivery{Ctx: ctx, Event: events.MustNew(time.Now(), actor,
			events.Keys{ApplicationID: uuid.NewString(), SchoolCode: school, ProgramCode: p.code, Term: "2017-autumn"},
			&eventsv1.BureauApproved{AmountFen: p.amount, SubmittedBy: "officer-" + school, SchoolReviewer: "reviewer-" + school, BureauReviewer: "bureau-1"})}
	}
	b.ResetTimer()
	for i := 0; i < len(approvals); i += 256 {
		group := approvals[i:min(i+256, len(approvals))]
		if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return s.AddApprovedBatch(tx, group) }); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	var items int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM items`).Scan(&items); err != nil {
		b.Fatal(err)
	}
	if items != b.N {
		b.Fatalf("%d items in batches, want %d", items, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "approvals/s")
}
