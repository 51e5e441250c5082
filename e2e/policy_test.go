package e2e

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/edubureau/studentaid/internal/devtools/stack"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/catalog"
	"github.com/edubureau/studentaid/pkg/idnumber"
	"github.com/edubureau/studentaid/pkg/pii"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
	bureaureviewv1 "github.com/edubureau/studentaid/proto/gen/aid/bureaureview/v1"
	commonv1 "github.com/edubureau/studentaid/proto/gen/aid/common/v1"
	financev1 "github.com/edubureau/studentaid/proto/gen/aid/finance/v1"
	schoolreviewv1 "github.com/edubureau/studentaid/proto/gen/aid/schoolreview/v1"
)

// policyCase is one application of TestPolicyEndToEnd with the amount the
// bureau's figures give it, written out here.
type policyCase struct {
	name, school, term, program string
	stage                       catalog.Stage
	born                        int
	level                       catalog.HardshipLevel
	boarding, poor              bool
	requested                   int64
	wantFen                     int64
	wantPolicy                  int64
	id                          string
}

// TestPolicyEndToEnd runs all eleven programs of the seed policy through
// the whole chain to PAID, with per-school tuition waivers, all three
// hardship tiers and a loan, then a policy change for the next term
// published over REST by two policy administrators: the earlier term's
// amounts stay as they were, the next term's follow the new standard, and a
// one-off grant is refused the second time.
func TestPolicyEndToEnd(t *testing.T) {
	s := startStack(t, map[string]string{"SCHOOL_REVIEW_NOTICE_PERIOD": "2s"}, false)
	checkReasons(t)
	ctx := ctxT(t)
	cases := []*policyCase{
		{name: "preschool", school: "S006", term: "2017-autumn", program: "PRESCHOOL_AID", stage: catalog.StagePreschool, born: 2013, wantFen: 50000},
		{name: "boarding primary", school: "S004", term: "2017-autumn", program: "BOARDING_SUBSIDY", stage: catalog.StagePrimary, born: 2008, boarding: true, wantFen: 50000},
		{name: "boarding junior", school: "S004", term: "2017-autumn", program: "BOARDING_SUBSIDY", stage: catalog.StageJunior, born: 2004, boarding: true, wantFen: 62500},
		{name: "grant, especially difficult", school: "S008", term: "2017-autumn", program: "HS_NATIONAL_GRANT", stage: catalog.StageHighSchool, born: 2001, level: catalog.LevelEspeciallyDifficult, wantFen: 125000},
		{name: "grant, difficult", school: "S008", term: "2017-autumn", program: "HS_NATIONAL_GRANT", stage: catalog.StageHighSchool, born: 2001, level: catalog.LevelDifficult, wantFen: 100000},
		{name: "grant, generally difficult", school: "S013", term: "2017-autumn", program: "HS_NATIONAL_GRANT", stage: catalog.StageHighSchool, born: 2001, level: catalog.LevelGenerallyDifficult, wantFen: 75000},
		{name: "waiver at an 850-yuan school", school: "S013", term: "2017-autumn", program: "HS_TUITION_WAIVER", stage: catalog.StageHighSchool, born: 2001, wantFen: 85000},
		{name: "waiver at an 865-yuan school", school: "S008", term: "2017-autumn", program: "HS_TUITION_WAIVER", stage: catalog.StageHighSchool, born: 2001, wantFen: 86500},
		{name: "vocational grant", school: "S005", term: "2017-autumn", program: "VOC_NATIONAL_GRANT", stage: catalog.StageVocational, born: 2001, wantFen: 100000},
		{name: "vocational waiver at 1,100 yuan", school: "S005", term: "2017-autumn", program: "VOC_TUITION_WAIVER", stage: catalog.StageVocational, born: 2001, wantFen: 110000},
		{name: "vocational waiver at 1,075 yuan", school: "S015", term: "2017-autumn", program: "VOC_TUITION_WAIVER", stage: catalog.StageVocational, born: 2001, wantFen: 107500},
		{name: "poverty extension", school: "S007", term: "2017-autumn", program: "POVERTY_EXTENSION", stage: catalog.StagePrimary, born: 2009, poor: true, wantFen: 50000},
		{name: "loan", school: "S900", term: "2017-autumn", program: "STUDENT_LOAN", stage: catalog.StageUniversity, born: 1998, requested: 800000, wantFen: 800000},
		{name: "Fanhai freshman", school: "S900", term: "2017-autumn", program: "FANHAI_FRESHMAN", stage: catalog.StageUniversity, born: 1999, wantFen: 500000},
		{name: "rural commercial bank freshman", school: "S900", term: "2017-autumn", program: "RCB_FRESHMAN", stage: catalog.StageUniversity, born: 1999, level: catalog.LevelDifficult, wantFen: 250000},
		{name: "Zihui award", school: "S008", term: "2017-autumn", program: "ZIHUI_AWARD", stage: catalog.StageHighSchool, born: 2001, wantFen: 200000},
	}
	for _, c := range cases {
		c.wantPolicy = 1
	}
	submitCases(t, s, cases, 0)
	driveToPaid(t, s, cases)

	// 2018: the boarding subsidy rises to 600 / 700 yuan a term. A policy
	// administrator drafts it over REST, another approves it.
	admin1 := newUser(t, s, "policy-admin-1", auth.RolePolicyAdmin, auth.OrgBureau)
	admin2 := newUser(t, s, "policy-admin-2", auth.RolePolicyAdmin, auth.OrgBureau)
	current, err := admin1.policy.GetPolicyVersion(ctx, &applicationv1.GetPolicyVersionRequest{Kind: "programs", Number: 1})
	if err != nil {
		t.Fatal(err)
	}
	doc := current.GetDocument().AsMap()
	doc["effective_from"], doc["summary"] = "2018-spring", "2018 年起寄宿生生活补助提高到每学期小学 600 元、初中 700 元"
	for _, p := range doc["programs"].([]any) {
		if p := p.(map[string]any); p["code"] == "BOARDING_SUBSIDY" {
			p["standard_fen"] = map[string]any{"primary": 60000, "junior": 70000}
		}
	}
	var draft struct {
		Number string `json:"number"`
		Sha256 string `json:"sha256"`
		Status string `json:"status"`
	}
	base := "http://" + s.Endpoints["application"].HTTP
	if code := admin1.rest(t, http.MethodPost, base+"/v1/policy/programs/versions", map[string]any{"document": doc}, &draft); code != http.StatusOK || draft.Status != "DRAFT" {
		t.Fatalf("REST draft: HTTP %d, %+v", code, draft)
	}
	var self map[string]any
	if code := admin1.rest(t, http.MethodPost, base+"/v1/policy/programs/versions/"+draft.Number+":approve", map[string]any{"sha256": draft.Sha256}, &self); code != http.StatusForbidden {
		t.Fatalf("self-approval over REST: HTTP %d, want 403", code)
	}
	var published struct {
		Status     string `json:"status"`
		ApprovedBy string `json:"approved_by"`
	}
	if code := admin2.rest(t, http.MethodPost, base+"/v1/policy/programs/versions/"+draft.Number+":approve", map[string]any{"sha256": draft.Sha256}, &published); code != http.StatusOK || published.Status != "PUBLISHED" || published.ApprovedBy != "policy-admin-2" {
		t.Fatalf("REST approve: HTTP %d, %+v", code, published)
	}

	// The 2017 amounts are pinned: unchanged after the new version.
	auditor := newUser(t, s, "auditor-1", auth.RoleAuditor, auth.OrgBureau)
	for _, c := range cases {
		a, err := auditor.app.GetApplication(ctx, &applicationv1.GetApplicationRequest{ApplicationId: c.id})
		if err != nil {
			t.Fatal(err)
		}
		if a.GetAmountFen() != c.wantFen || a.GetPolicyVersion() != 1 || a.GetStatus() != commonv1.ApplicationStatus_APPLICATION_STATUS_PAID {
			t.Errorf("%s after the 2018 policy: %s, %d fen under policy %d; want PAID, %d fen under 1", c.name, a.GetStatus(), a.GetAmountFen(), a.GetPolicyVersion(), c.wantFen)
		}
	}
	// 2018-spring follows the new standard; a second Fanhai grant for the
	// same student is refused.
	spring := []*policyCase{
		{name: "2018 boarding primary", school: "S004", term: "2018-spring", program: "BOARDING_SUBSIDY", stage: catalog.StagePrimary, born: 2008, boarding: true, wantFen: 60000, wantPolicy: 2},
		{name: "2018 boarding junior", school: "S004", term: "2018-spring", program: "BOARDING_SUBSIDY", stage: catalog.StageJunior, born: 2004, boarding: true, wantFen: 70000, wantPolicy: 2},
		{name: "2018 preschool", school: "S006", term: "2018-spring", program: "PRESCHOOL_AID", stage: catalog.StagePreschool, born: 2013, wantFen: 50000, wantPolicy: 2},
	}
	submitCases(t, s, spring, 100)
	driveToPaid(t, s, spring)

	fanhai := cases[13]
	again := newApplication(fanhai, 13)
	officer := newUser(t, s, "officer-S900", auth.RoleSchoolOfficer, "S900")
	_, err = officer.app.SubmitApplications(ctx, &applicationv1.SubmitApplicationsRequest{SchoolCode: "S900", Term: "2018-spring", Applications: []*applicationv1.NewApplication{again}})
	if status.Code(err) != codes.AlreadyExists || errorReason(err) != "one-off-already-granted" {
		t.Errorf("second Fanhai grant: %v, want AlreadyExists one-off-already-granted", err)
	}
}

