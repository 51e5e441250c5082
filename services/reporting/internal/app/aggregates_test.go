package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/edubureau/studentaid/internal/devtools/testenv"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/services/reporting/internal/adapters"
	"github.com/edubureau/studentaid/services/reporting/migrations"
)

// event is one consumed event of the generated chain, applied in its own
// transaction like the consumer does.
type event struct {
	name  string
	apply func(ctx context.Context, s *Service, tx db.Tx) error
}

// generatedChain is a seeded random chain: students paid by programs in
// four terms (a student in several programs, terms and schools), loans,
// and refunds recovered in one or two receipts, some in full, one of them
// more than was paid. It returns the events and the instants worth asking
// figures as of.
func generatedChain(seed uint64) ([]event, []time.Time) {
	r := rand.New(rand.NewPCG(seed, 1))
	type prog struct {
		code, stage, shares string
		gov, loan           bool
	}
	progs := []prog{
		{"PRESCHOOL_AID", "preschool", `{"central_provincial":8000,"municipal":2000}`, true, false},
		{"HS_NATIONAL_GRANT", "high_school", `{"central_provincial":10000}`, true, false},
		{"VOC_TUITION_WAIVER", "vocational", `{"central_provincial":7300,"municipal":2700}`, true, false},
		{"POVERTY_EXTENSION", "preschool", `{"municipal":10000}`, true, false},
		{"FANHAI_FRESHMAN", "university", `{"charity":10000}`, false, false},
		{"STUDENT_LOAN", "university", `{"bank_loan":10000}`, false, true},
	}
	terms := []string{"2016-autumn", "2017-spring", "2017-autumn", "2018-spring"}
	start := time.Date(2016, time.September, 1, 0, 0, 0, 0, time.UTC)
	at := func() time.Time { return start.Add(time.Duration(r.IntN(700*24)) * time.Hour) }
	var evs []event
	var instants []time.Time
	for i := range 160 {
		p := progs[r.IntN(len(progs))]
		appID := fmt.Sprintf("00000000-0000-0000-0000-%012d", i)
		payID := fmt.Sprintf("p%d", i)
		student := fmt.Sprintf("h%d", r.IntN(50))
		term := terms[r.IntN(len(terms))]
		school := fmt.Sprintf("S%d", r.IntN(4))
		amount := int64([]int{50_000, 62_500, 100_001, 85_000}[r.IntN(4)])
		loan := ""
		if p.loan {
			loan = "L" + payID
		}
		var shares map[string]int32
		if err := json.Unmarshal([]byte(p.shares), &shares); err != nil {
			panic(err)
		}
		submitted, paid := at(), at()
		evs = append(evs, event{"submitted " + appID, func(ctx context.Context, s *Service, tx db.Tx) error {
			return s.ApplySubmitted(ctx, tx, Submitted{ID: appID, StudentIDHash: student, SchoolCode: school, ProgramCode: p.code,
				Term: term, Stage: p.stage, FundingSource: "government", GovernmentTotal: p.gov, SharesBP: shares, PolicyVersion: 1,
				SubmittedAt: submitted, EventID: appID})
		}}, event{"paid " + payID, func(ctx context.Context, s *Service, tx db.Tx) error {
			return s.ApplyPaid(ctx, tx, payID, appID, amount, loan, paid)
		}})
		instants = append(instants, paid, paid.Add(-time.Microsecond))
		if r.IntN(4) != 0 {
			continue
		}
		refundID := "r" + payID
		ordered := amount
		if r.IntN(2) == 0 {
			ordered = amount / 3
		}
		opened := at()
		evs = append(evs, event{"refund " + refundID, func(ctx context.Context, s *Service, tx db.Tx) error {
			return s.ApplyRefundOpened(ctx, tx, refundID, payID, "c"+payID, ordered, opened)
		}})
		instants = append(instants, opened)
		parts := []int64{ordered}
		switch r.IntN(3) {
		case 0:
			parts = []int64{ordered / 2, ordered - ordered/2}
		case 1:
			if i%5 == 0 {
				parts = append(parts, 1) // more recovered than paid
			}
		}
		for k, fen := range parts {
			id := fmt.Sprintf("00000000-0000-0000-0001-%08d%04d", i, k)
			received := at()
			evs = append(evs, event{"receipt " + id, func(ctx context.Context, s *Service, tx db.Tx) error {
				return s.ApplyReceipt(ctx, tx, id, refundID, fen, received)
			}})
			instants = append(instants, received, received.Add(-time.Microsecond))
		}
	}
	// Events arrive in any order (a payment before its application, a
	// receipt before its refund are retried), and some twice.
	r.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
	for i := 0; i < len(evs); i += 7 {
		evs = append(evs, evs[i])
	}
	r.Shuffle(len(instants), func(i, j int) { instants[i], instants[j] = instants[j], instants[i] })
	return evs, append(instants[:12], start, start.AddDate(5, 0, 0))
}

