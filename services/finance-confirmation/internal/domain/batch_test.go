package domain

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/edubureau/studentaid/pkg/auth"
)

// closer and confirmer are the two finance officers a batch takes.
var (
	closer    = auth.Identity{UserID: "fin1", Role: auth.RoleFinanceOfficer, Org: auth.OrgFinance}
	confirmer = auth.Identity{UserID: "fin2", Role: auth.RoleFinanceOfficer, Org: auth.OrgFinance}
)

func TestBatchControlTotals(t *testing.T) {
	t.Parallel()
	b := &Batch{Status: BatchOpen, ControlCount: 4, ControlSumFen: 275000}
	if err := b.RemoveItem(62500); err != nil {
		t.Fatal(err)
	}
	if b.ControlCount != 3 || b.ControlSumFen != 212500 {
		t.Fatalf("after return %d / %d, want 3 / 212500", b.ControlCount, b.ControlSumFen)
	}
	if err := b.Close(closer); err != nil {
		t.Fatal(err)
	}
	if err := b.RemoveItem(50000); err != nil {
		t.Fatalf("return from a closed batch: %v", err)
	}
	if b.ControlCount != 2 || b.ControlSumFen != 162500 {
		t.Fatalf("after second return %d / %d, want 2 / 162500", b.ControlCount, b.ControlSumFen)
	}
}

func TestBatchRemoveItemRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		status     BatchStatus
		count, sum int64
		amount     int64
		want       error
	}{
		{"confirmed batch", BatchConfirmed, 1, 100, 100, ErrIllegalTransition},
		{"empty batch", BatchOpen, 0, 0, 100, ErrIllegalTransition},
		{"more than the sum", BatchOpen, 1, 100, 101, ErrIllegalTransition},
		{"zero amount", BatchOpen, 1, 100, 0, ErrInvalidAmount},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := &Batch{Status: tt.status, ControlCount: tt.count, ControlSumFen: tt.sum}
			if err := b.RemoveItem(tt.amount); !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
			if b.ControlCount != tt.count || b.ControlSumFen != tt.sum {
				t.Errorf("totals moved to %d / %d", b.ControlCount, b.ControlSumFen)
			}
		})
	}
}

func TestBatchTransitions(t *testing.T) {
	t.Parallel()
	at := time.Date(2017, 11, 3, 8, 0, 0, 0, time.FixedZone("CST", 8*3600))
	tests := []struct {
		name string
		from BatchStatus
		do   func(b *Batch) error
		want error
		to   BatchStatus
	}{
		{"close open", BatchOpen, func(b *Batch) error { return b.Close(closer) }, nil, BatchClosed},
		{"close closed", BatchClosed, func(b *Batch) error { return b.Close(closer) }, ErrIllegalTransition, BatchClosed},
		{"close confirmed", BatchConfirmed, func(b *Batch) error { return b.Close(closer) }, ErrIllegalTransition, BatchConfirmed},
		{"confirm open", BatchOpen, func(b *Batch) error { return b.Confirm(confirmer, 2, 300, at) }, ErrIllegalTransition, BatchOpen},
		{"confirm closed", BatchClosed, func(b *Batch) error { return b.Confirm(confirmer, 2, 300, at) }, nil, BatchConfirmed},
		{"confirm confirmed", BatchConfirmed, func(b *Batch) error { return b.Confirm(confirmer, 2, 300, at) }, ErrIllegalTransition, BatchConfirmed},
		{"confirm wrong count", BatchClosed, func(b *Batch) error { return b.Confirm(confirmer, 3, 300, at) }, ErrTotalsChanged, BatchClosed},
		{"confirm wrong sum", BatchClosed, func(b *Batch) error { return b.Confirm(confirmer, 2, 299, at) }, ErrTotalsChanged, BatchClosed},
		{"closer confirms", BatchClosed, func(b *Batch) error { return b.Confirm(closer, 2, 300, at) }, ErrCloserConfirms, BatchClosed},
		{"closer confirms, totals wrong too", BatchClosed, func(b *Batch) error { return b.Confirm(closer, 2, 299, at) }, ErrCloserConfirms, BatchClosed},
		{"same user of another organisation", BatchClosed, func(b *Batch) error {
			return b.Confirm(auth.Identity{UserID: "fin1", Role: auth.RoleFinanceOfficer, Org: "FINANCE-2"}, 2, 300, at)
		}, nil, BatchConfirmed},
		{"reissue without failures", BatchConfirmed, (*Batch).RecordReissued, ErrIllegalTransition, BatchConfirmed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := &Batch{Status: tt.from, ControlCount: 2, ControlSumFen: 300}
			if tt.from != BatchOpen {
				b.ClosedBy, b.ClosedByOrg = closer.UserID, closer.Org
			}
			err := tt.do(b)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
			if b.Status != tt.to {
				t.Errorf("status %s, want %s", b.Status, tt.to)
			}
		})
	}
}

