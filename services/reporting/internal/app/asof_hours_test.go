package app

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/internal/devtools/testenv"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/services/reporting/internal/adapters"
	"github.com/edubureau/studentaid/services/reporting/internal/domain"
	"github.com/edubureau/studentaid/services/reporting/migrations"
)

// TestAsOfHoursByHand asks a small hand-made read model for its figures
// and steps as of instants before the first fact, on hour boundaries,
// inside an hour between two events of that hour, at the last instant of
// an hour and after a refund was received, through every path: the
// aggregates corrected (Figures, Steps), the hourly logs (FiguresByHours,
// StepsByHours) and the rows alone (RawFigures, RawSteps). The expected
// figures are worked out by hand below.
//
// hA is paid PRESCHOOL_AID (80 % central/provincial, 20 % municipal) at
// school K01 at 10:15 and POVERTY_EXTENSION (municipal) at K02 at 11:00
// on 2017-10-20; hB is paid PRESCHOOL_AID at K02 at 10:45 that day, and
// that payment is refunded in full, received on 2017-12-01 at 09:30.
// Applications A1 (hA), A2 (hB) and A3 (hA) were submitted on 2017-09-01
// at 08:10, 08:20 and 12:00; A1 went to the notice at 08:40 and to the
// bureau's review at 10:00, A2 to the notice at 09:05.
func TestAsOfHoursByHand(t *testing.T) {
	ctx := context.Background()
	pool, _ := testenv.Pool(t, "reporting")
	if err := db.Migrate(ctx, pool, "reporting", migrations.FS()); err != nil {
		t.Fatal(err)
	}
	s := New(Deps{Pool: pool})
	day := func(month time.Month, d, h, m int) time.Time { return time.Date(2017, month, d, h, m, 0, 0, time.UTC) }
	const a1, a2, a3 = "00000000-0000-0000-0003-000000000001", "00000000-0000-0000-0003-000000000002", "00000000-0000-0000-0003-000000000003"
	app := func(id, student, school, program string, shares map[string]int32, at time.Time) event {
		return event{"submitted " + id, func(ctx context.Context, s *Service, tx db.Tx) error {
			return s.ApplySubmitted(ctx, tx, Submitted{ID: id, StudentIDHash: student, SchoolCode: school, ProgramCode: program,
				Term: "2017-autumn", Stage: "preschool", FundingSource: "government", GovernmentTotal: true, SharesBP: shares,
				PolicyVersion: 1, SubmittedAt: at, EventID: id})
		}}
	}
	preschool := map[string]int32{"central_provincial": 8000, "municipal": 2000}
	municipal := map[string]int32{"municipal": 10000}
	step := func(id, st string, at time.Time) event {
		return event{st + " " + id, func(ctx context.Context, s *Service, tx db.Tx) error {
			return s.ApplyStep(ctx, tx, id, st, "", fmt.Sprintf("00000000-0000-0000-0004-%02d%010d", at.Hour(), at.Minute()), at)
		}}
	}
	paid := func(payment, id string, fen int64, at time.Time) event {
		return event{"paid " + payment, func(ctx context.Context, s *Service, tx db.Tx) error {
			return s.ApplyPaid(ctx, tx, payment, id, fen, "", at)
		}}
	}
	// In an order other than their instants', the receipt before its
	// payment, one event twice.
	evs := []event{
		app(a3, "hA", "K02", "POVERTY_EXTENSION", municipal, day(time.September, 1, 12, 0)),
		paid("p3", a3, 30_000, day(time.October, 20, 11, 0)),
		{"refund r2", func(ctx context.Context, s *Service, tx db.Tx) error {
			return s.ApplyRefundOpened(ctx, tx, "r2", "p2", "c2", 50_000, day(time.December, 1, 0, 0))
		}},
		{"receipt r2", func(ctx context.Context, s *Service, tx db.Tx) error {
			return s.ApplyReceipt(ctx, tx, "00000000-0000-0000-0005-000000000002", "r2", 50_000, day(time.December, 1, 9, 30))
		}},
		step(a1, domain.StepBureauReview, day(time.September, 1, 10, 0)),
		app(a2, "hB", "K02", "PRESCHOOL_AID", preschool, day(time.September, 1, 8, 20)),
		paid("p2", a2, 50_000, day(time.October, 20, 10, 45)),
		app(a1, "hA", "K01", "PRESCHOOL_AID", preschool, day(time.September, 1, 8, 10)),
		step(a2, domain.StepNotice, day(time.September, 1, 9, 5)),
		step(a1, domain.StepNotice, day(time.September, 1, 8, 40)),
		paid("p1", a1, 50_000, day(time.October, 20, 10, 15)),
		paid("p2", a2, 50_000, day(time.October, 20, 10, 45)),
	}
	applyAll(ctx, t, pool, s, evs)

	type want struct {
		paid, gross, recovered, persons, times, central, municipal, ordered int64
		schoolPersons, programPersons                                       int64
	}
	for _, tt := range []struct {
		name string
		at   time.Time
		want want
	}{
		{"before the first payment, on an hour", day(time.October, 20, 10, 0), want{}},
		{"the first payment's instant, inside its hour", day(time.October, 20, 10, 15),
			want{paid: 50_000, gross: 50_000, persons: 1, times: 1, central: 40_000, municipal: 10_000, schoolPersons: 1, programPersons: 1}},
		{"between two payments of one hour", day(time.October, 20, 10, 30),
			want{paid: 50_000, gross: 50_000, persons: 1, times: 1, central: 40_000, municipal: 10_000, schoolPersons: 1, programPersons: 1}},
		{"the hour's last instant", day(time.October, 20, 11, 0).Add(-time.Microsecond),
			want{paid: 100_000, gross: 100_000, persons: 2, times: 2, central: 80_000, municipal: 20_000, schoolPersons: 2, programPersons: 2}},
		{"a payment on the hour", day(time.October, 20, 11, 0),
			want{paid: 130_000, gross: 130_000, persons: 2, times: 3, central: 80_000, municipal: 50_000, schoolPersons: 2, programPersons: 2}},
		{"the refund ordered, not yet received", day(time.December, 1, 9, 29),
			want{paid: 130_000, gross: 130_000, persons: 2, times: 3, central: 80_000, municipal: 50_000, ordered: 50_000,
				schoolPersons: 2, programPersons: 2}},
		{"the refund received, inside its hour", day(time.December, 1, 9, 30),
			want{paid: 80_000, gross: 130_000, recovered: 50_000, persons: 1, times: 2, central: 40_000, municipal: 40_000, ordered: 50_000,
				schoolPersons: 1, programPersons: 1}},
		{"later in the refund's hour", day(time.December, 1, 9, 45),
			want{paid: 80_000, gross: 130_000, recovered: 50_000, persons: 1, times: 2, central: 40_000, municipal: 40_000, ordered: 50_000,
				schoolPersons: 1, programPersons: 1}},
		{"now", time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC),
			want{paid: 80_000, gross: 130_000, recovered: 50_000, persons: 1, times: 2, central: 40_000, municipal: 40_000, ordered: 50_000,
				schoolPersons: 1, programPersons: 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			year := adapters.Selection{FromRank: 4034, ToRank: 4035, AsOf: tt.at}
			schools := adapters.Selection{FromRank: 4033, ToRank: 4035, Schools: []string{"K01", "K02"}, AsOf: tt.at}
			program := adapters.Selection{FromRank: 4035, ToRank: 4036, Program: "PRESCHOOL_AID", AsOf: tt.at}
			paths := []struct {
				name string
				fn   func(context.Context, db.Querier, adapters.Selection) (domain.Figures, error)
			}{
				{"aggregates", adapters.Figures},
				{"hourly logs", func(ctx context.Context, q db.Querier, s adapters.Selection) (domain.Figures, error) {
					f, ok, err := adapters.FiguresByHours(ctx, q, s)
					if err == nil && !ok {
						err = errors.New("the logs could not answer")
					}
					return f, err
				}},
				{"rows", adapters.RawFigures},
			}
			for _, p := range paths {
				f, err := p.fn(ctx, pool, year)
				if err != nil {
					t.Fatalf("%s: %v", p.name, err)
				}
				got := want{paid: f.PaidFen, gross: f.GrossFen, recovered: f.RefundsRecoveredFen, persons: f.Persons, times: f.PersonTimes,
					central: f.GovernmentFunding["central_provincial"], municipal: f.GovernmentFunding["municipal"], ordered: f.RefundsOrderedFen}
				if f, err = p.fn(ctx, pool, schools); err != nil {
					t.Fatalf("%s: %v", p.name, err)
				}
				got.schoolPersons = f.Persons
				if f, err = p.fn(ctx, pool, program); err != nil {
					t.Fatalf("%s: %v", p.name, err)
				}
				got.programPersons = f.Persons
				if got != tt.want {
					t.Errorf("%s: %+v, want %+v", p.name, got, tt.want)
				}
			}
		})
	}

	// Steps: applications at each step, left it, and the median time in it.
	type stepWant struct {
		at, left int64
		median   float64
	}
	for _, tt := range []struct {
		name                 string
		at                   time.Time
		review, notice, bure stepWant
	}{
		{"before the first submission, on an hour", day(time.September, 1, 8, 0), stepWant{}, stepWant{}, stepWant{}},
		{"inside an hour, between its events", day(time.September, 1, 8, 30), stepWant{at: 2}, stepWant{}, stepWant{}},
		{"the hour's last instant", day(time.September, 1, 9, 0).Add(-time.Microsecond),
			stepWant{at: 1, left: 1, median: 1800}, stepWant{at: 1}, stepWant{}},
		{"on the hour", day(time.September, 1, 9, 0), stepWant{at: 1, left: 1, median: 1800}, stepWant{at: 1}, stepWant{}},
		{"half past", day(time.September, 1, 9, 30), stepWant{left: 2, median: 2250}, stepWant{at: 2}, stepWant{}},
		{"a step entered on the hour", day(time.September, 1, 10, 0),
			stepWant{left: 2, median: 2250}, stepWant{at: 1, left: 1, median: 4800}, stepWant{at: 1}},
		{"a submission on the hour", day(time.September, 1, 12, 0),
			stepWant{at: 1, left: 2, median: 2250}, stepWant{at: 1, left: 1, median: 4800}, stepWant{at: 1}},
	} {
		t.Run("steps "+tt.name, func(t *testing.T) {
			sel := adapters.Selection{FromRank: 4034, ToRank: 4035, AsOf: tt.at}
			err := db.InTx(ctx, pool, func(tx pgx.Tx) error {
				paths := []struct {
					name string
					fn   func(context.Context, db.Querier, adapters.Selection) ([]domain.StepFigure, []domain.Rejection, error)
				}{
					{"aggregates", adapters.Steps},
					{"hourly logs", func(ctx context.Context, q db.Querier, s adapters.Selection) ([]domain.StepFigure, []domain.Rejection, error) {
						st, rej, ok, err := adapters.StepsByHours(ctx, q, s)
						if err == nil && !ok {
							err = errors.New("the logs could not answer")
						}
						return st, rej, err
					}},
					{"visits", adapters.RawSteps},
				}
				for _, p := range paths {
					steps, _, err := p.fn(ctx, tx, sel)
					if err != nil {
						return fmt.Errorf("%s: %w", p.name, err)
					}
					got := map[string]stepWant{}
					for _, st := range steps {
						if st.Applications != 0 || st.Left != 0 {
							got[st.Step] = stepWant{st.Applications, st.Left, st.MedianSeconds}
						}
					}
					want := map[string]stepWant{}
					for name, w := range map[string]stepWant{domain.StepSchoolReview: tt.review, domain.StepNotice: tt.notice,
						domain.StepBureauReview: tt.bure} {
						if w != (stepWant{}) {
							want[name] = w
						}
					}
					if fmt.Sprint(got) != fmt.Sprint(want) {
						t.Errorf("%s: %v, want %v", p.name, got, want)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}
