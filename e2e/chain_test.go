package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/edubureau/studentaid/internal/devtools/stack"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/catalog"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/idnumber"
	"github.com/edubureau/studentaid/pkg/pii"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
	bureaureviewv1 "github.com/edubureau/studentaid/proto/gen/aid/bureaureview/v1"
	commonv1 "github.com/edubureau/studentaid/proto/gen/aid/common/v1"
	datacomparisonv1 "github.com/edubureau/studentaid/proto/gen/aid/datacomparison/v1"
	financev1 "github.com/edubureau/studentaid/proto/gen/aid/finance/v1"
	payoutv1 "github.com/edubureau/studentaid/proto/gen/aid/payout/v1"
	schoolreviewv1 "github.com/edubureau/studentaid/proto/gen/aid/schoolreview/v1"
)

var (
	schools = []string{"S001", "S002", "S003"}
	terms   = []string{"2017-spring", "2017-autumn"}
)

// planned is one application of the test and what should become of it.
type planned struct {
	idx          int
	school, term string
	req          *applicationv1.NewApplication
	id           string
	level        catalog.HardshipLevel
	schoolReject bool
	bureauReject bool
	objected     bool
	returned     bool
	failsOnce    bool
	amount       int64
}

func (p *planned) finalStatus() commonv1.ApplicationStatus {
	switch {
	case p.schoolReject:
		return commonv1.ApplicationStatus_APPLICATION_STATUS_SCHOOL_REJECTED
	case p.bureauReject:
		return commonv1.ApplicationStatus_APPLICATION_STATUS_BUREAU_REJECTED
	}
	return commonv1.ApplicationStatus_APPLICATION_STATUS_PAID
}

func (p *planned) paid() bool { return !p.schoolReject && !p.bureauReject }

// expectedTrail lists the event types of the application's trail, in order.
func (p *planned) expectedTrail() []string {
	tr := []string{events.TypeApplicationSubmitted}
	if p.schoolReject {
		return append(tr, events.TypeSchoolReviewRejected)
	}
	tr = append(tr, events.TypeSchoolReviewApproved)
	if p.objected {
		tr = append(tr, events.TypeNoticeObjected, events.TypeSchoolReviewApproved)
	}
	tr = append(tr, events.TypeNoticePassed)
	if p.bureauReject {
		return append(tr, events.TypeBureauRejected)
	}
	tr = append(tr, events.TypeBureauApproved, events.TypeItemBatched)
	if p.returned {
		tr = append(tr, events.TypeItemReturnedToBureau, events.TypeBureauApproved, events.TypeItemBatched)
	}
	tr = append(tr, events.TypePaymentOrdered)
	if p.failsOnce {
		tr = append(tr, events.TypePaymentFailed, "application.payee_correction_entered.v1", events.TypePayeeCorrected, events.TypePaymentOrdered)
	}
	return append(tr, events.TypePaymentSucceeded)
}

var programsByIndex = []struct {
	code  string
	stage catalog.Stage
	birth int
}{
	{"PRESCHOOL_AID", catalog.StagePreschool, 2012},
	{"BOARDING_SUBSIDY", catalog.StagePrimary, 2008},
	{"BOARDING_SUBSIDY", catalog.StageJunior, 2004},
	{"HS_NATIONAL_GRANT", catalog.StageHighSchool, 2001},
	{"VOC_NATIONAL_GRANT", catalog.StageVocational, 2000},
}

var levels = []catalog.HardshipLevel{catalog.LevelEspeciallyDifficult, catalog.LevelDifficult, catalog.LevelGenerallyDifficult}

// reportStandards are the amounts per student and term of the bureau's
// 2017 report (shared/domain.md), in fen, written out here independently of
// the policy the system runs: by program and stage, or for the tiered
// high-school grant by level (1,250 / 1,000 / 750 yuan, which reach the
// report's 3,235 person-times for 3,249,750 yuan), and the tuition the
// waivers pay at S001–S003 (850 and 1,075 yuan a term).
var reportStandards = map[string]int64{
	"PRESCHOOL_AID/preschool":                50000,
	"BOARDING_SUBSIDY/primary":               50000,
	"BOARDING_SUBSIDY/junior":                62500,
	"VOC_NATIONAL_GRANT/vocational":          100000,
	"HS_NATIONAL_GRANT/especially_difficult": 125000,
	"HS_NATIONAL_GRANT/difficult":            100000,
	"HS_NATIONAL_GRANT/generally_difficult":  75000,
	"HS_TUITION_WAIVER/high_school":          85000,
	"VOC_TUITION_WAIVER/vocational":          107500,
	"POVERTY_EXTENSION/primary":              50000,
	"ZIHUI_AWARD/high_school":                200000,
	"FANHAI_FRESHMAN/university":             500000,
	"RCB_FRESHMAN/especially_difficult":      300000,
	"RCB_FRESHMAN/difficult":                 250000,
	"RCB_FRESHMAN/generally_difficult":       200000,
}