// applyAll applies evs each in its own transaction, retrying those that
// wait for an earlier event until none is left.
func applyAll(ctx context.Context, t *testing.T, pool *pgxpool.Pool, s *Service, evs []event) {
	t.Helper()
	for len(evs) > 0 {
		var later []event
		for _, ev := range evs {
			err := db.InTx(ctx, pool, func(tx pgx.Tx) error { return ev.apply(ctx, s, tx) })
			switch {
			case errors.Is(err, ErrNotYet):
				later = append(later, ev)
			case err != nil:
				t.Fatalf("%s: %v", ev.name, err)
			}
		}
		if len(later) == len(evs) {
			t.Fatalf("%d events wait for ever", len(later))
		}
		evs = later
	}
}

// textRows returns the rows of each query, one text column each, in turn.
func textRows(ctx context.Context, t *testing.T, q db.Querier, queries ...string) []string {
	t.Helper()
	var out []string
	for _, sql := range queries {
		rows, err := q.Query(ctx, sql)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, got...)
	}
	return out
}

// aggregateRows reads the aggregates' non-empty rows in a fixed order.
func aggregateRows(ctx context.Context, t *testing.T, q db.Querier) []string {
	t.Helper()
	return textRows(ctx, t, q,
		`SELECT concat_ws(' ', 'paid', term_rank, program_code, school_code, stage, government_total, loan, shares_bp, net_fen, payments, gross_fen, recovered_fen)
		 FROM paid_groups WHERE payments <> 0 OR gross_fen <> 0 OR recovered_fen <> 0 ORDER BY 1`,
		`SELECT concat_ws(' ', 'term', term_rank, program_code, school_code, stage, government_total, student_id_hash, live)
		 FROM person_terms WHERE live <> 0 ORDER BY 1`,
		`SELECT concat_ws(' ', 'persons', from_rank, to_rank, filter, program_code, persons, government_persons)
		 FROM period_persons WHERE persons <> 0 OR government_persons <> 0 ORDER BY 1`,
		`SELECT concat_ws(' ', 'runs', school_code, filter, program_key, term_rank, prev_rank, persons)
		 FROM person_runs WHERE persons <> 0 ORDER BY 1`,
		`SELECT 'multi-school ' || student_id_hash FROM multi_school_students ORDER BY 1`,
		`SELECT concat_ws(' ', 'paid log', at_hour, term_rank, program_code, school_code, stage, government_total, loan, shares_bp, net_fen,
		   payments, gross_fen, recovered_fen)
		 FROM paid_log WHERE payments <> 0 OR gross_fen <> 0 OR recovered_fen <> 0 ORDER BY 1`,
		`SELECT concat_ws(' ', 'runs log', at_hour, school_code, filter, program_key, term_rank, prev_rank, persons)
		 FROM person_runs_log WHERE persons <> 0 ORDER BY 1`,
		`SELECT 'multi-school ever ' || student_id_hash FROM multi_school_ever ORDER BY 1`,
	)
}

