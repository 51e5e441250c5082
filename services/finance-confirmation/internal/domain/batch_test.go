package domain

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestBatchControlTotals(t *testing.T) {
	t.Parallel()
	b := &Batch{Status: BatchOpen}
	for _, amt := range []int64{50000, 62500, 62500, 100000} {
		if err := b.AddItem(amt); err != nil {
			t.Fatalf("add %d: %v", amt, err)
		}
	}
	if b.ControlCount != 4 || b.ControlSumFen != 275000 {
		t.Fatalf("totals %d / %d, want 4 / 275000", b.ControlCount, b.ControlSumFen)
	}
	if err := b.RemoveItem(62500); err != nil {
		t.Fatal(err)
	}
	if b.ControlCount != 3 || b.ControlSumFen != 212500 {
		t.Fatalf("after return %d / %d, want 3 / 212500", b.ControlCount, b.ControlSumFen)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.RemoveItem(50000); err != nil {
		t.Fatalf("return from a closed batch: %v", err)
	}
	if b.ControlCount != 2 || b.ControlSumFen != 162500 {
		t.Fatalf("after second return %d / %d, want 2 / 162500", b.ControlCount, b.ControlSumFen)
	}
}

func TestBatchAddItemRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status BatchStatus
		amount int64
		want   error
	}{
		{"zero amount", BatchOpen, 0, ErrInvalidAmount},
		{"negative amount", BatchOpen, -1, ErrInvalidAmount},
		{"closed batch", BatchClosed, 100, ErrIllegalTransition},
		{"confirmed batch", BatchConfirmed, 100, ErrIllegalTransition},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := &Batch{Status: tt.status, ControlCount: 1, ControlSumFen: 100}
			if err := b.AddItem(tt.amount); !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
			if b.ControlCount != 1 || b.ControlSumFen != 100 {
				t.Errorf("totals moved to %d / %d", b.ControlCount, b.ControlSumFen)
			}
		})
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
		{"close open", BatchOpen, (*Batch).Close, nil, BatchClosed},
		{"close closed", BatchClosed, (*Batch).Close, ErrIllegalTransition, BatchClosed},
		{"close confirmed", BatchConfirmed, (*Batch).Close, ErrIllegalTransition, BatchConfirmed},
		{"confirm open", BatchOpen, func(b *Batch) error { return b.Confirm("fin1", 2, 300, at) }, nil, BatchConfirmed},
		{"confirm closed", BatchClosed, func(b *Batch) error { return b.Confirm("fin1", 2, 300, at) }, nil, BatchConfirmed},
		{"confirm confirmed", BatchConfirmed, func(b *Batch) error { return b.Confirm("fin1", 2, 300, at) }, ErrIllegalTransition, BatchConfirmed},
		{"confirm wrong count", BatchClosed, func(b *Batch) error { return b.Confirm("fin1", 3, 300, at) }, ErrTotalsChanged, BatchClosed},
		{"confirm wrong sum", BatchOpen, func(b *Batch) error { return b.Confirm("fin1", 2, 299, at) }, ErrTotalsChanged, BatchOpen},
		{"paid before confirmation", BatchClosed, func(b *Batch) error { return b.RecordPaid(100) }, ErrIllegalTransition, BatchClosed},
		{"failed before confirmation", BatchOpen, (*Batch).RecordFailed, ErrIllegalTransition, BatchOpen},
		{"reissue without failures", BatchConfirmed, (*Batch).RecordReissued, ErrIllegalTransition, BatchConfirmed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := &Batch{Status: tt.from, ControlCount: 2, ControlSumFen: 300}
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
	b := &Batch{Status: BatchClosed, ControlCount: 1, ControlSumFen: 50000}
	if err := b.Confirm("fin1", 1, 50000, at); err != nil {
		t.Fatal(err)
	}
	if b.ConfirmedBy != "fin1" || !b.ConfirmedAt.Equal(at) || b.ConfirmedAt.Location() != time.UTC {
		t.Errorf("confirmed by %q at %v", b.ConfirmedBy, b.ConfirmedAt)
	}
}

func TestConfirmTotalsMessage(t *testing.T) {
	t.Parallel()
	b := &Batch{Status: BatchOpen, ControlCount: 3, ControlSumFen: 187500}
	err := b.Confirm("fin1", 2, 125000, time.Now())
	want := "batch totals changed: you saw 2 items / 125000 fen, the batch now holds 3 / 187500; reload and check again"
	if err == nil || err.Error() != want {
		t.Fatalf("err %v, want %q", err, want)
	}
}

func TestConfirmEmptyBatch(t *testing.T) {
	t.Parallel()
	b := &Batch{Status: BatchClosed}
	if err := b.Confirm("fin1", 0, 0, time.Now()); !errors.Is(err, ErrEmptyBatch) {
		t.Fatalf("err %v, want ErrEmptyBatch", err)
	}
	if b.Status != BatchClosed {
		t.Errorf("status %s", b.Status)
	}
}

