package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/events"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	"github.com/edubureau/studentaid/services/data-comparison/internal/adapters"
	"github.com/edubureau/studentaid/services/data-comparison/internal/domain"
)

// openRefund opens the refund order of a verified ineligible clue: against
// the clue's last payment record (for a duplicate payment, the payment made
// after the first), for recoverFen or the clue's amount.
func (s *Service) openRefund(ctx context.Context, tx pgx.Tx, by auth.Identity, c *domain.Clue, recoverFen int64) error {
	recs, err := adapters.Records(ctx, tx, c.RecordIDs)
	if err != nil {
		return err
	}
	if len(recs) == 0 {
		return fmt.Errorf("%w: clue %s names no payment record", domain.ErrNotRefundable, c.ID)
	}
	rec := recs[len(recs)-1]
	amount, err := domain.RefundAmount(*c, recoverFen, rec.PaidFen)
	if err != nil {
		return err
	}
	r := domain.Refund{ID: uuid.Must(uuid.NewV7()).String(), ClueID: c.ID, RecordID: rec.ID, PaymentID: rec.PaymentID,
		SchoolCode: rec.SchoolCode, ProgramCode: rec.ProgramCode, Term: rec.Term, AmountFen: amount, Status: domain.RefundOpen,
		Account: s.cfg.IntegrityAccount, OpenedAt: c.UpdatedAt}
	if err := adapters.InsertRefund(ctx, tx, r); err != nil {
		return err
	}
	c.RefundID = r.ID
	return s.step(ctx, tx, by, c, &eventsv1.RefundOpened{RefundId: r.ID, ClueId: c.ID, RecordId: rec.ID, PaymentId: rec.PaymentID,
		AmountFen: amount, Account: r.Account}, fmt.Sprintf("refund %s opened for %d fen against record %s", r.ID, amount, rec.ID))
}

// Receipt is money received against a refund.
type Receipt struct {
	RefundID   string
	AmountFen  int64
	BankRef    string
	Account    string
	ReceivedAt time.Time
}

// RecordReceipt records a receipt into the integrity account against a
// refund; the refund closes when fully recovered. A retry with the same bank
// reference and amount returns the refund unchanged.
func (s *Service) RecordReceipt(ctx context.Context, by auth.Identity, in Receipt) (domain.Refund, error) {
	var v apperr.Violations
	ids := checkIDs(&v, "refund_id", []string{in.RefundID}, 1)
	ref := checkText(&v, "bank_ref", in.BankRef, 64, true)
	account := checkText(&v, "account", in.Account, 64, true)
	if in.AmountFen <= 0 {
		v.Addf("amount_fen", "must be positive")
	}
	if err := v.Err(); err != nil {
		return domain.Refund{}, err
	}
	now := s.clock()
	if in.ReceivedAt.IsZero() {
		in.ReceivedAt = now
	}
	var out domain.Refund
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		r, err := adapters.GetRefund(ctx, tx, ids[0], true)
		if err != nil {
			if errors.Is(err, adapters.ErrNotFound) {
				return apperr.New(apperr.NotFound, "refund %s not found", in.RefundID)
			}
			return err
		}
		if onto, amount, found, err := adapters.ReceiptByRef(ctx, tx, ref); err != nil {
			return err
		} else if found {
			if onto != r.ID || amount != in.AmountFen {
				return apperr.New(apperr.AlreadyExists, "bank reference %s is already recorded for another receipt", ref)
			}
			out = r
			return nil
		}
		rc := domain.Receipt{AmountFen: in.AmountFen, BankRef: ref, Account: account, ReceivedAt: in.ReceivedAt.UTC().Truncate(domain.TimePrecision), RecordedBy: by.UserID}
		if err := r.Receive(rc, s.cfg.IntegrityAccount, now); err != nil {
			return err
		}
		if err := adapters.AddReceipt(ctx, tx, r, rc, now); err != nil {
			return err
		}
		keys := events.Keys{SchoolCode: r.SchoolCode, ProgramCode: r.ProgramCode, Term: r.Term}
		evs := []*eventsv1.Event{events.MustNew(now, actorOf(by), keys, &eventsv1.RefundReceiptRecorded{RefundId: r.ID, AmountFen: rc.AmountFen,
			ReceivedFen: r.ReceivedFen, OutstandingFen: r.Outstanding(), BankRef: ref, Account: account})}
		if r.Status == domain.RefundClosed {
			evs = append(evs, events.MustNew(now, actorOf(by), keys, &eventsv1.RefundClosed{RefundId: r.ID, AmountFen: r.AmountFen}))
		}
		out = r
		return appendEvents(ctx, tx, evs...)
	})
	if err != nil {
		return domain.Refund{}, s.refuse(ctx, "RecordReceipt", err)
	}
	return out, nil
}

// GetRefund reads a refund with its receipts.
func (s *Service) GetRefund(ctx context.Context, id string) (domain.Refund, error) {
	var v apperr.Violations
	ids := checkIDs(&v, "refund_id", []string{id}, 1)
	if err := v.Err(); err != nil {
		return domain.Refund{}, err
	}
	r, err := adapters.GetRefund(ctx, s.pool, ids[0], false)
	if errors.Is(err, adapters.ErrNotFound) {
		return r, apperr.New(apperr.NotFound, "refund %s not found", id)
	}
	return r, err
}

// ListRefunds lists refunds oldest first.
func (s *Service) ListRefunds(ctx context.Context, status, after string, limit int) ([]domain.Refund, error) {
	return adapters.ListRefunds(ctx, s.pool, status, after, limit)
}
