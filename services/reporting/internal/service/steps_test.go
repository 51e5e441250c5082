package service_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/service/servicetest"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	reportingv1 "github.com/edubureau/studentaid/proto/gen/aid/reporting/v1"
)

// journey is one application's events, built at hours after t0.
type journey struct {
	keys  events.Keys
	stage string
	t0    time.Time
	evs   []*eventsv1.Event
}

func newJourney(school, program, stage, term string, t0 time.Time) *journey {
	j := &journey{keys: events.Keys{ApplicationID: uuid.NewString(), SchoolCode: school, ProgramCode: program, Term: term},
		stage: stage, t0: t0}
	j.at(0, &eventsv1.ApplicationSubmitted{StudentIdHash: "hash-" + j.keys.ApplicationID, Stage: stage, FundingSource: "government",
		AmountFen: 100_000, PolicyVersion: 1, FundingSharesBp: map[string]int32{"central_provincial": 10000}, GovernmentTotal: true})
	return j
}

// at adds the event of body hours after t0.
func (j *journey) at(hours float64, body proto.Message) *journey {
	at := j.t0.Add(time.Duration(hours * float64(time.Hour)))
	j.evs = append(j.evs, events.MustNew(at, events.Actor("actor", string(auth.RoleSchoolReviewer), j.keys.SchoolCode), j.keys, body))
	return j
}

func steps(s *reportingv1.Statistics) map[string]*reportingv1.StepFigure {
	out := map[string]*reportingv1.StepFigure{}
	for _, st := range s.GetSteps() {
		out[st.GetStep()] = st
	}
	return out
}

// stepWant: applications at the step, visits that left it, their median.
type stepWant struct {
	now, left int64
	median    time.Duration
}

func checkSteps(t *testing.T, s *reportingv1.Statistics, want map[string]stepWant) {
	t.Helper()
	got := steps(s)
	if len(s.GetSteps()) != 11 {
		t.Errorf("%d steps, want all 11", len(s.GetSteps()))
	}
	for _, name := range []string{"school_review", "notice", "bureau_review", "awaiting_finance", "batched", "ordered", "paid",
		"school_rejected", "bureau_rejected", "payment_failed", "withdrawn"} {
		w, g := want[name], got[name]
		if g.GetApplications() != w.now || g.GetLeft() != w.left || g.GetMedianSeconds() != w.median.Seconds() {
			t.Errorf("%s: %d now, %d left, median %gs; want %d, %d, %gs", name, g.GetApplications(), g.GetLeft(),
				g.GetMedianSeconds(), w.now, w.left, w.median.Seconds())
		}
	}
}

