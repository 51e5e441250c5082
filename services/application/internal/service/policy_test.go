package service_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/idnumber"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
)

// bornIn is a new test student born on 1 July of year.
func bornIn(year int) student {
	s := newStudent()
	n := studentSeq.Add(1)
	s.ID = idnumber.Generate("420106", time.Date(year, 7, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(n/1000)), int(n%1000))
	return s
}

func app(s student, stage, program string) *applicationv1.NewApplication {
	return &applicationv1.NewApplication{StudentIdNumber: s.ID, StudentName: s.Name, Stage: stage, ProgramCode: program,
		BankCardNumber: s.Card, AccountName: s.Name}
}

func submitTerm(c applicationv1.ApplicationServiceClient, school, term string, apps ...*applicationv1.NewApplication) ([]*applicationv1.Application, error) {
	resp, err := c.SubmitApplications(context.Background(), &applicationv1.SubmitApplicationsRequest{SchoolCode: school, Term: term, Applications: apps})
	return resp.GetApplications(), err
}

// TestAmountsFromThePolicy: every amount rule gives the seed policy's
// amount, taken here from the bureau's figures, not from the code: per
// school tuition, the stage's standard, tiers left for the school's review,
// the loan's requested amount. Each application records its versions.
func TestAmountsFromThePolicy(t *testing.T) {
	e := start(t)
	cases := []struct {
		name, school, stage, program string
		born                         int
		boarding                     bool
		requested                    int64
		wantFen                      int64
	}{
		{"preschool", "S006", "preschool", "PRESCHOOL_AID", 2013, false, 0, 50000},
		{"boarding primary", "S004", "primary", "BOARDING_SUBSIDY", 2008, true, 0, 50000},
		{"boarding junior", "S004", "junior", "BOARDING_SUBSIDY", 2004, true, 0, 62500},
		{"high-school waiver at 850 yuan", "S013", "high_school", "HS_TUITION_WAIVER", 2001, false, 0, 85000},
		{"high-school waiver at 865 yuan", "S008", "high_school", "HS_TUITION_WAIVER", 2001, false, 0, 86500},
		{"vocational waiver at 1,075 yuan", "S015", "vocational", "VOC_TUITION_WAIVER", 2001, false, 0, 107500},
		{"vocational waiver at 1,100 yuan", "S005", "vocational", "VOC_TUITION_WAIVER", 2001, false, 0, 110000},
		{"vocational grant", "S005", "vocational", "VOC_NATIONAL_GRANT", 2001, false, 0, 100000},
		{"high-school grant: tiered, set at review", "S008", "high_school", "HS_NATIONAL_GRANT", 2001, false, 0, 0},
		{"Zihui award", "S008", "high_school", "ZIHUI_AWARD", 2001, false, 0, 200000},
		{"loan of 8,000 yuan", "S900", "university", "STUDENT_LOAN", 1998, false, 800000, 800000},
		{"Fanhai freshman grant", "S900", "university", "FANHAI_FRESHMAN", 1999, false, 0, 500000},
		{"rural commercial bank grant: tiered", "S900", "university", "RCB_FRESHMAN", 1999, false, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := app(bornIn(tc.born), tc.stage, tc.program)
			a.Boarding, a.RequestedAmountFen = tc.boarding, tc.requested
			got, err := submitTerm(e.officer(tc.school), tc.school, "2017-autumn", a)
			if err != nil {
				t.Fatalf("submit: %v", err)
			}
			if got[0].GetAmountFen() != tc.wantFen || got[0].GetPolicyVersion() != 1 || got[0].GetRegisterVersion() != 2 {
				t.Errorf("amount %d fen under policy %d / register %d, want %d fen under 1 / 2 (the seed, and its correction adding the test schools)",
					got[0].GetAmountFen(), got[0].GetPolicyVersion(), got[0].GetRegisterVersion(), tc.wantFen)
			}
		})
	}
}