func TestPaidAndFailedCounts(t *testing.T) {
	t.Parallel()
	b := &Batch{Status: BatchConfirmed, ControlCount: 3, ControlSumFen: 150000}
	if err := b.RecordPaid(50000); err != nil {
		t.Fatal(err)
	}
	if err := b.RecordFailed(); err != nil {
		t.Fatal(err)
	}
	if err := b.RecordReissued(); err != nil {
		t.Fatal(err)
	}
	if err := b.RecordPaid(50000); err != nil {
		t.Fatal(err)
	}
	if b.PaidCount != 2 || b.PaidSumFen != 100000 || b.FailedCount != 0 {
		t.Errorf("paid %d / %d, failed %d", b.PaidCount, b.PaidSumFen, b.FailedCount)
	}
}

func TestCheckConfirmer(t *testing.T) {
	t.Parallel()
	items := []Reviewers{
		{SubmittedBy: "off1", SchoolReviewer: "rev1", BureauReviewer: "bur1"},
		{SubmittedBy: "off2", SchoolReviewer: "rev2", BureauReviewer: "bur2"},
	}
	tests := []struct {
		officer string
		want    error
	}{
		{"fin1", nil},
		{"off2", ErrReviewedOwnItem},
		{"rev1", ErrReviewedOwnItem},
		{"bur2", ErrReviewedOwnItem},
		{"", nil},
	}
	for _, tt := range tests {
		t.Run(tt.officer, func(t *testing.T) {
			t.Parallel()
			if err := CheckConfirmer(tt.officer, items...); !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Errorf("err %v, want %v", err, tt.want)
			}
		})
	}
}

func TestItemTransitions(t *testing.T) {
	t.Parallel()
	all := []ItemStatus{ItemPending, ItemReturned, ItemOrdered, ItemPaid, ItemFailed}
	type op struct {
		name    string
		allowed map[ItemStatus]ItemStatus // from → to
		do      func(i *Item) error
	}
	ops := []op{
		{"return", map[ItemStatus]ItemStatus{ItemPending: ItemReturned}, func(i *Item) error { return i.Return("student left school") }},
		{"order", map[ItemStatus]ItemStatus{ItemPending: ItemOrdered}, func(i *Item) error { return i.Order("pay-2") }},
		{"paid", map[ItemStatus]ItemStatus{ItemOrdered: ItemPaid}, func(i *Item) error { return i.MarkPaid("pay-1") }},
		{"failed", map[ItemStatus]ItemStatus{ItemOrdered: ItemFailed}, func(i *Item) error { return i.MarkFailed("pay-1", "ACCOUNT_CLOSED") }},
		{"corrected", map[ItemStatus]ItemStatus{ItemFailed: ItemFailed}, (*Item).MarkCorrected},
	}
	for _, o := range ops {
		for _, from := range all {
			t.Run(o.name+" from "+string(from), func(t *testing.T) {
				t.Parallel()
				i := &Item{Status: from, PaymentID: "pay-1", Attempt: 1}
				err := o.do(i)
				to, ok := o.allowed[from]
				if !ok {
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
				if i.Status != to {
					t.Errorf("status %s, want %s", i.Status, to)
				}
			})
		}
	}
}

func TestItemPaymentIDMustMatch(t *testing.T) {
	t.Parallel()
	i := &Item{Status: ItemOrdered, PaymentID: "pay-2", Attempt: 2}
	if err := i.MarkPaid("pay-1"); !errors.Is(err, ErrIllegalTransition) {
		t.Errorf("paid for a superseded payment: %v", err)
	}
	if err := i.MarkFailed("pay-1", "ACCOUNT_CLOSED"); !errors.Is(err, ErrIllegalTransition) {
		t.Errorf("failed for a superseded payment: %v", err)
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
	i := &Item{Status: ItemOrdered, PaymentID: "pay-1", Attempt: 1}
	if err := i.MarkFailed("pay-1", "ACCOUNT_CLOSED"); err != nil {
		t.Fatal(err)
	}
	if err := i.Reissue("pay-2"); !errors.Is(err, ErrNotCorrected) {
		t.Fatalf("reissue before correction: %v, want ErrNotCorrected", err)
	}
	if err := i.MarkCorrected(); err != nil {
		t.Fatal(err)
	}
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
	// A new failure needs a new correction.
	if err := i.MarkFailed("pay-2", "NAME_MISMATCH"); err != nil {
		t.Fatal(err)
	}
	if err := i.Reissue("pay-3"); !errors.Is(err, ErrNotCorrected) {
		t.Errorf("second reissue without a new correction: %v", err)
	}
}