// reportFen is the report's amount for program at stage, or at level for
// tiered programs.
func reportFen(program string, stage catalog.Stage, level catalog.HardshipLevel) int64 {
	key := program + "/" + string(stage)
	if level != "" {
		key = program + "/" + string(level)
	}
	fen, ok := reportStandards[key]
	if !ok {
		panic("no report standard for " + key)
	}
	return fen
}

const perSchoolTerm = 50

// closedCard returns a Luhn-valid card number ending in 0000, which the
// bank simulator treats as a closed account.
func closedCard(t *testing.T) string {
	t.Helper()
	for k := int64(1); k < 100000; k++ {
		c := pii.GenerateCardNumber("621700", k*10000, 19)
		if c[len(c)-4:] == "0000" {
			return c
		}
	}
	t.Fatal("no closed-account card number found")
	return ""
}

func plan(t *testing.T) []*planned {
	t.Helper()
	surnames := []rune("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗")
	given := []rune("明华强伟芳娜敏静丽军磊洋勇艳杰涛超霞平刚")
	var out []*planned
	i := 0
	for _, school := range schools {
		for _, term := range terms {
			for range perSchoolTerm {
				prog := programsByIndex[i%len(programsByIndex)]
				birth := time.Date(prog.birth, time.Month(1+i%12), 1+i%28, 0, 0, 0, 0, time.UTC)
				p := &planned{
					idx: i, school: school, term: term,
					req: &applicationv1.NewApplication{
						StudentIdNumber: idnumber.Generate("420102", birth, i),
						StudentName:     string(surnames[i%len(surnames)]) + string(given[(i/len(surnames))%len(given)]) + string(given[i%len(given)]),
						Stage:           string(prog.stage),
						ProgramCode:     prog.code,
						Boarding:        prog.code == "BOARDING_SUBSIDY",
						Rural:           prog.code == "BOARDING_SUBSIDY",
						BankCardNumber:  pii.GenerateCardNumber("621700", int64(1000000+i), 19),
						AccountName:     "户主" + string(given[i%len(given)]),
					},
					schoolReject: i%13 == 7,
				}
				p.bureauReject = !p.schoolReject && i%17 == 3
				if prog.code == "HS_NATIONAL_GRANT" {
					p.level = levels[i%len(levels)]
				}
				p.amount = reportFen(prog.code, prog.stage, p.level)
				out = append(out, p)
				i++
			}
		}
	}
	for _, p := range out {
		for body := int64(1000000 + p.idx); p.req.GetBankCardNumber()[len(p.req.GetBankCardNumber())-4:] == "0000"; body += 1000000 {
			p.req.BankCardNumber = pii.GenerateCardNumber("621700", body, 19) // not a closed account
		}
	}
	// One payment fails once (closed account), one item is returned by
	// finance, one application gets an objection during its notice.
	out[5].req.BankCardNumber = closedCard(t)
	out[5].failsOnce = true
	out[160].returned = true
	out[11].objected = true
	for _, p := range []*planned{out[5], out[160], out[11]} {
		if !p.paid() {
			t.Fatalf("application %d was meant to be paid", p.idx)
		}
	}
	return out
}

func TestChainEndToEnd(t *testing.T) {
	s := startStack(t, map[string]string{"SCHOOL_REVIEW_NOTICE_PERIOD": "3s"}, false)
	runChain(t, s)
}

// chainResult is what runChain leaves for tests that look further.
type chainResult struct {
	apps    []*planned
	batches []*financev1.Batch
}

