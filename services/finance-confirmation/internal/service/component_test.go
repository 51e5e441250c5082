package service_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/config"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/manifest"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	financev1 "github.com/edubureau/studentaid/proto/gen/aid/finance/v1"
)

func TestBatchAssemblyFromBureauApprovals(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := context.Background()
	boarding := []approval{
		newApproval("S001", "BOARDING_SUBSIDY", 50000),
		newApproval("S001", "BOARDING_SUBSIDY", 62500),
		newApproval("S002", "BOARDING_SUBSIDY", 62500),
	}
	preschool := []approval{
		newApproval("S003", "PRESCHOOL_AID", 50000),
		newApproval("S003", "PRESCHOOL_AID", 50000),
	}
	batchIDs := h.batchOf(append(append([]approval{}, boarding...), preschool...)...)

	// A repeated approval of an application already batched changes nothing.
	h.publish(boarding[0].event(t))
	h.awaitConsumed()

	fin := h.client("auditor-1", auth.RoleAuditor, "AUDIT")
	resp, err := fin.ListBatches(ctx, &financev1.ListBatchesRequest{Term: term})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetBatches()) != 2 || resp.GetNextPageToken() != "" {
		t.Fatalf("got %d batches (next %q), want 2", len(resp.GetBatches()), resp.GetNextPageToken())
	}
	want := map[string]struct {
		count, sum int64
		items      []approval
	}{
		"BOARDING_SUBSIDY": {3, 175000, boarding},
		"PRESCHOOL_AID":    {2, 100000, preschool},
	}
	for _, b := range resp.GetBatches() {
		w, ok := want[b.GetProgramCode()]
		if !ok {
			t.Fatalf("unexpected batch %v", b)
		}
		if b.GetStatus() != financev1.BatchStatus_BATCH_STATUS_OPEN || b.GetTerm() != term || b.GetFundingSource() != "government" ||
			b.GetControlCount() != w.count || b.GetControlSumFen() != w.sum {
			t.Errorf("batch %s: %v, want OPEN %d items / %d fen", b.GetProgramCode(), b, w.count, w.sum)
		}
		for _, a := range w.items {
			if batchIDs[a.app] != b.GetBatchId() {
				t.Errorf("application %s batched into %s, want %s", a.app, batchIDs[a.app], b.GetBatchId())
			}
		}
		items, err := fin.ListBatchItems(ctx, &financev1.ListBatchItemsRequest{BatchId: b.GetBatchId()})
		if err != nil {
			t.Fatal(err)
		}
		if len(items.GetItems()) != int(w.count) {
			t.Fatalf("batch %s lists %d items, want %d", b.GetProgramCode(), len(items.GetItems()), w.count)
		}
		var sum int64
		for _, it := range items.GetItems() {
			sum += it.GetAmountFen()
			if it.GetStatus() != financev1.ItemStatus_ITEM_STATUS_PENDING || it.GetPaymentId() != "" || it.GetAttempt() != 0 {
				t.Errorf("item %v", it)
			}
		}
		if sum != w.sum {
			t.Errorf("items sum to %d, want %d", sum, w.sum)
		}
	}
	if n := h.countEvents(events.TypeItemBatched, nil); n != 5 {
		t.Errorf("%d item_batched events, want 5", n)
	}
	for _, ev := range h.awaitEvents(events.TypeItemBatched, 5, nil) {
		if ev.GetActor().GetUserId() != "system:finance-confirmation" || ev.GetItemBatched().GetAmountFen() <= 0 || ev.GetTerm() != term {
			t.Errorf("item_batched %v", ev)
		}
	}
}

