package app

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/internal/devtools/testenv"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/services/reporting/internal/adapters"
	"github.com/edubureau/studentaid/services/reporting/internal/domain"
	"github.com/edubureau/studentaid/services/reporting/migrations"
)

// generatedSteps is a seeded random set of applications walking the
// chain's steps: durations from under a second to weeks, to the
// microsecond, some equal across applications; objections (a step
// visited twice), school and bureau rejections among 90 reasons (more
// than TopReasons in a step), failed payments ordered again, withdrawals. It returns
// the events, shuffled with redeliveries, and instants worth asking as of.
func generatedSteps(seed uint64) ([]event, []time.Time) {
	r := rand.New(rand.NewPCG(seed, 2))
	type prog struct{ code, stage string }
	progs := []prog{{"PRESCHOOL_AID", "preschool"}, {"HS_NATIONAL_GRANT", "high_school"}, {"FANHAI_FRESHMAN", "university"}}
	terms := []string{"2016-autumn", "2017-spring", "2017-autumn"}
	start := time.Date(2017, time.March, 1, 0, 0, 0, 0, time.UTC)
	duration := func() time.Duration {
		switch r.IntN(5) {
		case 0:
			return time.Duration(r.IntN(1_000_000)) * time.Microsecond // under a second
		case 1:
			return time.Duration(1+r.IntN(3)) * time.Hour // often equal
		default:
			return time.Duration(r.Int64N(int64(21 * 24 * time.Hour)))
		}
	}
	var evs []event
	var instants []time.Time
	for i := range 360 {
		p := progs[r.IntN(len(progs))]
		appID := fmt.Sprintf("00000000-0000-0000-0002-%012d", i)
		school := fmt.Sprintf("S%d", r.IntN(4))
		term := terms[r.IntN(len(terms))]
		at := start.Add(time.Duration(r.Int64N(int64(200 * 24 * time.Hour)))).Truncate(time.Microsecond)
		evs = append(evs, event{"submitted " + appID, func(ctx context.Context, s *Service, tx db.Tx) error {
			return s.ApplySubmitted(ctx, tx, Submitted{ID: appID, StudentIDHash: fmt.Sprintf("h%d", i), SchoolCode: school,
				ProgramCode: p.code, Term: term, Stage: p.stage, FundingSource: "government", GovernmentTotal: true,
				SharesBP: map[string]int32{"central_provincial": 10000}, PolicyVersion: 1, SubmittedAt: at, EventID: appID})
		}})
		instants = append(instants, at)
		path := []string{domain.StepNotice}
		if r.IntN(6) == 0 {
			path = append(path, domain.StepSchoolReview, domain.StepNotice) // objected, reviewed again
		}
		switch k := r.IntN(10); {
		case k < 3:
			path = []string{domain.StepSchoolRejected}
		case k == 1:
			path = append(path, domain.StepBureauReview, domain.StepBureauRejected)
		case k == 2:
			path = append(path, domain.StepWithdrawn)
		default:
			path = append(path, domain.StepBureauReview, domain.StepFinance, domain.StepBatched, domain.StepOrdered)
			if r.IntN(5) == 0 {
				path = append(path, domain.StepPaymentFailed, domain.StepOrdered)
			}
			path = append(path, domain.StepPaid)
			path = path[:1+r.IntN(len(path))] // some still on the way
		}
		for k, step := range path {
			at = at.Add(duration())
			reason := ""
			if step == domain.StepSchoolRejected || step == domain.StepBureauRejected || step == domain.StepPaymentFailed {
				reason = fmt.Sprintf(" reason %02d ", r.IntN(90))
			}
			id := fmt.Sprintf("00000000-0000-0000-0003-%08d%04d", i, k)
			when := at
			evs = append(evs, event{step + " " + id, func(ctx context.Context, s *Service, tx db.Tx) error {
				return s.ApplyStep(ctx, tx, appID, step, reason, id, when)
			}})
			instants = append(instants, when, when.Add(-time.Microsecond))
		}
	}
	r.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
	for i := 0; i < len(evs); i += 5 {
		evs = append(evs, evs[i])
	}
	r.Shuffle(len(instants), func(i, j int) { instants[i], instants[j] = instants[j], instants[i] })
	return evs, append(instants[:14], start, start.AddDate(0, 4, 0), start.AddDate(5, 0, 0))
}

