package app

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/attribute"

	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/outbox"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	"github.com/edubureau/studentaid/services/finance-confirmation/internal/adapters"
	"github.com/edubureau/studentaid/services/finance-confirmation/internal/domain"
)

// Errors of the consumed events. Compare with errors.Is.
var (
	// ErrNotYet means an event came before one it follows: it applies later.
	ErrNotYet = errors.New("event arrived before its prerequisite")
	// ErrImpossible means an event can never be applied.
	ErrImpossible = errors.New("event can never be applied")
)

// impossible marks err as ErrImpossible, keeping its message.
type impossible struct{ error }

func (e impossible) Unwrap() []error { return []error{e.error, ErrImpossible} }

// Delivered is an event the consumer decoded, with the context of the
// consumer span it arrived in: its business keys go on that span, and the
// events it leads to continue its trace.
type Delivered[E any] struct {
	Ctx   context.Context //nolint:containedctx // read once, for its span and trace context, when the event is applied
	Event E
}

// AddApproved gathers a bureau-approved application into the OPEN batch of
// its term, program and funding source (creating the batch when none is
// open) and writes finance.item_batched. A repeated approval of an
// application that already has a live item changes nothing.
func (s *Service) AddApproved(ctx context.Context, tx db.Tx, it domain.ApprovedItem) error {
	batchID, added, err := adapters.AddItem(ctx, tx, it)
	if err != nil {
		return err
	}
	if !added {
		s.log.WarnContext(ctx, "repeated approval ignored: the application already has a live item", "application_id", it.ApplicationID)
		return nil
	}
	annotate(ctx, attribute.String("batch.id", batchID))
	out, err := s.itemBatched(it, batchID)
	if err != nil {
		return err
	}
	return outbox.Append(ctx, tx, out)
}

// itemBatched is the finance.item_batched event for an approval gathered into batchID.
func (s *Service) itemBatched(it domain.ApprovedItem, batchID string) (*eventsv1.Event, error) {
	return events.New(s.clock(), systemActor, events.Keys{
		ApplicationID: it.ApplicationID, BatchID: batchID, SchoolCode: it.SchoolCode,
		ProgramCode: it.ProgramCode, Term: it.Term,
	}, &eventsv1.ItemBatched{AmountFen: it.AmountFen})
}

// AddApprovedBatch is AddApproved for several approvals at once: the items
// join their OPEN batches (created when missing) and the batches' control
// totals grow in a few set-based statements, and each added item's
// item_batched event continues its own delivery's trace. Any error (a
// concurrent change) fails the whole call, so that the consumer applies the
// events one at a time.
func (s *Service) AddApprovedBatch(tx db.Tx, ds []Delivered[domain.ApprovedItem]) error {
	if len(ds) == 0 {
		return nil
	}
	items := make([]domain.ApprovedItem, len(ds))
	for i, d := range ds {
		items[i] = d.Event
	}
	ctx := ds[0].Ctx
	added, err := adapters.AddItems(ctx, tx, items)
	if err != nil {
		return err
	}
	out := make([]outbox.Traced, 0, len(added))
	for _, d := range ds {
		batchID, ok := added[d.Event.ApplicationID]
		if !ok {
			s.log.WarnContext(d.Ctx, "repeated approval ignored: the application already has a live item", "application_id", d.Event.ApplicationID)
			continue
		}
		delete(added, d.Event.ApplicationID) // a second approval in the same batch is a repeat
		annotate(d.Ctx, attribute.String("batch.id", batchID))
		ev, err := s.itemBatched(d.Event, batchID)
		if err != nil {
			return err
		}
		out = append(out, outbox.Traced{Ctx: d.Ctx, Event: ev})
	}
	return outbox.AppendTraced(ctx, tx, out...)
}

// RecordPaymentResult applies payout's result of a payment: the item
// becomes PAID or FAILED and its batch counts it. A result for no payment
// finance ordered, or one that contradicts the item, is ErrImpossible.
func (s *Service) RecordPaymentResult(ctx context.Context, tx db.Tx, r domain.PaymentResult) error {
	annotate(ctx, attribute.String("payout.id", r.PaymentID))
	_, err := adapters.RecordPaymentResult(ctx, tx, r)
	if errors.Is(err, adapters.ErrNotFound) || errors.Is(err, adapters.ErrPaymentMismatch) {
		return impossible{err}
	}
	return err
}

// RecordPaymentResults is RecordPaymentResult for several results at once,
// in one statement. Unless every result applies to an ORDERED item (a
// repeated, mismatched or unknown result among them), it fails, so that the
// consumer applies the events one at a time and settles each on its own.
func (s *Service) RecordPaymentResults(tx db.Tx, ds []Delivered[domain.PaymentResult]) error {
	if len(ds) == 0 {
		return nil
	}
	rs := make([]domain.PaymentResult, len(ds))
	for i, d := range ds {
		annotate(d.Ctx, attribute.String("payout.id", d.Event.PaymentID))
		rs[i] = d.Event
	}
	applied, err := adapters.RecordPaymentResults(ds[0].Ctx, tx, rs)
	if err != nil {
		return err
	}
	if applied != len(rs) {
		return fmt.Errorf("%d of %d payment results did not apply to an ordered item", len(rs)-applied, len(rs))
	}
	return nil
}

// RecordPayeeCorrected marks the application's FAILED item as corrected, so
// that a finance officer may reissue it. A correction that overtook the
// payment's failure waits for it (ErrNotYet); one for an application without
// a failed or ordered item concerns nothing finance holds and is ignored.
func (s *Service) RecordPayeeCorrected(ctx context.Context, tx db.Tx, applicationID string) error {
	status, err := adapters.MarkCorrected(ctx, tx, applicationID)
	if err != nil {
		return err
	}
	if status == domain.ItemOrdered {
		return fmt.Errorf("payee of %s corrected while its payment is still open: %w", applicationID, ErrNotYet)
	}
	return nil
}
