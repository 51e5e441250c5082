package ports

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/manifest"
	"github.com/edubureau/studentaid/pkg/natsx"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	"github.com/edubureau/studentaid/services/payout/internal/app"
	"github.com/edubureau/studentaid/services/payout/internal/domain"
)

// Subjects are the events payout follows: the payee of each application,
// finance's signed batch manifests (the header in batch_confirmed, then the
// parts) and finance's payment orders, which the manifests prove.
var Subjects = []string{
	events.Subject(events.TypeApplicationSubmitted),
	events.Subject(events.TypePayeeCorrected),
	events.Subject(events.TypeBatchConfirmed),
	events.Subject(events.TypeBatchManifestPart),
	events.Subject(events.TypePaymentOrdered),
}

// Limits on values read from events.
const (
	maxMaskedLen = 32
	maxSealedLen = 1024
)

// Consumer is payout's durable consumer: the events of Subjects, applied by
// the use cases in a.
func Consumer(a *app.Service) *natsx.Consumer {
	h := &eventHandler{app: a}
	return &natsx.Consumer{Subjects: Subjects, Handle: h.Handle, HandleBatch: h.HandleBatch,
		// A refusal is counted once, when its event is dead-lettered.
		OnDeadLetter: func(_ *eventsv1.Event, err error) { a.CountRefusal(err) }}
}

// eventHandler applies payees and payment orders.
type eventHandler struct {
	app *app.Service
}

// Handle applies ev inside tx. It returns natsx.ErrNotYet for an order whose
// manifest or payee has not arrived, or a part before its manifest header,
// and a natsx.Permanent error for an event that can never apply: malformed,
// unproven by a verified manifest, a manifest that does not verify, or a
// second live payment of an application.
func (h *eventHandler) Handle(ctx context.Context, tx pgx.Tx, ev *eventsv1.Event) error {
	switch ev.GetType() {
	case events.TypeBatchConfirmed:
		if err := checkUUID("batch_id", ev.GetBatchId()); err != nil {
			return err
		}
		m, err := manifest.HeaderOf(ev)
		if err != nil {
			return natsx.Permanent(domain.Refuse(domain.RefusedManifestMalformed, "%w", err))
		}
		return classify(h.app.SaveManifestHeader(ctx, tx, m, ev.GetEventId()))
	case events.TypeBatchManifestPart:
		if err := checkUUID("batch_id", ev.GetBatchId()); err != nil {
			return err
		}
		index, items, err := manifest.PartOf(ev)
		if err != nil {
			return natsx.Permanent(domain.Refuse(domain.RefusedManifestPart, "%w", err))
		}
		return classify(h.app.SaveManifestPart(ctx, tx, ev.GetBatchId(), index, items, ev.GetEventId()))
	case events.TypeApplicationSubmitted, events.TypePayeeCorrected:
		p, err := payeeOf(ev)
		if err != nil {
			return err
		}
		return classify(h.app.SavePayee(ctx, tx, p))
	case events.TypePaymentOrdered:
		o, err := orderOf(ev)
		if err != nil {
			return err
		}
		return classify(h.app.AddPayment(ctx, tx, o))
	}
	return natsx.Permanent(fmt.Errorf("payout does not consume %s", ev.GetType()))
}

// HandleBatch applies a fetched batch of new events in stream order inside
// tx: each run of payment orders is taken in by one statement, payee events
// one by one between them, so a payee that arrives before an order in the
// same batch is stored before it. Any error rolls the batch back and the
// consumer applies its events singly through Handle.
func (h *eventHandler) HandleBatch(_ context.Context, tx pgx.Tx, ds []natsx.Delivery) error {
	var orders []app.DeliveredOrder
	for _, d := range ds {
		if d.Event.GetType() == events.TypePaymentOrdered {
			o, err := orderOf(d.Event)
			if err != nil {
				return err
			}
			orders = append(orders, app.DeliveredOrder{Ctx: d.Ctx, Order: o})
			continue
		}
		if err := classify(h.app.AddPayments(tx, orders)); err != nil {
			return err
		}
		orders = orders[:0]
		if err := h.Handle(d.Ctx, tx, d.Event); err != nil {
			return err
		}
	}
	return classify(h.app.AddPayments(tx, orders))
}