// stepAggregateRows reads the step aggregates' non-empty rows in a fixed
// order.
func stepAggregateRows(ctx context.Context, t *testing.T, q db.Querier) []string {
	t.Helper()
	return textRows(ctx, t, q,
		`SELECT concat_ws(' ', 'cell', ord, term_rank, school_code, stage, program_code, at_step, left_step)
		 FROM step_cells WHERE at_step <> 0 OR left_step <> 0 ORDER BY 1`,
		`SELECT concat_ws(' ', 'duration', ord, term_rank, school_code, stage, program_code, bucket, visits)
		 FROM step_durations WHERE visits <> 0 ORDER BY 1`,
		`SELECT concat_ws(' ', 'reason', ord, term_rank, school_code, stage, program_code, step, reason, visits)
		 FROM step_reasons WHERE visits <> 0 ORDER BY 1`,
		`SELECT concat_ws(' ', 'cell log', at_hour, ord, term_rank, school_code, stage, program_code, at_step, left_step)
		 FROM step_cells_log WHERE at_step <> 0 OR left_step <> 0 ORDER BY 1`,
		`SELECT concat_ws(' ', 'duration log', at_hour, ord, term_rank, school_code, stage, program_code, bucket, visits)
		 FROM step_durations_log WHERE visits <> 0 ORDER BY 1`,
		`SELECT concat_ws(' ', 'reason log', at_hour, ord, term_rank, school_code, stage, program_code, step, reason, visits)
		 FROM step_reasons_log WHERE visits <> 0 ORDER BY 1`,
	)
}

// TestStepAggregatesFollowTheRows drives generated applications through
// the consumer's step use cases in a random order with redeliveries, and
// checks that the step aggregates the consumer kept are those rebuilt from
// the visits, and that the step figures read from them (counts, exact
// medians, rejections by reason) equal those computed from the visits
// alone, for selections with and without filters, as of now and as of
// instants between the events.
func TestStepAggregatesFollowTheRows(t *testing.T) {
	ctx := context.Background()
	pool, _ := testenv.Pool(t, "reporting")
	if err := db.Migrate(ctx, pool, "reporting", migrations.FS()); err != nil {
		t.Fatal(err)
	}
	s := New(Deps{Pool: pool})
	evs, instants := generatedSteps(14)
	applyAll(ctx, t, pool, s, evs)

	kept := stepAggregateRows(ctx, t, pool)
	if len(kept) < 300 {
		t.Fatalf("only %d step aggregate rows: too little generated", len(kept))
	}
	if err := db.InTx(ctx, pool, func(tx pgx.Tx) error { return adapters.RebuildStepAggregates(ctx, tx) }); err != nil {
		t.Fatal(err)
	}
	if rebuilt := stepAggregateRows(ctx, t, pool); !reflect.DeepEqual(kept, rebuilt) {
		t.Errorf("kept by the consumer:\n%s\nrebuilt from the visits:\n%s", strings.Join(kept, "\n"), strings.Join(rebuilt, "\n"))
	}

	selections := []adapters.Selection{
		{FromRank: 4033, ToRank: 4035},
		{FromRank: 4034, ToRank: 4035},
		{FromRank: 4035, ToRank: 4035},
		{FromRank: 4033, ToRank: 4035, Schools: []string{"S1", "S3"}},
		{FromRank: 4033, ToRank: 4035, Schools: []string{"S0", "S1", "S2"}, Stage: "preschool"},
		{FromRank: 4034, ToRank: 4035, Program: "HS_NATIONAL_GRANT"},
		{FromRank: 4033, ToRank: 4034, Stage: "university", Program: "FANHAI_FRESHMAN"},
		{FromRank: 4040, ToRank: 4044},
	}
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var medians, others int
	for _, sel := range selections {
		for _, at := range instants {
			sel.AsOf = at
			name := fmt.Sprintf("%d-%d %v %q %q as of %s", sel.FromRank, sel.ToRank, sel.Schools, sel.Stage, sel.Program, at.Format(time.RFC3339Nano))
			wantSteps, wantRej, err := adapters.RawSteps(ctx, tx, sel)
			if err != nil {
				t.Fatal(err)
			}
			gotSteps, gotRej, err := adapters.Steps(ctx, tx, sel)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if fmt.Sprintf("%+v", gotSteps) != fmt.Sprintf("%+v", wantSteps) {
				t.Errorf("%s:\nfrom the aggregates %+v\nfrom the visits     %+v", name, gotSteps, wantSteps)
			}
			if fmt.Sprintf("%+v", gotRej) != fmt.Sprintf("%+v", wantRej) {
				t.Errorf("%s: rejections\nfrom the aggregates %+v\nfrom the visits     %+v", name, gotRej, wantRej)
			}
			hourSteps, hourRej, ok, err := adapters.StepsByHours(ctx, tx, sel)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if !ok {
				t.Fatalf("%s: the hourly logs could not answer", name)
			}
			if fmt.Sprintf("%+v", hourSteps) != fmt.Sprintf("%+v", wantSteps) {
				t.Errorf("%s:\nfrom the hourly logs %+v\nfrom the visits      %+v", name, hourSteps, wantSteps)
			}
			if fmt.Sprintf("%+v", hourRej) != fmt.Sprintf("%+v", wantRej) {
				t.Errorf("%s: rejections\nfrom the hourly logs %+v\nfrom the visits      %+v", name, hourRej, wantRej)
			}
			for _, st := range wantSteps {
				if st.MedianSeconds != 0 {
					medians++
				}
			}
			for _, j := range wantRej {
				if j.Other {
					others++
				}
			}
		}
	}
	// The comparison is worth something only if there were medians and
	// an "other" line to compare.
	if medians < 200 || others == 0 {
		t.Errorf("%d medians and %d other lines compared: the generated steps are too thin", medians, others)
	}
}