func TestCloseBatchSendsLaterItemsToANewBatch(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := context.Background()
	first := newApproval("S001", "HS_NATIONAL_GRANT", 100000)
	firstBatch := h.batchOf(first)[first.app]
	fin := h.officer("fin-1")
	closed, err := fin.CloseBatch(ctx, &financev1.CloseBatchRequest{BatchId: firstBatch})
	if err != nil {
		t.Fatal(err)
	}
	if closed.GetStatus() != financev1.BatchStatus_BATCH_STATUS_CLOSED {
		t.Fatalf("status %v", closed.GetStatus())
	}
	_, err = fin.CloseBatch(ctx, &financev1.CloseBatchRequest{BatchId: firstBatch})
	wantCode(t, err, codes.FailedPrecondition, "only an open batch can be closed")

	second := newApproval("S001", "HS_NATIONAL_GRANT", 150000)
	secondBatch := h.batchOf(second)[second.app]
	if secondBatch == firstBatch {
		t.Fatal("an item joined a closed batch")
	}
	b, err := fin.GetBatch(ctx, &financev1.GetBatchRequest{BatchId: firstBatch})
	if err != nil {
		t.Fatal(err)
	}
	if b.GetControlCount() != 1 || b.GetControlSumFen() != 100000 {
		t.Errorf("closed batch moved: %v", b)
	}
	b, err = fin.GetBatch(ctx, &financev1.GetBatchRequest{BatchId: secondBatch})
	if err != nil {
		t.Fatal(err)
	}
	if b.GetStatus() != financev1.BatchStatus_BATCH_STATUS_OPEN || b.GetControlCount() != 1 || b.GetControlSumFen() != 150000 {
		t.Errorf("new batch %v", b)
	}
}

func TestConfirmWithWrongTotalsIsRefused(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := context.Background()
	a1, a2 := newApproval("S001", "PRESCHOOL_AID", 50000), newApproval("S002", "PRESCHOOL_AID", 50000)
	batchID := h.batchOf(a1, a2)[a1.app]
	fin := h.officer("fin-1")
	h.closeBatch(batchID)

	tests := []struct {
		name       string
		count, sum int64
	}{
		{"count", 1, 100000},
		{"sum", 2, 50000},
		{"both", 3, 150000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := fin.ConfirmBatch(ctx, &financev1.ConfirmBatchRequest{BatchId: batchID, ControlCount: tt.count, ControlSumFen: tt.sum})
			wantCode(t, err, codes.FailedPrecondition, fmt.Sprintf(
				"batch totals changed: you saw %d items / %d fen, the batch now holds 2 / 100000; reload and check again", tt.count, tt.sum))
		})
	}
	b, err := fin.GetBatch(ctx, &financev1.GetBatchRequest{BatchId: batchID})
	if err != nil {
		t.Fatal(err)
	}
	if b.GetStatus() != financev1.BatchStatus_BATCH_STATUS_CLOSED || b.GetConfirmedBy() != "" {
		t.Errorf("batch after refusals: %v", b)
	}
	if n := h.countEvents(events.TypePaymentOrdered, nil); n != 0 {
		t.Errorf("%d payment_ordered events after refusals", n)
	}
}

func TestConfirmEmptyBatchIsRefused(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := context.Background()
	a := newApproval("S001", "PRESCHOOL_AID", 50000)
	batchID := h.batchOf(a)[a.app]
	fin := h.officer("fin-1")
	if _, err := fin.ReturnItem(ctx, &financev1.ReturnItemRequest{BatchId: batchID, ApplicationId: a.app, Reason: "not enrolled"}); err != nil {
		t.Fatal(err)
	}
	h.closeBatch(batchID)
	_, err := fin.ConfirmBatch(ctx, &financev1.ConfirmBatchRequest{BatchId: batchID})
	wantCode(t, err, codes.FailedPrecondition, "holds no items")
}

