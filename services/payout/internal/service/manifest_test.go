package service_test

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/manifest"
	"github.com/edubureau/studentaid/pkg/natsx"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
)

// deadOrders waits for n dead-lettered payment orders of batchID and
// returns their errors by payment ID.
func (h *harness) deadOrders(batchID string, n int) map[string]string {
	h.t.Helper()
	out := map[string]string{}
	ofBatch := func(ev *eventsv1.Event) bool { return ev.GetBatchId() == batchID }
	for _, d := range h.await(natsx.DeadPrefix+"payout."+events.Subject(events.TypePaymentOrdered), n, ofBatch) {
		out[d.Event.GetPaymentOrdered().GetPaymentId()] = d.Header.Get(natsx.HeaderError)
	}
	return out
}

// refused is the aid_payout_orders_refused_total sample for reason.
func refused(reason string, n int) string {
	return `aid_payout_orders_refused_total{reason="` + reason + `"} ` + string(rune('0'+n))
}

// TestOrdersNotProvenByTheManifestAreRefused: with a genuinely signed
// manifest of two items, orders an insider forges (an application not in
// it, more than its amount, another term, another payment ID, an unsigned
// reissue, a signed reissue of an item already paid) are dead-lettered, counted, and
// never reach the bank; the genuine orders are paid.
func TestOrdersNotProvenByTheManifestAreRefused(t *testing.T) {
	t.Parallel()
	h := start(t)
	a, b, stranger := newApplication(62500), newApplication(50000), newApplication(62500)
	for _, x := range []application{a, b, stranger} {
		h.publish(h.submitted(x, goodCard))
	}
	batchID, payA, payB := uuid.NewString(), uuid.NewString(), uuid.NewString()
	h.confirm(batchID, itemOf(a, payA), itemOf(b, payB))
	h.publishAsFinance(ordered(a, batchID, payA, 1), "", nil)
	h.awaitEvents(events.TypePaymentSucceeded, 1)

	more := b
	more.amount = 5000000
	forged := map[string]*eventsv1.Event{
		"not_in_manifest":     ordered(stranger, batchID, uuid.NewString(), 1),
		"amount_mismatch":     ordered(more, batchID, payB, 1),
		"payment_id_mismatch": ordered(b, batchID, uuid.NewString(), 1),
		"reissue_signature":   ordered(b, batchID, uuid.NewString(), 2),
		"already_paid":        reissued(t, a, batchID, uuid.NewString(), 2),
	}
	otherTerm := ordered(b, batchID, uuid.NewString(), 1)
	otherTerm.Term = "2018-spring"
	forged["batch_mismatch"] = otherTerm
	// A signature from another order does not carry over.
	stolen := reissued(t, b, batchID, uuid.NewString(), 2).GetPaymentOrdered()
	copied := ordered(b, batchID, uuid.NewString(), 2)
	copied.GetPaymentOrdered().ReissueKeyId, copied.GetPaymentOrdered().ReissueSignature = stolen.GetReissueKeyId(), stolen.GetReissueSignature()
	for _, ev := range forged {
		h.publishAsFinance(ev, "", nil)
	}
	h.publishAsFinance(copied, "", nil)

	dead := h.deadOrders(batchID, len(forged)+1)
	for reason, ev := range forged {
		if e := dead[ev.GetPaymentOrdered().GetPaymentId()]; !strings.Contains(e, reason) {
			t.Errorf("%s: dead letter error %q, want the reason", reason, e)
		}
	}
	if e := dead[copied.GetPaymentOrdered().GetPaymentId()]; !strings.Contains(e, "reissue_signature") {
		t.Errorf("a reissue with another order's signature: dead letter error %q", e)
	}

	// The genuine order of b is still paid, once, for its amount.
	h.publishAsFinance(ordered(b, batchID, payB, 1), "", nil)
	h.awaitEvents(events.TypePaymentSucceeded, 2)
	h.awaitConsumed()
	h.awaitSettled()
	if totals := h.ledger(); totals.CreditedCount != 2 || totals.CreditedSumFen != 62500+50000 {
		t.Errorf("bank ledger %+v, want the two genuine credits only", totals)
	}
	for _, id := range []string{forged["not_in_manifest"].GetPaymentOrdered().GetPaymentId(), forged["already_paid"].GetPaymentOrdered().GetPaymentId()} {
		if _, err := h.bank.Ledger.Get(t.Context(), id); err == nil {
			t.Errorf("the bank credited forged payment %s", id)
		}
	}
	m := scrape(t, h.run.HTTPAddr)
	for reason := range forged {
		n := 1
		if reason == "reissue_signature" {
			n = 2
		}
		if !strings.Contains(m, refused(reason, n)) {
			t.Errorf("metrics lack %s", refused(reason, n))
		}
	}
}

