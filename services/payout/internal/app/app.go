// Package app holds payout's use cases: keeping each application's payee,
// taking in payment orders, paying them through the bank exactly once in
// effect (the pay worker), and reading payments back.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/natsx"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	"github.com/edubureau/studentaid/services/payout/internal/adapters"
	"github.com/edubureau/studentaid/services/payout/internal/domain"
)

// ServiceName is the service's name: its schema, durable consumer and actor.
const ServiceName = "payout"

// systemActor signs the events payout writes: the bank's verdicts.
var systemActor = events.Actor("system:"+ServiceName, string(auth.RoleService), auth.OrgFinance)

// Limits on values read from events.
const (
	maxMaskedLen = 32
	maxSealedLen = 1024
)

// Service runs payout's event handlers and queries.
type Service struct {
	pool *pgxpool.Pool
	log  *slog.Logger
}

// New returns payout's use cases over pool.
func New(pool *pgxpool.Pool, log *slog.Logger) *Service {
	return &Service{pool: pool, log: log}
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

// SavePayee keeps the payee an application.submitted or
// application.payee_corrected event describes, sealed as received. The
// newest description (by event time) wins.
func (s *Service) SavePayee(ctx context.Context, tx pgx.Tx, ev *eventsv1.Event) error {
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
		return permanentf("%s carries no payee", ev.GetType())
	}
	if err := checkUUID("application_id", ev.GetApplicationId()); err != nil {
		return err
	}
	if len(card) == 0 || len(name) == 0 || len(card) > maxSealedLen || len(name) > maxSealedLen {
		return permanentf("payee of %s: sealed card or account name missing or oversized", ev.GetApplicationId())
	}
	if len(masked) > maxMaskedLen || !utf8.ValidString(masked) {
		return permanentf("payee of %s: malformed masked card", ev.GetApplicationId())
	}
	trace.SpanFromContext(ctx).SetAttributes(attribute.String("application.id", ev.GetApplicationId()))
	return adapters.SavePayee(ctx, tx, adapters.Payee{
		ApplicationID: ev.GetApplicationId(),
		CardSealed:    card,
		NameSealed:    name,
		CardMasked:    masked,
		EventID:       ev.GetEventId(),
		At:            ev.GetOccurredAt().AsTime(),
	})
}

// AddPayment takes in a finance.payment_ordered event as a PENDING payment
// for the pay worker, with the application's current payee and the event's
// trace context. It waits (ErrNotYet) for a payee that has not arrived; a
// repeated order of the same payment changes nothing; a second live payment
// for one application is refused for good, as it could pay twice.
func (s *Service) AddPayment(ctx context.Context, tx pgx.Tx, ev *eventsv1.Event) error {
	p, err := newPayment(ctx, ev)
	if err != nil {
		return err
	}
	payeeKnown, _, err := adapters.AddPayment(ctx, tx, p)
	if db.IsUniqueViolation(err, adapters.OneLivePaymentPerApplication) {
		return natsx.Permanent(fmt.Errorf("payment %s: application %s already has an open or paid payment: %w",
			p.ID, p.ApplicationID, err))
	}
	if err != nil {
		return err
	}
	if !payeeKnown {
		return fmt.Errorf("payment %s: payee of %s not known yet: %w", p.ID, p.ApplicationID, natsx.ErrNotYet)
	}
	return nil
}

// AddPayments takes in several finance.payment_ordered events at once, each
// with its own delivery's trace context, in one statement. It is all or
// nothing: any malformed order, missing payee or second live payment of an
// application fails the whole call, so that the consumer applies the events
// one at a time through AddPayment and settles each on its own.
func (s *Service) AddPayments(tx pgx.Tx, ds []natsx.Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	ps := make([]adapters.NewPayment, len(ds))
	for i, d := range ds {
		p, err := newPayment(d.Ctx, d.Event)
		if err != nil {
			return err
		}
		ps[i] = p
	}
	missing, err := adapters.AddPayments(ds[0].Ctx, tx, ps)
	if err != nil {
		return err
	}
	if missing > 0 {
		return fmt.Errorf("%d of %d payment orders: payee not known yet: %w", missing, len(ps), natsx.ErrNotYet)
	}
	return nil
}

// newPayment checks a payment_ordered event, puts its business keys on the
// span in ctx and returns the payment it orders, carrying ctx's trace context.
func newPayment(ctx context.Context, ev *eventsv1.Event) (adapters.NewPayment, error) {
	body := ev.GetPaymentOrdered()
	if body == nil {
		return adapters.NewPayment{}, permanentf("%s is not a payment order", ev.GetType())
	}
	for _, k := range [][2]string{{"payment_id", body.GetPaymentId()}, {"application_id", ev.GetApplicationId()}, {"batch_id", ev.GetBatchId()}} {
		if err := checkUUID(k[0], k[1]); err != nil {
			return adapters.NewPayment{}, err
		}
	}
	for _, k := range [][2]string{{"school_code", ev.GetSchoolCode()}, {"program_code", ev.GetProgramCode()}, {"term", ev.GetTerm()}} {
		if err := natsx.CheckKey(k[0], k[1]); err != nil {
			return adapters.NewPayment{}, err
		}
	}
	if body.GetAmountFen() <= 0 || body.GetAttempt() < 1 {
		return adapters.NewPayment{}, permanentf("payment %s: amount %d fen or attempt %d out of range", body.GetPaymentId(), body.GetAmountFen(), body.GetAttempt())
	}
	trace.SpanFromContext(ctx).SetAttributes(
		attribute.String("payout.id", body.GetPaymentId()),
		attribute.String("application.id", ev.GetApplicationId()),
		attribute.String("batch.id", ev.GetBatchId()),
	)
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, carrier)
	return adapters.NewPayment{
		ID:            body.GetPaymentId(),
		ApplicationID: ev.GetApplicationId(),
		BatchID:       ev.GetBatchId(),
		SchoolCode:    ev.GetSchoolCode(),
		ProgramCode:   ev.GetProgramCode(),
		Term:          ev.GetTerm(),
		AmountFen:     body.GetAmountFen(),
		Order:         body.GetAttempt(),
		TraceParent:   carrier.Get("traceparent"),
		TraceState:    carrier.Get("tracestate"),
	}, nil
}

// GetPayment returns a payment. Returns NotFound if there is none.
func (s *Service) GetPayment(ctx context.Context, id string) (domain.Payment, error) {
	p, err := adapters.GetPayment(ctx, s.pool, id)
	if errors.Is(err, adapters.ErrNotFound) {
		return domain.Payment{}, apperr.New(apperr.NotFound, "payment not found")
	}
	if err == nil {
		trace.SpanFromContext(ctx).SetAttributes(
			attribute.String("payout.id", p.ID),
			attribute.String("application.id", p.ApplicationID),
			attribute.String("batch.id", p.BatchID),
		)
	}
	return p, err
}

// ListPayments lists payments in order of creation.
func (s *Service) ListPayments(ctx context.Context, f adapters.PaymentFilter, after *adapters.PaymentCursor, limit int) ([]domain.Payment, bool, error) {
	return adapters.ListPayments(ctx, s.pool, f, after, limit)
}
