package service_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/edubureau/studentaid/cmd/banksim/sim"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/manifest"
	"github.com/edubureau/studentaid/pkg/natsx"
	payoutv1 "github.com/edubureau/studentaid/proto/gen/aid/payout/v1"
)

func TestPaysAConfirmedItemExactlyOnce(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	paidAt := time.Date(2017, time.September, 1, 8, 30, 0, 0, time.UTC)
	opts.Now = func() time.Time { return paidAt }
	h := startWith(t, sim.Faults{}, opts)
	ctx := context.Background()
	a := newApplication(62500)
	batchID, paymentID := uuid.NewString(), uuid.NewString()
	h.publish(h.submitted(a, goodCard))
	h.confirm(batchID, itemOf(a, paymentID))
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	h.publishAsFinance(ordered(a, batchID, paymentID, 1), "", map[string]string{"traceparent": "00-" + traceID + "-00f067aa0ba902b7-01"})

	got := h.await(events.Subject(events.TypePaymentSucceeded), 1, nil)[0]
	s := got.Event.GetPaymentSucceeded()
	if s.GetPaymentId() != paymentID || s.GetAmountFen() != 62500 || s.GetBankRef() == "" ||
		got.Event.GetApplicationId() != a.id || got.Event.GetBatchId() != batchID || got.Event.GetSchoolCode() != a.school ||
		got.Event.GetProgramCode() != program || got.Event.GetTerm() != term || got.Event.GetActor().GetUserId() != "system:payout" {
		t.Fatalf("payment_succeeded %v", got.Event)
	}
	if at := got.Event.GetOccurredAt().AsTime(); !at.Equal(paidAt) {
		t.Errorf("payment_succeeded at %v, want the injected clock's %v", at, paidAt)
	}
	// One trace from finance's order to payout's verdict.
	if tp := got.Trace.Get("traceparent"); !strings.HasPrefix(tp, "00-"+traceID+"-") {
		t.Errorf("payment_succeeded traceparent %q, want trace %s", tp, traceID)
	}

	totals := h.ledger()
	if totals.CreditedCount != 1 || totals.CreditedSumFen != 62500 || totals.RejectedCount != 0 {
		t.Errorf("bank ledger %+v, want one credit of 62500", totals)
	}
	credit, err := h.bank.Ledger.Get(ctx, paymentID)
	if err != nil {
		t.Fatal(err)
	}
	if credit.CardNumber != goodCard || credit.AccountName != accountName || credit.BankRef != s.GetBankRef() {
		t.Errorf("credit %+v", credit)
	}

	p, err := h.client(auth.RoleAuditor, "AUDIT").GetPayment(ctx, &payoutv1.GetPaymentRequest{PaymentId: paymentID})
	if err != nil {
		t.Fatal(err)
	}
	if p.GetStatus() != payoutv1.PaymentStatus_PAYMENT_STATUS_PAID || p.GetBankRef() != s.GetBankRef() || p.GetAttempts() != 1 ||
		p.GetBankCardMasked() != "6217***********0123" || p.GetAmountFen() != 62500 || p.GetBatchId() != batchID {
		t.Errorf("payment %v", p)
	}

	metrics := scrape(t, h.run.HTTPAddr)
	for _, want := range []string{`aid_payouts_total{result="paid"} 1`, `aid_payout_amount_fen_total{result="paid"} 62500`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(h.bank.Logs.String(), goodCard) {
		t.Error("the card number reached a log")
	}
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestClosedAccountFails(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := context.Background()
	a := newApplication(50000)
	batchID, paymentID := uuid.NewString(), uuid.NewString()
	h.publish(h.submitted(a, closedCard))
	h.confirm(batchID, itemOf(a, paymentID))
	h.publishAsFinance(ordered(a, batchID, paymentID, 1), "", nil)

	ev := h.awaitEvents(events.TypePaymentFailed, 1)[0]
	if f := ev.GetPaymentFailed(); f.GetPaymentId() != paymentID || f.GetReason() != "ACCOUNT_CLOSED" || f.GetAmountFen() != 50000 {
		t.Fatalf("payment_failed %v", ev)
	}
	if totals := h.ledger(); totals.CreditedCount != 0 || totals.RejectedCount != 1 {
		t.Errorf("bank ledger %+v, want one rejection", totals)
	}
	p, err := h.client(auth.RoleFinanceOfficer, auth.OrgFinance).GetPayment(ctx, &payoutv1.GetPaymentRequest{PaymentId: paymentID})
	if err != nil {
		t.Fatal(err)
	}
	if p.GetStatus() != payoutv1.PaymentStatus_PAYMENT_STATUS_FAILED || p.GetReason() != "ACCOUNT_CLOSED" {
		t.Errorf("payment %v", p)
	}
	if n := h.count(events.Subject(events.TypePaymentSucceeded)); n != 0 {
		t.Errorf("%d payment_succeeded events", n)
	}

	// The school corrects the card; finance orders the payment again.
	h.publish(h.corrected(a, goodCard, accountName))
	reissue := uuid.NewString()
	h.publishAsFinance(reissued(t, a, batchID, reissue, 2), "", nil)
	ok := h.awaitEvents(events.TypePaymentSucceeded, 1)[0]
	if ok.GetPaymentSucceeded().GetPaymentId() != reissue {
		t.Fatalf("payment_succeeded %v", ok)
	}
	credit, err := h.bank.Ledger.Get(ctx, reissue)
	if err != nil || credit.CardNumber != goodCard {
		t.Errorf("reissued credit %+v %v", credit, err)
	}
	if totals := h.ledger(); totals.CreditedCount != 1 || totals.CreditedSumFen != 50000 || totals.RejectedCount != 1 {
		t.Errorf("bank ledger %+v", totals)
	}
}

func TestUnknownOutcomeIsLookedUpNotPaidAgain(t *testing.T) {
	t.Parallel()
	// Every payment is executed, but its answer is held back past payout's timeout.
	opts := testOptions()
	opts.Config.BankTimeout = 300 * time.Millisecond
	h := startWith(t, sim.Faults{TimeoutRate: 1, TimeoutDelay: 3 * time.Second, Seed: 7}, opts)
	ctx := context.Background()
	a := newApplication(100000)
	batchID, paymentID := uuid.NewString(), uuid.NewString()
	h.publish(h.submitted(a, goodCard))
	h.confirm(batchID, itemOf(a, paymentID))
	h.publishAsFinance(ordered(a, batchID, paymentID, 1), "", nil)

	ev := h.awaitEvents(events.TypePaymentSucceeded, 1)[0]
	if ev.GetPaymentSucceeded().GetPaymentId() != paymentID || ev.GetPaymentSucceeded().GetAmountFen() != 100000 {
		t.Fatalf("payment_succeeded %v", ev)
	}
	if totals := h.ledger(); totals.CreditedCount != 1 || totals.CreditedSumFen != 100000 {
		t.Errorf("bank ledger %+v, want exactly one credit", totals)
	}
	if n := h.bankLog(`"method":"GET"`, `"path":"/v1/payments/`+paymentID+`"`); n < 1 {
		t.Errorf("payout never looked the payment up (%d lookups)", n)
	}
	if n := h.bankLog(`"idempotency_key":"`+paymentID+`"`, `"replay":true`); n != 0 {
		t.Errorf("payout sent the payment again %d times instead of looking it up", n)
	}
	p, err := h.client(auth.RoleDataOfficer, auth.OrgBureau).GetPayment(ctx, &payoutv1.GetPaymentRequest{PaymentId: paymentID})
	if err != nil {
		t.Fatal(err)
	}
	if p.GetStatus() != payoutv1.PaymentStatus_PAYMENT_STATUS_PAID || p.GetAttempts() < 2 {
		t.Errorf("payment %v, want PAID after a lookup", p)
	}
}

func TestSameOrderDeliveredTwicePaysOnce(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := context.Background()
	a := newApplication(62500)
	batchID, paymentID := uuid.NewString(), uuid.NewString()
	h.publish(h.submitted(a, goodCard))
	h.confirm(batchID, itemOf(a, paymentID))
	order := ordered(a, batchID, paymentID, 1)
	h.publishAsFinance(order, "", nil)
	// The same event again, past JetStream's duplicate check, and a new
	// event ordering the same payment.
	h.publishAsFinance(order, "redelivery-"+order.GetEventId(), nil)
	again := ordered(a, batchID, paymentID, 1)
	h.publishAsFinance(again, "", nil)

	h.awaitEvents(events.TypePaymentSucceeded, 1)
	h.awaitConsumed()
	h.awaitSettled()
	if n := h.count(events.Subject(events.TypePaymentSucceeded)); n != 1 {
		t.Errorf("%d payment_succeeded events, want 1", n)
	}
	if totals := h.ledger(); totals.CreditedCount != 1 || totals.CreditedSumFen != 62500 {
		t.Errorf("bank ledger %+v, want exactly one credit", totals)
	}
	list, err := h.client(auth.RoleAuditor, "AUDIT").ListPayments(ctx, &payoutv1.ListPaymentsRequest{ApplicationId: a.id})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetPayments()) != 1 {
		t.Errorf("%d payments for the application, want 1", len(list.GetPayments()))
	}
}

func TestSecondLivePaymentOfAnApplicationIsRefused(t *testing.T) {
	t.Parallel()
	h := start(t)
	a := newApplication(62500)
	h.publish(h.submitted(a, goodCard))
	first, paymentID := uuid.NewString(), uuid.NewString()
	h.confirm(first, itemOf(a, paymentID))
	h.publishAsFinance(ordered(a, first, paymentID, 1), "", nil)
	h.awaitEvents(events.TypePaymentSucceeded, 1)

	// A second batch, genuinely signed, lists the same application.
	second, other := uuid.NewString(), uuid.NewString()
	h.confirm(second, itemOf(a, other))
	h.publishAsFinance(ordered(a, second, other, 1), "", nil)
	dead := h.await(natsx.DeadPrefix+"payout."+events.Subject(events.TypePaymentOrdered), 1, nil)[0]
	if dead.Event.GetPaymentOrdered().GetPaymentId() != other || !strings.Contains(dead.Header.Get(natsx.HeaderError), "already has an open or paid payment") {
		t.Errorf("dead letter %v: %s", dead.Event, dead.Header.Get(natsx.HeaderError))
	}
	if totals := h.ledger(); totals.CreditedCount != 1 {
		t.Errorf("bank ledger %+v, want one credit", totals)
	}
	if m := scrape(t, h.run.HTTPAddr); !strings.Contains(m, `aid_payout_orders_refused_total{reason="already_paid"} 1`) {
		t.Error("the refusal was not counted as already_paid")
	}
}

func TestOrderBeforePayeeWaitsForThePayee(t *testing.T) {
	t.Parallel()
	h := start(t)
	a := newApplication(50000)
	batchID, paymentID := uuid.NewString(), uuid.NewString()
	h.confirm(batchID, itemOf(a, paymentID))
	h.publishAsFinance(ordered(a, batchID, paymentID, 1), "", nil)
	deferred := `aid_events_consumed_total{consumer="payout",result="retry",type="finance.payment_ordered.v1"}`
	eventually(t, "order deferred for want of a payee", func() (bool, string) {
		return strings.Contains(scrape(t, h.run.HTTPAddr), deferred), "no retry counted"
	})
	h.publish(h.submitted(a, goodCard))
	ev := h.awaitEvents(events.TypePaymentSucceeded, 1)[0]
	if ev.GetPaymentSucceeded().GetPaymentId() != paymentID {
		t.Fatalf("payment_succeeded %v", ev)
	}
	if totals := h.ledger(); totals.CreditedCount != 1 {
		t.Errorf("bank ledger %+v", totals)
	}
}

// seedUnknown leaves a payment as a payout that crashed after claiming it would:
// UNKNOWN, its lease over.
func (h *harness) seedUnknown(a application, paymentID string) {
	h.t.Helper()
	_, err := h.pool.Exec(context.Background(), `INSERT INTO payments (payment_id, application_id, batch_id, school_code, program_code, term,
  amount_fen, order_attempt, bank_card_sealed, account_name_sealed, bank_card_masked, status, attempts, claim_id, next_attempt_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9, '6217***********0123', 'UNKNOWN', 1, $10, now())`,
		paymentID, a.id, uuid.NewString(), a.school, program, term, a.amount, h.sealCard(a.id, goodCard), h.sealName(a.id, accountName), uuid.NewString())
	if err != nil {
		h.t.Fatal(err)
	}
}

func TestCrashAfterClaimIsResolvedByLookup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		bankHasIt   bool
		wantReplays int
	}{
		// Died after the bank executed it: the lookup finds the credit.
		{"bank executed it", true, 0},
		// Died before the request left: the bank has nothing, so pay under the same key.
		{"bank never saw it", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := start(t)
			ctx := context.Background()
			a := newApplication(75000)
			paymentID := uuid.NewString()
			var ref string
			if tt.bankHasIt {
				c, _, err := h.bank.Ledger.Pay(ctx, sim.Payment{IdempotencyKey: paymentID, CardNumber: goodCard, AccountName: accountName, AmountFen: a.amount}, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				ref = c.BankRef
			}
			h.seedUnknown(a, paymentID)
			ev := h.awaitEvents(events.TypePaymentSucceeded, 1)[0]
			if ev.GetPaymentSucceeded().GetPaymentId() != paymentID || (tt.bankHasIt && ev.GetPaymentSucceeded().GetBankRef() != ref) {
				t.Fatalf("payment_succeeded %v", ev)
			}
			if totals := h.ledger(); totals.CreditedCount != 1 || totals.CreditedSumFen != 75000 {
				t.Errorf("bank ledger %+v, want exactly one credit", totals)
			}
			if n := h.bankLog(`"method":"GET"`, `"path":"/v1/payments/`+paymentID+`"`); n != 1 {
				t.Errorf("%d lookups, want 1", n)
			}
			if n := h.bankLog(`"idempotency_key":"`+paymentID+`"`, `"replay":true`); n != tt.wantReplays {
				t.Errorf("%d repeated payments", n)
			}
		})
	}
}