// TestPlausibility: the age at term start must fit the stage, and the
// boarding and rural facts must agree with the school register; each
// refusal names the field and what to fix.
func TestPlausibility(t *testing.T) {
	e := start(t)
	cases := []struct {
		name, school string
		app          *applicationv1.NewApplication
		field, says  string
	}{
		{"a 16-year-old in preschool", "S006", app(bornIn(2001), "preschool", "PRESCHOOL_AID"), "applications[0].student_id_number", "age 16"},
		{"a 1-year-old in preschool", "S006", app(bornIn(2016), "preschool", "PRESCHOOL_AID"), "applications[0].student_id_number", "outside 2 to 7"},
		{"boarding at a school without boarders", "S007", func() *applicationv1.NewApplication {
			a := app(bornIn(2008), "primary", "POVERTY_EXTENSION")
			a.Boarding, a.RegisteredPoor = true, true
			return a
		}(), "applications[0].boarding", "no boarders"},
		{"rural at an urban school", "S007", func() *applicationv1.NewApplication {
			a := app(bornIn(2008), "primary", "POVERTY_EXTENSION")
			a.Rural, a.RegisteredPoor = true, true
			return a
		}(), "applications[0].rural", "urban school"},
		{"boarding subsidy at an urban school", "S010", func() *applicationv1.NewApplication {
			a := app(bornIn(2004), "junior", "BOARDING_SUBSIDY")
			a.Boarding = true
			return a
		}(), "applications[0].boarding", "no boarders"},
		{"a stage the school does not teach", "S007", app(bornIn(2004), "junior", "POVERTY_EXTENSION"), "applications[0].stage", "teaches primary"},
		{"a loan above the limit", "S900", func() *applicationv1.NewApplication {
			a := app(bornIn(1998), "university", "STUDENT_LOAN")
			a.RequestedAmountFen = 1300000
			return a
		}(), "applications[0].requested_amount_fen", "above the most"},
		{"a loan without an amount", "S900", app(bornIn(1998), "university", "STUDENT_LOAN"), "applications[0].requested_amount_fen", "asks for"},
		{"an amount for a fixed program", "S006", func() *applicationv1.NewApplication {
			a := app(bornIn(2013), "preschool", "PRESCHOOL_AID")
			a.RequestedAmountFen = 99999
			return a
		}(), "applications[0].requested_amount_fen", "sets its own amount"},
		{"an unknown school", "S404", app(bornIn(2013), "preschool", "PRESCHOOL_AID"), "school_code", "not in the school register"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.count(t, `SELECT count(*) FROM applications`)
			_, err := submitTerm(e.officer(tc.school), tc.school, "2017-autumn", tc.app)
			st := wantCode(t, err, codes.InvalidArgument)
			if got := violations(st)[tc.field]; !strings.Contains(got, tc.says) {
				t.Errorf("violation of %s = %q, want it to say %q (all: %v)", tc.field, got, tc.says, violations(st))
			}
			if after := e.count(t, `SELECT count(*) FROM applications`); after != before {
				t.Errorf("%d applications written by a refused submission", after-before)
			}
		})
	}
}

