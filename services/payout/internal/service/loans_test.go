package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/edubureau/studentaid/cmd/banksim/sim"
	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/manifest"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	payoutv1 "github.com/edubureau/studentaid/proto/gen/aid/payout/v1"
)

// loanProgram is the student loan (生源地信用助学贷款), funded by the bank.
const loanProgram = "STUDENT_LOAN"

// confirmLoans publishes the signed manifest of a bank_loan batch over
// items, as finance does on confirmation.
func (h *harness) confirmLoans(batchID string, items ...manifest.Item) {
	h.t.Helper()
	b := manifest.Batch{ID: batchID, ProgramCode: loanProgram, Term: term, FundingSource: "bank_loan", ControlCount: int64(len(items))}
	for _, it := range items {
		b.ControlSumFen += it.AmountFen
	}
	header, parts, err := manifest.Build(b, items, devSigner(h.t))
	if err != nil {
		h.t.Fatal(err)
	}
	keys := events.Keys{BatchID: batchID, ProgramCode: loanProgram, Term: term}
	h.publishAsFinance(events.MustNew(time.Now(), financeActor, keys, &eventsv1.BatchConfirmed{
		ControlCount: b.ControlCount, ControlSumFen: b.ControlSumFen, FundingSource: b.FundingSource, Manifest: manifest.HeaderProto(header),
	}), "", nil)
	for i, p := range parts {
		h.publishAsFinance(events.MustNew(time.Now(), financeActor, keys, manifest.PartProto(i, p)), "", nil)
	}
}

// loanOrdered is finance's first order of a's loan.
func loanOrdered(a application, batchID, paymentID string) *eventsv1.Event {
	return events.MustNew(time.Now(), financeActor,
		events.Keys{ApplicationID: a.id, BatchID: batchID, SchoolCode: a.school, ProgramCode: loanProgram, Term: term},
		&eventsv1.PaymentOrdered{PaymentId: paymentID, AmountFen: a.amount, Attempt: 1})
}

// loanSucceeded waits for the payment_succeeded event of paymentID.
func (h *harness) loanSucceeded(paymentID string) *eventsv1.PaymentSucceeded {
	h.t.Helper()
	return h.await(events.Subject(events.TypePaymentSucceeded), 1, func(ev *eventsv1.Event) bool {
		return ev.GetPaymentSucceeded().GetPaymentId() == paymentID
	})[0].Event.GetPaymentSucceeded()
}