// classify maps a use case's error to the consumer's: natsx.ErrNotYet to
// retry later, natsx.Permanent for never, anything else to retry.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, app.ErrPayeeNotYet), errors.Is(err, app.ErrManifestNotYet):
		return fmt.Errorf("%w: %w", err, natsx.ErrNotYet)
	case errors.Is(err, domain.ErrRefused), errors.Is(err, app.ErrAlreadyPaying):
		return natsx.Permanent(err)
	default:
		return err
	}
}

func permanentf(format string, args ...any) error {
	return natsx.Permanent(fmt.Errorf(format, args...))
}

func checkUUID(name, v string) error {
	if _, err := uuid.Parse(v); err != nil || len(v) != 36 {
		return permanentf("event %s %q is not a UUID", name, v)
	}
	return nil
}

// payeeOf reads the payee an application.submitted or
// application.payee_corrected event describes.
func payeeOf(ev *eventsv1.Event) (domain.Payee, error) {
	var card, name []byte
	var masked string
	switch {
	case ev.GetApplicationSubmitted() != nil:
		b := ev.GetApplicationSubmitted()
		card, name, masked = b.GetBankCardSealed(), b.GetAccountNameSealed(), b.GetBankCardMasked()
	case ev.GetPayeeCorrected() != nil:
		b := ev.GetPayeeCorrected()
		card, name, masked = b.GetBankCardSealed(), b.GetAccountNameSealed(), b.GetBankCardMasked()
	default:
		return domain.Payee{}, permanentf("%s carries no payee", ev.GetType())
	}
	if err := checkUUID("application_id", ev.GetApplicationId()); err != nil {
		return domain.Payee{}, err
	}
	if len(card) == 0 || len(name) == 0 || len(card) > maxSealedLen || len(name) > maxSealedLen {
		return domain.Payee{}, permanentf("payee of %s: sealed card or account name missing or oversized", ev.GetApplicationId())
	}
	if len(masked) > maxMaskedLen || !utf8.ValidString(masked) {
		return domain.Payee{}, permanentf("payee of %s: malformed masked card", ev.GetApplicationId())
	}
	return domain.Payee{
		ApplicationID: ev.GetApplicationId(),
		CardSealed:    card,
		NameSealed:    name,
		CardMasked:    masked,
		EventID:       ev.GetEventId(),
		At:            ev.GetOccurredAt().AsTime(),
	}, nil
}

// orderOf reads the payment a finance.payment_ordered event orders.
func orderOf(ev *eventsv1.Event) (domain.Order, error) {
	body := ev.GetPaymentOrdered()
	if body == nil {
		return domain.Order{}, permanentf("%s is not a payment order", ev.GetType())
	}
	for _, k := range [][2]string{{"payment_id", body.GetPaymentId()}, {"application_id", ev.GetApplicationId()}, {"batch_id", ev.GetBatchId()}} {
		if err := checkUUID(k[0], k[1]); err != nil {
			return domain.Order{}, err
		}
	}
	for _, k := range [][2]string{{"school_code", ev.GetSchoolCode()}, {"program_code", ev.GetProgramCode()}, {"term", ev.GetTerm()}} {
		if err := natsx.CheckKey(k[0], k[1]); err != nil {
			return domain.Order{}, err
		}
	}
	if body.GetAmountFen() <= 0 || body.GetAttempt() < 1 {
		return domain.Order{}, permanentf("payment %s: amount %d fen or attempt %d out of range", body.GetPaymentId(), body.GetAmountFen(), body.GetAttempt())
	}
	return domain.Order{
		PaymentID:     body.GetPaymentId(),
		ApplicationID: ev.GetApplicationId(),
		BatchID:       ev.GetBatchId(),
		SchoolCode:    ev.GetSchoolCode(),
		ProgramCode:   ev.GetProgramCode(),
		Term:          ev.GetTerm(),
		AmountFen:     body.GetAmountFen(),
		Attempt:       body.GetAttempt(),
		// Checked against finance's keys by the use case.
		ReissueKeyID:     body.GetReissueKeyId(),
		ReissueSignature: body.GetReissueSignature(),
	}, nil
}
