package app

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"

	"github.com/edubureau/studentaid/pkg/catalog"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/natsx"
	"github.com/edubureau/studentaid/pkg/outbox"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	"github.com/edubureau/studentaid/services/finance-confirmation/internal/adapters"
	"github.com/edubureau/studentaid/services/finance-confirmation/internal/domain"
)

// Limits on keys read from events.
const (
	maxCodeLen = 64
	maxUserLen = 64
)

func checkUUID(name, v string) error {
	if _, err := uuid.Parse(v); err != nil {
		return natsx.Permanent(fmt.Errorf("event %s %q is not a UUID", name, v))
	}
	return nil
}

// AddApproved gathers a bureau-approved application into the OPEN batch of
// its term, program and funding source (creating the batch when none is
// open) and writes finance.item_batched. A repeated approval of an
// application that already has a live item changes nothing.
func (s *Service) AddApproved(ctx context.Context, tx pgx.Tx, ev *eventsv1.Event) error {
	it, err := approvedItem(ev)
	if err != nil {
		return err
	}
	batchID, added, err := adapters.AddItem(ctx, tx, it)
	if err != nil {
		return err
	}
	if !added {
		s.log.WarnContext(ctx, "repeated approval ignored: the application already has a live item", "application_id", ev.GetApplicationId())
		return nil
	}
	annotate(ctx, attribute.String("batch.id", batchID))
	out, err := s.itemBatched(ev, batchID, it.AmountFen)
	if err != nil {
		return err
	}
	return outbox.Append(ctx, tx, out)
}

// approvedItem checks an application.bureau_approved event and returns the
// item it adds.
func approvedItem(ev *eventsv1.Event) (adapters.NewItem, error) {
	body := ev.GetBureauApproved()
	if body == nil {
		return adapters.NewItem{}, natsx.Permanent(fmt.Errorf("%s without a body", ev.GetType()))
	}
	if err := checkUUID("application_id", ev.GetApplicationId()); err != nil {
		return adapters.NewItem{}, err
	}
	for _, k := range [][2]string{{"school_code", ev.GetSchoolCode()}, {"term", ev.GetTerm()}, {"program_code", ev.GetProgramCode()}} {
		if err := natsx.CheckKey(k[0], k[1]); err != nil {
			return adapters.NewItem{}, err
		}
	}
	if body.GetAmountFen() <= 0 {
		return adapters.NewItem{}, natsx.Permanent(fmt.Errorf("approval of %s: amount %d fen is not positive", ev.GetApplicationId(), body.GetAmountFen()))
	}
	funding := body.GetFundingSource()
	if funding == "" {
		if p, ok := catalog.Lookup(ev.GetProgramCode()); ok {
			funding = string(p.Funding)
		}
	}
	if err := natsx.CheckKey("funding_source", funding); err != nil {
		return adapters.NewItem{}, err
	}
	for _, u := range []string{body.GetSubmittedBy(), body.GetSchoolReviewer(), body.GetBureauReviewer()} {
		if len(u) > maxUserLen || !utf8.ValidString(u) {
			return adapters.NewItem{}, natsx.Permanent(fmt.Errorf("approval of %s: malformed user id", ev.GetApplicationId()))
		}
	}
	return adapters.NewItem{
		ApplicationID: ev.GetApplicationId(),
		SchoolCode:    ev.GetSchoolCode(),
		AmountFen:     body.GetAmountFen(),
		Term:          ev.GetTerm(),
		ProgramCode:   ev.GetProgramCode(),
		FundingSource: funding,
		Reviewers: domain.Reviewers{
			SubmittedBy:    body.GetSubmittedBy(),
			SchoolReviewer: body.GetSchoolReviewer(),
			BureauReviewer: body.GetBureauReviewer(),
		},
	}, nil
}

// itemBatched is the finance.item_batched event for an approval ev gathered into batchID.
func (s *Service) itemBatched(ev *eventsv1.Event, batchID string, amountFen int64) (*eventsv1.Event, error) {
	return events.New(s.now(), systemActor, events.Keys{
		ApplicationID: ev.GetApplicationId(), BatchID: batchID, SchoolCode: ev.GetSchoolCode(),
		ProgramCode: ev.GetProgramCode(), Term: ev.GetTerm(),
	}, &eventsv1.ItemBatched{AmountFen: amountFen})
}