func runChain(t *testing.T, s *stack.Stack) chainResult {
	t.Helper()
	ctx := ctxT(t)
	apps := plan(t)
	officers := map[string]*user{}
	reviewers := map[string]*user{}
	for _, sc := range schools {
		officers[sc] = newUser(t, s, "officer-"+sc, auth.RoleSchoolOfficer, sc)
		reviewers[sc] = newUser(t, s, "reviewer-"+sc, auth.RoleSchoolReviewer, sc)
	}
	bureau := newUser(t, s, "bureau-1", auth.RoleBureauReviewer, auth.OrgBureau)
	finance := newUser(t, s, "finance-1", auth.RoleFinanceOfficer, auth.OrgFinance)
	// Closing and confirming a batch take two finance officers.
	confirmer := newUser(t, s, "finance-2", auth.RoleFinanceOfficer, auth.OrgFinance)
	auditor := newUser(t, s, "auditor-1", auth.RoleAuditor, auth.OrgBureau)
	byID := map[string]*planned{}

	// 1. Schools submit: S001 over REST/JSON, the others over gRPC.
	for _, sc := range schools {
		for _, term := range terms {
			var group []*planned
			var reqs []*applicationv1.NewApplication
			for _, p := range apps {
				if p.school == sc && p.term == term {
					group = append(group, p)
					reqs = append(reqs, p.req)
				}
			}
			var got []*applicationv1.Application
			if sc == "S001" {
				var resp struct {
					Applications []struct {
						ApplicationID string `json:"application_id"`
						AmountFen     string `json:"amount_fen"`
						Status        string `json:"status"`
					} `json:"applications"`
				}
				body := map[string]any{"school_code": sc, "term": term, "idempotency_key": "e2e-" + sc + "-" + term, "applications": restApplications(reqs)}
				if code := officers[sc].rest(t, http.MethodPost, "http://"+s.Endpoints["application"].HTTP+"/v1/applications:submit", body, &resp); code != http.StatusOK {
					t.Fatalf("REST submit %s %s: HTTP %d", sc, term, code)
				}
				for _, a := range resp.Applications {
					if a.Status != "APPLICATION_STATUS_SUBMITTED" {
						t.Fatalf("REST submit: status %s", a.Status)
					}
					got = append(got, &applicationv1.Application{ApplicationId: a.ApplicationID})
				}
			} else {
				resp, err := officers[sc].app.SubmitApplications(ctx, &applicationv1.SubmitApplicationsRequest{SchoolCode: sc, Term: term, Applications: reqs, IdempotencyKey: "e2e-" + sc + "-" + term})
				if err != nil {
					t.Fatalf("submit %s %s: %v", sc, term, err)
				}
				got = resp.GetApplications()
			}
			if len(got) != len(group) {
				t.Fatalf("submit %s %s: %d applications back, want %d", sc, term, len(got), len(group))
			}
			for i, a := range got {
				group[i].id = a.GetApplicationId()
				byID[a.GetApplicationId()] = group[i]
			}
		}
	}
	// A retry with the same idempotency key returns the same applications.
	first := apps[len(apps)-1]
	var retryReqs []*applicationv1.NewApplication
	for _, p := range apps {
		if p.school == first.school && p.term == first.term {
			retryReqs = append(retryReqs, p.req)
		}
	}
	retry, err := officers[first.school].app.SubmitApplications(ctx, &applicationv1.SubmitApplicationsRequest{SchoolCode: first.school, Term: first.term, Applications: retryReqs, IdempotencyKey: "e2e-" + first.school + "-" + first.term})
	if err != nil || retry.GetApplications()[len(retryReqs)-1].GetApplicationId() != first.id {
		t.Fatalf("idempotent retry: %v", err)
	}
	// The same student for the same program and term again is refused.
	_, err = officers[first.school].app.SubmitApplications(ctx, &applicationv1.SubmitApplicationsRequest{SchoolCode: first.school, Term: first.term, Applications: retryReqs[:1]})
	if status.Code(err) != codes.AlreadyExists {
		t.Fatalf("duplicate submission: got %v, want AlreadyExists", err)
	}

	// 2. School review: wait for every item, decide in bulk.
	for _, sc := range schools {
		pending := waitSchoolPending(t, reviewers[sc], sc, countWhere(apps, func(p *planned) bool { return p.school == sc }))
		var ds []*schoolreviewv1.Decision
		for _, r := range pending {
			p := byID[r.GetApplicationId()]
			if p == nil {
				t.Fatalf("school %s sees unknown application %s", sc, r.GetApplicationId())
			}
			if p.schoolReject {
				ds = append(ds, &schoolreviewv1.Decision{ApplicationId: p.id, Approve: false, Reason: "入户走访核实家庭经济状况不符合条件"})
			} else {
				ds = append(ds, &schoolreviewv1.Decision{ApplicationId: p.id, Approve: true, HardshipLevel: string(p.level)})
			}
		}
		if _, err := reviewers[sc].school.Decide(ctx, &schoolreviewv1.DecideRequest{Decisions: ds}); err != nil {
			t.Fatalf("school decide %s: %v", sc, err)
		}
	}
	// An objection during the notice sends one back; it is approved again.
	objected := apps[11]
	if _, err := officers[objected.school].school.RaiseObjection(ctx, &schoolreviewv1.RaiseObjectionRequest{ApplicationId: objected.id, Reason: "同学反映家庭情况有变化"}); err != nil {
		t.Fatalf("objection: %v", err)
	}
	if _, err := reviewers[objected.school].school.Decide(ctx, &schoolreviewv1.DecideRequest{Decisions: []*schoolreviewv1.Decision{{ApplicationId: objected.id, Approve: true, HardshipLevel: string(objected.level)}}}); err != nil {
		t.Fatalf("re-approve after objection: %v", err)
	}

	// 3. Bureau review after the notices pass, with the data office's
	// review-time flags: the roster of the first school and term lacks one
	// applicant, who is the only one flagged, and the decision records it.
	wantBureau := countWhere(apps, func(p *planned) bool { return !p.schoolReject })
	pendingBureau := waitBureauPending(t, bureau, wantBureau)
	offRoster := importRosterWithoutOne(t, s, apps, schools[0], terms[0])
	flagged := reviewFlags(t, bureau, pendingBureau)
	if want := map[string][]string{offRoster.id: {string(catalog.FlagNotOnRoster)}}; fmt.Sprint(flagged) != fmt.Sprint(want) {
		t.Fatalf("review-time flags %v, want %v (application %d off the roster)", flagged, want, offRoster.idx)
	}
	var bds []*bureaureviewv1.Decision
	for _, r := range pendingBureau {
		p := byID[r.GetApplicationId()]
		if r.GetAmountFen() != p.amount {
			t.Fatalf("bureau sees %d fen for application %d, want %d", r.GetAmountFen(), p.idx, p.amount)
		}
		bds = append(bds, &bureaureviewv1.Decision{ApplicationId: p.id, Approve: !p.bureauReject, Reason: reasonIf(p.bureauReject, "与建档立卡信息比对不一致"),
			FlagsShown: flagged[p.id]})
	}
	for lo := 0; lo < len(bds); lo += 100 {
		if _, err := bureau.bureau.Decide(ctx, &bureaureviewv1.DecideRequest{Decisions: bds[lo:min(lo+100, len(bds))]}); err != nil {
			t.Fatalf("bureau decide: %v", err)
		}
	}
	if r, err := auditor.bureau.GetReview(ctx, &bureaureviewv1.GetReviewRequest{ApplicationId: offRoster.id}); err != nil ||
		!slices.Equal(r.GetFlagsShown(), []string{string(catalog.FlagNotOnRoster)}) {
		t.Fatalf("decision on the application off the roster: flags shown %q, %v", r.GetFlagsShown(), err)
	}

	// 4. Finance: wait for the batches, send one item back, then confirm.
	paid := countWhere(apps, (*planned).paid)
	waitBatched(t, finance, paid)
	returned := apps[160]
	item := findBatchItem(t, finance, returned.id)
	if _, err := finance.finance.ReturnItem(ctx, &financev1.ReturnItemRequest{BatchId: item.GetBatchId(), ApplicationId: returned.id, Reason: "银行卡户名与学生监护人不一致，请复核"}); err != nil {
		t.Fatalf("return item: %v", err)
	}
	back := waitBureauPending(t, bureau, 1)
	if back[0].GetApplicationId() != returned.id {
		t.Fatalf("returned item: bureau sees %s", back[0].GetApplicationId())
	}
	if _, err := bureau.bureau.Decide(ctx, &bureaureviewv1.DecideRequest{Decisions: []*bureaureviewv1.Decision{{ApplicationId: returned.id, Approve: true}}}); err != nil {
		t.Fatalf("bureau re-approve: %v", err)
	}
	batches := waitBatched(t, finance, paid)
	for _, b := range batches {
		closed, err := finance.finance.CloseBatch(ctx, &financev1.CloseBatchRequest{BatchId: b.GetBatchId()})
		if err != nil {
			t.Fatalf("close batch: %v", err)
		}
		_, err = finance.finance.ConfirmBatch(ctx, &financev1.ConfirmBatchRequest{BatchId: b.GetBatchId(), ControlCount: closed.GetControlCount(), ControlSumFen: closed.GetControlSumFen()})
		if status.Code(err) != codes.PermissionDenied || errorReason(err) != "close-confirm-same-officer" {
			t.Fatalf("the closer confirms: got %v, want PermissionDenied close-confirm-same-officer", err)
		}
		_, err = confirmer.finance.ConfirmBatch(ctx, &financev1.ConfirmBatchRequest{BatchId: b.GetBatchId(), ControlCount: closed.GetControlCount(), ControlSumFen: closed.GetControlSumFen() + 1})
		if status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("confirm with a wrong control sum: got %v, want FailedPrecondition", err)
		}
		if _, err := confirmer.finance.ConfirmBatch(ctx, &financev1.ConfirmBatchRequest{BatchId: b.GetBatchId(), ControlCount: closed.GetControlCount(), ControlSumFen: closed.GetControlSumFen()}); err != nil {
			t.Fatalf("confirm batch: %v", err)
		}
	}

	// 5. Payout. The closed account fails; the school corrects the card and
	// finance reissues the payment.
	failing := apps[5]
	eventually(t, "closed account reported back", 60*time.Second, func() error {
		a, err := auditor.app.GetApplication(ctx, &applicationv1.GetApplicationRequest{ApplicationId: failing.id})
		if err != nil {
			return err
		}
		if a.GetStatus() != commonv1.ApplicationStatus_APPLICATION_STATUS_PAYMENT_FAILED {
			return errf("status %s", a.GetStatus())
		}
		if a.GetStatusReason() == "" {
			return errf("no reason given for the failed payment")
		}
		return nil
	})
	// The officer enters the new card; it takes effect only when a school
	// reviewer of the school, not the officer, approves it.
	newCard := pii.GenerateCardNumber("621700", 7777777, 19)
	entered, err := officers[failing.school].app.CorrectPayee(ctx, &applicationv1.CorrectPayeeRequest{ApplicationId: failing.id, BankCardNumber: newCard, AccountName: failing.req.GetAccountName()})
	if err != nil {
		t.Fatalf("correct payee: %v", err)
	}
	correction := entered.GetPendingPayeeCorrection().GetCorrectionId()
	if bankMask(newCard) == bankMask(failing.req.GetBankCardNumber()) {
		t.Fatal("the new card looks like the old one at the bank: the ledger could not tell them apart")
	}
	selfApprover := newUser(t, s, "officer-"+failing.school, auth.RoleSchoolReviewer, failing.school)
	_, err = selfApprover.app.ApprovePayeeCorrection(ctx, &applicationv1.ApprovePayeeCorrectionRequest{ApplicationId: failing.id, CorrectionId: correction})
	if status.Code(err) != codes.PermissionDenied || errorReason(err) != "payee-self-approval" {
		t.Fatalf("self-approval of a payee correction: %v, want PermissionDenied payee-self-approval", err)
	}
	failedItem := findBatchItem(t, finance, failing.id)
	if _, err := finance.finance.ReissuePayment(ctx, &financev1.ReissuePaymentRequest{BatchId: failedItem.GetBatchId(), ApplicationId: failing.id}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("reissue before the correction is approved: %v, want FailedPrecondition", err)
	}
	if _, err := reviewers[failing.school].app.ApprovePayeeCorrection(ctx, &applicationv1.ApprovePayeeCorrectionRequest{ApplicationId: failing.id, CorrectionId: correction}); err != nil {
		t.Fatalf("approve payee correction: %v", err)
	}
	eventually(t, "finance sees the correction", 30*time.Second, func() error {
		_, err := finance.finance.ReissuePayment(ctx, &financev1.ReissuePaymentRequest{BatchId: failedItem.GetBatchId(), ApplicationId: failing.id})
		return err
	})

	// 6. Every application ends where its decisions lead.
	eventually(t, "every application final", 120*time.Second, func() error {
		for _, p := range apps {
			a, err := auditor.app.GetApplication(ctx, &applicationv1.GetApplicationRequest{ApplicationId: p.id})
			if err != nil {
				return err
			}
			if a.GetStatus() != p.finalStatus() {
				return errf("application %d: %s, want %s", p.idx, a.GetStatus(), p.finalStatus())
			}
		}
		return nil
	})
	var paidSum int64
	for _, p := range apps {
		a, err := auditor.app.GetApplication(ctx, &applicationv1.GetApplicationRequest{ApplicationId: p.id})
		if err != nil {
			t.Fatal(err)
		}
		if p.paid() {
			paidSum += p.amount
			if a.GetAmountFen() != p.amount {
				t.Errorf("application %d: amount %d fen, want %d", p.idx, a.GetAmountFen(), p.amount)
			}
		}
		tr, err := auditor.app.GetTrail(ctx, &applicationv1.GetTrailRequest{ApplicationId: p.id})
		if err != nil {
			t.Fatal(err)
		}
		var types []string
		for i, e := range tr.GetEvents() {
			types = append(types, e.GetType())
			if e.GetPosition() != int64(i+1) {
				t.Errorf("application %d: trail position %d at index %d", p.idx, e.GetPosition(), i)
			}
			if e.GetActor().GetUserId() == "" {
				t.Errorf("application %d: trail event %s has no actor", p.idx, e.GetType())
			}
		}
		if fmt.Sprint(types) != fmt.Sprint(p.expectedTrail()) {
			t.Errorf("application %d trail:\n got %v\nwant %v", p.idx, types, p.expectedTrail())
		}
		v, err := auditor.app.VerifyTrail(ctx, &applicationv1.VerifyTrailRequest{ApplicationId: p.id})
		if err != nil || !v.GetOk() {
			t.Errorf("application %d: trail does not verify: %v %v", p.idx, v, err)
		}
		// A confirmed batch gets a signed checkpoint: a batched
		// application's earlier entries are proved in its tree.
		if slices.Contains(types, events.TypeItemBatched) && (v.GetCheckpoint() == nil || v.GetAnchoredEntries() < 1) {
			t.Errorf("application %d: batched, but no entry is anchored by a checkpoint: %v", p.idx, v)
		}
		// Decisions are by the real users, not by service names.
		for _, e := range tr.GetEvents() {
			want := map[string]string{
				events.TypeApplicationSubmitted: "officer-" + p.school,
				events.TypeSchoolReviewApproved: "reviewer-" + p.school,
				events.TypeSchoolReviewRejected: "reviewer-" + p.school,
				events.TypeBureauApproved:       "bureau-1",
				events.TypeBureauRejected:       "bureau-1",
				events.TypeItemReturnedToBureau: "finance-1",
			}[e.GetType()]
			if want != "" && e.GetActor().GetUserId() != want {
				t.Errorf("application %d: %s by %s, want %s", p.idx, e.GetType(), e.GetActor().GetUserId(), want)
			}
		}
	}

	// 7. Batch totals: one batch per term and program, holding exactly the
	// paid applications, all paid.
	type key struct{ term, program string }
	wantCount, wantSum := map[key]int64{}, map[key]int64{}
	for _, p := range apps {
		if p.paid() {
			k := key{p.term, p.req.GetProgramCode()}
			wantCount[k]++
			wantSum[k] += p.amount
		}
	}
	final := listBatches(t, finance, financev1.BatchStatus_BATCH_STATUS_CONFIRMED)
	if len(final) != len(wantCount) {
		t.Fatalf("%d confirmed batches, want %d", len(final), len(wantCount))
	}
	var batchSum int64
	for _, b := range final {
		k := key{b.GetTerm(), b.GetProgramCode()}
		if b.GetControlCount() != wantCount[k] || b.GetControlSumFen() != wantSum[k] {
			t.Errorf("batch %s %v: control %d / %d fen, want %d / %d", b.GetBatchId(), k, b.GetControlCount(), b.GetControlSumFen(), wantCount[k], wantSum[k])
		}
		if b.GetPaidCount() != wantCount[k] || b.GetPaidSumFen() != wantSum[k] {
			t.Errorf("batch %s %v: paid %d / %d fen, want %d / %d", b.GetBatchId(), k, b.GetPaidCount(), b.GetPaidSumFen(), wantCount[k], wantSum[k])
		}
		batchSum += b.GetPaidSumFen()
	}
	if batchSum != paidSum {
		t.Errorf("batches paid %d fen, applications %d fen", batchSum, paidSum)
	}

	// 8. The bank's ledger: exactly one credit per paid item, the one
	// rejection, nothing else.
	ledger := readLedger(t, s.BankURL)
	if ledger.creditedCount != int64(paid) || ledger.creditedSum != paidSum || ledger.rejectedCount != 1 {
		t.Errorf("bank ledger: %d credits / %d fen / %d rejected, want %d / %d / 1", ledger.creditedCount, ledger.creditedSum, ledger.rejectedCount, paid, paidSum)
	}
	for _, p := range apps {
		if !p.paid() {
			continue
		}
		ps, err := auditor.payout.ListPayments(ctx, &payoutv1.ListPaymentsRequest{ApplicationId: p.id})
		if err != nil {
			t.Fatal(err)
		}
		credited := 0
		for _, py := range ps.GetPayments() {
			if py.GetStatus() == payoutv1.PaymentStatus_PAYMENT_STATUS_PAID {
				credited++
				if ledger.keys[py.GetPaymentId()] != "credited" {
					t.Errorf("application %d: payment %s not credited at the bank", p.idx, py.GetPaymentId())
				}
				if p == failing && ledger.cards[py.GetPaymentId()] != bankMask(newCard) {
					t.Errorf("the reissue was credited to card %s, want the approved %s", ledger.cards[py.GetPaymentId()], bankMask(newCard))
				}
			}
		}
		if credited != 1 {
			t.Errorf("application %d: %d paid payments, want 1", p.idx, credited)
		}
	}
	return chainResult{apps: apps, batches: final}
}