func TestPolicyValidationAndPaging(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := context.Background()
	batchID := uuid.NewString()
	var ids []string
	var apps []application
	var items []manifest.Item
	for range 5 {
		a := newApplication(50000)
		id := uuid.NewString()
		ids = append(ids, id)
		apps = append(apps, a)
		items = append(items, itemOf(a, id))
		h.publish(h.submitted(a, goodCard))
	}
	h.confirm(batchID, items...)
	for i, a := range apps {
		h.publishAsFinance(ordered(a, batchID, ids[i], 1), "", nil)
	}
	h.awaitEvents(events.TypePaymentSucceeded, 5)

	for _, tc := range []struct {
		role auth.Role
		org  string
		ok   bool
	}{
		{auth.RoleFinanceOfficer, auth.OrgFinance, true},
		{auth.RoleBureauReviewer, auth.OrgBureau, true},
		{auth.RoleDataOfficer, auth.OrgBureau, true},
		{auth.RoleAuditor, "AUDIT", true},
		{auth.RoleSchoolOfficer, "S001", false},
		{auth.RoleSchoolReviewer, "S001", false},
		{auth.RoleOps, auth.OrgIT, false},
	} {
		_, err := h.client(tc.role, tc.org).GetPayment(ctx, &payoutv1.GetPaymentRequest{PaymentId: ids[0]})
		if got := status.Code(err); (tc.ok && got != codes.OK) || (!tc.ok && got != codes.PermissionDenied) {
			t.Errorf("%s: %v", tc.role, err)
		}
	}

	c := h.client(auth.RoleFinanceOfficer, auth.OrgFinance)
	bad := []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"bad id", func() error { _, err := c.GetPayment(ctx, &payoutv1.GetPaymentRequest{PaymentId: "x"}); return err }, codes.InvalidArgument},
		{"unknown id", func() error {
			_, err := c.GetPayment(ctx, &payoutv1.GetPaymentRequest{PaymentId: uuid.NewString()})
			return err
		}, codes.NotFound},
		{"no filter", func() error { _, err := c.ListPayments(ctx, &payoutv1.ListPaymentsRequest{}); return err }, codes.InvalidArgument},
		{"page size", func() error {
			_, err := c.ListPayments(ctx, &payoutv1.ListPaymentsRequest{BatchId: batchID, PageSize: 1000})
			return err
		}, codes.InvalidArgument},
		{"token", func() error {
			_, err := c.ListPayments(ctx, &payoutv1.ListPaymentsRequest{BatchId: batchID, PageToken: "bm9wZQ"})
			return err
		}, codes.InvalidArgument},
	}
	for _, tt := range bad {
		if err := tt.call(); status.Code(err) != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}

	seen := map[string]bool{}
	token := ""
	for pages := 1; ; pages++ {
		resp, err := c.ListPayments(ctx, &payoutv1.ListPaymentsRequest{BatchId: batchID, PageSize: 2, PageToken: token,
			Status: payoutv1.PaymentStatus_PAYMENT_STATUS_PAID})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range resp.GetPayments() {
			if seen[p.GetPaymentId()] {
				t.Errorf("payment %s twice", p.GetPaymentId())
			}
			seen[p.GetPaymentId()] = true
		}
		if token = resp.GetNextPageToken(); token == "" {
			if pages != 3 {
				t.Errorf("%d pages, want 3", pages)
			}
			break
		}
	}
	for _, id := range ids {
		if !seen[id] {
			t.Errorf("payment %s not listed", id)
		}
	}
	if len(seen) != len(ids) {
		t.Errorf("listed %d payments, want %d", len(seen), len(ids))
	}
}