// TestStepsAndRejections drives applications through the chain's steps at
// known instants, some events out of order or twice, and checks the
// applications at each step, the median time spent in each step, the
// filters, an earlier as_of, and the rejections by reason.
func TestStepsAndRejections(t *testing.T) {
	ctx := context.Background()
	e := start(t)
	t0 := time.Date(2018, time.March, 1, 0, 0, 0, 0, time.UTC)
	hs := func(school string) *journey {
		return newJourney(school, "HS_NATIONAL_GRANT", "high_school", "2018-spring", t0)
	}
	passed := &eventsv1.NoticePassed{}
	approved := &eventsv1.SchoolReviewApproved{}
	// a1–a3 spend 2 h, 4 h and 9 h in notice (median 4 h).
	a1 := hs("S01").at(1, approved).at(3, passed).at(20, &eventsv1.BureauApproved{}).at(26, &eventsv1.ItemBatched{AmountFen: 100_000}).
		at(50, &eventsv1.PaymentOrdered{PaymentId: "pay-a1", AmountFen: 100_000, Attempt: 1}).
		at(51, &eventsv1.PaymentSucceeded{PaymentId: "pay-a1", AmountFen: 100_000, BankRef: "B1"})
	a2 := hs("S01").at(1, approved).at(5, passed).at(12, &eventsv1.BureauRejected{Reason: "  收入超标 "})
	a3 := hs("S01").at(1, approved).at(10, passed)
	a4 := hs("S01").at(5, &eventsv1.SchoolReviewRejected{Reason: "材料不全"})
	a5 := hs("S01").at(7, &eventsv1.SchoolReviewRejected{Reason: "材料不全 "})
	a6 := hs("S01").at(8, &eventsv1.SchoolReviewRejected{Reason: "家庭经济条件不符"})
	a7 := hs("S01").at(2, &eventsv1.SchoolReviewWithdrawn{Reason: "转学"})
	// a8: an objection sends it back to school review for 3 h.
	a8 := newJourney("S02", "PRESCHOOL_AID", "preschool", "2018-autumn", t0).at(1, approved).
		at(3, &eventsv1.NoticeObjected{Reason: "异议"}).at(6, approved)
	a9 := hs("S02").at(1, approved).at(2, passed).at(3, &eventsv1.BureauApproved{}).at(4, &eventsv1.ItemBatched{AmountFen: 100_000}).
		at(5, &eventsv1.PaymentOrdered{PaymentId: "pay-a9", AmountFen: 100_000, Attempt: 1}).
		at(6, &eventsv1.PaymentFailed{PaymentId: "pay-a9", AmountFen: 100_000, Reason: "ACCOUNT_CLOSED"})

	// a2's rejection before its submission: it waits for it.
	e.publish(a2.evs[len(a2.evs)-1])
	e.publish(a1.evs[0])
	// a1's steps newest first: each older one fills the history and
	// never moves it back.
	for i := len(a1.evs) - 1; i >= 1; i-- {
		e.publish(a1.evs[i])
	}
	for _, j := range []*journey{a2, a3, a4, a5, a6, a7, a8, a9} {
		e.publish(j.evs...)
	}
	// Twice: the same event again, and the same step under another event ID.
	again := proto.Clone(a3.evs[2]).(*eventsv1.Event)
	again.EventId = uuid.NewString()
	e.publish(a3.evs[2], again, a1.evs[3])

	// rejections beyond the top 50 of a step: r-52 three times, r-01…r-51 once.
	var many []*eventsv1.Event
	for i := 1; i <= 54; i++ {
		reason := fmt.Sprintf("r-%02d", min(i, 52))
		j := newJourney("S03", "HS_NATIONAL_GRANT", "high_school", "2019-spring", t0).at(1, &eventsv1.SchoolReviewRejected{Reason: reason})
		many = append(many, j.evs...)
	}
	e.publish(many...)

	all := &reportingv1.GetStatisticsRequest{FromTerm: "2018-spring", ToTerm: "2018-autumn"}
	servicetest.Eventually(t, func() error {
		for _, req := range []*reportingv1.GetStatisticsRequest{all, {FromTerm: "2019-spring", ToTerm: "2019-spring"}} {
			s, err := e.aud.GetStatistics(ctx, req)
			if err != nil {
				return err
			}
			var n, left int64
			for _, st := range s.GetSteps() {
				n += st.GetApplications()
				left += st.GetLeft()
			}
			if req == all && (n != 9 || left != 24 || steps(s)["bureau_rejected"].GetApplications() != 1) {
				return fmt.Errorf("%d applications, %d visits left so far", n, left)
			}
			if req != all && n != 54 {
				return fmt.Errorf("%d of 2019's applications so far", n)
			}
		}
		return nil
	})
	h := time.Hour
	tests := []struct {
		name string
		req  *reportingv1.GetStatisticsRequest
		want map[string]stepWant
	}{
		{"all", all, map[string]stepWant{
			// 1,1,1,5,7,8,2 (S01), 1,3 (a8), 1 (a9) h: 1,1,1,1,1,2,3,5,7,8.
			"school_review": {0, 10, 90 * time.Minute},
			// 2, 4, 9, 2 (a8), 1 (a9) h.
			"notice": {1, 5, 2 * h},
			// 17 (a1), 7 (a2), 1 (a9) h.
			"bureau_review":    {1, 3, 7 * h},
			"awaiting_finance": {0, 2, 210 * time.Minute},
			"batched":          {0, 2, 750 * time.Minute},
			"ordered":          {0, 2, h},
			"paid":             {1, 0, 0},
			"school_rejected":  {3, 0, 0},
			"bureau_rejected":  {1, 0, 0},
			"payment_failed":   {1, 0, 0},
			"withdrawn":        {1, 0, 0},
		}},
		{"one school", &reportingv1.GetStatisticsRequest{FromTerm: "2018-spring", ToTerm: "2018-autumn", SchoolCodes: []string{"S01"}},
			map[string]stepWant{
				"school_review": {0, 7, 2 * h}, "notice": {0, 3, 4 * h}, "bureau_review": {1, 2, 12 * h},
				"awaiting_finance": {0, 1, 6 * h}, "batched": {0, 1, 24 * h}, "ordered": {0, 1, h}, "paid": {1, 0, 0},
				"school_rejected": {3, 0, 0}, "bureau_rejected": {1, 0, 0}, "withdrawn": {1, 0, 0},
			}},
		{"autumn term", &reportingv1.GetStatisticsRequest{FromTerm: "2018-autumn", ToTerm: "2018-autumn"},
			map[string]stepWant{"school_review": {0, 2, 2 * h}, "notice": {1, 1, 2 * h}}},
		{"preschool stage", &reportingv1.GetStatisticsRequest{FromTerm: "2018-spring", ToTerm: "2018-autumn", Stage: "preschool"},
			map[string]stepWant{"school_review": {0, 2, 2 * h}, "notice": {1, 1, 2 * h}}},
		{"program", &reportingv1.GetStatisticsRequest{FromTerm: "2018-spring", ToTerm: "2018-autumn", ProgramCode: "PRESCHOOL_AID"},
			map[string]stepWant{"school_review": {0, 2, 2 * h}, "notice": {1, 1, 2 * h}}},
		// Four hours in: a1 has passed its notice, a2 and a3 not, a4–a6
		// are in review, a7 withdrew; a8 is back in review, a9 in finance.
		{"as of 4 h", &reportingv1.GetStatisticsRequest{FromTerm: "2018-spring", ToTerm: "2018-autumn", AsOf: timestamppb.New(t0.Add(4 * h))},
			map[string]stepWant{
				// 1,1,1,2 (S01), 1 (a8), 1 (a9) h.
				"school_review": {4, 6, h}, "notice": {2, 3, 2 * h}, "bureau_review": {1, 1, h},
				"awaiting_finance": {0, 1, h}, "batched": {1, 0, 0}, "withdrawn": {1, 0, 0},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := e.data.GetStatistics(ctx, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			checkSteps(t, s, tt.want)
		})
	}

	t.Run("rejections by reason", func(t *testing.T) {
		s, err := e.reviewer.GetStatistics(ctx, all)
		if err != nil {
			t.Fatal(err)
		}
		want := "school_rejected/材料不全=2 school_rejected/家庭经济条件不符=1 bureau_rejected/收入超标=1"
		if got := rejections(s); got != want {
			t.Errorf("rejections %s, want %s", got, want)
		}
		s, err = e.reviewer.GetStatistics(ctx, &reportingv1.GetStatisticsRequest{FromTerm: "2019-spring", ToTerm: "2019-spring"})
		if err != nil {
			t.Fatal(err)
		}
		lines := []string{"school_rejected/r-52=3"}
		for i := 1; i <= 49; i++ {
			lines = append(lines, fmt.Sprintf("school_rejected/r-%02d=1", i))
		}
		want = strings.Join(append(lines, "school_rejected/(other)=2"), " ")
		if got := rejections(s); got != want {
			t.Errorf("rejections\n%s, want\n%s", got, want)
		}
	})
}

func rejections(s *reportingv1.Statistics) string {
	out := make([]string, 0, len(s.GetRejections()))
	for _, r := range s.GetRejections() {
		reason := r.GetReason()
		if r.GetOther() {
			reason = "(other)"
		}
		out = append(out, fmt.Sprintf("%s/%s=%d", r.GetStep(), reason, r.GetCount()))
	}
	return strings.Join(out, " ")
}