func restApplications(reqs []*applicationv1.NewApplication) []map[string]any {
	out := make([]map[string]any, len(reqs))
	for i, r := range reqs {
		out[i] = map[string]any{
			"student_id_number": r.GetStudentIdNumber(), "student_name": r.GetStudentName(), "stage": r.GetStage(),
			"program_code": r.GetProgramCode(), "boarding": r.GetBoarding(), "rural": r.GetRural(),
			"registered_poor": r.GetRegisteredPoor(), "bank_card_number": r.GetBankCardNumber(), "account_name": r.GetAccountName(),
		}
	}
	return out
}

func reasonIf(cond bool, reason string) string {
	if cond {
		return reason
	}
	return ""
}

func countWhere(apps []*planned, f func(*planned) bool) int {
	n := 0
	for _, p := range apps {
		if f(p) {
			n++
		}
	}
	return n
}

func waitSchoolPending(t *testing.T, u *user, school string, want int) []*schoolreviewv1.Review {
	t.Helper()
	var all []*schoolreviewv1.Review
	eventually(t, "school "+school+" pending reviews", 60*time.Second, func() error {
		all = nil
		token := ""
		for {
			resp, err := u.school.ListReviews(ctxT(t), &schoolreviewv1.ListReviewsRequest{SchoolCode: school, State: schoolreviewv1.ReviewState_REVIEW_STATE_PENDING, PageSize: 500, PageToken: token})
			if err != nil {
				return err
			}
			all = append(all, resp.GetReviews()...)
			if token = resp.GetNextPageToken(); token == "" {
				break
			}
		}
		if len(all) != want {
			return errf("%d pending, want %d", len(all), want)
		}
		return nil
	})
	return all
}