// TestForgedManifestsAreRefused: a header signed by an unknown key, a
// header altered after signing and a part altered after signing are
// dead-lettered and counted; the orders they would prove are not paid; the
// genuine manifest that follows is accepted and paid.
func TestForgedManifestsAreRefused(t *testing.T) {
	t.Parallel()
	h := start(t)
	a := newApplication(62500)
	h.publish(h.submitted(a, goodCard))
	batchID, paymentID := uuid.NewString(), uuid.NewString()
	rich := a
	rich.amount = 9900000

	rogue, err := manifest.ParseSigningKeys("rogue-1:" + "cm9ndWUtc2lnbmluZy1rZXktb2YtYW4taW5zaWRlciE=")
	if err != nil {
		t.Fatal(err)
	}
	unknown := manifestEvents(t, rogue, batchID, itemOf(rich, paymentID))[0]
	// The same key ID as finance's, another key: the signature fails.
	impostor, err := manifest.ParseSigningKeys("dev-finance-1:" + "cm9ndWUtc2lnbmluZy1rZXktb2YtYW4taW5zaWRlciE=")
	if err != nil {
		t.Fatal(err)
	}
	badSig := manifestEvents(t, impostor, batchID, itemOf(rich, paymentID))[0]
	// A genuine header with its sum raised after signing.
	altered := manifestEvents(t, devSigner(t), batchID, itemOf(a, paymentID))[0]
	altered.GetBatchConfirmed().ControlSumFen = rich.amount
	for _, ev := range []*eventsv1.Event{unknown, badSig, altered} {
		h.publishAsFinance(ev, "", nil)
	}
	dead := h.await(natsx.DeadPrefix+"payout."+events.Subject(events.TypeBatchConfirmed), 3, nil)
	for _, d := range dead {
		if e := d.Header.Get(natsx.HeaderError); !strings.Contains(e, "manifest_unknown_key") && !strings.Contains(e, "manifest_signature") {
			t.Errorf("dead header: %q", e)
		}
	}
	// An order it would have proven waits: no manifest is verified.
	h.publishAsFinance(ordered(rich, batchID, paymentID, 1), "", nil)

	// Now the genuine header, a part raised after signing, and the genuine part.
	genuine := manifestEvents(t, devSigner(t), batchID, itemOf(a, paymentID))
	forgedPart := manifestEvents(t, devSigner(t), batchID, itemOf(a, paymentID))[1]
	forgedPart.GetBatchManifestPart().GetItems()[0].AmountFen = rich.amount
	h.publishAsFinance(genuine[0], "", nil)
	h.publishAsFinance(forgedPart, "", nil)
	deadPart := h.await(natsx.DeadPrefix+"payout."+events.Subject(events.TypeBatchManifestPart), 1, nil)[0]
	if e := deadPart.Header.Get(natsx.HeaderError); !strings.Contains(e, "manifest_part") {
		t.Errorf("dead part: %q", e)
	}
	h.publishAsFinance(genuine[1], "", nil)

	// The raised order is now refused for good; the genuine one is paid.
	dead = h.await(natsx.DeadPrefix+"payout."+events.Subject(events.TypePaymentOrdered), 1, nil)
	if e := dead[0].Header.Get(natsx.HeaderError); !strings.Contains(e, "amount_mismatch") {
		t.Errorf("raised order: %q", e)
	}
	h.publishAsFinance(ordered(a, batchID, paymentID, 1), "", nil)
	h.awaitEvents(events.TypePaymentSucceeded, 1)
	h.awaitSettled()
	if totals := h.ledger(); totals.CreditedCount != 1 || totals.CreditedSumFen != 62500 {
		t.Errorf("bank ledger %+v, want the genuine credit only", totals)
	}
	m := scrape(t, h.run.HTTPAddr)
	for _, want := range []string{refused("manifest_unknown_key", 1), refused("manifest_signature", 2), refused("manifest_part", 1), refused("amount_mismatch", 1)} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestVerifiedManifestsCannotBeRewrittenByPayoutsRole: payout's own login
// may add manifest rows but not change or remove them, so raising an amount
// in a verified manifest takes the schema owner, not the service.
func TestVerifiedManifestsCannotBeRewrittenByPayoutsRole(t *testing.T) {
	t.Parallel()
	h := start(t)
	a := newApplication(62500)
	batchID := uuid.NewString()
	h.confirm(batchID, itemOf(a, uuid.NewString()))
	h.awaitConsumed()
	pool, err := db.Connect(t.Context(), h.serviceURL, db.Options{SearchPath: "payout", MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var verified bool
	if err := pool.QueryRow(t.Context(), `SELECT EXISTS (SELECT 1 FROM manifests_verified WHERE batch_id = $1)`, batchID).Scan(&verified); err != nil || !verified {
		t.Fatalf("manifest verified %v (%v)", verified, err)
	}
	for _, stmt := range []string{
		`UPDATE manifest_items SET amount_fen = 9900000 WHERE batch_id = '` + batchID + `'`,
		`DELETE FROM manifest_items WHERE batch_id = '` + batchID + `'`,
		`UPDATE manifests SET control_sum_fen = 9900000 WHERE batch_id = '` + batchID + `'`,
		`DELETE FROM manifests_verified`,
		`TRUNCATE manifest_parts CASCADE`,
	} {
		if _, err := pool.Exec(t.Context(), stmt); err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("%s: err %v, want permission denied", stmt, err)
		}
	}
}
