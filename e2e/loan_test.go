package e2e

import (
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/idnumber"
	"github.com/edubureau/studentaid/pkg/pii"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
	bureaureviewv1 "github.com/edubureau/studentaid/proto/gen/aid/bureaureview/v1"
	commonv1 "github.com/edubureau/studentaid/proto/gen/aid/common/v1"
	financev1 "github.com/edubureau/studentaid/proto/gen/aid/finance/v1"
	payoutv1 "github.com/edubureau/studentaid/proto/gen/aid/payout/v1"
	schoolreviewv1 "github.com/edubureau/studentaid/proto/gen/aid/schoolreview/v1"
)

// The loans of this test, with the figures expected of them, independent of
// the code under test: each student asks for 8,000 yuan, the usual
// undergraduate loan of the bureau's report (164 loans for 1,335,520 yuan);
// the bank simulator sets 4 years of study left + 15 = 19 years.
const (
	loanFen      = 800000
	loanYears    = 19
	recoveredFen = 150000
)

// TestLoanEndToEnd drives STUDENT_LOAN applications through the whole
// chain: they end PAID with a loan contract at the bank and no card credit,
// and a recovery recorded against one shows in the loan book.
func TestLoanEndToEnd(t *testing.T) {
	s := startStack(t, map[string]string{"SCHOOL_REVIEW_NOTICE_PERIOD": "3s"}, false)
	ctx := ctxT(t)
	officer := newUser(t, s, "officer-S900", auth.RoleSchoolOfficer, "S900")
	reviewer := newUser(t, s, "reviewer-S900", auth.RoleSchoolReviewer, "S900")
	bureau := newUser(t, s, "bureau-1", auth.RoleBureauReviewer, auth.OrgBureau)
	finance := newUser(t, s, "finance-1", auth.RoleFinanceOfficer, auth.OrgFinance)
	confirmer := newUser(t, s, "finance-2", auth.RoleFinanceOfficer, auth.OrgFinance)
	auditor := newUser(t, s, "auditor-1", auth.RoleAuditor, auth.OrgBureau)

	const n = 2
	var reqs []*applicationv1.NewApplication
	for i := range n {
		reqs = append(reqs, &applicationv1.NewApplication{
			StudentIdNumber: idnumber.Generate("420102", time.Date(1999, time.March, 1+i, 0, 0, 0, 0, time.UTC), 500+i),
			StudentName:     []string{"陈晓明", "李静"}[i],
			Stage:           "university",
			ProgramCode:     "STUDENT_LOAN",
			BankCardNumber:  pii.GenerateCardNumber("621700", int64(5000000+i), 19),
			AccountName:     []string{"陈晓明", "李静"}[i],
			// A loan pays what the student asks for, within the policy's limit.
			RequestedAmountFen: loanFen,
		})
	}
	sub, err := officer.app.SubmitApplications(ctx, &applicationv1.SubmitApplicationsRequest{SchoolCode: "S900", Term: "2017-autumn",
		Applications: reqs, IdempotencyKey: "e2e-loans"})
	if err != nil {
		t.Fatalf("submit loans: %v", err)
	}
	ids := map[string]bool{}
	for _, a := range sub.GetApplications() {
		ids[a.GetApplicationId()] = true
	}

	var ds []*schoolreviewv1.Decision
	for _, r := range waitSchoolPending(t, reviewer, "S900", n) {
		ds = append(ds, &schoolreviewv1.Decision{ApplicationId: r.GetApplicationId(), Approve: true})
	}
	if _, err := reviewer.school.Decide(ctx, &schoolreviewv1.DecideRequest{Decisions: ds}); err != nil {
		t.Fatalf("school decide: %v", err)
	}
	var bds []*bureaureviewv1.Decision
	for _, r := range waitBureauPending(t, bureau, n) {
		if r.GetAmountFen() != loanFen {
			t.Fatalf("bureau sees a loan of %d fen, want %d", r.GetAmountFen(), loanFen)
		}
		bds = append(bds, &bureaureviewv1.Decision{ApplicationId: r.GetApplicationId(), Approve: true})
	}
	if _, err := bureau.bureau.Decide(ctx, &bureaureviewv1.DecideRequest{Decisions: bds}); err != nil {
		t.Fatalf("bureau decide: %v", err)
	}
	for _, b := range waitBatched(t, finance, n) {
		closed, err := finance.finance.CloseBatch(ctx, &financev1.CloseBatchRequest{BatchId: b.GetBatchId()})
		if err != nil {
			t.Fatalf("close batch: %v", err)
		}
		if _, err := confirmer.finance.ConfirmBatch(ctx, &financev1.ConfirmBatchRequest{BatchId: b.GetBatchId(), ControlCount: closed.GetControlCount(),
			ControlSumFen: closed.GetControlSumFen()}); err != nil {
			t.Fatalf("confirm batch: %v", err)
		}
	}

	eventually(t, "loans disbursed", 60*time.Second, func() error {
		for id := range ids {
			a, err := auditor.app.GetApplication(ctx, &applicationv1.GetApplicationRequest{ApplicationId: id})
			if err != nil {
				return err
			}
			if a.GetStatus() != commonv1.ApplicationStatus_APPLICATION_STATUS_PAID {
				return errf("application %s: %s", id, a.GetStatus())
			}
		}
		return nil
	})

	// Each loan is a contract at the bank, not a credit to the card.
	ledger := readLedger(t, s.BankURL)
	if ledger.creditedCount != 0 || ledger.creditedSum != 0 || len(ledger.keys) != 0 {
		t.Errorf("bank ledger: %d credits / %d fen (%d entries), want none for loans", ledger.creditedCount, ledger.creditedSum, len(ledger.keys))
	}
	contracts := map[string]string{} // application → contract
	for id := range ids {
		ps, err := auditor.payout.ListPayments(ctx, &payoutv1.ListPaymentsRequest{ApplicationId: id})
		if err != nil {
			t.Fatal(err)
		}
		if len(ps.GetPayments()) != 1 {
			t.Fatalf("application %s: %d payments, want 1", id, len(ps.GetPayments()))
		}
		p := ps.GetPayments()[0]
		if p.GetStatus() != payoutv1.PaymentStatus_PAYMENT_STATUS_PAID || p.GetLoanContractNumber() == "" || p.GetAmountFen() != loanFen {
			t.Errorf("loan payment %v, want PAID under a contract", p)
		}
		var bankLoan struct {
			ContractNumber string `json:"contract_number"`
			AmountFen      int64  `json:"amount_fen"`
			Years          int    `json:"years"`
		}
		if code := (&user{}).rest(t, http.MethodGet, s.BankURL+"/v1/loans/"+p.GetPaymentId(), nil, &bankLoan); code != http.StatusOK ||
			bankLoan.ContractNumber != p.GetLoanContractNumber() || bankLoan.AmountFen != loanFen || bankLoan.Years != loanYears {
			t.Errorf("bank loan of payment %s: HTTP %d %+v", p.GetPaymentId(), code, bankLoan)
		}
		contracts[id] = p.GetLoanContractNumber()
	}

	// A recovery against one contract.
	var recoveredFrom string
	for _, c := range contracts {
		recoveredFrom = c
		break
	}
	rec, err := finance.payout.RecordLoanRepayment(ctx, &payoutv1.RecordLoanRepaymentRequest{ContractNumber: recoveredFrom,
		Kind: payoutv1.LoanRepaymentKind_LOAN_REPAYMENT_KIND_RECOVERY, AmountFen: recoveredFen, BankReference: "E2E-REC-0001",
		PaidOn: "2018-06-30", Reason: "逾期贷款回收"})
	if err != nil {
		t.Fatalf("record recovery: %v", err)
	}
	if c := rec.GetContract(); c.GetRecoveredFen() != recoveredFen || c.GetOutstandingFen() != loanFen-recoveredFen || c.GetYears() != loanYears {
		t.Errorf("contract after the recovery %v", c)
	}
	_, err = finance.payout.RecordLoanRepayment(ctx, &payoutv1.RecordLoanRepaymentRequest{ContractNumber: recoveredFrom,
		Kind: payoutv1.LoanRepaymentKind_LOAN_REPAYMENT_KIND_REPAYMENT, AmountFen: loanFen, BankReference: "E2E-REP-0002", PaidOn: "2018-07-01"})
	if status.Code(err) != codes.FailedPrecondition || errorReason(err) != "loan-repayment-exceeds-outstanding" {
		t.Errorf("repaying more than is outstanding: %v", err)
	}
	totals, err := auditor.payout.GetLoanBookTotals(ctx, &payoutv1.GetLoanBookTotalsRequest{Term: "2017-autumn", SchoolCode: "S900"})
	if err != nil {
		t.Fatal(err)
	}
	if totals.GetContracts() != n || totals.GetAmountFen() != n*loanFen || totals.GetRepaidFen() != 0 || totals.GetRecoveredFen() != recoveredFen ||
		totals.GetOutstandingFen() != n*loanFen-recoveredFen {
		t.Errorf("loan book totals %v", totals)
	}
}