func TestConfirmerWhoReviewedAnItemIsRefused(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := context.Background()
	clean := newApproval("S001", "BOARDING_SUBSIDY", 50000)
	reviewed := newApproval("S001", "BOARDING_SUBSIDY", 62500)
	reviewed.bureauRev = "wang.li"
	submitted := newApproval("S002", "BOARDING_SUBSIDY", 62500)
	submitted.submitter = "zhao.min"
	batchID := h.batchOf(clean, reviewed, submitted)[clean.app]
	h.closeBatch(batchID)

	for _, user := range []string{"wang.li", "zhao.min", "rev-S001"} {
		t.Run(user, func(t *testing.T) {
			_, err := h.officer(user).ConfirmBatch(ctx, &financev1.ConfirmBatchRequest{BatchId: batchID, ControlCount: 3, ControlSumFen: 175000})
			wantCode(t, err, codes.PermissionDenied, "another finance officer must confirm it")
			if got := reasonOf(err); got != "confirmer-reviewed-item" {
				t.Errorf("reason %q, want confirmer-reviewed-item", got)
			}
			var n int
			if err := h.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log
WHERE user_id = $1 AND role = 'finance_officer' AND rule = 'confirmer-reviewed-item' AND outcome = 'denied'
  AND method = '/aid.finance.v1.FinanceConfirmationService/ConfirmBatch'`, user).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 1 {
				t.Errorf("%d audit_log rows for %s, want 1", n, user)
			}
		})
	}
	b, err := h.officer("fin-1").GetBatch(ctx, &financev1.GetBatchRequest{BatchId: batchID})
	if err != nil {
		t.Fatal(err)
	}
	if b.GetStatus() != financev1.BatchStatus_BATCH_STATUS_CLOSED {
		t.Errorf("batch %v after refusals", b.GetStatus())
	}
	// A returned item no longer binds the confirmer: it will not be paid.
	// The others still do until they too leave the batch.
	if _, err := h.officer("fin-1").ReturnItem(ctx, &financev1.ReturnItemRequest{BatchId: batchID, ApplicationId: reviewed.app, Reason: "duplicate"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.officer("wang.li").ConfirmBatch(ctx, &financev1.ConfirmBatchRequest{BatchId: batchID, ControlCount: 2, ControlSumFen: 112500}); err != nil {
		t.Fatalf("confirm after the reviewed item left: %v", err)
	}
}

func TestConfirmOrdersOnePaymentPerItem(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := context.Background()
	as := []approval{
		newApproval("S001", "BOARDING_SUBSIDY", 50000),
		newApproval("S002", "BOARDING_SUBSIDY", 62500),
		newApproval("S003", "BOARDING_SUBSIDY", 62500),
	}
	batchID := h.batchOf(as...)[as[0].app]
	fin := h.officer("fin-1")
	_, err := fin.ConfirmBatch(ctx, &financev1.ConfirmBatchRequest{BatchId: batchID, ControlCount: 3, ControlSumFen: 175000})
	wantCode(t, err, codes.FailedPrecondition, "the batch is still open; one finance officer closes it, a second one confirms it")
	h.closeBatch(batchID)
	b, err := fin.ConfirmBatch(ctx, &financev1.ConfirmBatchRequest{BatchId: batchID, ControlCount: 3, ControlSumFen: 175000})
	if err != nil {
		t.Fatal(err)
	}
	if b.GetStatus() != financev1.BatchStatus_BATCH_STATUS_CONFIRMED || b.GetConfirmedBy() != "fin-1" || b.GetConfirmedAt() == nil ||
		b.GetControlCount() != 3 || b.GetControlSumFen() != 175000 {
		t.Fatalf("confirmed batch %v", b)
	}
	_, err = fin.ConfirmBatch(ctx, &financev1.ConfirmBatchRequest{BatchId: batchID, ControlCount: 3, ControlSumFen: 175000})
	wantCode(t, err, codes.FailedPrecondition, "already CONFIRMED")

	confirmed := h.awaitEvents(events.TypeBatchConfirmed, 1, nil)[0]
	if c := confirmed.GetBatchConfirmed(); confirmed.GetBatchId() != batchID || c.GetControlCount() != 3 || c.GetControlSumFen() != 175000 ||
		c.GetFundingSource() != "government" || confirmed.GetActor().GetUserId() != "fin-1" || confirmed.GetActor().GetRole() != "finance_officer" {
		t.Errorf("batch_confirmed %v", confirmed)
	}
	ordered := h.awaitEvents(events.TypePaymentOrdered, 3, nil)
	items, err := fin.ListBatchItems(ctx, &financev1.ListBatchItemsRequest{BatchId: batchID})
	if err != nil {
		t.Fatal(err)
	}
	byApp := map[string]*financev1.BatchItem{}
	for _, it := range items.GetItems() {
		byApp[it.GetApplicationId()] = it
	}
	amounts := map[string]int64{}
	for _, a := range as {
		amounts[a.app] = a.amount
	}
	paymentIDs := map[string]bool{}
	for _, ev := range ordered {
		p := ev.GetPaymentOrdered()
		it := byApp[ev.GetApplicationId()]
		if it == nil || it.GetStatus() != financev1.ItemStatus_ITEM_STATUS_ORDERED || it.GetPaymentId() != p.GetPaymentId() || it.GetAttempt() != 1 {
			t.Errorf("item %v for %v", it, ev)
			continue
		}
		if _, err := uuid.Parse(p.GetPaymentId()); err != nil || paymentIDs[p.GetPaymentId()] {
			t.Errorf("payment id %q bad or repeated", p.GetPaymentId())
		}
		paymentIDs[p.GetPaymentId()] = true
		if p.GetAmountFen() != amounts[ev.GetApplicationId()] || p.GetAttempt() != 1 || ev.GetBatchId() != batchID ||
			ev.GetSchoolCode() != it.GetSchoolCode() || ev.GetProgramCode() != "BOARDING_SUBSIDY" || ev.GetTerm() != term ||
			ev.GetActor().GetUserId() != "fin-1" {
			t.Errorf("payment_ordered %v", ev)
		}
	}

	// The confirmation carries the signed manifest: a header that verifies
	// under finance's public key, and one part listing exactly the ordered
	// items with their payment IDs and amounts, in application ID order.
	header, err := manifest.HeaderOf(confirmed)
	if err != nil {
		t.Fatal(err)
	}
	if err := devVerifier(t).Verify(header); err != nil || header.KeyID != "dev-finance-1" || len(header.PartDigests) != 1 {
		t.Fatalf("manifest header %+v: %v", header, err)
	}
	part := h.awaitEvents(events.TypeBatchManifestPart, 1, func(ev *eventsv1.Event) bool { return ev.GetBatchId() == batchID })[0]
	index, listed, err := manifest.PartOf(part)
	if err != nil || index != 0 {
		t.Fatalf("part %d: %v", index, err)
	}
	if err := header.CheckPart(index, listed); err != nil {
		t.Errorf("the part does not match its signed header: %v", err)
	}
	var want []manifest.Item
	for _, a := range as {
		want = append(want, manifest.Item{ApplicationID: a.app, PaymentID: byApp[a.app].GetPaymentId(), AmountFen: a.amount})
	}
	slices.SortFunc(want, func(x, y manifest.Item) int { return strings.Compare(x.ApplicationID, y.ApplicationID) })
	if !slices.Equal(listed, want) {
		t.Errorf("manifest lists %v, want %v", listed, want)
	}
}

// devVerifier checks signatures with the development verifying key, the
// public half of the signing key the tests run finance on.
func devVerifier(t *testing.T) *manifest.Verifier {
	t.Helper()
	v, err := manifest.ParseVerifyKeys(config.DevFinanceVerifyKeys)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestReturnItem(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := context.Background()
	keep, back := newApproval("S001", "ZIHUI_AWARD", 200000), newApproval("S002", "ZIHUI_AWARD", 200000)
	batchID := h.batchOf(keep, back)[keep.app]
	fin := h.officer("fin-1")

	_, err := fin.ReturnItem(ctx, &financev1.ReturnItemRequest{BatchId: batchID, ApplicationId: back.app, Reason: "  "})
	wantCode(t, err, codes.InvalidArgument, "reason")
	_, err = fin.ReturnItem(ctx, &financev1.ReturnItemRequest{BatchId: batchID, ApplicationId: uuid.NewString(), Reason: "x"})
	wantCode(t, err, codes.NotFound, "no item")

	b, err := fin.ReturnItem(ctx, &financev1.ReturnItemRequest{BatchId: batchID, ApplicationId: back.app, Reason: "not enrolled at the school"})
	if err != nil {
		t.Fatal(err)
	}
	if b.GetControlCount() != 1 || b.GetControlSumFen() != 200000 {
		t.Errorf("totals after return: %d / %d, want 1 / 200000", b.GetControlCount(), b.GetControlSumFen())
	}
	_, err = fin.ReturnItem(ctx, &financev1.ReturnItemRequest{BatchId: batchID, ApplicationId: back.app, Reason: "again"})
	wantCode(t, err, codes.FailedPrecondition, "only a pending item")

	ev := h.awaitEvents(events.TypeItemReturnedToBureau, 1, nil)[0]
	r := ev.GetItemReturnedToBureau()
	if ev.GetApplicationId() != back.app || ev.GetBatchId() != batchID || r.GetReason() != "not enrolled at the school" ||
		r.GetSchoolReviewer() != back.schoolRev || r.GetSubmittedBy() != back.submitter || ev.GetActor().GetUserId() != "fin-1" {
		t.Errorf("item_returned %v", ev)
	}
	items, err := fin.ListBatchItems(ctx, &financev1.ListBatchItemsRequest{BatchId: batchID, Status: financev1.ItemStatus_ITEM_STATUS_RETURNED})
	if err != nil {
		t.Fatal(err)
	}
	if len(items.GetItems()) != 1 || items.GetItems()[0].GetReason() != "not enrolled at the school" {
		t.Errorf("returned items %v", items.GetItems())
	}

	// The bureau approves it again: it rejoins the open batch.
	h.publish(back.event(t))
	h.awaitEvents(events.TypeItemBatched, 3, nil)
	b, err = fin.GetBatch(ctx, &financev1.GetBatchRequest{BatchId: batchID})
	if err != nil {
		t.Fatal(err)
	}
	if b.GetControlCount() != 2 || b.GetControlSumFen() != 400000 {
		t.Errorf("totals after re-approval: %d / %d", b.GetControlCount(), b.GetControlSumFen())
	}

	// Confirmed batches give nothing back.
	h.closeBatch(batchID)
	if _, err := fin.ConfirmBatch(ctx, &financev1.ConfirmBatchRequest{BatchId: batchID, ControlCount: 2, ControlSumFen: 400000}); err != nil {
		t.Fatal(err)
	}
	_, err = fin.ReturnItem(ctx, &financev1.ReturnItemRequest{BatchId: batchID, ApplicationId: keep.app, Reason: "too late"})
	wantCode(t, err, codes.FailedPrecondition, "already confirmed")
}

func paymentEvent(t *testing.T, ordered *eventsv1.Event, paid bool, reason string) *eventsv1.Event {
	t.Helper()
	p := ordered.GetPaymentOrdered()
	keys := events.Keys{ApplicationID: ordered.GetApplicationId(), BatchID: ordered.GetBatchId(), SchoolCode: ordered.GetSchoolCode(),
		ProgramCode: ordered.GetProgramCode(), Term: ordered.GetTerm()}
	actor := events.Actor("system:payout", "service", auth.OrgFinance)
	if paid {
		return events.MustNew(time.Now(), actor, keys, &eventsv1.PaymentSucceeded{PaymentId: p.GetPaymentId(), AmountFen: p.GetAmountFen(), BankRef: "B-" + p.GetPaymentId()})
	}
	return events.MustNew(time.Now(), actor, keys, &eventsv1.PaymentFailed{PaymentId: p.GetPaymentId(), AmountFen: p.GetAmountFen(), Reason: reason})
}

func TestPaymentResultsAndReissue(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := context.Background()
	good, bad := newApproval("S001", "VOC_NATIONAL_GRANT", 100000), newApproval("S002", "VOC_NATIONAL_GRANT", 100000)
	batchID := h.batchOf(good, bad)[good.app]
	fin := h.officer("fin-1")
	h.closeBatch(batchID)
	if _, err := fin.ConfirmBatch(ctx, &financev1.ConfirmBatchRequest{BatchId: batchID, ControlCount: 2, ControlSumFen: 200000}); err != nil {
		t.Fatal(err)
	}
	ordered := map[string]*eventsv1.Event{}
	for _, ev := range h.awaitEvents(events.TypePaymentOrdered, 2, nil) {
		ordered[ev.GetApplicationId()] = ev
	}
	h.publish(paymentEvent(t, ordered[good.app], true, ""))
	failed := paymentEvent(t, ordered[bad.app], false, "ACCOUNT_CLOSED")
	h.publish(failed)
	h.publish(failed) // a redelivery changes nothing
	h.awaitConsumed()

	b, err := fin.GetBatch(ctx, &financev1.GetBatchRequest{BatchId: batchID})
	if err != nil {
		t.Fatal(err)
	}
	if b.GetPaidCount() != 1 || b.GetPaidSumFen() != 100000 || b.GetFailedCount() != 1 {
		t.Fatalf("batch after results: paid %d / %d, failed %d", b.GetPaidCount(), b.GetPaidSumFen(), b.GetFailedCount())
	}
	items, err := fin.ListBatchItems(ctx, &financev1.ListBatchItemsRequest{BatchId: batchID, Status: financev1.ItemStatus_ITEM_STATUS_FAILED})
	if err != nil {
		t.Fatal(err)
	}
	if len(items.GetItems()) != 1 || items.GetItems()[0].GetApplicationId() != bad.app || items.GetItems()[0].GetReason() != "ACCOUNT_CLOSED" {
		t.Fatalf("failed items %v", items.GetItems())
	}

	_, err = fin.ReissuePayment(ctx, &financev1.ReissuePaymentRequest{BatchId: batchID, ApplicationId: bad.app})
	wantCode(t, err, codes.FailedPrecondition, "corrected the payee")
	_, err = fin.ReissuePayment(ctx, &financev1.ReissuePaymentRequest{BatchId: batchID, ApplicationId: good.app})
	wantCode(t, err, codes.FailedPrecondition, "only a failed item")

	h.publish(events.MustNew(time.Now(), events.Actor("off-S002", string(auth.RoleSchoolOfficer), "S002"),
		events.Keys{ApplicationID: bad.app, SchoolCode: "S002", ProgramCode: "VOC_NATIONAL_GRANT", Term: term},
		&eventsv1.PayeeCorrected{BankCardSealed: []byte{1}, AccountNameSealed: []byte{2}, BankCardMasked: "6217**********1234"}))
	h.awaitConsumed()

	_, err = h.officer("off-S002").ReissuePayment(ctx, &financev1.ReissuePaymentRequest{BatchId: batchID, ApplicationId: bad.app})
	wantCode(t, err, codes.PermissionDenied, "another finance officer")

	it, err := fin.ReissuePayment(ctx, &financev1.ReissuePaymentRequest{BatchId: batchID, ApplicationId: bad.app})
	if err != nil {
		t.Fatal(err)
	}
	oldID := ordered[bad.app].GetPaymentOrdered().GetPaymentId()
	if it.GetStatus() != financev1.ItemStatus_ITEM_STATUS_ORDERED || it.GetAttempt() != 2 || it.GetPaymentId() == oldID || it.GetPaymentId() == "" {
		t.Fatalf("reissued item %v", it)
	}
	re := h.awaitEvents(events.TypePaymentOrdered, 1, func(ev *eventsv1.Event) bool { return ev.GetPaymentOrdered().GetAttempt() == 2 })[0]
	if re.GetPaymentOrdered().GetPaymentId() != it.GetPaymentId() || re.GetPaymentOrdered().GetAmountFen() != 100000 || re.GetApplicationId() != bad.app {
		t.Errorf("reissue event %v", re)
	}
	// The reissue is signed on its own: payout pays it only with this signature.
	if err := devVerifier(t).VerifyReissue(manifest.Reissue{BatchID: batchID, ApplicationID: bad.app, PaymentID: it.GetPaymentId(), AmountFen: 100000, Attempt: 2},
		re.GetPaymentOrdered().GetReissueKeyId(), re.GetPaymentOrdered().GetReissueSignature()); err != nil {
		t.Errorf("reissue signature: %v", err)
	}
	_, err = fin.ReissuePayment(ctx, &financev1.ReissuePaymentRequest{BatchId: batchID, ApplicationId: bad.app})
	wantCode(t, err, codes.FailedPrecondition, "only a failed item")

	h.publish(paymentEvent(t, re, true, ""))
	h.awaitConsumed()
	b, err = fin.GetBatch(ctx, &financev1.GetBatchRequest{BatchId: batchID})
	if err != nil {
		t.Fatal(err)
	}
	if b.GetPaidCount() != 2 || b.GetPaidSumFen() != 200000 || b.GetFailedCount() != 0 {
		t.Errorf("batch at the end: paid %d / %d, failed %d", b.GetPaidCount(), b.GetPaidSumFen(), b.GetFailedCount())
	}
}

func TestPolicyAndValidation(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := context.Background()
	a := newApproval("S001", "PRESCHOOL_AID", 50000)
	batchID := h.batchOf(a)[a.app]

	for _, tc := range []struct {
		role auth.Role
		org  string
		read bool
	}{
		{auth.RoleFinanceOfficer, auth.OrgFinance, true},
		{auth.RoleBureauReviewer, auth.OrgBureau, true},
		{auth.RoleDataOfficer, auth.OrgBureau, true},
		{auth.RoleAuditor, "AUDIT", true},
		{auth.RoleSchoolOfficer, "S001", false},
		{auth.RoleSchoolReviewer, "S001", false},
		{auth.RoleOps, auth.OrgIT, false},
	} {
		c := h.client("u-"+string(tc.role), tc.role, tc.org)
		_, err := c.GetBatch(ctx, &financev1.GetBatchRequest{BatchId: batchID})
		if got := status.Code(err); (tc.read && got != codes.OK) || (!tc.read && got != codes.PermissionDenied) {
			t.Errorf("%s GetBatch: %v", tc.role, err)
		}
		if tc.role == auth.RoleFinanceOfficer {
			continue
		}
		_, err = c.CloseBatch(ctx, &financev1.CloseBatchRequest{BatchId: batchID})
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("%s CloseBatch: %v", tc.role, err)
		}
	}

	fin := h.officer("fin-1")
	_, err := fin.GetBatch(ctx, &financev1.GetBatchRequest{BatchId: "nope"})
	wantCode(t, err, codes.InvalidArgument, "batch_id")
	_, err = fin.GetBatch(ctx, &financev1.GetBatchRequest{BatchId: uuid.NewString()})
	wantCode(t, err, codes.NotFound, "batch not found")
	_, err = fin.ListBatches(ctx, &financev1.ListBatchesRequest{PageSize: 501})
	wantCode(t, err, codes.InvalidArgument, "page_size")
	_, err = fin.ListBatches(ctx, &financev1.ListBatchesRequest{PageToken: "garbage!"})
	wantCode(t, err, codes.InvalidArgument, "page_token")
	_, err = fin.ListBatches(ctx, &financev1.ListBatchesRequest{Status: financev1.BatchStatus(42)})
	wantCode(t, err, codes.InvalidArgument, "status")
	_, err = fin.ListBatchItems(ctx, &financev1.ListBatchItemsRequest{BatchId: uuid.NewString()})
	wantCode(t, err, codes.NotFound, "batch not found")
	_, err = fin.ConfirmBatch(ctx, &financev1.ConfirmBatchRequest{BatchId: batchID, ControlCount: -1})
	wantCode(t, err, codes.InvalidArgument, "control_count")
}

func TestPagination(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := context.Background()
	programs := []string{"PRESCHOOL_AID", "BOARDING_SUBSIDY", "HS_NATIONAL_GRANT", "VOC_NATIONAL_GRANT", "ZIHUI_AWARD"}
	var as []approval
	for _, p := range programs {
		for range 3 {
			as = append(as, newApproval("S001", p, 50000))
		}
	}
	h.batchOf(as...)
	fin := h.officer("fin-1")

	var batches []*financev1.Batch
	token := ""
	for pages := 0; ; pages++ {
		resp, err := fin.ListBatches(ctx, &financev1.ListBatchesRequest{PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		batches = append(batches, resp.GetBatches()...)
		token = resp.GetNextPageToken()
		if token == "" {
			if pages != 2 {
				t.Errorf("%d pages, want 3", pages+1)
			}
			break
		}
	}
	seen := map[string]bool{}
	for i, b := range batches {
		if seen[b.GetBatchId()] {
			t.Errorf("batch %s listed twice", b.GetBatchId())
		}
		seen[b.GetBatchId()] = true
		if i > 0 && b.GetCreatedAt().AsTime().After(batches[i-1].GetCreatedAt().AsTime()) {
			t.Errorf("not newest first at %d", i)
		}
	}
	if len(seen) != len(programs) {
		t.Errorf("listed %d batches, want %d", len(seen), len(programs))
	}

	resp, err := fin.ListBatches(ctx, &financev1.ListBatchesRequest{ProgramCode: "ZIHUI_AWARD"})
	if err != nil || len(resp.GetBatches()) != 1 {
		t.Fatalf("filter: %v %v", resp, err)
	}
	batchID := resp.GetBatches()[0].GetBatchId()
	var apps []string
	token = ""
	for {
		items, err := fin.ListBatchItems(ctx, &financev1.ListBatchItemsRequest{BatchId: batchID, PageSize: 1, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items.GetItems() {
			apps = append(apps, it.GetApplicationId())
		}
		if token = items.GetNextPageToken(); token == "" {
			break
		}
	}
	if len(apps) != 3 || !sort.StringsAreSorted(apps) {
		t.Errorf("paged items %v", apps)
	}
}

func TestCloserMayNotConfirm(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := context.Background()
	a := newApproval("S001", "BOARDING_SUBSIDY", 62500)
	batchID := h.batchOf(a)[a.app]
	h.closeBatch(batchID)
	_, err := h.officer("fin-closer").ConfirmBatch(ctx, &financev1.ConfirmBatchRequest{BatchId: batchID, ControlCount: 1, ControlSumFen: 62500})
	wantCode(t, err, codes.PermissionDenied, "you closed batch "+batchID+"; a second finance officer must confirm it")
	if got := reasonOf(err); got != "close-confirm-same-officer" {
		t.Errorf("reason %q, want close-confirm-same-officer", got)
	}
	var n int
	if err := h.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log
WHERE user_id = 'fin-closer' AND rule = 'close-confirm-same-officer' AND outcome = 'denied'
  AND method = '/aid.finance.v1.FinanceConfirmationService/ConfirmBatch'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("%d audit_log rows for the refusal, want 1", n)
	}
	b, err := h.officer("fin-1").ConfirmBatch(ctx, &financev1.ConfirmBatchRequest{BatchId: batchID, ControlCount: 1, ControlSumFen: 62500})
	if err != nil {
		t.Fatalf("a second officer confirms: %v", err)
	}
	if b.GetConfirmedBy() != "fin-1" {
		t.Errorf("confirmed by %q, want fin-1", b.GetConfirmedBy())
	}
	h.awaitEvents(events.TypePaymentOrdered, 1, nil)
	if n := h.countEvents(events.TypePaymentOrdered, nil); n != 1 {
		t.Errorf("%d payment_ordered events, want 1", n)
	}
}

// reasonOf is the ErrorInfo reason err carries, or "" when it carries none.
func reasonOf(err error) string {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}
