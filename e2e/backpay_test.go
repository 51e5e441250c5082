package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/catalog"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/idnumber"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
	datacomparisonv1 "github.com/edubureau/studentaid/proto/gen/aid/datacomparison/v1"
	payoutv1 "github.com/edubureau/studentaid/proto/gen/aid/payout/v1"
	reportingv1 "github.com/edubureau/studentaid/proto/gen/aid/reporting/v1"
)

// TestBackPayEndToEnd: a registry child on a school's roster who got
// nothing (应助未助) is found by a comparison run; the data officer verifies
// the clue, which orders back-pay from the school; the school's officer
// sees the order in the console and uploads a list naming it, and the
// application goes through the whole chain — school review with its
// notice, bureau, finance's two officers, payout — to one credit at the
// bank. At the end the clue says paid (also on the data officer's page),
// its trail and the application's verify, the annual report counts the
// payment, and a re-run of the comparison finds nothing new.
func TestBackPayEndToEnd(t *testing.T) {
	s := startStack(t, map[string]string{"SCHOOL_REVIEW_NOTICE_PERIOD": "2s"}, false)
	checkReasons(t)
	ctx := ctxT(t)
	// S001 is the console's development school officer's (officer1).
	const school, term = "S001", "2017-autumn"
	data := newUser(t, s, "data-1", auth.RoleDataOfficer, auth.OrgBureau)
	officer := newUser(t, s, "officer-"+school, auth.RoleSchoolOfficer, school)
	auditor := newUser(t, s, "auditor-1", auth.RoleAuditor, auth.OrgBureau)
	c := &policyCase{name: "missed, back-paid", school: school, term: term, program: "POVERTY_EXTENSION", stage: catalog.StagePrimary,
		born: 2009, poor: true, wantFen: 50000, wantPolicy: 1}
	req := newApplication(c, 450)
	id := req.GetStudentIdNumber()

	for _, f := range []*datacomparisonv1.ImportReferenceRequest{
		{Kind: datacomparisonv1.ReferenceKind_REFERENCE_KIND_POVERTY_REGISTRY, FileName: "registry.csv",
			Content: []byte("household_id,id_number,name,township\nH0900," + id + "," + req.GetStudentName() + ",城关镇\n")},
		{Kind: datacomparisonv1.ReferenceKind_REFERENCE_KIND_ROSTER, SchoolCode: school, Term: term, FileName: "roster.csv",
			Content: []byte("id_number,name,stage\n" + id + "," + req.GetStudentName() + ",primary\n")},
	} {
		res, err := data.data.ImportReference(ctx, f)
		if err != nil || !res.GetImported() {
			t.Fatalf("import %s: %v (bad rows %v)", f.GetKind(), err, res.GetBadRows())
		}
	}
	run, err := data.data.RunComparison(ctx, &datacomparisonv1.RunComparisonRequest{FromTerm: term, ToTerm: term})
	if err != nil {
		t.Fatal(err)
	}
	if n := run.GetNewClues()["missed"]; n != 1 {
		t.Fatalf("the run found %d missed students, want 1 (%v)", n, run.GetNewClues())
	}
	list, err := data.data.ListClues(ctx, &datacomparisonv1.ListCluesRequest{Kind: "missed"})
	if err != nil {
		t.Fatal(err)
	}
	clue := list.GetClues()[0]
	if clue.GetSchoolCode() != school || clue.GetTerm() != term || clue.GetProgramCode() != c.program ||
		clue.GetStudentIdMasked() != idnumber.Mask(id) || clue.GetAmountFen() != c.wantFen {
		t.Fatalf("missed clue: %v", clue)
	}
	ids := []string{clue.GetClueId()}
	if _, err := data.data.AssignClues(ctx, &datacomparisonv1.AssignCluesRequest{ClueIds: ids, Assignee: "data-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := data.data.VerifyClues(ctx, &datacomparisonv1.VerifyCluesRequest{ClueIds: ids, Findings: "建档立卡户子女在读，本学期未获资助",
		Evidence: "学籍名册与建档名单"}); err != nil {
		t.Fatal(err)
	}

	// The school's officer sees the order in the console and uploads a
	// list naming it.
	var order *applicationv1.BackPayOrder
	eventually(t, "the school's back-pay order", 30*time.Second, func() error {
		res, err := officer.app.ListBackPayOrders(ctx, &applicationv1.ListBackPayOrdersRequest{SchoolCode: school, OpenOnly: true})
		if err != nil {
			return err
		}
		if len(res.GetOrders()) != 1 {
			return errf("%d open orders", len(res.GetOrders()))
		}
		order = res.GetOrders()[0]
		return nil
	})
	if order.GetClueId() != clue.GetClueId() || order.GetProgramCode() != c.program || order.GetTerm() != term ||
		order.GetStudentIdMasked() != idnumber.Mask(id) || order.GetEstimatedAmountFen() != c.wantFen {
		t.Fatalf("order: %v", order)
	}
	base := "http://" + s.Console
	b := newBrowser(t, base)
	b.signIn("officer1")
	b.run("back-pay orders", chromedp.Navigate(base+"/school/back-pay"), chromedp.WaitVisible(chromedp.CSS("#backpay")))
	if row := b.text(`#backpay tbody tr[data-id="` + clue.GetClueId() + `"]`); !strings.Contains(row, idnumber.Mask(id)) || !strings.Contains(row, "500.00") {
		t.Errorf("the order's row %q: want the masked ID and 500.00", row)
	}
	b.screenshot("back-pay-orders")
	listFile := filepath.Join(t.TempDir(), "补发名单.csv")
	if err := os.WriteFile(listFile, []byte("身份证号,姓名,学段,资助项目,建档立卡,银行卡号,户名,补发单号\n"+
		id+","+req.GetStudentName()+",小学,"+c.program+",是,"+req.GetBankCardNumber()+","+req.GetAccountName()+","+order.GetClueId()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b.run("upload the back-pay list", chromedp.Navigate(base+"/upload"), chromedp.WaitVisible(chromedp.CSS("#upload-form")),
		chromedp.SetValue(chromedp.CSS("#term"), term), chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{listFile}),
		chromedp.Click(chromedp.CSS("#check")), chromedp.WaitVisible(chromedp.CSS("#upload-ok")))
	b.run("submit", chromedp.Click(chromedp.CSS("#submit")), chromedp.WaitVisible(chromedp.CSS("#upload-submitted")))
	if got := b.text("#submitted-count"); got != "1" {
		t.Fatalf("submitted %q, want 1", got)
	}
	res, err := officer.app.ListBackPayOrders(ctx, &applicationv1.ListBackPayOrdersRequest{SchoolCode: school})
	if err != nil {
		t.Fatal(err)
	}
	c.id = res.GetOrders()[0].GetApplicationId()
	a, err := officer.app.GetApplication(ctx, &applicationv1.GetApplicationRequest{ApplicationId: c.id})
	if err != nil {
		t.Fatalf("the back-pay application %q: %v", c.id, err)
	}
	if a.GetBackPayClueId() != clue.GetClueId() || a.GetAmountFen() != c.wantFen || a.GetProgramCode() != c.program {
		t.Fatalf("back-pay application: clue %q, %s, %d fen", a.GetBackPayClueId(), a.GetProgramCode(), a.GetAmountFen())
	}
	b.signOut()
	driveToPaid(t, s, []*policyCase{c})

	eventually(t, "the clue's back-pay paid", 30*time.Second, func() error {
		got, err := auditor.data.GetClue(ctx, &datacomparisonv1.GetClueRequest{ClueId: clue.GetClueId()})
		if err != nil {
			return err
		}
		if got.GetBackPayStatus() != "paid" || got.GetBackPayApplicationId() != c.id {
			return errf("back-pay %q for %q", got.GetBackPayStatus(), got.GetBackPayApplicationId())
		}
		return nil
	})
	trail, err := auditor.data.GetClueTrail(ctx, &datacomparisonv1.GetClueTrailRequest{ClueId: clue.GetClueId()})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, st := range trail.GetEntries() {
		types = append(types, st.GetType())
	}
	if want := []string{events.TypeClueRaised, events.TypeClueAssigned, events.TypeClueVerified, events.TypeBackPayOpened,
		events.TypeApplicationSubmitted, events.TypePaymentSucceeded}; !trail.GetIntact() || !slices.Equal(types, want) {
		t.Errorf("clue trail intact %t, %q; want intact %q", trail.GetIntact(), types, want)
	}
	v, err := auditor.app.VerifyTrail(ctx, &applicationv1.VerifyTrailRequest{ApplicationId: c.id})
	if err != nil {
		t.Fatal(err)
	}
	if !v.GetOk() {
		t.Errorf("the back-pay application's trail does not verify: %s", v.GetProblem())
	}

	// One payment, one credit at the bank, to the student's card.
	ps, err := auditor.payout.ListPayments(ctx, &payoutv1.ListPaymentsRequest{ApplicationId: c.id})
	if err != nil {
		t.Fatal(err)
	}
	if len(ps.GetPayments()) != 1 || ps.GetPayments()[0].GetAmountFen() != c.wantFen {
		t.Fatalf("payments of the back-pay: %v", ps.GetPayments())
	}
	ledger := readLedger(t, s.BankURL)
	pid := ps.GetPayments()[0].GetPaymentId()
	if ledger.keys[pid] != "credited" || ledger.cards[pid] != bankMask(req.GetBankCardNumber()) || ledger.creditedCount != 1 || ledger.creditedSum != c.wantFen {
		t.Errorf("bank ledger: %s %q to %s; %d credits for %d fen; want the one back-pay credited to %s",
			pid, ledger.keys[pid], ledger.cards[pid], ledger.creditedCount, ledger.creditedSum, bankMask(req.GetBankCardNumber()))
	}

	// The year's report counts it; the student is missed no more.
	eventually(t, "the report counts the back-pay", 30*time.Second, func() error {
		r, err := auditor.reports.GetAnnualReport(ctx, &reportingv1.GetAnnualReportRequest{Year: 2017})
		if err != nil {
			return err
		}
		if l := lineOf(r, "programs", c.program); l == nil || l.GetAmountFen() != c.wantFen || l.GetCount() != 1 || r.GetStudents() != 1 {
			return errf("%s line %v, %d students", c.program, l, r.GetStudents())
		}
		return nil
	})
	// The data-comparison section counts what the data office did in the
	// year it did it: the back-pay in the year of its payment.
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	paidYear := ps.GetPayments()[0].GetUpdatedAt().AsTime().In(shanghai).Year()
	eventually(t, "the report of the payment's year counts the back-pay", 30*time.Second, func() error {
		r, err := auditor.reports.GetAnnualReport(ctx, &reportingv1.GetAnnualReportRequest{Year: int32(paidYear)})
		if err != nil {
			return err
		}
		if l := lineOf(r, "refunds", "back_paid"); l == nil || l.GetAmountFen() != c.wantFen || l.GetCount() != 1 {
			return errf("back-paid line of %d: %v", paidYear, l)
		}
		return nil
	})
	b.signIn("data1")
	b.until("the clue's back-pay paid on the data officer's page", "/data/clues?kind=missed", "#clues", func(text string) bool {
		return strings.Contains(text, "已补发") && strings.Contains(text, c.id)
	})
	b.screenshot("back-pay-paid")
	again, err := data.data.RunComparison(ctx, &datacomparisonv1.RunComparisonRequest{FromTerm: term, ToTerm: term})
	if err != nil {
		t.Fatal(err)
	}
	for kind, n := range again.GetNewClues() {
		if n != 0 {
			t.Errorf("the re-run after the back-pay added %d %s clues", n, kind)
		}
	}
}