// rows counts the rows of a payout table.
func (h *harness) rows(table string) int {
	h.t.Helper()
	var n int
	if err := h.pool.QueryRow(context.Background(), `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	return n
}

// reasonOf is the ErrorInfo reason err carries.
func reasonOf(err error) string { return string(apperr.ReasonOf(err)) }

func TestLoanOpensOneContractAndCreditsNoCard(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	openedAt := time.Date(2017, time.September, 12, 2, 0, 0, 0, time.UTC)
	opts.Now = func() time.Time { return openedAt }
	h := startWith(t, sim.Faults{}, opts)
	ctx := context.Background()
	a := newApplication(800000)
	batchID, paymentID := uuid.NewString(), uuid.NewString()
	h.publish(h.submitted(a, goodCard))
	h.confirmLoans(batchID, itemOf(a, paymentID))
	h.publishAsFinance(loanOrdered(a, batchID, paymentID), "", nil)

	s := h.loanSucceeded(paymentID)
	loan, err := h.bank.Ledger.GetLoan(ctx, paymentID)
	if err != nil {
		t.Fatalf("the bank opened no loan contract: %v", err)
	}
	// The simulator's rule: a course of unknown length is four years left, plus 15.
	if loan.AmountFen != 800000 || loan.Years != 19 || loan.BorrowerName != accountName || loan.CardNumber != goodCard {
		t.Errorf("bank loan %+v", loan)
	}
	if s.GetLoanContractNumber() != loan.ContractNumber || s.GetBankRef() != loan.ContractNumber || s.GetAmountFen() != 800000 {
		t.Errorf("payment_succeeded %v, want the contract %s", s, loan.ContractNumber)
	}
	if totals := h.ledger(); totals != (sim.Totals{}) {
		t.Errorf("bank ledger %+v: a loan credited a card", totals)
	}
	if _, err := h.bank.Ledger.Get(ctx, paymentID); !errors.Is(err, sim.ErrNotFound) {
		t.Errorf("bank credit of the loan payment: %v, want none", err)
	}

	p, err := h.client(auth.RoleAuditor, auth.OrgAudit).GetPayment(ctx, &payoutv1.GetPaymentRequest{PaymentId: paymentID})
	if err != nil {
		t.Fatal(err)
	}
	if p.GetStatus() != payoutv1.PaymentStatus_PAYMENT_STATUS_PAID || p.GetLoanContractNumber() != loan.ContractNumber {
		t.Errorf("payment %v", p)
	}
	list, err := h.client(auth.RoleBureauReviewer, auth.OrgBureau).ListLoans(ctx, &payoutv1.ListLoansRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetLoans()) != 1 {
		t.Fatalf("loan book %v, want one contract", list.GetLoans())
	}
	c := list.GetLoans()[0]
	if c.GetContractNumber() != loan.ContractNumber || c.GetPaymentId() != paymentID || c.GetApplicationId() != a.id || c.GetBatchId() != batchID ||
		c.GetSchoolCode() != "S001" || c.GetProgramCode() != loanProgram || c.GetTerm() != term || c.GetAmountFen() != 800000 ||
		c.GetYears() != 19 || c.GetOutstandingFen() != 800000 || c.GetRepaidFen() != 0 || c.GetStatus() != payoutv1.LoanStatus_LOAN_STATUS_OPEN ||
		!c.GetOpenedAt().AsTime().Equal(openedAt) {
		t.Errorf("loan contract %v", c)
	}
	metrics := scrape(t, h.run.HTTPAddr)
	for _, want := range []string{`aid_payout_loan_contracts_total 1`, `aid_payout_loan_contracted_fen_total 800000`, `aid_payouts_total{result="paid"} 0`,
		`aid_payout_bank_calls_total{call="open_loan",outcome="opened"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestLoanWhoseAnswerIsLostIsLookedUpNotOpenedTwice(t *testing.T) {
	t.Parallel()
	// The bank opens every contract but holds its answer past payout's timeout.
	opts := testOptions()
	opts.Config.BankTimeout = 300 * time.Millisecond
	h := startWith(t, sim.Faults{TimeoutRate: 1, TimeoutDelay: 3 * time.Second, Seed: 11}, opts)
	ctx := context.Background()
	a := newApplication(600000)
	batchID, paymentID := uuid.NewString(), uuid.NewString()
	h.publish(h.submitted(a, goodCard))
	h.confirmLoans(batchID, itemOf(a, paymentID))
	h.publishAsFinance(loanOrdered(a, batchID, paymentID), "", nil)

	s := h.loanSucceeded(paymentID)
	loans, err := h.bank.Ledger.LoanTotals(ctx)
	if err != nil || loans != (sim.LoanTotals{Count: 1, SumFen: 600000}) {
		t.Fatalf("bank loans %+v %v, want exactly one contract", loans, err)
	}
	loan, err := h.bank.Ledger.GetLoan(ctx, paymentID)
	if err != nil || s.GetLoanContractNumber() != loan.ContractNumber {
		t.Errorf("payment_succeeded %v, bank loan %+v %v", s, loan, err)
	}
	if n := h.bankLog(`"method":"GET"`, `"path":"/v1/loans/`+paymentID+`"`); n < 1 {
		t.Errorf("payout never looked the loan up (%d lookups)", n)
	}
	if n := h.bankLog(`"idempotency_key":"`+paymentID+`"`, `"replay":true`); n != 0 {
		t.Errorf("payout asked for the loan again %d times instead of looking it up", n)
	}
	if totals := h.ledger(); totals != (sim.Totals{}) {
		t.Errorf("bank ledger %+v: a loan credited a card", totals)
	}
	if n := h.rows("loan_contracts"); n != 1 {
		t.Errorf("%d loan contracts recorded, want 1", n)
	}
}

func TestLoanClaimedByAPayoutThatDiedIsResolvedByLookup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		bankHasIt bool
	}{
		// Died after the bank opened the contract: the lookup finds it.
		{"bank opened it", true},
		// Died before the request left: the bank has none, so ask under the same key.
		{"bank never saw it", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := start(t)
			ctx := context.Background()
			a := newApplication(750000)
			batchID, paymentID := uuid.NewString(), uuid.NewString()
			h.publish(h.submitted(a, goodCard))
			h.confirmLoans(batchID, itemOf(a, paymentID))
			h.awaitConsumed()
			var contract string
			if tt.bankHasIt {
				loan, _, err := h.bank.Ledger.OpenLoan(ctx, sim.LoanRequest{IdempotencyKey: paymentID, BorrowerName: accountName, CardNumber: goodCard, AmountFen: a.amount}, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				contract = loan.ContractNumber
			}
			// What a payout killed after its claim committed leaves behind.
			_, err := h.pool.Exec(ctx, `INSERT INTO payments (payment_id, application_id, batch_id, school_code, program_code, term,
  amount_fen, order_attempt, bank_card_sealed, account_name_sealed, bank_card_masked, status, attempts, claim_id, next_attempt_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9, '6217***********0123', 'UNKNOWN', 1, $10, now())`,
				paymentID, a.id, batchID, a.school, loanProgram, term, a.amount, h.sealCard(a.id, goodCard), h.sealName(a.id, accountName), uuid.NewString())
			if err != nil {
				t.Fatal(err)
			}
			s := h.loanSucceeded(paymentID)
			if s.GetLoanContractNumber() == "" || (tt.bankHasIt && s.GetLoanContractNumber() != contract) {
				t.Fatalf("payment_succeeded %v, want contract %q", s, contract)
			}
			if loans, err := h.bank.Ledger.LoanTotals(ctx); err != nil || loans != (sim.LoanTotals{Count: 1, SumFen: 750000}) {
				t.Errorf("bank loans %+v %v, want exactly one contract", loans, err)
			}
			if n := h.bankLog(`"method":"GET"`, `"path":"/v1/loans/`+paymentID+`"`); n != 1 {
				t.Errorf("%d lookups, want 1", n)
			}
			if totals := h.ledger(); totals != (sim.Totals{}) {
				t.Errorf("bank ledger %+v: a loan credited a card", totals)
			}
			h.awaitSettled()
			if n := h.rows("loan_contracts"); n != 1 {
				t.Errorf("%d loan contracts recorded, want 1", n)
			}
		})
	}
}

// The loan book's expected figures, in fen, worked out by hand.
const (
	loanA = 800000 // S001
	loanB = 600000 // S002
)

func TestLoanRepaymentsAndRecoveriesInTheBook(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.Now = func() time.Time { return time.Date(2019, time.March, 1, 8, 0, 0, 0, time.UTC) }
	h := startWith(t, sim.Faults{}, opts)
	ctx := context.Background()
	a, b := newApplication(loanA), newApplication(loanB)
	b.school = "S002"
	batchID, payA, payB := uuid.NewString(), uuid.NewString(), uuid.NewString()
	h.publish(h.submitted(a, goodCard))
	h.publish(h.submitted(b, goodCard))
	h.confirmLoans(batchID, itemOf(a, payA), itemOf(b, payB))
	h.publishAsFinance(loanOrdered(a, batchID, payA), "", nil)
	h.publishAsFinance(loanOrdered(b, batchID, payB), "", nil)
	contractA, contractB := h.loanSucceeded(payA).GetLoanContractNumber(), h.loanSucceeded(payB).GetLoanContractNumber()

	finance := h.client(auth.RoleFinanceOfficer, auth.OrgFinance)
	record := func(contract string, kind payoutv1.LoanRepaymentKind, amount int64, ref, reason string) (*payoutv1.RecordLoanRepaymentResponse, error) {
		return finance.RecordLoanRepayment(ctx, &payoutv1.RecordLoanRepaymentRequest{ContractNumber: contract, Kind: kind, AmountFen: amount,
			BankReference: ref, PaidOn: "2018-09-03", Reason: reason})
	}
	const repay, recovery = payoutv1.LoanRepaymentKind_LOAN_REPAYMENT_KIND_REPAYMENT, payoutv1.LoanRepaymentKind_LOAN_REPAYMENT_KIND_RECOVERY

	first, err := record(contractA, repay, 300000, "BOC-20180903-0001", "")
	if err != nil {
		t.Fatal(err)
	}
	if r, c := first.GetRepayment(), first.GetContract(); r.GetAmountFen() != 300000 || r.GetKind() != repay || r.GetPaidOn() != "2018-09-03" ||
		r.GetRecordedBy() != "u-finance_officer" || c.GetRepaidFen() != 300000 || c.GetOutstandingFen() != 500000 || c.GetStatus() != payoutv1.LoanStatus_LOAN_STATUS_OPEN {
		t.Errorf("first repayment %v", first)
	}
	if _, err := record(contractB, recovery, 200000, "BOC-20180903-0002", "overdue; recovered from the guarantor"); err != nil {
		t.Fatal(err)
	}

	// The same request again is answered, not recorded again.
	again, err := record(contractA, repay, 300000, "BOC-20180903-0001", "")
	if err != nil {
		t.Fatal(err)
	}
	if again.GetRepayment().GetRepaymentId() != first.GetRepayment().GetRepaymentId() || again.GetContract().GetRepaidFen() != 300000 {
		t.Errorf("repeated repayment %v, want the first %v", again, first)
	}
	// The reference for other money is refused.
	_, err = record(contractA, repay, 300001, "BOC-20180903-0001", "")
	if status.Code(err) != codes.AlreadyExists || reasonOf(err) != "loan-bank-reference-reused" {
		t.Errorf("reference reused for another amount: %v", err)
	}
	// More than is outstanding is refused, with the figures, and writes nothing.
	_, err = record(contractA, repay, 500001, "BOC-20180904-0003", "")
	if status.Code(err) != codes.FailedPrecondition || reasonOf(err) != "loan-repayment-exceeds-outstanding" ||
		!strings.Contains(status.Convert(err).Message(), "500000 fen outstanding") {
		t.Errorf("over-repayment: %v", err)
	}
	for _, bad := range []struct {
		name   string
		amount int64
		kind   payoutv1.LoanRepaymentKind
		reason string
		field  string
	}{
		{"zero", 0, repay, "", "amount_fen"},
		{"negative", -100, repay, "", "amount_fen"},
		{"no kind", 100, payoutv1.LoanRepaymentKind_LOAN_REPAYMENT_KIND_UNSPECIFIED, "", "kind"},
		{"recovery without a reason", 100, recovery, "", "reason"},
	} {
		_, err := record(contractA, bad.kind, bad.amount, "BOC-BAD-"+bad.name, bad.reason)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), bad.field) {
			t.Errorf("%s: %v, want InvalidArgument on %s", bad.name, err, bad.field)
		}
	}
	_, err = record("BSIM-L-NONE", repay, 100, "BOC-20180905-0009", "")
	if status.Code(err) != codes.NotFound {
		t.Errorf("unknown contract: %v", err)
	}
	if n := h.rows("loan_repayments"); n != 2 {
		t.Errorf("%d repayments recorded, want 2: a refused or repeated request wrote a row", n)
	}

	// The rest of A is repaid: A is repaid in full.
	last, err := record(contractA, repay, 500000, "BOC-20190110-0004", "")
	if err != nil {
		t.Fatal(err)
	}
	if c := last.GetContract(); c.GetOutstandingFen() != 0 || c.GetStatus() != payoutv1.LoanStatus_LOAN_STATUS_REPAID {
		t.Errorf("contract after the last repayment %v", c)
	}

	// Others may not record.
	for _, who := range []struct {
		role auth.Role
		org  string
	}{{auth.RoleAuditor, auth.OrgAudit}, {auth.RoleBureauReviewer, auth.OrgBureau}, {auth.RoleSchoolOfficer, "S001"}} {
		_, err := h.client(who.role, who.org).RecordLoanRepayment(ctx, &payoutv1.RecordLoanRepaymentRequest{ContractNumber: contractB,
			Kind: repay, AmountFen: 100, BankReference: "BOC-X-" + string(who.role), PaidOn: "2018-09-03"})
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("%s recorded a repayment: %v", who.role, err)
		}
	}

	type totals struct{ contracts, amount, repaid, recovered, outstanding int64 }
	auditor := h.client(auth.RoleAuditor, auth.OrgAudit)
	for _, tt := range []struct {
		name string
		req  *payoutv1.GetLoanBookTotalsRequest
		want totals
	}{
		{"whole book", &payoutv1.GetLoanBookTotalsRequest{}, totals{2, 1400000, 800000, 200000, 400000}},
		{"the term", &payoutv1.GetLoanBookTotalsRequest{Term: term}, totals{2, 1400000, 800000, 200000, 400000}},
		{"another term", &payoutv1.GetLoanBookTotalsRequest{Term: "2018-autumn"}, totals{}},
		{"S001", &payoutv1.GetLoanBookTotalsRequest{SchoolCode: "S001"}, totals{1, 800000, 800000, 0, 0}},
		{"open", &payoutv1.GetLoanBookTotalsRequest{Status: payoutv1.LoanStatus_LOAN_STATUS_OPEN}, totals{1, 600000, 0, 200000, 400000}},
		{"repaid", &payoutv1.GetLoanBookTotalsRequest{Status: payoutv1.LoanStatus_LOAN_STATUS_REPAID}, totals{1, 800000, 800000, 0, 0}},
	} {
		got, err := auditor.GetLoanBookTotals(ctx, tt.req)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if g := (totals{got.GetContracts(), got.GetAmountFen(), got.GetRepaidFen(), got.GetRecoveredFen(), got.GetOutstandingFen()}); g != tt.want {
			t.Errorf("%s: totals %+v, want %+v", tt.name, g, tt.want)
		}
	}

	// The book pages in contract-number order; filters select.
	var seen []string
	req := &payoutv1.ListLoansRequest{PageSize: 1}
	for range 3 {
		resp, err := h.client(auth.RoleDataOfficer, auth.OrgBureau).ListLoans(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range resp.GetLoans() {
			seen = append(seen, l.GetContractNumber())
		}
		if req.PageToken = resp.GetNextPageToken(); req.GetPageToken() == "" {
			break
		}
	}
	want := []string{contractA, contractB}
	if contractB < contractA {
		want = []string{contractB, contractA}
	}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("pages %v, want %v", seen, want)
	}
	open, err := auditor.ListLoans(ctx, &payoutv1.ListLoansRequest{Status: payoutv1.LoanStatus_LOAN_STATUS_OPEN})
	if err != nil {
		t.Fatal(err)
	}
	if len(open.GetLoans()) != 1 || open.GetLoans()[0].GetContractNumber() != contractB || open.GetLoans()[0].GetRecoveredFen() != 200000 ||
		open.GetLoans()[0].GetOutstandingFen() != 400000 || open.GetLoans()[0].GetSchoolCode() != "S002" {
		t.Errorf("open loans %v", open.GetLoans())
	}

	// Each recorded repayment, and only those, went out as an event.
	evs := h.awaitEvents(events.TypeLoanRepaymentRecorded, 3)
	if n := h.count(events.Subject(events.TypeLoanRepaymentRecorded)); n != 3 {
		t.Errorf("%d loan.repayment_recorded events, want 3", n)
	}
	var recovered *eventsv1.Event
	for _, ev := range evs {
		if ev.GetLoanRepaymentRecorded().GetKind() == "RECOVERY" {
			recovered = ev
		}
	}
	if r := recovered.GetLoanRepaymentRecorded(); recovered == nil || r.GetContractNumber() != contractB || r.GetAmountFen() != 200000 ||
		r.GetRecoveredFen() != 200000 || r.GetOutstandingFen() != 400000 || r.GetBankReference() != "BOC-20180903-0002" ||
		recovered.GetApplicationId() != b.id || recovered.GetSchoolCode() != "S002" || recovered.GetProgramCode() != loanProgram ||
		recovered.GetActor().GetRole() != string(auth.RoleFinanceOfficer) || recovered.GetActor().GetOrg() != auth.OrgFinance {
		t.Errorf("recovery event %v", recovered)
	}

	metrics := scrape(t, h.run.HTTPAddr)
	for _, m := range []string{`aid_payout_loan_repayments_total{kind="repayment"} 2`, `aid_payout_loan_repayments_total{kind="recovery"} 1`,
		`aid_payout_loan_repaid_fen_total{kind="repayment"} 800000`, `aid_payout_loan_repaid_fen_total{kind="recovery"} 200000`} {
		if !strings.Contains(metrics, m) {
			t.Errorf("metrics lack %s", m)
		}
	}

	// The same totals over REST.
	httpReq, err := http.NewRequest(http.MethodGet, "http://"+h.run.HTTPAddr+"/v1/loans:totals?school_code=S002", nil)
	if err != nil {
		t.Fatal(err)
	}
	httpReq.Header.Set("Authorization", "Bearer "+h.keys.Token(t, "aud-1", auth.RoleAuditor, auth.OrgAudit))
	resp, err := http.DefaultClient.Do(httpReq)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rest map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&rest); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("REST totals: %d %v %v", resp.StatusCode, rest, err)
	}
	if fmt.Sprintf("%v %v %v %v %v", rest["contracts"], rest["amount_fen"], rest["repaid_fen"], rest["recovered_fen"], rest["outstanding_fen"]) != "1 600000 0 200000 400000" {
		t.Errorf("REST totals %v", rest)
	}
}