// newApplication is c's application; i makes its student and card unique.
func newApplication(c *policyCase, i int) *applicationv1.NewApplication {
	birth := time.Date(c.born, time.Month(1+i%12), 1+i%28, 0, 0, 0, 0, time.UTC)
	return &applicationv1.NewApplication{
		StudentIdNumber: idnumber.Generate("420281", birth, 500+i),
		StudentName:     "政策" + strconv.Itoa(i),
		Stage:           string(c.stage), ProgramCode: c.program,
		Boarding: c.boarding, RegisteredPoor: c.poor, RequestedAmountFen: c.requested,
		BankCardNumber: pii.GenerateCardNumber("622848", int64(3000000+i), 19),
		AccountName:    "监护人" + strconv.Itoa(i),
	}
}

// submitCases submits each case from its school's officer and checks the
// amount and policy version the application records.
func submitCases(t *testing.T, s *stack.Stack, cases []*policyCase, offset int) {
	t.Helper()
	ctx := ctxT(t)
	for i, c := range cases {
		officer := newUser(t, s, "officer-"+c.school, auth.RoleSchoolOfficer, c.school)
		resp, err := officer.app.SubmitApplications(ctx, &applicationv1.SubmitApplicationsRequest{SchoolCode: c.school, Term: c.term,
			Applications: []*applicationv1.NewApplication{newApplication(c, offset+i)}})
		if err != nil {
			t.Fatalf("%s: submit: %v", c.name, err)
		}
		a := resp.GetApplications()[0]
		c.id = a.GetApplicationId()
		if c.level == "" && a.GetAmountFen() != c.wantFen {
			t.Errorf("%s: submitted at %d fen, want %d", c.name, a.GetAmountFen(), c.wantFen)
		}
		if a.GetPolicyVersion() != c.wantPolicy {
			t.Errorf("%s: computed under policy %d, want %d", c.name, a.GetPolicyVersion(), c.wantPolicy)
		}
	}
}

