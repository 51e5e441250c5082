// Package app holds payout's use cases: keeping each application's payee,
// taking in payment orders, paying them through the bank exactly once in
// effect (the pay worker; a loan opens a contract with the bank instead of
// crediting the card), reading payments back, and keeping the loan book.
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
	"github.com/edubureau/studentaid/pkg/manifest"
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
	// Verifier holds finance's public keys: a manifest or reissue is
	// accepted only under one of them.
	Verifier *manifest.Verifier
	Config   Config
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
	// ErrManifestNotYet: an order, or a manifest part, came before the
	// manifest that proves it; it must wait.
	ErrManifestNotYet = errors.New("manifest not known yet")
)

// Service runs payout's event handlers and queries.
type Service struct {
	pool     *pgxpool.Pool
	verifier *manifest.Verifier
	metrics  *Metrics
	now      func() time.Time
	notify   func()
}

// New returns payout's use cases over d.Pool.
func New(d Deps) *Service {
	d = d.withDefaults()
	return &Service{pool: d.Pool, verifier: d.Verifier, metrics: d.Metrics, now: d.Now, notify: d.Notify}
}

// CountRefusal counts err in aid_payout_orders_refused_total if it is a
// refusal, and reports whether it was.
func (s *Service) CountRefusal(err error) bool { return s.metrics.CountRefusal(err) }

// SaveManifestHeader verifies the signed header of a confirmed batch's
// manifest and stores it. Returns a domain.RefusedError for a header signed
// by an unknown key, whose signature fails, that is malformed, or that
// differs from the one the batch already has.
func (s *Service) SaveManifestHeader(ctx context.Context, tx db.Tx, h manifest.Header, eventID string) error {
	trace.SpanFromContext(ctx).SetAttributes(attribute.String("batch.id", h.ID))
	if err := s.verifier.Verify(h); err != nil {
		switch {
		case errors.Is(err, manifest.ErrUnknownKey):
			return domain.Refuse(domain.RefusedManifestUnknownKey, "manifest of batch %s: %w", h.ID, err)
		case errors.Is(err, manifest.ErrBadSignature):
			return domain.Refuse(domain.RefusedManifestSignature, "manifest of batch %s: %w", h.ID, err)
		}
		return domain.Refuse(domain.RefusedManifestMalformed, "manifest of batch %s: %w", h.ID, err)
	}
	err := adapters.SaveManifestHeader(ctx, tx, h, eventID)
	if errors.Is(err, adapters.ErrManifestConflict) {
		return domain.Refuse(domain.RefusedManifestConflict, "manifest of batch %s: %w", h.ID, err)
	}
	return err
}

// SaveManifestPart checks a manifest part against its batch's verified
// header and stores its items; the part that completes the manifest, if
// the parts add up to the header's control totals, marks it verified.
// Returns ErrManifestNotYet before the header, and a domain.RefusedError
// for a part that is not the header's or totals that disagree.
func (s *Service) SaveManifestPart(ctx context.Context, tx db.Tx, batchID string, index int, items []manifest.Item, eventID string) error {
	trace.SpanFromContext(ctx).SetAttributes(attribute.String("batch.id", batchID), attribute.Int("manifest.part", index))
	h, err := adapters.LockedManifestHeader(ctx, tx, batchID)
	if errors.Is(err, adapters.ErrNotFound) {
		return fmt.Errorf("part %d of batch %s: %w", index, batchID, ErrManifestNotYet)
	}
	if err != nil {
		return err
	}
	if err := h.CheckPart(index, items); err != nil {
		return domain.Refuse(domain.RefusedManifestPart, "%w", err)
	}
	inserted, t, err := adapters.SaveManifestPart(ctx, tx, batchID, index, items, eventID)
	if db.IsUniqueViolation(err, adapters.ManifestItemKey) {
		return domain.Refuse(domain.RefusedManifestPart, "part %d of batch %s lists an application of another part: %w", index, batchID, err)
	}
	if err != nil || !inserted || t.Parts < len(h.PartDigests) {
		return err
	}
	if t.Count != h.ControlCount || t.SumFen != h.ControlSumFen {
		return domain.Refuse(domain.RefusedManifestTotals, "batch %s: the parts hold %d items / %d fen, the signed header %d / %d",
			batchID, t.Count, t.SumFen, h.ControlCount, h.ControlSumFen)
	}
	return adapters.MarkManifestVerified(ctx, tx, batchID)
}

// checkReissue verifies finance's signature over a reissued order; a first
// order needs none.
func (s *Service) checkReissue(o domain.Order) error {
	if o.Attempt == 1 {
		return nil
	}
	err := s.verifier.VerifyReissue(manifest.Reissue{
		BatchID: o.BatchID, ApplicationID: o.ApplicationID, PaymentID: o.PaymentID, AmountFen: o.AmountFen, Attempt: o.Attempt,
	}, o.ReissueKeyID, o.ReissueSignature)
	if err != nil {
		return domain.Refuse(domain.RefusedReissueSignature, "reissued payment %s of application %s: %w", o.PaymentID, o.ApplicationID, err)
	}
	return nil
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
// context of ctx, once the order is proven: its batch's verified manifest
// lists the application with the order's amount (and, for a first order,
// its payment ID), and a reissue carries finance's signature. Returns
// ErrManifestNotYet or ErrPayeeNotYet for an order that came before its
// manifest or payee, and a domain.RefusedError for an unproven order or a
// second live payment of one application (ErrAlreadyPaying). A repeated
// order of the same payment changes nothing.
func (s *Service) AddPayment(ctx context.Context, tx db.Tx, o domain.Order) error {
	p := newPayment(ctx, o)
	if err := s.checkReissue(o); err != nil {
		return err
	}
	entry, err := adapters.ManifestEntry(ctx, tx, o.BatchID, o.ApplicationID)
	if err != nil {
		return err
	}
	if err := o.CheckAgainst(entry); err != nil {
		if errors.Is(err, domain.ErrManifestNotYet) {
			return fmt.Errorf("%w: %w", ErrManifestNotYet, err)
		}
		return err
	}
	payeeKnown, _, err := adapters.AddPayment(ctx, tx, p)
	if db.IsUniqueViolation(err, adapters.OneLivePaymentPerApplication) {
		return &domain.RefusedError{Reason: domain.RefusedAlreadyPaid,
			Err: fmt.Errorf("payment %s: application %s %w: %w", o.PaymentID, o.ApplicationID, ErrAlreadyPaying, err)}
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
// one statement, with the same proof as AddPayment. It is all or nothing: a
// missing payee (ErrPayeeNotYet), an order not proven by a verified manifest,
// a bad reissue signature or a second live payment of an application fails
// the whole call, so that the consumer applies the events one at a time
// through AddPayment and settles (and counts) each on its own.
func (s *Service) AddPayments(tx db.Tx, orders []DeliveredOrder) error {
	if len(orders) == 0 {
		return nil
	}
	ps := make([]adapters.NewPayment, len(orders))
	for i, o := range orders {
		if err := s.checkReissue(o.Order); err != nil {
			return err
		}
		ps[i] = newPayment(o.Ctx, o.Order)
	}
	missing, unproven, err := adapters.AddPayments(orders[0].Ctx, tx, ps)
	if err != nil {
		return err
	}
	if unproven > 0 {
		return fmt.Errorf("%d of %d payment orders not proven by a verified manifest: %w", unproven, len(ps), ErrManifestNotYet)
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
