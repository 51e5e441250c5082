package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/catalog"
	reportingv1 "github.com/edubureau/studentaid/proto/gen/aid/reporting/v1"
)

// TestReportingFromTheChain drives a few applications through the whole
// chain and checks that the reporting service's annual report, built from
// the events alone, has their lines, the government total and its split by
// the seed policy's shares, the loan and the charity grant apart.
func TestReportingFromTheChain(t *testing.T) {
	s := startStack(t, map[string]string{"SCHOOL_REVIEW_NOTICE_PERIOD": "2s"}, false)
	checkReasons(t)
	ctx := ctxT(t)
	cases := []*policyCase{
		{name: "preschool", school: "S006", term: "2017-autumn", program: "PRESCHOOL_AID", stage: catalog.StagePreschool, born: 2013, wantFen: 50000},
		{name: "boarding primary", school: "S004", term: "2017-autumn", program: "BOARDING_SUBSIDY", stage: catalog.StagePrimary, born: 2008, boarding: true, wantFen: 50000},
		{name: "boarding junior", school: "S004", term: "2017-autumn", program: "BOARDING_SUBSIDY", stage: catalog.StageJunior, born: 2004, boarding: true, wantFen: 62500},
		{name: "grant, difficult", school: "S008", term: "2017-autumn", program: "HS_NATIONAL_GRANT", stage: catalog.StageHighSchool, born: 2001, level: catalog.LevelDifficult, wantFen: 100000},
		{name: "waiver at an 850-yuan school", school: "S013", term: "2017-autumn", program: "HS_TUITION_WAIVER", stage: catalog.StageHighSchool, born: 2001, wantFen: 85000},
		{name: "loan", school: "S900", term: "2017-autumn", program: "STUDENT_LOAN", stage: catalog.StageUniversity, born: 1998, requested: 800000, wantFen: 800000},
		{name: "Fanhai freshman", school: "S900", term: "2017-autumn", program: "FANHAI_FRESHMAN", stage: catalog.StageUniversity, born: 1999, wantFen: 500000},
	}
	for _, c := range cases {
		c.wantPolicy = 1
	}
	submitCases(t, s, cases, 300)
	driveToPaid(t, s, cases)

	auditor := newUser(t, s, "auditor-1", auth.RoleAuditor, auth.OrgBureau)
	var r *reportingv1.AnnualReport
	eventually(t, "the report has every payment", 30*time.Second, func() error {
		var err error
		r, err = auditor.reports.GetAnnualReport(ctx, &reportingv1.GetAnnualReportRequest{Year: 2017})
		if err != nil {
			return err
		}
		if got := lineOf(r, "loans", "loans_issued"); r.GetGovernmentTotalFen() != 347_500 || got == nil || got.GetCount() != 1 || lineOf(r, "charity", "FANHAI_FRESHMAN") == nil {
			return fmt.Errorf("government total %d so far", r.GetGovernmentTotalFen())
		}
		return nil
	})
	// The seed's shares: 80/20 for preschool, boarding and the waiver,
	// 100/0 for the high-school grant.
	if r.GetCentralProvincialFen() != 298_000 || r.GetMunicipalFen() != 49_500 || r.GetStudents() != 5 {
		t.Errorf("split %d + %d, %d students; want 298000 + 49500, 5", r.GetCentralProvincialFen(), r.GetMunicipalFen(), r.GetStudents())
	}
	for _, w := range []struct {
		section, key string
		fen, count   int64
	}{
		{"programs", "PRESCHOOL_AID", 50_000, 1},
		{"programs", "BOARDING_SUBSIDY", 112_500, 2},
		{"programs", "HS_NATIONAL_GRANT", 100_000, 1},
		{"programs", "HS_TUITION_WAIVER", 85_000, 1},
		{"loans", "loans_issued", 800_000, 1},
		{"charity", "FANHAI_FRESHMAN", 500_000, 1},
	} {
		l := lineOf(r, w.section, w.key)
		if l == nil || l.GetAmountFen() != w.fen || l.GetCount() != w.count {
			t.Errorf("%s/%s: %v; want %d fen, %d", w.section, w.key, l, w.fen, w.count)
		}
	}
	// The same applications by step, from the chain's step events: all
	// seven paid, each through a notice of at least its 2 s.
	eventually(t, "every application is at paid", 30*time.Second, func() error {
		st, err := auditor.reports.GetStatistics(ctx, &reportingv1.GetStatisticsRequest{FromTerm: "2017-autumn", ToTerm: "2017-autumn"})
		if err != nil {
			return err
		}
		at := map[string]*reportingv1.StepFigure{}
		for _, f := range st.GetSteps() {
			at[f.GetStep()] = f
		}
		if at["paid"].GetApplications() != 7 || at["ordered"].GetApplications() != 0 {
			return fmt.Errorf("steps so far: %v", st.GetSteps())
		}
		if n := at["notice"]; n.GetLeft() != 7 || n.GetMedianSeconds() < 2 {
			return fmt.Errorf("notice: %d left, median %g s; want 7, at least 2 s", n.GetLeft(), n.GetMedianSeconds())
		}
		return nil
	})
}

func lineOf(r *reportingv1.AnnualReport, section, key string) *reportingv1.Line {
	for _, s := range r.GetSections() {
		if s.GetKey() == section {
			for _, l := range s.GetLines() {
				if l.GetKey() == key {
					return l
				}
			}
		}
	}
	return nil
}
