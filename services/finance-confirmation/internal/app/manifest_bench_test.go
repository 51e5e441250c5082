package app

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/edubureau/studentaid/pkg/config"
	"github.com/edubureau/studentaid/pkg/manifest"
	"github.com/edubureau/studentaid/services/finance-confirmation/internal/domain"
)

// BenchmarkConfirmationEvents50000 is what signing adds to confirming a
// 50,000-item batch: the manifest sorted, cut into 50 parts, digested and
// signed, and every event of the confirmation built (batch_confirmed with
// the header, the parts, the 50,000 orders).
func BenchmarkConfirmationEvents50000(b *testing.B) {
	signer, err := manifest.ParseSigningKeys(config.DevFinanceSigningKeys)
	if err != nil {
		b.Fatal(err)
	}
	s := New(Deps{Signer: signer})
	const n = 50000
	batch := domain.Batch{ID: uuid.NewString(), Term: "2017-autumn", ProgramCode: "BOARDING_SUBSIDY", FundingSource: "government",
		Status: domain.BatchConfirmed, ControlCount: n, ControlSumFen: n * 62500}
	items := make([]domain.Item, n)
	for i := range items {
		items[i] = domain.Item{BatchID: batch.ID, ApplicationID: uuid.NewString(), SchoolCode: "S001", AmountFen: 62500,
			Status: domain.ItemOrdered, PaymentID: uuid.NewString(), Attempt: 1}
	}
	actor := systemActor
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		evs, err := s.confirmationEvents(now, actor, batch, items)
		if err != nil {
			b.Fatal(err)
		}
		if len(evs) != 1+50+n {
			b.Fatalf("%d events", len(evs))
		}
	}
}