// importRosterWithoutOne imports, as a data officer, the enrolment roster
// of school for term listing every applicant there but one, an application
// meant to be paid without further events, which it returns.
func importRosterWithoutOne(t *testing.T, s *stack.Stack, apps []*planned, school, term string) *planned {
	t.Helper()
	var off *planned
	rows := []string{"id_number,name,stage"}
	for _, p := range apps {
		if p.school != school || p.term != term {
			continue
		}
		if off == nil && p.paid() && !p.returned && !p.failsOnce && !p.objected {
			off = p
			continue
		}
		rows = append(rows, p.req.GetStudentIdNumber()+","+p.req.GetStudentName()+","+p.req.GetStage())
	}
	officer := newUser(t, s, "data-1", auth.RoleDataOfficer, auth.OrgBureau)
	res, err := officer.data.ImportReference(ctxT(t), &datacomparisonv1.ImportReferenceRequest{Kind: datacomparisonv1.ReferenceKind_REFERENCE_KIND_ROSTER,
		SchoolCode: school, Term: term, FileName: "roster.csv", Content: []byte(strings.Join(rows, "\n") + "\n")})
	if err != nil || !res.GetImported() {
		t.Fatalf("import the roster of %s for %s: %v, bad rows %v", school, term, err, res.GetBadRows())
	}
	return off
}