// TestFrequencyLimits: a one-off grant is refused the second time, in a
// later term; a loan beyond the yearly maximum is refused; both say why.
func TestFrequencyLimits(t *testing.T) {
	e := start(t)
	officer := e.officer("S900")
	fresh := bornIn(1999)
	if _, err := submitTerm(officer, "S900", "2017-autumn", app(fresh, "university", "FANHAI_FRESHMAN")); err != nil {
		t.Fatalf("first Fanhai grant: %v", err)
	}
	_, err := submitTerm(officer, "S900", "2018-spring", app(fresh, "university", "FANHAI_FRESHMAN"))
	st := wantCode(t, err, codes.AlreadyExists)
	if rule(st) != "one-off-already-granted" || !strings.Contains(violations(st)["applications[0].student_id_number"], "once per student") {
		t.Errorf("second Fanhai grant refused with %q: %v", rule(st), violations(st))
	}

	borrower := bornIn(1998)
	loan := func(fen int64) *applicationv1.NewApplication {
		a := app(borrower, "university", "STUDENT_LOAN")
		a.RequestedAmountFen = fen
		return a
	}
	if _, err := submitTerm(officer, "S900", "2017-spring", loan(800000)); err != nil {
		t.Fatalf("spring loan: %v", err)
	}
	// 8,000 + 5,000 yuan in 2017 is above the 12,000-yuan yearly maximum.
	_, err = submitTerm(officer, "S900", "2017-autumn", loan(500000))
	st = wantCode(t, err, codes.InvalidArgument)
	if got := violations(st)["applications[0].requested_amount_fen"]; !strings.Contains(got, "yearly maximum of 1200000 fen") {
		t.Errorf("loan above the yearly maximum: %q", got)
	}
	// 8,000 + 4,000 yuan is exactly the maximum; a new year starts afresh.
	if _, err := submitTerm(officer, "S900", "2017-autumn", loan(400000)); err != nil {
		t.Errorf("loan up to the yearly maximum: %v", err)
	}
	if _, err := submitTerm(officer, "S900", "2018-autumn", loan(1200000)); err != nil {
		t.Errorf("loan of a new year: %v", err)
	}
	// The school register decides who submits for S900: its own officers.
	_, err = submitTerm(e.officer("S001"), "S900", "2018-spring", app(bornIn(1999), "university", "RCB_FRESHMAN"))
	wantCode(t, err, codes.PermissionDenied)
}

