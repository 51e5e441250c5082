package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
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

func checkKey(name, v string) error {
	if v == "" || len(v) > maxCodeLen || !utf8.ValidString(v) || strings.TrimSpace(v) != v {
		return natsx.Permanent(fmt.Errorf("event %s %q is empty, too long or malformed", name, v))
	}
	return nil
}

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
	body := ev.GetBureauApproved()
	if body == nil {
		return natsx.Permanent(fmt.Errorf("%s without a body", ev.GetType()))
	}
	if err := checkUUID("application_id", ev.GetApplicationId()); err != nil {
		return err
	}
	for _, k := range [][2]string{{"school_code", ev.GetSchoolCode()}, {"term", ev.GetTerm()}, {"program_code", ev.GetProgramCode()}} {
		if err := checkKey(k[0], k[1]); err != nil {
			return err
		}
	}
	if body.GetAmountFen() <= 0 {
		return natsx.Permanent(fmt.Errorf("approval of %s: amount %d fen is not positive", ev.GetApplicationId(), body.GetAmountFen()))
	}
	funding := body.GetFundingSource()
	if funding == "" {
		if p, ok := catalog.Lookup(ev.GetProgramCode()); ok {
			funding = string(p.Funding)
		}
	}
	if err := checkKey("funding_source", funding); err != nil {
		return err
	}
	for _, u := range []string{body.GetSubmittedBy(), body.GetSchoolReviewer(), body.GetBureauReviewer()} {
		if len(u) > maxUserLen || !utf8.ValidString(u) {
			return natsx.Permanent(fmt.Errorf("approval of %s: malformed user id", ev.GetApplicationId()))
		}
	}
	batchID, added, err := adapters.AddItem(ctx, tx, adapters.NewItem{
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
	})
	if err != nil {
		return err
	}
	if !added {
		s.log.WarnContext(ctx, "repeated approval ignored: the application already has a live item", "application_id", ev.GetApplicationId())
		return nil
	}
	annotate(ctx, attribute.String("batch.id", batchID))
	out, err := events.New(s.now(), systemActor, events.Keys{
		ApplicationID: ev.GetApplicationId(), BatchID: batchID, SchoolCode: ev.GetSchoolCode(),
		ProgramCode: ev.GetProgramCode(), Term: ev.GetTerm(),
	}, &eventsv1.ItemBatched{AmountFen: body.GetAmountFen()})
	if err != nil {
		return err
	}
	return outbox.Append(ctx, tx, out)
}

// RecordPaymentResult applies payout.payment_succeeded or payment_failed:
// the item becomes PAID or FAILED and its batch counts it.
func (s *Service) RecordPaymentResult(ctx context.Context, tx pgx.Tx, ev *eventsv1.Event) error {
	var paymentID, reason string
	var amount int64
	paid := false
	switch {
	case ev.GetPaymentSucceeded() != nil:
		b := ev.GetPaymentSucceeded()
		paymentID, amount, paid = b.GetPaymentId(), b.GetAmountFen(), true
	case ev.GetPaymentFailed() != nil:
		b := ev.GetPaymentFailed()
		paymentID, amount, reason = b.GetPaymentId(), b.GetAmountFen(), b.GetReason()
		if reason == "" || len(reason) > maxCodeLen || !utf8.ValidString(reason) {
			return natsx.Permanent(fmt.Errorf("payment %s failed with a malformed reason", paymentID))
		}
	default:
		return natsx.Permanent(fmt.Errorf("%s is not a payment result", ev.GetType()))
	}
	if err := checkUUID("payment_id", paymentID); err != nil {
		return err
	}
	annotate(ctx, attribute.String("payout.id", paymentID))
	_, err := adapters.RecordPaymentResult(ctx, tx, paymentID, amount, paid, reason)
	if errors.Is(err, adapters.ErrNotFound) || errors.Is(err, adapters.ErrPaymentMismatch) {
		return natsx.Permanent(err)
	}
	return err
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
