package app

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/edubureau/studentaid/internal/devtools/testenv"
	"github.com/edubureau/studentaid/pkg/config"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/services/reporting/internal/adapters"
	"github.com/edubureau/studentaid/services/reporting/migrations"
)

// BenchmarkAnnualReport measures the live annual report and statistics
// queries with filters over REPORTING_BENCH_ROWS generated payments
// (default 10,000): 2017's two terms, eight programs, 500 schools, one
// payment in a thousand partly refunded. The rows are generated set-based
// straight into the read model's tables and the aggregates filled by the
// migration's backfill, rebuild_aggregates(), which computes what the
// consumer keeps (TestAggregatesFollowTheRows). With
// REPORTING_BENCH_EXPLAIN set it logs EXPLAIN (ANALYZE, BUFFERS) of every
// statement of the annual report and of two statistics queries.
func BenchmarkAnnualReport(b *testing.B) {
	ctx := context.Background()
	rows, err := strconv.Atoi(config.Env("REPORTING_BENCH_ROWS", "10000"))
	if err != nil {
		b.Fatal(err)
	}
	pool, dbURL := testenv.Pool(b, "reporting")
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
		// Each application's steps: 1 + i % 7 steps of the chain from school
		// review toward paid, or rejected by the school after review (one
		// in 13) or by the bureau after its review (one in 17, among 80
		// reasons each), each step lasting 1 to 200 hours by application.
		`INSERT INTO step_visits (application_id, entered_at, ord, step, left_at, reason, event_id,
			term_rank, school_code, stage, program_code)
		 SELECT a.application_id, '2017-03-01T00:00:00Z'::timestamptz + (n - 1) * d, n,
			(ARRAY['school_review','notice','bureau_review','awaiting_finance','batched','ordered','paid'])[n],
			CASE WHEN n < k OR i % 13 = 0 OR i % 17 = 0 THEN '2017-03-01T00:00:00Z'::timestamptz + n * d END, '',
			md5('s' || i || '-' || n)::uuid, a.term_rank, a.school_code, a.stage, a.program_code
		 FROM generate_series(1, $1::int) i
		 CROSS JOIN LATERAL (SELECT CASE WHEN i % 13 = 0 THEN 1 WHEN i % 17 = 0 THEN 3 ELSE 1 + i % 7 END AS k,
			interval '1 hour' * (1 + i % 200) AS d) x
		 CROSS JOIN LATERAL generate_series(1, x.k) n
		 JOIN applications a ON a.application_id = md5('a' || i)::uuid`,
		`INSERT INTO step_visits (application_id, entered_at, ord, step, left_at, reason, event_id,
			term_rank, school_code, stage, program_code)
		 SELECT a.application_id, '2017-03-01T00:00:00Z'::timestamptz + r.after * interval '1 hour' * (1 + i % 200),
			r.ord, r.step, NULL, 'reason ' || (i / 13 % 80), md5('r' || i)::uuid, a.term_rank, a.school_code, a.stage, a.program_code
		 FROM generate_series(1, $1::int) i
		 CROSS JOIN LATERAL (SELECT 1 AS after, 8 AS ord, 'school_rejected' AS step WHERE i % 13 = 0
			UNION ALL SELECT 3, 9, 'bureau_rejected' WHERE i % 13 <> 0 AND i % 17 = 0) r
		 JOIN applications a ON a.application_id = md5('a' || i)::uuid`,
		// The aggregates the consumer keeps, computed set-based from the
		// rows by the migration's backfill (TestAggregatesFollowTheRows
		// checks that the consumer keeps the same).
		`SELECT rebuild_aggregates()`,
		`SELECT rebuild_person_runs()`,
		// The step aggregates likewise (TestStepAggregatesFollowTheRows).
		`SELECT rebuild_step_aggregates()`,
		// The hourly logs of both (migration 008), likewise.
		`SELECT rebuild_paid_logs()`,
		`SELECT rebuild_step_logs()`,
		`VACUUM ANALYZE`,
	} {
		args := []any{rows}
		if !strings.Contains(sql, "$1") {
			args = nil
		}
		if _, err := pool.Exec(ctx, sql, args...); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("generated %d payments in %s", rows, time.Since(start).Round(time.Millisecond))
	if config.Env("REPORTING_BENCH_EXPLAIN", "") != "" {
		explain(ctx, b, dbURL)
	}
	s := New(Deps{Pool: pool})
	var visits int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM step_visits`).Scan(&visits); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d step visits", visits)
	b.Run("steps only, the year", func(b *testing.B) {
		for range b.N {
			err := s.readSnapshot(ctx, func(tx pgx.Tx) error {
				st, _, err := adapters.Steps(ctx, tx, adapters.Selection{FromRank: 4034, ToRank: 4035, AsOf: time.Now()})
				if err == nil && st[0].Left == 0 {
					b.Fatal("no step left")
				}
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
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
	schools := make([]string, 50)
	for i := range schools {
		schools[i] = "S" + strconv.Itoa(100+i)
	}
	// Most schools: 450 of the 500.
	most := make([]string, 450)
	for i := range most {
		most[i] = fmt.Sprintf("S%03d", 25+i)
	}
	for _, q := range []struct {
		name string
		q    StatisticsQuery
	}{
		{"statistics, 450 schools", StatisticsQuery{FromTerm: "2017-spring", ToTerm: "2017-autumn", Schools: most}},
		{"statistics, 450 schools, three terms, one stage", StatisticsQuery{FromTerm: "2016-autumn", ToTerm: "2017-autumn", Schools: most, Stage: "high_school"}},
		{"statistics, the year as of 2017-03-20 (steps corrected)", StatisticsQuery{FromTerm: "2017-spring", ToTerm: "2017-autumn",
			AsOf: time.Date(2017, time.March, 20, 0, 0, 0, 0, time.UTC)}},
		{"statistics, one program, 50 schools", StatisticsQuery{FromTerm: "2017-spring", ToTerm: "2017-autumn", Schools: schools, Program: "BOARDING_SUBSIDY"}},
		{"statistics, one program", StatisticsQuery{FromTerm: "2017-spring", ToTerm: "2017-autumn", Program: "BOARDING_SUBSIDY"}},
		{"statistics, one stage", StatisticsQuery{FromTerm: "2017-spring", ToTerm: "2017-autumn", Stage: "high_school"}},
		{"statistics, 50 schools", StatisticsQuery{FromTerm: "2017-spring", ToTerm: "2017-autumn", Schools: schools}},
		{"statistics, one term", StatisticsQuery{FromTerm: "2017-autumn", ToTerm: "2017-autumn"}},
		{"statistics, the year", StatisticsQuery{FromTerm: "2017-spring", ToTerm: "2017-autumn"}},
		{"statistics, three terms", StatisticsQuery{FromTerm: "2016-autumn", ToTerm: "2017-autumn"}},
		{"statistics, three terms, one stage", StatisticsQuery{FromTerm: "2016-autumn", ToTerm: "2017-autumn", Stage: "high_school"}},
		{"statistics, the year as of a refund", StatisticsQuery{FromTerm: "2017-spring", ToTerm: "2017-autumn",
			AsOf: time.Date(2018, time.January, 15, 0, 0, 0, 0, time.UTC)}},
		{"statistics, three terms, 50 schools, as of the instant of every payment", StatisticsQuery{FromTerm: "2016-autumn",
			ToTerm: "2017-autumn", Schools: schools, AsOf: time.Date(2017, time.November, 1, 0, 0, 0, 0, time.UTC)}},
		{"statistics, one program, as of a minute before every payment", StatisticsQuery{FromTerm: "2017-spring", ToTerm: "2017-autumn",
			Program: "BOARDING_SUBSIDY", AsOf: time.Date(2017, time.October, 31, 23, 59, 0, 0, time.UTC)}},
		{"statistics, one stage, 450 schools, as of 2017-03-05 12:30 (inside the steps)", StatisticsQuery{FromTerm: "2017-spring",
			ToTerm: "2017-autumn", Stage: "high_school", Schools: most, AsOf: time.Date(2017, time.March, 5, 12, 30, 0, 0, time.UTC)}},
	} {
		b.Run(q.name, func(b *testing.B) {
			for range b.N {
				if _, err := s.Statistics(ctx, q.q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// explain logs the plans of the annual report's statements and of two
// statistics queries, through auto_explain on one connection.
func explain(ctx context.Context, b *testing.B, dbURL string) {
	b.Helper()
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		b.Fatal(err)
	}
	cfg.RuntimeParams["search_path"] = "reporting"
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { b.Log(n.Message) }
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	for _, sql := range []string{`LOAD 'auto_explain'`, `SET auto_explain.log_min_duration = 0`, `SET auto_explain.log_analyze = on`,
		`SET auto_explain.log_buffers = on`, `SET auto_explain.log_level = notice`} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			b.Fatal(err)
		}
	}
	now := time.Now()
	schools := make([]string, 50)
	for i := range schools {
		schools[i] = "S" + strconv.Itoa(100+i)
	}
	for _, sel := range []adapters.Selection{
		{FromRank: 4034, ToRank: 4035, AsOf: now, RecoveredYear: 2017},
		{FromRank: 4034, ToRank: 4035, AsOf: now, Schools: schools, Program: "BOARDING_SUBSIDY"},
		{FromRank: 4035, ToRank: 4035, AsOf: now},
		{FromRank: 4033, ToRank: 4035, AsOf: now},
	} {
		b.Logf("figures of %+v", sel)
		if _, err := adapters.Figures(ctx, conn, sel); err != nil {
			b.Fatal(err)
		}
		b.Logf("steps of %+v", sel)
		if _, _, err := adapters.Steps(ctx, conn, sel); err != nil {
			b.Fatal(err)
		}
	}
}
