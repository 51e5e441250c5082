package domain_test

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edubureau/studentaid/pkg/review"
	"github.com/edubureau/studentaid/services/bureau-review/internal/domain"
)

var t0 = time.Date(2017, 10, 9, 2, 0, 0, 0, time.UTC)

func item(state domain.State) domain.Review {
	return domain.Review{
		Item: review.Item[domain.State]{
			Arrival: review.Arrival{
				ApplicationID: "0190a5f2-7c1e-7d3a-9b2e-5f6a7b8c9d0e",
				SchoolCode:    "S001",
				AmountFen:     100000,
				SubmittedBy:   "officer-1",
			},
			State: state,
		},
		SchoolReviewer: "school-rev-1",
	}
}

func TestDecide(t *testing.T) {
	t.Parallel()
	type tc struct {
		name      string
		state     domain.State
		decision  domain.Decision
		reviewer  string
		wantErr   error
		wantState domain.State
	}
	tests := []tc{
		{"approve", domain.StatePending, domain.Decision{Approve: true}, "bureau-1", nil, domain.StateApproved},
		{"approve with note", domain.StatePending, domain.Decision{Approve: true, Reason: "checked"}, "bureau-1", nil, domain.StateApproved},
		{"reject", domain.StatePending, domain.Decision{Reason: "double payment"}, "bureau-1", nil, domain.StateRejected},
		{"reject with flags shown", domain.StatePending, domain.Decision{Reason: "not enrolled", FlagsShown: []string{"not_on_roster", "deceased"}}, "bureau-1", nil, domain.StateRejected},
		{"refused with flags shown", domain.StatePending, domain.Decision{FlagsShown: []string{"deceased"}}, "bureau-1", domain.ErrReasonRequired, domain.StatePending},
		{"reject without reason", domain.StatePending, domain.Decision{}, "bureau-1", domain.ErrReasonRequired, domain.StatePending},
		{"reject with blank reason", domain.StatePending, domain.Decision{Reason: "\u3000 "}, "bureau-1", domain.ErrReasonRequired, domain.StatePending},
		{"overlong reason", domain.StatePending, domain.Decision{Approve: true, Reason: strings.Repeat("审", 501)}, "bureau-1", domain.ErrReasonInvalid, domain.StatePending},
		{"school reviewer approves", domain.StatePending, domain.Decision{Approve: true}, "school-rev-1", domain.ErrSchoolReviewerCannotBureauReview, domain.StatePending},
		{"school reviewer rejects", domain.StatePending, domain.Decision{Reason: "x"}, "school-rev-1", domain.ErrSchoolReviewerCannotBureauReview, domain.StatePending},
		{"submitter approves", domain.StatePending, domain.Decision{Approve: true}, "officer-1", domain.ErrSubmitterCannotReview, domain.StatePending},
		{"submitter rejects", domain.StatePending, domain.Decision{Reason: "x"}, "officer-1", domain.ErrSubmitterCannotReview, domain.StatePending},
	}
	for _, from := range []domain.State{domain.StateApproved, domain.StateRejected} {
		tests = append(tests,
			tc{"approve " + string(from), from, domain.Decision{Approve: true}, "bureau-1", domain.ErrIllegalTransition, from},
			tc{"reject " + string(from), from, domain.Decision{Reason: "x"}, "bureau-1", domain.ErrIllegalTransition, from})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := item(tc.state)
			before := r
			err := r.Decide(tc.decision, tc.reviewer, t0)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				if !reflect.DeepEqual(r, before) {
					t.Fatalf("refused decision changed the item: %+v", r)
				}
				return
			}
			if r.State != tc.wantState || r.Reviewer != tc.reviewer || r.Reason != tc.decision.Reason || !r.UpdatedAt.Equal(t0) || r.AmountFen != 100000 ||
				!slices.Equal(r.FlagsShown, tc.decision.FlagsShown) {
				t.Fatalf("after decision: %+v", r)
			}
		})
	}
}

func TestReturnFromFinance(t *testing.T) {
	t.Parallel()
	tests := []struct {
		state   domain.State
		wantErr error
	}{
		{domain.StateApproved, nil},
		{domain.StatePending, domain.ErrIllegalTransition},
		{domain.StateRejected, domain.ErrIllegalTransition},
	}
	for _, tc := range tests {
		t.Run(string(tc.state), func(t *testing.T) {
			t.Parallel()
			r := item(tc.state)
			r.Reviewer = "bureau-1"
			before := r
			err := r.ReturnFromFinance("amount above standard", t0)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			var te *domain.TransitionError
			if err != nil {
				if !errors.As(err, &te) || !reflect.DeepEqual(r, before) {
					t.Fatalf("refused return: err %v, item %+v", err, r)
				}
				return
			}
			if r.State != domain.StatePending || r.Returns != 1 || r.Reason != "amount above standard" || r.Reviewer != "" || len(r.FlagsShown) != 0 {
				t.Fatalf("after return: %+v", r)
			}
			// Back in review, it can be decided again and returned again.
			if err := r.Decide(domain.Decision{Approve: true, FlagsShown: []string{"deceased"}}, "bureau-2", t0); err != nil || !slices.Equal(r.FlagsShown, []string{"deceased"}) {
				t.Fatalf("second decision: %v, flags shown %q", err, r.FlagsShown)
			}
			if err := r.ReturnFromFinance("again", t0); err != nil || r.Returns != 2 || r.FlagsShown != nil {
				t.Fatalf("second return: %v, returns %d", err, r.Returns)
			}
		})
	}
}

func TestParseState(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"PENDING", "APPROVED", "REJECTED"} {
		if st, err := domain.ParseState(s); err != nil || string(st) != s {
			t.Errorf("ParseState(%q) = %q, %v", s, st, err)
		}
	}
	if _, err := domain.ParseState("IN_NOTICE"); err == nil {
		t.Error("ParseState(IN_NOTICE) succeeded")
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
		{"given", "重复发放", true, nil},
		{"optional empty", "", false, nil},
		{"required empty", "", true, domain.ErrReasonRequired},
		{"500 runes", strings.Repeat("审", 500), true, nil},
		{"501 runes", strings.Repeat("审", 501), true, domain.ErrReasonInvalid},
		{"invalid UTF-8", "\xc3\x28", false, domain.ErrReasonInvalid},
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