// driveToPaid takes the submitted cases through school review (at their
// levels), the notice, bureau review and finance (closed by one officer,
// confirmed by another) until each is PAID at its amount.
func driveToPaid(t *testing.T, s *stack.Stack, cases []*policyCase) {
	t.Helper()
	ctx := ctxT(t)
	bySchool := map[string][]*policyCase{}
	byID := map[string]*policyCase{}
	for _, c := range cases {
		bySchool[c.school] = append(bySchool[c.school], c)
		byID[c.id] = c
	}
	for school, group := range bySchool {
		reviewer := newUser(t, s, "reviewer-"+school, auth.RoleSchoolReviewer, school)
		pending := waitSchoolPending(t, reviewer, school, len(group))
		var ds []*schoolreviewv1.Decision
		for _, r := range pending {
			c := byID[r.GetApplicationId()]
			if c == nil {
				t.Fatalf("school %s sees an unknown application %s", school, r.GetApplicationId())
			}
			ds = append(ds, &schoolreviewv1.Decision{ApplicationId: c.id, Approve: true, HardshipLevel: string(c.level)})
		}
		if _, err := reviewer.school.Decide(ctx, &schoolreviewv1.DecideRequest{Decisions: ds}); err != nil {
			t.Fatalf("school %s decides: %v", school, err)
		}
	}
	bureau := newUser(t, s, "bureau-1", auth.RoleBureauReviewer, auth.OrgBureau)
	var bds []*bureaureviewv1.Decision
	for _, r := range waitBureauPending(t, bureau, len(cases)) {
		c := byID[r.GetApplicationId()]
		if c == nil {
			t.Fatalf("the bureau sees an unknown application %s", r.GetApplicationId())
		}
		if r.GetAmountFen() != c.wantFen {
			t.Errorf("%s: the bureau reviews %d fen, want %d", c.name, r.GetAmountFen(), c.wantFen)
		}
		bds = append(bds, &bureaureviewv1.Decision{ApplicationId: c.id, Approve: true})
	}
	if _, err := bureau.bureau.Decide(ctx, &bureaureviewv1.DecideRequest{Decisions: bds}); err != nil {
		t.Fatalf("bureau decides: %v", err)
	}
	finance := newUser(t, s, "finance-1", auth.RoleFinanceOfficer, auth.OrgFinance)
	confirmer := newUser(t, s, "finance-2", auth.RoleFinanceOfficer, auth.OrgFinance)
	for _, b := range waitBatched(t, finance, len(cases)) {
		closed, err := finance.finance.CloseBatch(ctx, &financev1.CloseBatchRequest{BatchId: b.GetBatchId()})
		if err != nil {
			t.Fatalf("close batch: %v", err)
		}
		if _, err := confirmer.finance.ConfirmBatch(ctx, &financev1.ConfirmBatchRequest{BatchId: b.GetBatchId(), ControlCount: closed.GetControlCount(), ControlSumFen: closed.GetControlSumFen()}); err != nil {
			t.Fatalf("confirm batch: %v", err)
		}
	}
	auditor := newUser(t, s, "auditor-1", auth.RoleAuditor, auth.OrgBureau)
	eventually(t, "every case paid", 90*time.Second, func() error {
		var notYet []string
		for _, c := range cases {
			a, err := auditor.app.GetApplication(ctx, &applicationv1.GetApplicationRequest{ApplicationId: c.id})
			if err != nil {
				return err
			}
			if a.GetStatus() != commonv1.ApplicationStatus_APPLICATION_STATUS_PAID {
				notYet = append(notYet, c.name+": "+a.GetStatus().String())
				continue
			}
			if a.GetAmountFen() != c.wantFen {
				t.Errorf("%s: paid %d fen, want %d", c.name, a.GetAmountFen(), c.wantFen)
			}
		}
		if len(notYet) > 0 {
			return errf("%s", strings.Join(notYet, "; "))
		}
		return nil
	})
}