// reviewFlags asks the data office for the flags of the reviews, as the
// bureau's reviewer, once it knows every one: the flag kinds by application.
// Every application's age is checked: the submission carried the birth
// month from the application service to the data office.
func reviewFlags(t *testing.T, u *user, reviews []*bureaureviewv1.Review) map[string][]string {
	t.Helper()
	var flagged map[string][]string
	eventually(t, "review-time flags", 60*time.Second, func() error {
		flagged = map[string][]string{}
		for lo := 0; lo < len(reviews); lo += 100 {
			var ids []string
			for _, r := range reviews[lo:min(lo+100, len(reviews))] {
				ids = append(ids, r.GetApplicationId())
			}
			res, err := u.data.ListFlags(ctxT(t), &datacomparisonv1.ListFlagsRequest{ApplicationIds: ids})
			if err != nil {
				return err
			}
			for _, a := range res.GetApplications() {
				if !a.GetKnown() {
					return errf("the data office does not know application %s yet", a.GetApplicationId())
				}
				if slices.Contains(a.GetUncheckedKinds(), string(catalog.FlagAgeStageMismatch)) {
					return errf("the data office did not check the age of application %s: no birth month", a.GetApplicationId())
				}
				for _, f := range a.GetFlags() {
					flagged[a.GetApplicationId()] = append(flagged[a.GetApplicationId()], f.GetKind())
				}
			}
		}
		return nil
	})
	return flagged
}