// AddApprovedBatch is AddApproved for several approvals at once: the items
// join their OPEN batches (created when missing) and the batches' control
// totals grow in a few set-based statements, and each added item's
// item_batched event continues its own delivery's trace. Any error (a
// malformed event, a concurrent change) fails the whole call, so that the
// consumer applies the events one at a time.
func (s *Service) AddApprovedBatch(tx pgx.Tx, ds []natsx.Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	items := make([]adapters.NewItem, len(ds))
	for i, d := range ds {
		it, err := approvedItem(d.Event)
		if err != nil {
			return err
		}
		items[i] = it
	}
	ctx := ds[0].Ctx
	added, err := adapters.AddItems(ctx, tx, items)
	if err != nil {
		return err
	}
	out := make([]outbox.Traced, 0, len(added))
	for i, d := range ds {
		batchID, ok := added[items[i].ApplicationID]
		if !ok {
			s.log.WarnContext(d.Ctx, "repeated approval ignored: the application already has a live item", "application_id", items[i].ApplicationID)
			continue
		}
		delete(added, items[i].ApplicationID) // a second approval in the same batch is a repeat
		annotate(d.Ctx, attribute.String("batch.id", batchID))
		ev, err := s.itemBatched(d.Event, batchID, items[i].AmountFen)
		if err != nil {
			return err
		}
		out = append(out, outbox.Traced{Ctx: d.Ctx, Event: ev})
	}
	return outbox.AppendTraced(ctx, tx, out...)
}

// RecordPaymentResult applies payout.payment_succeeded or payment_failed:
// the item becomes PAID or FAILED and its batch counts it.
func (s *Service) RecordPaymentResult(ctx context.Context, tx pgx.Tx, ev *eventsv1.Event) error {
	r, err := paymentResult(ctx, ev)
	if err != nil {
		return err
	}
	_, err = adapters.RecordPaymentResult(ctx, tx, r.PaymentID, r.AmountFen, r.Paid, r.Reason)
	if errors.Is(err, adapters.ErrNotFound) || errors.Is(err, adapters.ErrPaymentMismatch) {
		return natsx.Permanent(err)
	}
	return err
}

// RecordPaymentResults is RecordPaymentResult for several results at once,
// in one statement. Unless every result applies to an ORDERED item (a
// repeated, mismatched or unknown result among them), it fails, so that the
// consumer applies the events one at a time and settles each on its own.
func (s *Service) RecordPaymentResults(tx pgx.Tx, ds []natsx.Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	rs := make([]adapters.PaymentResult, len(ds))
	for i, d := range ds {
		r, err := paymentResult(d.Ctx, d.Event)
		if err != nil {
			return err
		}
		rs[i] = r
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

// paymentResult checks a payout.payment_succeeded or payment_failed event
// and returns the result it reports.
func paymentResult(ctx context.Context, ev *eventsv1.Event) (adapters.PaymentResult, error) {
	var r adapters.PaymentResult
	switch {
	case ev.GetPaymentSucceeded() != nil:
		b := ev.GetPaymentSucceeded()
		r = adapters.PaymentResult{PaymentID: b.GetPaymentId(), AmountFen: b.GetAmountFen(), Paid: true}
	case ev.GetPaymentFailed() != nil:
		b := ev.GetPaymentFailed()
		r = adapters.PaymentResult{PaymentID: b.GetPaymentId(), AmountFen: b.GetAmountFen(), Reason: b.GetReason()}
		if r.Reason == "" || len(r.Reason) > maxCodeLen || !utf8.ValidString(r.Reason) {
			return r, natsx.Permanent(fmt.Errorf("payment %s failed with a malformed reason", r.PaymentID))
		}
	default:
		return r, natsx.Permanent(fmt.Errorf("%s is not a payment result", ev.GetType()))
	}
	if err := checkUUID("payment_id", r.PaymentID); err != nil {
		return r, err
	}
	annotate(ctx, attribute.String("payout.id", r.PaymentID))
	return r, nil
}

// RecordPayeeCorrected marks the application's FAILED item as corrected, so
// that a finance officer may reissue it. A correction that overtook the
// payment's failure waits for it (ErrNotYet); one for an application without
// a failed or ordered item concerns nothing finance holds and is ignored.
func (s *Service) RecordPayeeCorrected(ctx context.Context, tx pgx.Tx, ev *eventsv1.Event) error {
	if err := checkUUID("application_id", ev.GetApplicationId()); err != nil {
		return err
	}
	status, err := adapters.MarkCorrected(ctx, tx, ev.GetApplicationId())
	if err != nil {
		return err
	}
	if status == domain.ItemOrdered {
		return fmt.Errorf("payee of %s corrected while its payment is still open: %w", ev.GetApplicationId(), natsx.ErrNotYet)
	}
	return nil
}