// TestAggregatesFollowTheRows drives a generated chain through the
// consumer's use cases in a random order with redeliveries, and checks
// that the aggregates the consumer kept are those rebuilt from the rows
// (the migration's backfill), and that the figures read from them equal
// the figures computed from the rows alone, for selections with and
// without filters and as of instants between the events.
func TestAggregatesFollowTheRows(t *testing.T) {
	ctx := context.Background()
	pool, _ := testenv.Pool(t, "reporting")
	if err := db.Migrate(ctx, pool, "reporting", migrations.FS()); err != nil {
		t.Fatal(err)
	}
	s := New(Deps{Pool: pool})
	evs, instants := generatedChain(14)
	applyAll(ctx, t, pool, s, evs)

	kept := aggregateRows(ctx, t, pool)
	if len(kept) < 100 {
		t.Fatalf("only %d aggregate rows: the chain generated too little", len(kept))
	}
	if err := db.InTx(ctx, pool, func(tx pgx.Tx) error { return adapters.RebuildAggregates(ctx, tx) }); err != nil {
		t.Fatal(err)
	}
	if rebuilt := aggregateRows(ctx, t, pool); !reflect.DeepEqual(kept, rebuilt) {
		t.Errorf("kept by the consumer:\n%s\nrebuilt from the rows:\n%s", strings.Join(kept, "\n"), strings.Join(rebuilt, "\n"))
	}

	selections := []adapters.Selection{
		{FromRank: 4034, ToRank: 4035, RecoveredYear: 2017},
		{FromRank: 4034, ToRank: 4035},
		{FromRank: 4033, ToRank: 4036},
		{FromRank: 4035, ToRank: 4035},
		{FromRank: 4033, ToRank: 4036, Schools: []string{"S1", "S3"}},
		{FromRank: 4034, ToRank: 4035, Stage: "preschool"},
		{FromRank: 4034, ToRank: 4035, Program: "STUDENT_LOAN"},
		{FromRank: 4033, ToRank: 4033, Stage: "university", Program: "FANHAI_FRESHMAN"},
		{FromRank: 4034, ToRank: 4034, Program: "PRESCHOOL_AID"},
		{FromRank: 4034, ToRank: 4035, Stage: "preschool", Program: "POVERTY_EXTENSION"},
		{FromRank: 4036, ToRank: 4036, Stage: "university"},
		{FromRank: 4033, ToRank: 4036, Program: "PRESCHOOL_AID", Schools: []string{"S0"}},
		{FromRank: 4030, ToRank: 4033},
		{FromRank: 4036, ToRank: 4040, Stage: "vocational"},
		{FromRank: 4040, ToRank: 4044},
		{FromRank: 4034, ToRank: 4036, Schools: []string{"S0", "S1", "S3"}},
		{FromRank: 4033, ToRank: 4034, Schools: []string{"S0", "S2", "S3"}, Stage: "preschool"},
		{FromRank: 4035, ToRank: 4036, Schools: []string{"S1", "S2"}, Program: "HS_NATIONAL_GRANT"},
		{FromRank: 4034, ToRank: 4036, Program: "POVERTY_EXTENSION"},
	}
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	for _, sel := range selections {
		for _, at := range instants {
			sel.AsOf = at
			name := fmt.Sprintf("%d-%d %v %q %q as of %s", sel.FromRank, sel.ToRank, sel.Schools, sel.Stage, sel.Program, at.Format(time.RFC3339Nano))
			want, err := adapters.RawFigures(ctx, tx, sel)
			if err != nil {
				t.Fatal(err)
			}
			got, err := adapters.Figures(ctx, tx, sel)
			if err != nil {
				t.Fatal(err)
			}
			// A source with nothing is the same as no source.
			for _, m := range []map[string]int64{got.Funding, got.GovernmentFunding, want.Funding, want.GovernmentFunding} {
				maps.DeleteFunc(m, func(_ string, v int64) bool { return v == 0 })
			}
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
				t.Errorf("%s:\nfrom the aggregates %+v\nfrom the rows       %+v", name, got, want)
			}
			// The same from the hourly logs, whatever the number of
			// students changed after the instant.
			byHours, ok, err := adapters.FiguresByHours(ctx, tx, sel)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				t.Fatalf("%s: the hourly logs could not answer", name)
			}
			maps.DeleteFunc(byHours.Funding, func(_ string, v int64) bool { return v == 0 })
			maps.DeleteFunc(byHours.GovernmentFunding, func(_ string, v int64) bool { return v == 0 })
			if fmt.Sprintf("%+v", byHours) != fmt.Sprintf("%+v", want) {
				t.Errorf("%s:\nfrom the hourly logs %+v\nfrom the rows        %+v", name, byHours, want)
			}
		}
	}
}

