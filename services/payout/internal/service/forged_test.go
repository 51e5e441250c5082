package service_test

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/natsx"
)

// An order published by any identity but finance-confirmation's is refused
// by the NATS server itself: it never reaches the stream, and nothing is paid.
func TestOrderFromAnotherIdentityIsRefusedByNATS(t *testing.T) {
	t.Parallel()
	h := start(t)
	a := newApplication(62500)
	h.publish(h.submitted(a, goodCard))
	for _, identity := range []string{"payout", "application", "school-review", "bureau-review", "data-comparison", natsx.LoadgenIdentity} {
		t.Run(identity, func(t *testing.T) {
			err := h.publishAs(identity, ordered(a, uuid.NewString(), uuid.NewString(), 1), "", nil)
			if err == nil {
				t.Fatalf("%s published a payment order; want a permissions violation", identity)
			}
			if !strings.Contains(err.Error(), `Permissions Violation for Publish to "aid.finance.payment_ordered.v1"`) {
				t.Errorf("%s: err %v; want the server's permissions violation", identity, err)
			}
		})
	}
	h.awaitConsumed()
	if n := h.count(events.Subject(events.TypePaymentOrdered)); n != 0 {
		t.Errorf("the event stream holds %d forged orders, want 0", n)
	}
	if totals := h.ledger(); totals.CreditedCount != 0 || totals.CreditedSumFen != 0 {
		t.Errorf("bank ledger %+v after forged orders, want nothing credited", totals)
	}
}