// TestPolicyPublication: a version is drafted by one policy administrator
// and published by another who restates its digest; published versions
// never change; the history says who did what.
func TestPolicyPublication(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	doc, _ := e.currentDocument(t, "programs")
	setBoarding(t, doc, 60000, 70000)
	doc["effective_from"], doc["summary"] = "2018-spring", "2018 boarding subsidy: 600 / 700 yuan a term"
	s, err := structpb.NewStruct(doc)
	if err != nil {
		t.Fatal(err)
	}
	admin1, admin2 := e.policyAdmin("policy-admin-1"), e.policyAdmin("policy-admin-2")

	// Only policy administrators draft.
	_, err = e.policyClient("bureau-1", auth.RoleBureauReviewer, auth.OrgBureau).DraftPolicyVersion(ctx, &applicationv1.DraftPolicyVersionRequest{Kind: "programs", Document: s})
	wantCode(t, err, codes.PermissionDenied)

	draft, err := admin1.DraftPolicyVersion(ctx, &applicationv1.DraftPolicyVersionRequest{Kind: "programs", Document: s})
	if err != nil {
		t.Fatal(err)
	}
	if draft.GetNumber() != 2 || draft.GetStatus() != "DRAFT" || draft.GetDraftedBy() != "policy-admin-1" {
		t.Fatalf("draft = %v", draft)
	}
	// A draft is not in force.
	if got := boardingFen(t, e, "2018-spring"); got != 50000 {
		t.Errorf("2018-spring boarding primary before publication = %d, want 50000", got)
	}
	_, err = admin1.ApprovePolicyVersion(ctx, &applicationv1.ApprovePolicyVersionRequest{Kind: "programs", Number: 2, Sha256: draft.GetSha256()})
	if st := wantCode(t, err, codes.PermissionDenied); rule(st) != "policy-self-approval" {
		t.Errorf("self-approval refused with %q", rule(st))
	}
	_, err = admin2.ApprovePolicyVersion(ctx, &applicationv1.ApprovePolicyVersionRequest{Kind: "programs", Number: 2, Sha256: strings.Repeat("0", 64)})
	if st := wantCode(t, err, codes.FailedPrecondition); rule(st) != "policy-digest-mismatch" {
		t.Errorf("wrong digest refused with %q", rule(st))
	}
	v, err := admin2.ApprovePolicyVersion(ctx, &applicationv1.ApprovePolicyVersionRequest{Kind: "programs", Number: 2, Sha256: draft.GetSha256()})
	if err != nil {
		t.Fatal(err)
	}
	if v.GetStatus() != "PUBLISHED" || v.GetApprovedBy() != "policy-admin-2" {
		t.Errorf("published = %v", v)
	}
	_, err = admin2.ApprovePolicyVersion(ctx, &applicationv1.ApprovePolicyVersionRequest{Kind: "programs", Number: 2, Sha256: draft.GetSha256()})
	if st := wantCode(t, err, codes.FailedPrecondition); rule(st) != "policy-not-draft" {
		t.Errorf("second approval refused with %q", rule(st))
	}
	if got := boardingFen(t, e, "2018-spring"); got != 60000 {
		t.Errorf("2018-spring boarding primary = %d, want 60000", got)
	}
	if got := boardingFen(t, e, "2017-autumn"); got != 50000 {
		t.Errorf("2017-autumn boarding primary = %d, want 50000 (the earlier version)", got)
	}
	hist, err := e.policyClient("auditor-1", auth.RoleAuditor, auth.OrgBureau).ListPolicyVersions(ctx, &applicationv1.ListPolicyVersionsRequest{Kind: "programs"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range hist.GetVersions() {
		got = append(got, fmt.Sprintf("%d %s %s from %s by %s/%s", h.GetNumber(), h.GetStatus(), h.GetKind(), h.GetEffectiveFrom(), h.GetDraftedBy(), h.GetApprovedBy()))
	}
	want := []string{"1 PUBLISHED programs from 2015-spring by seed/seed", "2 PUBLISHED programs from 2018-spring by policy-admin-1/policy-admin-2"}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("history = %q, want %q", got, want)
	}
	// The database refuses to change a published version, even to its owner's role.
	if _, err := e.pool.Exec(ctx, `UPDATE policy_versions SET summary = 'edited' WHERE kind = 'programs' AND number = 2`); err == nil {
		t.Error("a published version was edited in the database")
	}
}

// TestPolicyChangeBetweenTerms: a new standard from 2018-spring is
// previewed against the pending applications it would compute differently,
// then published; the applications computed before keep their amounts,
// and new ones get the new standard.
func TestPolicyChangeBetweenTerms(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	officer := e.officer("S004")
	boarder := func(born int, stage string) *applicationv1.NewApplication {
		a := app(bornIn(born), stage, "BOARDING_SUBSIDY")
		a.Boarding = true
		return a
	}
	autumn, err := submitTerm(officer, "S004", "2017-autumn", boarder(2008, "primary"), boarder(2004, "junior"))
	if err != nil {
		t.Fatal(err)
	}
	spring, err := submitTerm(officer, "S004", "2018-spring", boarder(2008, "primary"), boarder(2008, "primary"), boarder(2004, "junior"))
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := e.currentDocument(t, "programs")
	setBoarding(t, doc, 60000, 70000)
	doc["effective_from"], doc["summary"] = "2018-spring", "2018 boarding subsidy: 600 / 700 yuan a term"
	s, _ := structpb.NewStruct(doc)
	admin1 := e.policyAdmin("policy-admin-1")
	draft, err := admin1.DraftPolicyVersion(ctx, &applicationv1.DraftPolicyVersionRequest{Kind: "programs", Document: s})
	if err != nil {
		t.Fatal(err)
	}
	preview, err := admin1.PreviewPolicyVersion(ctx, &applicationv1.PreviewPolicyVersionRequest{Kind: "programs", Number: draft.GetNumber()})
	if err != nil {
		t.Fatal(err)
	}
	var changes []string
	for _, c := range preview.GetChanges() {
		changes = append(changes, fmt.Sprintf("%s %s %s %s ×%d: %d → %d", c.GetTerm(), c.GetSchoolCode(), c.GetProgramCode(), c.GetStage(), c.GetApplications(), c.GetAmountFen(), c.GetDraftAmountFen()))
	}
	want := []string{
		"2018-spring S004 BOARDING_SUBSIDY junior ×1: 62500 → 70000",
		"2018-spring S004 BOARDING_SUBSIDY primary ×2: 50000 → 60000",
	}
	if strings.Join(changes, "; ") != strings.Join(want, "; ") || preview.GetApplicationsAffected() != 3 {
		t.Errorf("preview = %q (%d affected), want %q (3)", changes, preview.GetApplicationsAffected(), want)
	}
	if _, err := e.policyAdmin("policy-admin-2").ApprovePolicyVersion(ctx, &applicationv1.ApprovePolicyVersionRequest{Kind: "programs", Number: draft.GetNumber(), Sha256: draft.GetSha256()}); err != nil {
		t.Fatal(err)
	}
	reader := e.client("bureau-1", auth.RoleBureauReviewer, auth.OrgBureau)
	for i, want := range []int64{50000, 62500, 50000, 50000, 62500} {
		a := append(autumn, spring...)[i]
		got, err := reader.GetApplication(ctx, &applicationv1.GetApplicationRequest{ApplicationId: a.GetApplicationId()})
		if err != nil {
			t.Fatal(err)
		}
		if got.GetAmountFen() != want || got.GetPolicyVersion() != 1 {
			t.Errorf("%s %s after the change: %d fen under policy %d, want %d under 1 (pinned)", got.GetTerm(), got.GetStage(), got.GetAmountFen(), got.GetPolicyVersion(), want)
		}
	}
	later, err := submitTerm(officer, "S004", "2018-spring", boarder(2008, "primary"), boarder(2004, "junior"))
	if err != nil {
		t.Fatal(err)
	}
	if later[0].GetAmountFen() != 60000 || later[1].GetAmountFen() != 70000 || later[0].GetPolicyVersion() != draft.GetNumber() {
		t.Errorf("new 2018-spring applications: %d and %d fen under %d, want 60000 and 70000 under %d",
			later[0].GetAmountFen(), later[1].GetAmountFen(), later[0].GetPolicyVersion(), draft.GetNumber())
	}
}

// TestPolicyBadInput: documents a bureau officer gets wrong are refused
// whole, each with what to fix, and nothing is written.
func TestPolicyBadInput(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	programs, _ := e.currentDocument(t, "programs")
	schools, _ := e.currentDocument(t, "schools")
	program := func(doc map[string]any, code string) map[string]any {
		for _, p := range doc["programs"].([]any) {
			if p := p.(map[string]any); p["code"] == code {
				return p
			}
		}
		t.Fatalf("no program %s", code)
		return nil
	}
	cases := []struct {
		name, kind string
		edit       func(doc map[string]any)
		field      string
		says       string
	}{
		{"shares short of 100 %", "programs", func(d map[string]any) {
			program(d, "PRESCHOOL_AID")["shares_bp"] = map[string]any{"central_provincial": 8000, "municipal": 1500}
			d["effective_from"] = "2019-spring"
		}, "document.programs[0] (PRESCHOOL_AID).shares_bp", "sum to 9500 basis points (95 %)"},
		{"a tier missing", "programs", func(d map[string]any) {
			program(d, "HS_NATIONAL_GRANT")["tier_fen"] = map[string]any{"especially_difficult": 125000, "difficult": 100000}
			d["effective_from"] = "2019-spring"
		}, "document.programs[2] (HS_NATIONAL_GRANT).tier_fen", "tier generally_difficult is missing"},
		{"an overlapping version", "programs", func(d map[string]any) {
			d["summary"] = "again from 2015"
		}, "document.effective_from", "version 1 already takes effect from 2015-spring"},
		{"a correction at another term", "programs", func(d map[string]any) {
			d["corrects"], d["effective_from"] = 1, "2016-spring"
		}, "document.corrects", "must take effect from 2015-spring"},
		{"a school twice", "schools", func(d map[string]any) {
			d["schools"] = append(d["schools"].([]any), d["schools"].([]any)[0])
			d["effective_from"] = "2019-spring"
		}, "", "is already schools[0]'s"},
		{"tuition for a stage not taught", "schools", func(d map[string]any) {
			d["schools"].([]any)[3].(map[string]any)["tuition_fen"] = map[string]any{"high_school": 90000}
			d["effective_from"] = "2019-spring"
		}, "document.schools[3] (S004).tuition_fen", "does not teach"},
		{"an unknown field", "programs", func(d map[string]any) {
			d["standards"] = "x"
			d["effective_from"] = "2019-spring"
		}, "document", "is not a field of the layout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := programs
			if tc.kind == "schools" {
				doc = schools
			}
			doc = deepCopy(doc)
			tc.edit(doc)
			s, err := structpb.NewStruct(doc)
			if err != nil {
				t.Fatal(err)
			}
			before := e.count(t, `SELECT count(*) FROM policy_versions`)
			_, err = e.policyAdmin("policy-admin-1").DraftPolicyVersion(ctx, &applicationv1.DraftPolicyVersionRequest{Kind: tc.kind, Document: s})
			st := wantCode(t, err, codes.InvalidArgument)
			found := false
			for f, d := range violations(st) {
				if (tc.field == "" || f == tc.field) && strings.Contains(d, tc.says) {
					found = true
				}
			}
			if !found {
				t.Errorf("no violation of %q saying %q in %v", tc.field, tc.says, violations(st))
			}
			if after := e.count(t, `SELECT count(*) FROM policy_versions`); after != before {
				t.Errorf("%d versions written by a refused draft", after-before)
			}
		})
	}
}

