package app

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/internal/devtools/testenv"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/outbox"
	"github.com/edubureau/studentaid/pkg/policy/seed"
	"github.com/edubureau/studentaid/services/finance-confirmation/internal/domain"
	"github.com/edubureau/studentaid/services/finance-confirmation/migrations"
)

// BenchmarkAssembleBatches measures batch assembly per approval, as the
// consumer applies decoded approvals: groups of 256 bureau approvals from 20
// schools and two programs, each group added to the open batches of its
// program and term (AddApprovedBatch: one set-based insert, the item_batched
// events by COPY) in one transaction.
func BenchmarkAssembleBatches(b *testing.B) {
	ctx := context.Background()
	pool, _ := testenv.Pool(b, "finance")
	if err := db.Migrate(ctx, pool, "finance", outbox.Migrations(), migrations.FS()); err != nil {
		b.Fatal(err)
	}
	s := New(Deps{Pool: pool})
	programs := []struct {
		code   string
		amount int64
	}{{"POVERTY_EXTENSION", 50000}, {"BOARDING_SUBSIDY", 62500}}
	approvals := make([]Delivered[domain.ApprovedItem], b.N)
	for i := range approvals {
		p := programs[i%len(programs)]
		school := []string{"S001", "S002", "S003", "S004", "S005", "S006", "S007", "S008", "S009", "S010",
			"S011", "S012", "S013", "S014", "S015", "S016", "S017", "S018", "S019", "S020"}[i%20]
		funding, _ := seed.Program(p.code)
		approvals[i] = Delivered[domain.ApprovedItem]{Ctx: ctx, Event: domain.ApprovedItem{
			ApplicationID: uuid.NewString(), SchoolCode: school, AmountFen: p.amount, Term: "2017-autumn",
			ProgramCode: p.code, FundingSource: string(funding.Funding),
			Reviewers: domain.Reviewers{SubmittedBy: "officer-" + school, SchoolReviewer: "reviewer-" + school, BureauReviewer: "bureau-1"},
		}}
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
