package app

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/edubureau/studentaid/internal/devtools/testenv"
	"github.com/edubureau/studentaid/pkg/config"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/services/reporting/migrations"
)

// BenchmarkAnnualReport measures the live annual report and a filtered
// statistics query over REPORTING_BENCH_ROWS generated payments (default
// 10,000): 2017's two terms, eight programs, 500 schools, one payment in
// a thousand partly refunded.
func BenchmarkAnnualReport(b *testing.B) {
	ctx := context.Background()
	rows, err := strconv.Atoi(config.Env("REPORTING_BENCH_ROWS", "10000"))
	if err != nil {
		b.Fatal(err)
	}
	pool, _ := testenv.Pool(b, "reporting")
	if err := db.Migrate(ctx, pool, "reporting", migrations.FS()); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for _, sql := range []string{
		`INSERT INTO applications (application_id, student_id_hash, school_code, program_code, term, term_rank, stage,
			funding_source, government_total, shares_bp, policy_version, submitted_at)
		 SELECT md5('a' || i)::uuid, 'h' || (i % ($1::int * 7 / 10)), 'S' || lpad((i % 500)::text, 3, '0'),
			(ARRAY['PRESCHOOL_AID','BOARDING_SUBSIDY','HS_NATIONAL_GRANT','HS_TUITION_WAIVER','VOC_TUITION_WAIVER','POVERTY_EXTENSION','FANHAI_FRESHMAN','STUDENT_LOAN'])[1 + i % 8],
			CASE WHEN i % 2 = 0 THEN '2017-spring' ELSE '2017-autumn' END, 4034 + i % 2,
			(ARRAY['preschool','primary','high_school','high_school','vocational','primary','university','university'])[1 + i % 8],
			'government', i % 8 < 6,
			(ARRAY['{"central_provincial":8000,"municipal":2000}','{"central_provincial":8000,"municipal":2000}','{"central_provincial":10000}',
			       '{"central_provincial":8000,"municipal":2000}','{"central_provincial":7300,"municipal":2700}','{"municipal":10000}',
			       '{"charity":10000}','{"bank_loan":10000}'])[1 + i % 8]::jsonb,
			1, '2017-03-01T00:00:00Z'
		 FROM generate_series(1, $1::int) i`,
		`INSERT INTO payments (payment_id, application_id, amount_fen, loan_contract_number, paid_at)
		 SELECT 'p' || i, md5('a' || i)::uuid, (ARRAY[50000,62500,100000,85000,100001,50000,500000,800000])[1 + i % 8],
			CASE WHEN i % 8 = 7 THEN 'L' || i ELSE '' END, '2017-11-01T00:00:00Z'
		 FROM generate_series(1, $1::int) i`,
		`INSERT INTO refunds (refund_id, payment_id, clue_id, amount_fen, opened_at)
		 SELECT 'r' || i, 'p' || i, 'c' || i, 10000, '2018-01-01T00:00:00Z' FROM generate_series(1000, $1::int, 1000) i`,
		`INSERT INTO refund_receipts (event_id, refund_id, amount_fen, received_at)
		 SELECT md5('r' || i)::uuid, 'r' || i, 10000, '2018-02-01T00:00:00Z' FROM generate_series(1000, $1::int, 1000) i`,
		`ANALYZE`,
	} {
		if _, err := pool.Exec(ctx, sql, rows); err != nil && sql != `ANALYZE` {
			b.Fatal(err)
		}
	}
	b.Logf("generated %d payments in %s", rows, time.Since(start).Round(time.Millisecond))
	s := New(Deps{Pool: pool})
	b.Run("annual", func(b *testing.B) {
		for range b.N {
			r, err := s.AnnualReport(ctx, 2017, "zh", true, 0)
			if err != nil {
				b.Fatal(err)
			}
			if r.Report.GovernmentTotalFen == 0 {
				b.Fatal("empty report")
			}
		}
	})
	b.Run("statistics, one program, 50 schools", func(b *testing.B) {
		schools := make([]string, 50)
		for i := range schools {
			schools[i] = "S" + strconv.Itoa(100+i)
		}
		for range b.N {
			if _, err := s.Statistics(ctx, StatisticsQuery{FromTerm: "2017-spring", ToTerm: "2017-autumn", Schools: schools, Program: "BOARDING_SUBSIDY"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
