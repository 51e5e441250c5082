package domain_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/edubureau/studentaid/pkg/catalog"
	"github.com/edubureau/studentaid/pkg/review"
	"github.com/edubureau/studentaid/services/school-review/internal/domain"
)

var t0 = time.Date(2017, 9, 4, 2, 0, 0, 0, time.UTC) // Monday 10:00 in Shanghai

func item(state domain.State, program string, tiered bool, base int64) domain.Review {
	r := domain.Review{
		Item: review.Item[domain.State]{
			Arrival: review.Arrival{
				ApplicationID: "0190a5f2-7c1e-7d3a-9b2e-5f6a7b8c9d0e",
				SchoolCode:    "S001",
				Term:          "2017-autumn",
				ProgramCode:   program,
				Stage:         string(catalog.StageHighSchool),
				AmountFen:     base,
				SubmittedBy:   "officer-1",
			},
			State: state,
		},
		Tiered:        tiered,
		BaseAmountFen: base,
	}
	if state == domain.StateInNotice {
		r.NoticeEndsAt = t0.Add(time.Hour)
		r.HardshipLevel = catalog.LevelDifficult
	}
	return r
}

func TestSubmitted(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		program    string
		stage      catalog.Stage
		tiered     bool
		base       int64
		wantTiered bool
		wantAmount int64
	}{
		{"tiered from catalog ignores base", "HS_NATIONAL_GRANT", catalog.StageHighSchool, false, 99, true, 0},
		{"standard kept from event", "HS_TUITION_WAIVER", catalog.StageHighSchool, false, 60000, false, 60000},
		{"missing standard filled from catalog", "BOARDING_SUBSIDY", catalog.StageJunior, false, 0, false, 62500},
		{"unknown program trusts event", "LOCAL_X", catalog.StagePrimary, false, 1234, false, 1234},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := domain.Submitted(domain.Review{Item: review.Item[domain.State]{Arrival: review.Arrival{ProgramCode: tc.program, Stage: string(tc.stage)}}, Tiered: tc.tiered, BaseAmountFen: tc.base})
			if r.State != domain.StatePending || r.Tiered != tc.wantTiered || r.AmountFen != tc.wantAmount || r.BaseAmountFen != tc.wantAmount {
				t.Fatalf("got state %s tiered %v amount %d base %d; want PENDING %v %d", r.State, r.Tiered, r.AmountFen, r.BaseAmountFen, tc.wantTiered, tc.wantAmount)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	t.Parallel()
	period := domain.WorkingDays(5)
	tests := []struct {
		name       string
		review     domain.Review
		decision   domain.Decision
		reviewer   string
		wantErr    error
		wantState  domain.State
		wantAmount int64
	}{
		{"approve tiered with level", item(domain.StatePending, "HS_NATIONAL_GRANT", true, 0),
			domain.Decision{Approve: true, Level: catalog.LevelEspeciallyDifficult}, "rev-1", nil, domain.StateInNotice, 125000},
		{"approve tiered generally difficult", item(domain.StatePending, "HS_NATIONAL_GRANT", true, 0),
			domain.Decision{Approve: true, Level: catalog.LevelGenerallyDifficult}, "rev-1", nil, domain.StateInNotice, 75000},
		{"approve standard without level", item(domain.StatePending, "HS_TUITION_WAIVER", false, 85000),
			domain.Decision{Approve: true}, "rev-1", nil, domain.StateInNotice, 85000},
		{"approve tiered without level", item(domain.StatePending, "HS_NATIONAL_GRANT", true, 0),
			domain.Decision{Approve: true}, "rev-1", domain.ErrLevelRequired, domain.StatePending, 0},
		{"approve with unknown level", item(domain.StatePending, "HS_NATIONAL_GRANT", true, 0),
			domain.Decision{Approve: true, Level: "rich"}, "rev-1", domain.ErrInvalidLevel, domain.StatePending, 0},
		{"reject with reason", item(domain.StatePending, "HS_TUITION_WAIVER", false, 85000),
			domain.Decision{Reason: "not enrolled"}, "rev-1", nil, domain.StateRejected, 85000},
		{"reject without reason", item(domain.StatePending, "HS_TUITION_WAIVER", false, 85000),
			domain.Decision{Reason: "  "}, "rev-1", domain.ErrReasonRequired, domain.StatePending, 85000},
		{"reject with overlong reason", item(domain.StatePending, "HS_TUITION_WAIVER", false, 85000),
			domain.Decision{Reason: strings.Repeat("理", 501)}, "rev-1", domain.ErrReasonInvalid, domain.StatePending, 85000},
		{"submitter cannot approve", item(domain.StatePending, "HS_TUITION_WAIVER", false, 85000),
			domain.Decision{Approve: true}, "officer-1", domain.ErrSubmitterCannotReview, domain.StatePending, 85000},
		{"submitter cannot reject", item(domain.StatePending, "HS_TUITION_WAIVER", false, 85000),
			domain.Decision{Reason: "x"}, "officer-1", domain.ErrSubmitterCannotReview, domain.StatePending, 85000},
	}
	for _, from := range []domain.State{domain.StateInNotice, domain.StateRejected, domain.StatePassed} {
		for _, approve := range []bool{true, false} {
			r := item(from, "HS_TUITION_WAIVER", false, 85000)
			tests = append(tests, struct {
				name       string
				review     domain.Review
				decision   domain.Decision
				reviewer   string
				wantErr    error
				wantState  domain.State
				wantAmount int64
			}{"decide " + string(from), r, domain.Decision{Approve: approve, Reason: "r"}, "rev-1", domain.ErrIllegalTransition, from, 85000})
		}
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := tc.review
			before := r
			err := r.Decide(tc.decision, tc.reviewer, t0, func(start time.Time) time.Time { return endsAt(period, start) })
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				if r != before {
					t.Fatalf("refused decision changed the item: %+v", r)
				}
				return
			}
			if r.State != tc.wantState || r.AmountFen != tc.wantAmount || r.Reviewer != tc.reviewer {
				t.Fatalf("got %s %d by %q; want %s %d by %q", r.State, r.AmountFen, r.Reviewer, tc.wantState, tc.wantAmount, tc.reviewer)
			}
			if tc.wantState == domain.StateInNotice {
				if want := endsAt(period, t0); !r.NoticeEndsAt.Equal(want) {
					t.Fatalf("notice ends %s, want %s", r.NoticeEndsAt, want)
				}
			} else if !r.NoticeEndsAt.IsZero() {
				t.Fatalf("rejected item has a notice deadline %s", r.NoticeEndsAt)
			}
		})
	}
}