// TestListProgramsByTerm: ListPrograms shows the policy in force for the
// term asked, with its version.
func TestListProgramsByTerm(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	c := e.client("bureau-1", auth.RoleBureauReviewer, auth.OrgBureau)
	resp, err := c.ListPrograms(ctx, &applicationv1.ListProgramsRequest{Term: "2017-autumn"})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetPrograms()) != 11 || resp.GetPolicyVersion() != 1 || resp.GetEffectiveFrom() != "2015-spring" {
		t.Fatalf("%d programs of version %d from %s, want 11 of 1 from 2015-spring", len(resp.GetPrograms()), resp.GetPolicyVersion(), resp.GetEffectiveFrom())
	}
	for _, p := range resp.GetPrograms() {
		if p.GetCode() == "HS_NATIONAL_GRANT" {
			tiers := p.GetTierFen()
			if tiers["especially_difficult"] != 125000 || tiers["difficult"] != 100000 || tiers["generally_difficult"] != 75000 || p.GetSharesBp()["central_provincial"] != 10000 {
				t.Errorf("HS_NATIONAL_GRANT = %v", p)
			}
		}
	}
	_, err = c.ListPrograms(ctx, &applicationv1.ListProgramsRequest{Term: "2014-autumn"})
	if st := wantCode(t, err, codes.FailedPrecondition); rule(st) != "no-policy-in-force" {
		t.Errorf("2014-autumn refused with %q", rule(st))
	}
}

// setBoarding sets the boarding subsidy's primary and junior standards in doc.
func setBoarding(t *testing.T, doc map[string]any, primary, junior int64) {
	t.Helper()
	delete(doc, "corrects")
	for _, p := range doc["programs"].([]any) {
		if p := p.(map[string]any); p["code"] == "BOARDING_SUBSIDY" {
			p["standard_fen"] = map[string]any{"primary": primary, "junior": junior}
			return
		}
	}
	t.Fatal("no BOARDING_SUBSIDY")
}

// boardingFen is the primary boarding subsidy ListPrograms shows for term.
func boardingFen(t *testing.T, e *env, term string) int64 {
	t.Helper()
	resp, err := e.client("bureau-1", auth.RoleBureauReviewer, auth.OrgBureau).ListPrograms(context.Background(), &applicationv1.ListProgramsRequest{Term: term})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range resp.GetPrograms() {
		if p.GetCode() == "BOARDING_SUBSIDY" {
			return p.GetStandardFen()["primary"]
		}
	}
	t.Fatal("no BOARDING_SUBSIDY")
	return 0
}

func deepCopy(m map[string]any) map[string]any {
	s, err := structpb.NewStruct(m)
	if err != nil {
		panic(err)
	}
	return s.AsMap()
}