func TestConfirmRecordsOfficerAndUTC(t *testing.T) {
	t.Parallel()
	at := time.Date(2017, 11, 3, 8, 0, 0, 0, time.FixedZone("CST", 8*3600))
	b := &Batch{Status: BatchClosed, ControlCount: 1, ControlSumFen: 50000, ClosedBy: "fin1"}
	if err := b.Confirm(confirmer, 1, 50000, at); err != nil {
		t.Fatal(err)
	}
	if b.ConfirmedBy != "fin2" || !b.ConfirmedAt.Equal(at) || b.ConfirmedAt.Location() != time.UTC {
		t.Errorf("confirmed by %q at %v", b.ConfirmedBy, b.ConfirmedAt)
	}
}

func TestConfirmTotalsMessage(t *testing.T) {
	t.Parallel()
	b := &Batch{Status: BatchClosed, ControlCount: 3, ControlSumFen: 187500}
	err := b.Confirm(confirmer, 2, 125000, time.Now())
	want := "batch totals changed: you saw 2 items / 125000 fen, the batch now holds 3 / 187500; reload and check again"
	if err == nil || err.Error() != want {
		t.Fatalf("err %v, want %q", err, want)
	}
}

func TestConfirmEmptyBatch(t *testing.T) {
	t.Parallel()
	b := &Batch{Status: BatchClosed}
	if err := b.Confirm(confirmer, 0, 0, time.Now()); !errors.Is(err, ErrEmptyBatch) {
		t.Fatalf("err %v, want ErrEmptyBatch", err)
	}
	if b.Status != BatchClosed {
		t.Errorf("status %s", b.Status)
	}
}

func TestRecordReissued(t *testing.T) {
	t.Parallel()
	b := &Batch{Status: BatchConfirmed, ControlCount: 3, ControlSumFen: 150000, PaidCount: 1, PaidSumFen: 50000, FailedCount: 2}
	if err := b.RecordReissued(); err != nil {
		t.Fatal(err)
	}
	if b.PaidCount != 1 || b.PaidSumFen != 50000 || b.FailedCount != 1 {
		t.Errorf("paid %d / %d, failed %d", b.PaidCount, b.PaidSumFen, b.FailedCount)
	}
}

func TestCheckOrdered(t *testing.T) {
	t.Parallel()
	b := &Batch{Status: BatchConfirmed, ControlCount: 2, ControlSumFen: 112500}
	tests := []struct {
		name    string
		amounts []int64
		want    error
	}{
		{"agree", []int64{50000, 62500}, nil},
		{"one missing", []int64{50000}, ErrTotalsMismatch},
		{"one more", []int64{50000, 62500, 1}, ErrTotalsMismatch},
		{"sum differs", []int64{50000, 62000}, ErrTotalsMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			items := make([]Item, len(tt.amounts))
			for i, a := range tt.amounts {
				items[i].AmountFen = a
			}
			if err := b.CheckOrdered(items); !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Errorf("err %v, want %v", err, tt.want)
			}
		})
	}
}