func TestObject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		state   domain.State
		at      time.Time
		reason  string
		wantErr error
	}{
		{"during notice", domain.StateInNotice, t0, "neighbour reports a new car", nil},
		{"after deadline", domain.StateInNotice, t0.Add(time.Hour), "late", domain.ErrNoticeEnded},
		{"without reason", domain.StateInNotice, t0, "", domain.ErrReasonRequired},
		{"pending", domain.StatePending, t0, "x", domain.ErrIllegalTransition},
		{"rejected", domain.StateRejected, t0, "x", domain.ErrIllegalTransition},
		{"passed", domain.StatePassed, t0, "x", domain.ErrIllegalTransition},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := item(tc.state, "HS_NATIONAL_GRANT", true, 0)
			r.AmountFen = 100000
			before := r
			err := r.Object(tc.reason, tc.at)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				if r != before {
					t.Fatalf("refused objection changed the item: %+v", r)
				}
				return
			}
			if r.State != domain.StatePending || r.Objections != 1 || r.HardshipLevel != "" || r.AmountFen != 0 || !r.NoticeEndsAt.IsZero() || r.Reason != tc.reason {
				t.Fatalf("after objection: %+v", r)
			}
		})
	}
}

func TestPassNotice(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		state   domain.State
		at      time.Time
		wantErr error
	}{
		{"at deadline", domain.StateInNotice, t0.Add(time.Hour), nil},
		{"after deadline", domain.StateInNotice, t0.Add(2 * time.Hour), nil},
		{"before deadline", domain.StateInNotice, t0.Add(time.Hour - time.Nanosecond), domain.ErrIllegalTransition},
		{"pending", domain.StatePending, t0.Add(time.Hour), domain.ErrIllegalTransition},
		{"rejected", domain.StateRejected, t0.Add(time.Hour), domain.ErrIllegalTransition},
		{"passed", domain.StatePassed, t0.Add(time.Hour), domain.ErrIllegalTransition},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := item(tc.state, "HS_NATIONAL_GRANT", true, 0)
			before := r
			err := r.PassNotice(tc.at)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil && r != before {
				t.Fatalf("refused pass changed the item: %+v", r)
			}
			if err == nil && r.State != domain.StatePassed {
				t.Fatalf("state %s, want PASSED", r.State)
			}
			var te *domain.TransitionError
			if err != nil && !errors.As(err, &te) {
				t.Fatalf("err %v is not a *TransitionError", err)
			}
		})
	}
}