// TestMigrationBackfillsAnExistingDatabase fills a read model kept before
// the aggregates existed (migrations 001 and 002 only), then migrates it:
// the figures read from the backfilled aggregates are those of its rows,
// now and as of before a refund was received.
func TestMigrationBackfillsAnExistingDatabase(t *testing.T) {
	ctx := context.Background()
	pool, _ := testenv.Pool(t, "reporting")
	before := fstest.MapFS{}
	for _, name := range []string{"001_reporting.up.sql", "002_append_only.up.sql"} {
		body, err := fs.ReadFile(migrations.FS(), name)
		if err != nil {
			t.Fatal(err)
		}
		before[name] = &fstest.MapFile{Data: body}
	}
	if err := db.Migrate(ctx, pool, "reporting", before); err != nil {
		t.Fatal(err)
	}
	// hA paid by two government programs, hB's grant refunded in full in
	// 2018, hC paid by a charity program.
	for _, sql := range []string{
		`INSERT INTO applications (application_id, student_id_hash, school_code, program_code, term, term_rank, stage,
			funding_source, government_total, shares_bp, policy_version, submitted_at) VALUES
		 ('00000000-0000-0000-0000-000000000001', 'hA', 'K01', 'PRESCHOOL_AID', '2017-autumn', 4035, 'preschool', 'government', true,
		  '{"central_provincial":8000,"municipal":2000}', 1, '2017-09-01T00:00:00Z'),
		 ('00000000-0000-0000-0000-000000000002', 'hA', 'K01', 'POVERTY_EXTENSION', '2017-autumn', 4035, 'preschool', 'government', true,
		  '{"municipal":10000}', 1, '2017-09-01T00:00:00Z'),
		 ('00000000-0000-0000-0000-000000000003', 'hB', 'H01', 'HS_NATIONAL_GRANT', '2017-spring', 4034, 'high_school', 'government', true,
		  '{"central_provincial":10000}', 1, '2017-03-01T00:00:00Z'),
		 ('00000000-0000-0000-0000-000000000004', 'hC', 'U00', 'FANHAI_FRESHMAN', '2017-autumn', 4035, 'university', 'charity', false,
		  '{"charity":10000}', 1, '2017-09-01T00:00:00Z')`,
		`INSERT INTO payments (payment_id, application_id, amount_fen, loan_contract_number, paid_at) VALUES
		 ('p1', '00000000-0000-0000-0000-000000000001', 50000, '', '2017-10-20T00:00:00Z'),
		 ('p2', '00000000-0000-0000-0000-000000000002', 50000, '', '2017-10-20T00:00:00Z'),
		 ('p3', '00000000-0000-0000-0000-000000000003', 100000, '', '2017-04-10T00:00:00Z'),
		 ('p4', '00000000-0000-0000-0000-000000000004', 500000, '', '2017-10-20T00:00:00Z')`,
		`INSERT INTO refunds (refund_id, payment_id, clue_id, amount_fen, opened_at) VALUES ('r3', 'p3', 'c3', 100000, '2018-01-10T00:00:00Z')`,
		`INSERT INTO refund_receipts (event_id, refund_id, amount_fen, received_at) VALUES
		 ('00000000-0000-0000-0001-000000000003', 'r3', 100000, '2018-02-01T00:00:00Z')`,
	} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Migrate(ctx, pool, "reporting", migrations.FS()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                                  string
		asOf                                  time.Time
		paid, gov, persons, govPersons, times int64
		centralProvincial, municipal          int64
	}{
		{"now", time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC), 600_000, 100_000, 2, 1, 3, 40_000, 60_000},
		{"before the receipt", time.Date(2018, time.January, 20, 0, 0, 0, 0, time.UTC), 700_000, 200_000, 3, 2, 4, 140_000, 60_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := adapters.Figures(ctx, pool, adapters.Selection{FromRank: 4034, ToRank: 4035, AsOf: tt.asOf, RecoveredYear: 2017})
			if err != nil {
				t.Fatal(err)
			}
			if f.PaidFen != tt.paid || f.GovernmentFen != tt.gov || f.Persons != tt.persons || f.GovernmentPersons != tt.govPersons ||
				f.PersonTimes != tt.times || f.GovernmentFunding["central_provincial"] != tt.centralProvincial ||
				f.GovernmentFunding["municipal"] != tt.municipal || f.Funding["charity"] != 500_000 || f.RefundsOrderedFen != 100_000 {
				t.Errorf("paid %d (government %d = %v), %d persons (%d government), %d person-times, ordered %d; want %d (%d), %d (%d), %d",
					f.PaidFen, f.GovernmentFen, f.GovernmentFunding, f.Persons, f.GovernmentPersons, f.PersonTimes, f.RefundsOrderedFen,
					tt.paid, tt.gov, tt.persons, tt.govPersons, tt.times)
			}
		})
	}
}