// TestPayeeCopiedFromAnotherApplicationIsNotPaid: a submission event that
// carries another application's sealed card (as an insider replaying or
// forging one would) does not open for this application; the payment
// fails as unreadable and the bank is never called.
func TestPayeeCopiedFromAnotherApplicationIsNotPaid(t *testing.T) {
	t.Parallel()
	h := start(t)
	victim, thief := newApplication(50000), newApplication(50000)
	ev := h.submitted(thief, goodCard)
	body := ev.GetApplicationSubmitted()
	body.BankCardSealed = h.sealCard(victim.id, goodCard)
	h.publish(ev)
	batchID, paymentID := uuid.NewString(), uuid.NewString()
	h.confirm(batchID, itemOf(thief, paymentID))
	h.publishAsFinance(ordered(thief, batchID, paymentID, 1), "", nil)

	failed := h.awaitEvents(events.TypePaymentFailed, 1)[0]
	if f := failed.GetPaymentFailed(); f.GetPaymentId() != paymentID || f.GetReason() != "PAYEE_UNREADABLE" {
		t.Fatalf("payment_failed %v, want PAYEE_UNREADABLE", failed)
	}
	if totals := h.ledger(); totals.CreditedCount != 0 || totals.RejectedCount != 0 {
		t.Errorf("bank ledger %+v, want no call at all", totals)
	}
}