func TestParseState(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"PENDING", "IN_NOTICE", "REJECTED", "PASSED"} {
		if st, err := domain.ParseState(s); err != nil || string(st) != s {
			t.Errorf("ParseState(%q) = %q, %v", s, st, err)
		}
	}
	if _, err := domain.ParseState("APPROVED"); err == nil {
		t.Error("ParseState(APPROVED) succeeded")
	}
}

func TestCheckReason(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		reason   string
		required bool
		wantErr  error
	}{
		{"given", "收入超标", true, nil},
		{"optional and empty", "", false, nil},
		{"required and empty", "", true, domain.ErrReasonRequired},
		{"required and blank", " \t\u3000", true, domain.ErrReasonRequired},
		{"500 runes", strings.Repeat("理", 500), true, nil},
		{"501 runes", strings.Repeat("理", 501), false, domain.ErrReasonInvalid},
		{"invalid UTF-8", "bad\xff", false, domain.ErrReasonInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := domain.CheckReason(tc.reason, tc.required); !errors.Is(err, tc.wantErr) {
				t.Fatalf("CheckReason = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestPinnedTiersDecideTheAmount(t *testing.T) {
	t.Parallel()
	tiers, err := domain.TiersOf(map[string]int64{"especially_difficult": 140000, "difficult": 110000, "generally_difficult": 60000})
	if err != nil {
		t.Fatal(err)
	}
	pinned := func(t domain.Tiers) domain.Review {
		r := item(domain.StatePending, "HS_NATIONAL_GRANT", true, 0)
		r.PolicyVersion, r.Tiers = 7, t
		return domain.Submitted(r)
	}
	// The pinned table's amounts, not the seed policy's 125000 / 100000 / 75000.
	for level, want := range map[catalog.HardshipLevel]int64{
		catalog.LevelEspeciallyDifficult: 140000,
		catalog.LevelDifficult:           110000,
		catalog.LevelGenerallyDifficult:  60000,
	} {
		r := pinned(tiers)
		if err := r.Decide(domain.Decision{Approve: true, Level: level}, "rev-1", t0, func(s time.Time) time.Time { return s }); err != nil {
			t.Fatalf("%s: %v", level, err)
		}
		if r.AmountFen != want || r.HardshipLevel != level {
			t.Errorf("%s: amount %d, want %d", level, r.AmountFen, want)
		}
	}
	// A level the pinned policy has no tier for is refused.
	r := pinned(domain.Tiers{EspeciallyDifficult: 125000, Difficult: 100000})
	if err := r.Decide(domain.Decision{Approve: true, Level: catalog.LevelGenerallyDifficult}, "rev-1", t0, func(s time.Time) time.Time { return s }); !errors.Is(err, domain.ErrInvalidLevel) {
		t.Fatalf("missing tier: err = %v, want ErrInvalidLevel", err)
	}
	// A pinned non-tiered submission keeps its own amount, whatever the catalog says.
	std := item(domain.StatePending, "HS_TUITION_WAIVER", false, 120000)
	std.PolicyVersion = 7
	if got := domain.Submitted(std); got.Tiered || got.AmountFen != 120000 {
		t.Fatalf("pinned standard amount: tiered %v amount %d, want 120000", got.Tiered, got.AmountFen)
	}
	for _, bad := range []map[string]int64{{"rich": 1}, {"difficult": -1}, {"": 5}} {
		if _, err := domain.TiersOf(bad); !errors.Is(err, domain.ErrInvalidTiers) {
			t.Errorf("TiersOf(%v) = %v, want ErrInvalidTiers", bad, err)
		}
	}
}