func waitBureauPending(t *testing.T, u *user, want int) []*bureaureviewv1.Review {
	t.Helper()
	var all []*bureaureviewv1.Review
	eventually(t, "bureau pending reviews", 90*time.Second, func() error {
		all = nil
		token := ""
		for {
			resp, err := u.bureau.ListReviews(ctxT(t), &bureaureviewv1.ListReviewsRequest{State: bureaureviewv1.ReviewState_REVIEW_STATE_PENDING, PageSize: 500, PageToken: token})
			if err != nil {
				return err
			}
			all = append(all, resp.GetReviews()...)
			if token = resp.GetNextPageToken(); token == "" {
				break
			}
		}
		if len(all) != want {
			return errf("%d pending, want %d", len(all), want)
		}
		return nil
	})
	return all
}

func listBatches(t *testing.T, u *user, st financev1.BatchStatus) []*financev1.Batch {
	t.Helper()
	var all []*financev1.Batch
	token := ""
	for {
		resp, err := u.finance.ListBatches(ctxT(t), &financev1.ListBatchesRequest{Status: st, PageSize: 500, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, resp.GetBatches()...)
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].GetBatchId() < all[j].GetBatchId() })
	return all
}

// waitBatched waits until the open batches hold want items in all.
func waitBatched(t *testing.T, u *user, want int) []*financev1.Batch {
	t.Helper()
	var open []*financev1.Batch
	eventually(t, "items batched", 60*time.Second, func() error {
		open = listBatches(t, u, financev1.BatchStatus_BATCH_STATUS_OPEN)
		var n int64
		for _, b := range open {
			n += b.GetControlCount()
		}
		if n != int64(want) {
			return errf("%d items in open batches, want %d", n, want)
		}
		return nil
	})
	return open
}

