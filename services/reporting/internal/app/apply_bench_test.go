package app

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/internal/devtools/testenv"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/services/reporting/internal/domain"
	"github.com/edubureau/studentaid/services/reporting/migrations"
)

// BenchmarkApplyEvents measures the consumer's cost per application, each
// event in its own transaction as the consumer applies it: the
// submission, three steps, the payment, and for one application in ten a
// refund and its receipt. One op is one application's events (5 or 7).
func BenchmarkApplyEvents(b *testing.B) {
	ctx := context.Background()
	pool, _ := testenv.Pool(b, "reporting")
	if err := db.Migrate(ctx, pool, "reporting", migrations.FS()); err != nil {
		b.Fatal(err)
	}
	s := New(Deps{Pool: pool})
	start := time.Date(2017, time.March, 1, 0, 0, 0, 0, time.UTC)
	apply := func(fn func(tx pgx.Tx) error) {
		if err := db.InTx(ctx, pool, fn); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprintf("00000000-0000-0000-0006-%012d", i)
		at := start.Add(time.Duration(i) * time.Minute)
		apply(func(tx pgx.Tx) error {
			return s.ApplySubmitted(ctx, tx, Submitted{ID: id, StudentIDHash: fmt.Sprintf("h%d", i%(b.N*7/10+1)),
				SchoolCode: fmt.Sprintf("S%03d", i%500), ProgramCode: "PRESCHOOL_AID", Term: "2017-autumn", Stage: "preschool",
				FundingSource: "government", GovernmentTotal: true, SharesBP: map[string]int32{"central_provincial": 8000, "municipal": 2000},
				PolicyVersion: 1, SubmittedAt: at, EventID: id})
		})
		for k, st := range []string{domain.StepNotice, domain.StepBureauReview, domain.StepFinance} {
			apply(func(tx pgx.Tx) error {
				return s.ApplyStep(ctx, tx, id, st, "", fmt.Sprintf("00000000-0000-0001-%04d-%012d", k, i), at.Add(time.Duration(k+1)*time.Hour))
			})
		}
		pay := fmt.Sprintf("p%d", i)
		apply(func(tx pgx.Tx) error { return s.ApplyPaid(ctx, tx, pay, id, 50_000, "", at.Add(30*24*time.Hour)) })
		if i%10 == 0 {
			apply(func(tx pgx.Tx) error {
				return s.ApplyRefundOpened(ctx, tx, "r"+pay, pay, "c"+pay, 10_000, at.Add(60*24*time.Hour))
			})
			apply(func(tx pgx.Tx) error {
				return s.ApplyReceipt(ctx, tx, fmt.Sprintf("00000000-0000-0002-0000-%012d", i), "r"+pay, 10_000, at.Add(70*24*time.Hour))
			})
		}
	}
}