func TestItemReturnTransitions(t *testing.T) {
	t.Parallel()
	for _, from := range []ItemStatus{ItemPending, ItemReturned, ItemOrdered, ItemPaid, ItemFailed} {
		t.Run("return from "+string(from), func(t *testing.T) {
			t.Parallel()
			i := &Item{Status: from, PaymentID: "pay-1", Attempt: 1}
			err := i.Return("student left school")
			if from != ItemPending {
				if !errors.Is(err, ErrIllegalTransition) {
					t.Fatalf("err %v, want ErrIllegalTransition", err)
				}
				if i.Status != from {
					t.Errorf("status moved to %s", i.Status)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if i.Status != ItemReturned || i.Reason != "student left school" {
				t.Errorf("status %s reason %q, want RETURNED", i.Status, i.Reason)
			}
		})
	}
}

func TestItemReturnNeedsReason(t *testing.T) {
	t.Parallel()
	for _, reason := range []string{"", "   ", strings.Repeat("理", MaxReasonRunes+1), "bad \xff utf8"} {
		i := &Item{Status: ItemPending}
		if err := i.Return(reason); !errors.Is(err, ErrReasonRequired) {
			t.Errorf("reason %q: err %v, want ErrReasonRequired", reason, err)
		}
		if i.Status != ItemPending {
			t.Errorf("status moved to %s", i.Status)
		}
	}
}

func TestItemReissue(t *testing.T) {
	t.Parallel()
	// A failed payment, as the store records it: not corrected yet.
	i := &Item{Status: ItemFailed, PaymentID: "pay-1", Attempt: 1, Reason: "ACCOUNT_CLOSED"}
	if err := i.Reissue("pay-2"); !errors.Is(err, ErrNotCorrected) {
		t.Fatalf("reissue before correction: %v, want ErrNotCorrected", err)
	}
	i.Corrected = true
	if err := i.Reissue("pay-1"); !errors.Is(err, ErrIllegalTransition) {
		t.Fatalf("reissue under the old payment ID: %v", err)
	}
	if err := i.Reissue("pay-2"); err != nil {
		t.Fatal(err)
	}
	if i.Status != ItemOrdered || i.PaymentID != "pay-2" || i.Attempt != 2 || i.Corrected || i.Reason != "" {
		t.Errorf("after reissue: %+v", i)
	}
	for _, from := range []ItemStatus{ItemPending, ItemReturned, ItemOrdered, ItemPaid} {
		j := &Item{Status: from, Corrected: true, PaymentID: "pay-1"}
		if err := j.Reissue("pay-9"); !errors.Is(err, ErrIllegalTransition) {
			t.Errorf("reissue from %s: %v, want ErrIllegalTransition", from, err)
		}
	}
	// A new failure needs a new correction: the reissue cleared the last one.
	i.Status, i.Reason = ItemFailed, "NAME_MISMATCH"
	if err := i.Reissue("pay-3"); !errors.Is(err, ErrNotCorrected) {
		t.Errorf("second reissue without a new correction: %v", err)
	}
}

func TestCloseRecordsTheOfficer(t *testing.T) {
	t.Parallel()
	b := &Batch{Status: BatchOpen, ControlCount: 1, ControlSumFen: 50000}
	if err := b.Close(closer); err != nil {
		t.Fatal(err)
	}
	if b.ClosedBy != "fin1" || b.ClosedByOrg != auth.OrgFinance {
		t.Errorf("closed by %q of %q, want fin1 of %s", b.ClosedBy, b.ClosedByOrg, auth.OrgFinance)
	}
}

func TestLegacyCloserComparesTheUser(t *testing.T) {
	t.Parallel()
	// A batch closed before the organisation was recorded.
	b := &Batch{Status: BatchClosed, ControlCount: 1, ControlSumFen: 50000, ClosedBy: "fin1"}
	if err := b.Confirm(closer, 1, 50000, time.Now()); !errors.Is(err, ErrCloserConfirms) {
		t.Fatalf("err %v, want ErrCloserConfirms", err)
	}
}
