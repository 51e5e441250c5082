package adapters_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/services/finance-confirmation/internal/adapters"
	"github.com/edubureau/studentaid/services/finance-confirmation/internal/domain"
)

// seeded is one item in a given status, alone in its batch. payment is the
// item's payment, or one finance never ordered when it has none.
type seeded struct {
	batch, app, payment string
}

// seed stores an item of amount in status from, alone in a batch of status
// batchStatus whose control totals count it when it is PENDING.
func seed(ctx context.Context, t *testing.T, tx db.Tx, batchStatus domain.BatchStatus, from domain.ItemStatus, amount int64) seeded {
	t.Helper()
	s := seeded{batch: uuid.NewString(), app: uuid.NewString(), payment: uuid.NewString()}
	var count, sum int64
	if from == domain.ItemPending {
		count, sum = 1, amount
	}
	var confirmedAt *time.Time
	if batchStatus == domain.BatchConfirmed {
		now := time.Now()
		confirmedAt = &now
	}
	if _, err := tx.Exec(ctx, `INSERT INTO batches (batch_id, term, program_code, funding_source, status, control_count, control_sum_fen, confirmed_at)
VALUES ($1, '2017-autumn', $2, 'government', $3, $4, $5, $6)`, s.batch, "P-"+s.batch[:8], string(batchStatus), count, sum, confirmedAt); err != nil {
		t.Fatal(err)
	}
	var payment *string
	if from == domain.ItemOrdered || from == domain.ItemPaid || from == domain.ItemFailed {
		payment = &s.payment
	}
	if _, err := tx.Exec(ctx, `INSERT INTO items (batch_id, application_id, school_code, amount_fen, status, payment_id, attempt)
VALUES ($1, $2, 'S001', $3, $4, $5, CASE WHEN $5::uuid IS NULL THEN 0 ELSE 1 END)`, s.batch, s.app, amount, string(from), payment); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestItemTransitionsInSQL runs each set-based item transition (ordering on
// confirmation, a payment's success or failure, a payee correction) over an
// item in every status: each moves only the status it is meant for, and the
// batch counts only what moved.
func TestItemTransitionsInSQL(t *testing.T) {
	t.Parallel()
	pool := migrated(t)
	const amount = 62500
	all := []domain.ItemStatus{domain.ItemPending, domain.ItemReturned, domain.ItemOrdered, domain.ItemPaid, domain.ItemFailed}
	type op struct {
		name    string
		batch   domain.BatchStatus
		allowed map[domain.ItemStatus]domain.ItemStatus // from → to
		do      func(ctx context.Context, tx db.Tx, s seeded) (moved bool, err error)
	}
	result := func(paid bool) func(ctx context.Context, tx db.Tx, s seeded) (bool, error) {
		return func(ctx context.Context, tx db.Tx, s seeded) (bool, error) {
			return adapters.RecordPaymentResult(ctx, tx, domain.PaymentResult{PaymentID: s.payment, AmountFen: amount, Paid: paid, Reason: "ACCOUNT_CLOSED"})
		}
	}
	ops := []op{
		{"order", domain.BatchOpen, map[domain.ItemStatus]domain.ItemStatus{domain.ItemPending: domain.ItemOrdered},
			func(ctx context.Context, tx db.Tx, s seeded) (bool, error) {
				b, err := adapters.LockBatch(ctx, tx, s.batch)
				if err != nil {
					return false, err
				}
				b.Status, b.ConfirmedBy, b.ConfirmedAt = domain.BatchConfirmed, "fin", time.Now().UTC()
				ordered, err := adapters.ConfirmBatch(ctx, tx, b)
				return len(ordered) == 1, err
			}},
		{"paid", domain.BatchConfirmed, map[domain.ItemStatus]domain.ItemStatus{domain.ItemOrdered: domain.ItemPaid}, result(true)},
		{"failed", domain.BatchConfirmed, map[domain.ItemStatus]domain.ItemStatus{domain.ItemOrdered: domain.ItemFailed}, result(false)},
		{"corrected", domain.BatchConfirmed, map[domain.ItemStatus]domain.ItemStatus{domain.ItemFailed: domain.ItemFailed},
			func(ctx context.Context, tx db.Tx, s seeded) (bool, error) {
				live, err := adapters.MarkCorrected(ctx, tx, s.app)
				return live == domain.ItemFailed, err
			}},
	}
	for _, o := range ops {
		for _, from := range all {
			t.Run(o.name+" from "+string(from), func(t *testing.T) {
				t.Parallel()
				ctx, tx := rolledBackTx(t, pool)
				s := seed(ctx, t, tx, o.batch, from, amount)
				moved, err := o.do(ctx, tx, s)
				to, ok := o.allowed[from]
				if ok && (err != nil || !moved) {
					t.Fatalf("moved %v, err %v; want it to move to %s", moved, err, to)
				}
				if !ok {
					if moved {
						t.Fatalf("moved an item from %s", from)
					}
					to = from
				}
				it, err := adapters.LockItem(ctx, tx, s.batch, s.app)
				if err != nil {
					t.Fatal(err)
				}
				if it.Status != to {
					t.Errorf("status %s, want %s", it.Status, to)
				}
				b, err := adapters.GetBatch(ctx, tx, s.batch)
				if err != nil {
					t.Fatal(err)
				}
				wantPaid, wantFailed := int64(0), int64(0)
				switch {
				case ok && o.name == "paid":
					wantPaid = 1
				case ok && o.name == "failed":
					wantFailed = 1
				}
				if b.PaidCount != wantPaid || b.PaidSumFen != wantPaid*amount || b.FailedCount != wantFailed {
					t.Errorf("batch paid %d / %d fen, failed %d; want %d / %d, %d", b.PaidCount, b.PaidSumFen, b.FailedCount, wantPaid, wantPaid*amount, wantFailed)
				}
				switch {
				case ok && o.name == "order":
					if it.Attempt != 1 || it.PaymentID == "" {
						t.Errorf("ordered item: attempt %d payment %q", it.Attempt, it.PaymentID)
					}
				case ok && o.name == "failed":
					if it.Reason != "ACCOUNT_CLOSED" || it.Corrected {
						t.Errorf("failed item: reason %q corrected %v", it.Reason, it.Corrected)
					}
				case ok && o.name == "corrected":
					if !it.Corrected {
						t.Error("correction not recorded")
					}
				case !ok:
					if it.Corrected {
						t.Errorf("a %s item marked corrected", from)
					}
				}
			})
		}
	}
}

// TestPaymentResultMustNameTheOpenPayment: a result for a superseded
// payment, or with another amount, changes nothing.
func TestPaymentResultMustNameTheOpenPayment(t *testing.T) {
	t.Parallel()
	pool := migrated(t)
	ctx, tx := rolledBackTx(t, pool)
	s := seed(ctx, t, tx, domain.BatchConfirmed, domain.ItemOrdered, 50000)
	for _, r := range []domain.PaymentResult{
		{PaymentID: uuid.NewString(), AmountFen: 50000, Paid: true},
		{PaymentID: s.payment, AmountFen: 49999, Reason: "ACCOUNT_CLOSED"},
	} {
		if applied, err := adapters.RecordPaymentResult(ctx, tx, r); applied || err == nil {
			t.Errorf("result %+v: applied %v, err %v; want refused", r, applied, err)
		}
	}
	it, err := adapters.LockItem(ctx, tx, s.batch, s.app)
	if err != nil {
		t.Fatal(err)
	}
	if it.Status != domain.ItemOrdered {
		t.Errorf("status %s after mismatched results", it.Status)
	}
}
