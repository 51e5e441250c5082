package service_test

import (
	"context"
	"testing"
	"time"

	"github.com/edubureau/studentaid/pkg/events"
	financev1 "github.com/edubureau/studentaid/proto/gen/aid/finance/v1"
	"github.com/edubureau/studentaid/services/finance-confirmation/internal/service"
)

// TestServiceClockDatesConfirmationsAndEvents: the confirmation and the
// events finance writes carry the service's clock, not the wall clock.
func TestServiceClockDatesConfirmationsAndEvents(t *testing.T) {
	t.Parallel()
	at := time.Date(2017, 11, 3, 8, 30, 0, 0, time.FixedZone("CST", 8*3600))
	h := startWith(t, service.Options{Now: func() time.Time { return at }})
	ctx := context.Background()
	a := newApproval("S001", "PRESCHOOL_AID", 50000)
	batchID := h.batchOf(a)[a.app]
	h.closeBatch(batchID)
	b, err := h.officer("fin-1").ConfirmBatch(ctx, &financev1.ConfirmBatchRequest{BatchId: batchID, ControlCount: 1, ControlSumFen: 50000})
	if err != nil {
		t.Fatal(err)
	}
	if !b.GetConfirmedAt().AsTime().Equal(at) {
		t.Errorf("confirmed at %v, want %v", b.GetConfirmedAt().AsTime(), at)
	}
	for _, typ := range []string{events.TypeItemBatched, events.TypeBatchConfirmed, events.TypePaymentOrdered} {
		ev := h.awaitEvents(typ, 1, nil)[0]
		if !ev.GetOccurredAt().AsTime().Equal(at) {
			t.Errorf("%s occurred at %v, want %v", typ, ev.GetOccurredAt().AsTime(), at)
		}
	}
}