func findBatchItem(t *testing.T, u *user, appID string) *financev1.BatchItem {
	t.Helper()
	for _, st := range []financev1.BatchStatus{financev1.BatchStatus_BATCH_STATUS_OPEN, financev1.BatchStatus_BATCH_STATUS_CLOSED, financev1.BatchStatus_BATCH_STATUS_CONFIRMED} {
		for _, b := range listBatches(t, u, st) {
			token := ""
			for {
				resp, err := u.finance.ListBatchItems(ctxT(t), &financev1.ListBatchItemsRequest{BatchId: b.GetBatchId(), PageSize: 500, PageToken: token})
				if err != nil {
					t.Fatal(err)
				}
				for _, it := range resp.GetItems() {
					if it.GetApplicationId() == appID && it.GetStatus() != financev1.ItemStatus_ITEM_STATUS_RETURNED {
						return it
					}
				}
				if token = resp.GetNextPageToken(); token == "" {
					break
				}
			}
		}
	}
	t.Fatalf("application %s is in no batch", appID)
	return nil
}

type ledgerSummary struct {
	creditedCount, creditedSum, rejectedCount int64
	keys                                      map[string]string
	// cards is the masked card each payment was credited or refused to.
	cards map[string]string
}

func readLedger(t *testing.T, bankURL string) ledgerSummary {
	t.Helper()
	out := ledgerSummary{keys: map[string]string{}, cards: map[string]string{}}
	after := ""
	anon := &user{}
	for {
		var page struct {
			Credits []struct {
				IdempotencyKey string `json:"idempotency_key"`
				Status         string `json:"status"`
				CardMasked     string `json:"card_masked"`
			} `json:"credits"`
			NextAfter string `json:"next_after"`
			Totals    struct {
				CreditedCount  int64 `json:"credited_count"`
				CreditedSumFen int64 `json:"credited_sum_fen"`
				RejectedCount  int64 `json:"rejected_count"`
			} `json:"totals"`
		}
		if code := anon.rest(t, http.MethodGet, bankURL+"/v1/ledger?limit=1000&after="+after, nil, &page); code != http.StatusOK {
			t.Fatalf("bank ledger: HTTP %d", code)
		}
		for _, c := range page.Credits {
			if _, dup := out.keys[c.IdempotencyKey]; dup {
				t.Errorf("bank ledger lists %s twice", c.IdempotencyKey)
			}
			out.keys[c.IdempotencyKey] = c.Status
			out.cards[c.IdempotencyKey] = c.CardMasked
		}
		out.creditedCount, out.creditedSum, out.rejectedCount = page.Totals.CreditedCount, page.Totals.CreditedSumFen, page.Totals.RejectedCount
		if page.NextAfter == "" {
			return out
		}
		after = page.NextAfter
	}
}

// bankMask is a card number as the bank simulator's ledger shows it: the
// first and last four digits.
func bankMask(card string) string {
	return card[:4] + strings.Repeat("*", len(card)-8) + card[len(card)-4:]
}
