// Package app holds payout's use cases: keeping each application's payee,
// taking in payment orders, paying them through the bank exactly once in
// effect (the pay worker), and reading payments back.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/pii"
	"github.com/edubureau/studentaid/services/payout/internal/adapters"
	"github.com/edubureau/studentaid/services/payout/internal/bank"
	"github.com/edubureau/studentaid/services/payout/internal/domain"
)

// ServiceName is the service's name: its schema, durable consumer and actor.
const ServiceName = "payout"

// systemActor signs the events payout writes: the bank's verdicts.
var systemActor = events.Actor("system:"+ServiceName, string(auth.RoleService), auth.OrgFinance)

// Config is payout's own settings, beyond those every service has.
type Config struct {
	// BankURL is the bank gateway's base URL.
	BankURL string
	// Concurrency is the number of bank calls in flight at once.
	Concurrency int
	// BankTimeout bounds each bank call.
	BankTimeout time.Duration
	// RetryBackoff is the first wait before asking the bank again about a
	// payment whose outcome is unknown; it doubles per attempt up to
	// MaxBackoff.
	RetryBackoff time.Duration
	MaxBackoff   time.Duration
	// ClaimLease is how long a claimed payment stays out of other workers'
	// reach; it must exceed the time from claim to recorded verdict, and it
	// is how soon a payment taken up by a crashed worker is looked up.
	ClaimLease time.Duration
	// PollInterval is how often an idle worker looks for due payments it
	// was not told about (retries after a backoff, other replicas' orders).
	PollInterval time.Duration
}

// Deps are what the use cases and the pay worker need.
type Deps struct {
	Pool *pgxpool.Pool
	Log  *slog.Logger
	// Notify wakes the outbox relay after a commit that wrote events.
	Notify func()
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Tracer trace.Tracer
	// Sealer opens the sealed payee just before a bank call.
	Sealer *pii.Sealer
	// Bank is the gateway payments are paid and looked up through.
	Bank bank.Gateway
	// Metrics count results and bank calls; nil counts without registering.
	Metrics *Metrics
	Config  Config
}

// withDefaults fills the optional collaborators left nil.
func (d Deps) withDefaults() Deps {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Notify == nil {
		d.Notify = func() {}
	}
	if d.Metrics == nil {
		d.Metrics = NewMetrics(nil)
	}
	return d
}

// Errors of the event use cases.
var (
	// ErrPayeeNotYet: a payment order came before the payee it pays; it
	// must wait for the payee.
	ErrPayeeNotYet = errors.New("payee not known yet")
	// ErrAlreadyPaying: the application already has an open or paid
	// payment; a second one could pay twice, so it is refused for good.
	ErrAlreadyPaying = errors.New("already has an open or paid payment")
)

// Service runs payout's event handlers and queries.
type Service struct {
	pool *pgxpool.Pool
}

// New returns payout's use cases over d.Pool.
func New(d Deps) *Service {
	return &Service{pool: d.Pool}
}

// SavePayee keeps the payee an application.submitted or
// application.payee_corrected event describes, sealed as received. The
// newest description (by event time) wins.
func (s *Service) SavePayee(ctx context.Context, tx db.Tx, p domain.Payee) error {
	trace.SpanFromContext(ctx).SetAttributes(attribute.String("application.id", p.ApplicationID))
	return adapters.SavePayee(ctx, tx, p)
}

// AddPayment takes in a finance.payment_ordered event as a PENDING payment
// for the pay worker, with the application's current payee and the trace
// context of ctx. Returns ErrPayeeNotYet for a payee that has not arrived,
// and ErrAlreadyPaying for a second live payment of one application. A
// repeated order of the same payment changes nothing.
func (s *Service) AddPayment(ctx context.Context, tx db.Tx, o domain.Order) error {
	p := newPayment(ctx, o)
	payeeKnown, _, err := adapters.AddPayment(ctx, tx, p)
	if db.IsUniqueViolation(err, adapters.OneLivePaymentPerApplication) {
		return fmt.Errorf("payment %s: application %s %w: %w", o.PaymentID, o.ApplicationID, ErrAlreadyPaying, err)
	}
	if err != nil {
		return err
	}
	if !payeeKnown {
		return fmt.Errorf("payment %s of application %s: %w", o.PaymentID, o.ApplicationID, ErrPayeeNotYet)
	}
	return nil
}

// DeliveredOrder is a payment order with the context of the consumer span
// it arrived in: its business keys go on that span, and the payment
// continues its trace.
type DeliveredOrder struct {
	Ctx   context.Context //nolint:containedctx // read once, for its span and trace context, when the payment is stored
	Order domain.Order
}

// AddPayments takes in several finance.payment_ordered events at once in
// one statement. It is all or nothing: a missing payee (ErrPayeeNotYet) or a
// second live payment of an application fails the whole call, so that the
// consumer applies the events one at a time through AddPayment and settles
// each on its own.
func (s *Service) AddPayments(tx db.Tx, orders []DeliveredOrder) error {
	if len(orders) == 0 {
		return nil
	}
	ps := make([]adapters.NewPayment, len(orders))
	for i, o := range orders {
		ps[i] = newPayment(o.Ctx, o.Order)
	}
	missing, err := adapters.AddPayments(orders[0].Ctx, tx, ps)
	if err != nil {
		return err
	}
	if missing > 0 {
		return fmt.Errorf("%d of %d payment orders: %w", missing, len(ps), ErrPayeeNotYet)
	}
	return nil
}

// newPayment puts the order's business keys on the span in ctx and returns
// the payment it orders, carrying ctx's trace context.
func newPayment(ctx context.Context, o domain.Order) adapters.NewPayment {
	trace.SpanFromContext(ctx).SetAttributes(
		attribute.String("payout.id", o.PaymentID),
		attribute.String("application.id", o.ApplicationID),
		attribute.String("batch.id", o.BatchID),
	)
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, carrier)
	return adapters.NewPayment{Order: o, TraceParent: carrier.Get("traceparent"), TraceState: carrier.Get("tracestate")}
}

// GetPayment returns a payment. Returns NotFound if there is none.
func (s *Service) GetPayment(ctx context.Context, id string) (domain.Payment, error) {
	p, err := adapters.GetPayment(ctx, s.pool, id)
	if errors.Is(err, adapters.ErrNotFound) {
		return domain.Payment{}, apperr.New(apperr.NotFound, "payment not found")
	}
	if err == nil {
		trace.SpanFromContext(ctx).SetAttributes(
			attribute.String("payout.id", p.PaymentID),
			attribute.String("application.id", p.ApplicationID),
			attribute.String("batch.id", p.BatchID),
		)
	}
	return p, err
}

// ListPayments lists payments in order of creation.
func (s *Service) ListPayments(ctx context.Context, f domain.PaymentFilter, after *domain.PaymentCursor, limit int) ([]domain.Payment, bool, error) {
	return adapters.ListPayments(ctx, s.pool, f, after, limit)
}
