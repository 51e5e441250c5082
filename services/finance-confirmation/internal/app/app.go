// Package app holds finance-confirmation's use cases: gathering approved
// items into batches, confirming, closing and returning, reissuing failed
// payments, and recording payment outcomes. Each runs in one transaction
// that also writes the events describing it to the outbox.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/manifest"
	"github.com/edubureau/studentaid/pkg/outbox"
	commonv1 "github.com/edubureau/studentaid/proto/gen/aid/common/v1"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	"github.com/edubureau/studentaid/services/finance-confirmation/internal/adapters"
	"github.com/edubureau/studentaid/services/finance-confirmation/internal/domain"
)

// ServiceName is the service's name: its schema, durable consumer and actor.
const ServiceName = "finance-confirmation"

// RuleConfirmerReviewedItem names the separation-of-duties rule that keeps a
// finance officer from ordering payment of an item they submitted or reviewed.
const RuleConfirmerReviewedItem = apperr.ReasonConfirmerReviewedItem

// RuleCloserConfirms names the separation-of-duties rule that closing and
// confirming a batch take two finance officers.
const RuleCloserConfirms = apperr.ReasonCloseConfirmSameOfficer

// RuleConfirmerRole names the rule that only domain.ConfirmerRole orders
// payments; it is the platform's rule for a role refused a method.
const RuleConfirmerRole = apperr.ReasonRoleNotPermitted

// systemActor signs the events finance writes on its own (batching).
var systemActor = events.Actor("system:"+ServiceName, string(auth.RoleService), auth.OrgFinance)

// Deps are what the use cases need.
type Deps struct {
	Pool *pgxpool.Pool
	// Log receives the use cases' notes; nil discards them.
	Log *slog.Logger
	// Notify wakes the outbox relay after a commit that wrote events.
	Notify func()
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Signer signs each confirmed batch's manifest and each reissued order
	// with finance's key: payout pays nothing else.
	Signer *manifest.Signer
}

// Service runs the use cases against PostgreSQL.
type Service struct {
	pool   *pgxpool.Pool
	log    *slog.Logger
	notify func()
	now    func() time.Time
	signer *manifest.Signer
}

// New returns a Service.
func New(d Deps) *Service {
	s := &Service{pool: d.Pool, log: d.Log, notify: d.Notify, now: d.Now, signer: d.Signer}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.notify == nil {
		s.notify = func() {}
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// clock returns the current time in UTC.
func (s *Service) clock() time.Time { return s.now().UTC() }

func actorOf(id auth.Identity) *commonv1.Actor {
	return events.Actor(id.UserID, string(id.Role), id.Org)
}

func batchKeys(b domain.Batch) events.Keys {
	return events.Keys{BatchID: b.ID, ProgramCode: b.ProgramCode, Term: b.Term}
}

func itemKeys(b domain.Batch, applicationID, school string) events.Keys {
	return events.Keys{ApplicationID: applicationID, BatchID: b.ID, SchoolCode: school, ProgramCode: b.ProgramCode, Term: b.Term}
}

func annotate(ctx context.Context, kv ...attribute.KeyValue) {
	trace.SpanFromContext(ctx).SetAttributes(kv...)
}

func batchAttrs(b domain.Batch) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("batch.id", b.ID),
		attribute.String("program.code", b.ProgramCode),
		attribute.String("term", b.Term),
	}
}

// confirmerError turns domain.CheckConfirmer's refusal into what the officer
// sees; next follows the application they handled in the message.
func confirmerError(err error, who auth.Identity, next string) error {
	if involved, ok := errors.AsType[*domain.InvolvedError](err); ok {
		return apperr.Denied(RuleConfirmerReviewedItem, "you submitted or reviewed application %s%s", involved.ApplicationID, next)
	}
	if errors.Is(err, domain.ErrNotConfirmer) {
		return apperr.Denied(RuleConfirmerRole, "role %s does not order payments", who.Role)
	}
	return err
}

// errBatchNotFound is what a caller sees for an unknown batch.
func errBatchNotFound() error { return apperr.New(apperr.NotFound, "batch not found") }

// transitionError turns a refused domain transition into what the officer sees.
func transitionError(err error) error {
	var totals *domain.TotalsError
	switch {
	case errors.As(err, &totals):
		return apperr.New(apperr.FailedPrecondition, "%s", totals.Error())
	case errors.Is(err, domain.ErrEmptyBatch):
		return apperr.New(apperr.FailedPrecondition, "the batch holds no items and cannot be confirmed")
	case errors.Is(err, domain.ErrNotCorrected):
		return apperr.New(apperr.FailedPrecondition, "the payment can be reissued only after the school corrected the payee")
	case errors.Is(err, domain.ErrReasonRequired):
		v := apperr.Violations{}
		v.Addf("reason", "give the reason in 1 to %d characters", domain.MaxReasonRunes)
		return v.Err()
	case errors.Is(err, domain.ErrIllegalTransition), errors.Is(err, domain.ErrInvalidAmount):
		return apperr.New(apperr.FailedPrecondition, "%s", err.Error())
	}
	return err
}

// inTx runs fn in a transaction and wakes the relay after a commit.
func (s *Service) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	if err := db.InTx(ctx, s.pool, fn); err != nil {
		return err
	}
	s.notify()
	return nil
}

// GetBatch returns a batch. Returns NotFound if there is none.
func (s *Service) GetBatch(ctx context.Context, batchID string) (domain.Batch, error) {
	b, err := adapters.GetBatch(ctx, s.pool, batchID)
	if errors.Is(err, adapters.ErrNotFound) {
		return domain.Batch{}, errBatchNotFound()
	}
	if err == nil {
		annotate(ctx, batchAttrs(b)...)
	}
	return b, err
}

// ListBatches lists batches newest first.
func (s *Service) ListBatches(ctx context.Context, f domain.BatchFilter, after *domain.BatchCursor, limit int) ([]domain.Batch, bool, error) {
	return adapters.ListBatches(ctx, s.pool, f, after, limit)
}

// ListItems lists a batch's items. Returns NotFound for an unknown batch.
func (s *Service) ListItems(ctx context.Context, batchID string, status domain.ItemStatus, afterApplicationID string, limit int) ([]domain.Item, bool, error) {
	if _, err := s.GetBatch(ctx, batchID); err != nil {
		return nil, false, err
	}
	return adapters.ListItems(ctx, s.pool, batchID, status, afterApplicationID, limit)
}

// CloseBatch stops an OPEN batch from taking items. Returns NotFound or
// FailedPrecondition (not open).
func (s *Service) CloseBatch(ctx context.Context, who auth.Identity, batchID string) (domain.Batch, error) {
	var out domain.Batch
	err := db.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		b, err := adapters.LockBatch(ctx, tx, batchID)
		if errors.Is(err, adapters.ErrNotFound) {
			return errBatchNotFound()
		}
		if err != nil {
			return err
		}
		annotate(ctx, batchAttrs(b)...)
		if err := b.Close(who); err != nil {
			return transitionError(err)
		}
		if err := adapters.CloseBatch(ctx, tx, b); err != nil {
			return fmt.Errorf("close batch %s: %w", b.ID, err)
		}
		out = b
		return nil
	})
	return out, err
}

// ConfirmBatch confirms a batch whose control totals are the ones the
// officer quotes and orders payment of every pending item: the batch, the
// items and the events (batch_confirmed with the signed manifest header, the
// manifest's parts, and one payment_ordered per item) commit in one
// transaction. Returns NotFound, FailedPrecondition (totals
// changed, empty, already confirmed) or PermissionDenied (the officer may
// not order payment of the items: domain.CheckConfirmer).
func (s *Service) ConfirmBatch(ctx context.Context, who auth.Identity, batchID string, count, sumFen int64) (domain.Batch, error) {
	var out domain.Batch
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		b, err := adapters.LockBatch(ctx, tx, batchID)
		if errors.Is(err, adapters.ErrNotFound) {
			return errBatchNotFound()
		}
		if err != nil {
			return err
		}
		annotate(ctx, batchAttrs(b)...)
		now := s.clock()
		if err := b.Confirm(who, count, sumFen, now); err != nil {
			if errors.Is(err, domain.ErrCloserConfirms) {
				return apperr.Denied(RuleCloserConfirms, "you closed batch %s; a second finance officer must confirm it", b.ID)
			}
			return transitionError(err)
		}
		// Who may confirm is decided over exactly the items the confirmation
		// ordered; a refusal rolls the ordering back with the transaction.
		items, err := adapters.ConfirmBatch(ctx, tx, b)
		if err != nil {
			return err
		}
		if err := domain.CheckConfirmer(who, items...); err != nil {
			return confirmerError(err, who, " in this batch; another finance officer must confirm it")
		}
		if err := b.CheckOrdered(items); err != nil {
			return err
		}
		evs, err := s.confirmationEvents(now, actorOf(who), b, items)
		if err != nil {
			return err
		}
		if err := outbox.Append(ctx, tx, evs...); err != nil {
			return err
		}
		out = b
		return nil
	})
	if err == nil {
		s.log.InfoContext(ctx, "batch confirmed", "batch_id", out.ID, "control_count", out.ControlCount,
			"control_sum_fen", out.ControlSumFen, "confirmed_by", who.UserID)
	}
	return out, err
}

// confirmationEvents are the events of b's confirmation: batch_confirmed
// with the manifest's signed header, the manifest's parts, and one
// payment_ordered per item, in that order, so that payout holds the
// verified manifest before the orders it proves arrive.
func (s *Service) confirmationEvents(now time.Time, actor *commonv1.Actor, b domain.Batch, items []domain.Item) ([]*eventsv1.Event, error) {
	entries := make([]manifest.Item, len(items))
	for i, it := range items {
		entries[i] = manifest.Item{ApplicationID: it.ApplicationID, PaymentID: it.PaymentID, AmountFen: it.AmountFen}
	}
	header, parts, err := manifest.Build(manifest.Batch{
		ID: b.ID, ProgramCode: b.ProgramCode, Term: b.Term, FundingSource: b.FundingSource,
		ControlCount: b.ControlCount, ControlSumFen: b.ControlSumFen,
	}, entries, s.signer)
	if err != nil {
		return nil, fmt.Errorf("sign the manifest of batch %s: %w", b.ID, err)
	}
	evs := make([]*eventsv1.Event, 0, 1+len(parts)+len(items))
	ev, err := events.New(now, actor, batchKeys(b), &eventsv1.BatchConfirmed{
		ControlCount: b.ControlCount, ControlSumFen: b.ControlSumFen, FundingSource: b.FundingSource,
		Manifest: manifest.HeaderProto(header),
	})
	if err != nil {
		return nil, err
	}
	evs = append(evs, ev)
	for i, p := range parts {
		ev, err := events.New(now, actor, batchKeys(b), manifest.PartProto(i, p))
		if err != nil {
			return nil, err
		}
		evs = append(evs, ev)
	}
	for _, it := range items {
		ev, err := events.New(now, actor, itemKeys(b, it.ApplicationID, it.SchoolCode), &eventsv1.PaymentOrdered{
			PaymentId: it.PaymentID, AmountFen: it.AmountFen, Attempt: 1,
		})
		if err != nil {
			return nil, err
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

// ReturnItem sends a PENDING item of an unconfirmed batch back to the
// bureau and takes it out of the batch's control totals. Returns NotFound,
// InvalidArgument (no reason) or FailedPrecondition.
func (s *Service) ReturnItem(ctx context.Context, who auth.Identity, batchID, applicationID, reason string) (domain.Batch, error) {
	var out domain.Batch
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		b, err := adapters.LockBatch(ctx, tx, batchID)
		if errors.Is(err, adapters.ErrNotFound) {
			return errBatchNotFound()
		}
		if err != nil {
			return err
		}
		annotate(ctx, append(batchAttrs(b), attribute.String("application.id", applicationID))...)
		it, err := adapters.LockItem(ctx, tx, batchID, applicationID)
		if errors.Is(err, adapters.ErrNotFound) {
			return apperr.New(apperr.NotFound, "the batch holds no item for application %s", applicationID)
		}
		if err != nil {
			return err
		}
		annotate(ctx, attribute.String("school.code", it.SchoolCode))
		if b.Status == domain.BatchConfirmed {
			return apperr.New(apperr.FailedPrecondition, "the batch is already confirmed; its items can no longer be returned")
		}
		if err := it.Return(reason); err != nil {
			return transitionError(err)
		}
		if err := b.RemoveItem(it.AmountFen); err != nil {
			return transitionError(err)
		}
		if err := adapters.ReturnItem(ctx, tx, it); err != nil {
			return fmt.Errorf("return item: %w", err)
		}
		if err := adapters.SaveTotals(ctx, tx, b); err != nil {
			return fmt.Errorf("return item: %w", err)
		}
		ev, err := events.New(s.clock(), actorOf(who), itemKeys(b, it.ApplicationID, it.SchoolCode), &eventsv1.ItemReturnedToBureau{
			Reason: it.Reason, SchoolReviewer: it.SchoolReviewer, SubmittedBy: it.SubmittedBy,
		})
		if err != nil {
			return err
		}
		out = b
		return outbox.Append(ctx, tx, ev)
	})
	return out, err
}

// ReissuePayment orders a FAILED item's payment again, under a new payment
// ID with the next attempt number, once the school corrected the payee; the
// order carries finance's signature, as no manifest lists its payment ID.
// Returns NotFound, FailedPrecondition or PermissionDenied (the officer may
// not order payment of the item: domain.CheckConfirmer).
func (s *Service) ReissuePayment(ctx context.Context, who auth.Identity, batchID, applicationID string) (domain.Item, error) {
	var out domain.Item
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// Item before batch: the order payment results lock them in.
		it, err := adapters.LockItem(ctx, tx, batchID, applicationID)
		if errors.Is(err, adapters.ErrNotFound) {
			return apperr.New(apperr.NotFound, "the batch holds no item for application %s", applicationID)
		}
		if err != nil {
			return err
		}
		b, err := adapters.LockBatch(ctx, tx, batchID)
		if err != nil {
			return err
		}
		annotate(ctx, append(batchAttrs(b), attribute.String("application.id", applicationID), attribute.String("school.code", it.SchoolCode))...)
		if err := domain.CheckConfirmer(who, it); err != nil {
			return confirmerError(err, who, "; another finance officer must reissue its payment")
		}
		paymentID := uuid.NewString()
		if err := it.Reissue(paymentID); err != nil {
			return transitionError(err)
		}
		if err := b.RecordReissued(); err != nil {
			return transitionError(err)
		}
		if err := adapters.ReissueItem(ctx, tx, it); err != nil {
			return fmt.Errorf("reissue: %w", err)
		}
		if err := adapters.SaveFailedCount(ctx, tx, b); err != nil {
			return fmt.Errorf("reissue: %w", err)
		}
		annotate(ctx, attribute.String("payout.id", paymentID))
		// The reissue is not in the batch's manifest under its new payment
		// ID; finance's signature over it is its proof.
		keyID, sig, err := s.signer.SignReissue(manifest.Reissue{
			BatchID: b.ID, ApplicationID: it.ApplicationID, PaymentID: it.PaymentID, AmountFen: it.AmountFen, Attempt: it.Attempt,
		})
		if err != nil {
			return fmt.Errorf("sign the reissue of %s: %w", it.ApplicationID, err)
		}
		ev, err := events.New(s.clock(), actorOf(who), itemKeys(b, it.ApplicationID, it.SchoolCode), &eventsv1.PaymentOrdered{
			PaymentId: it.PaymentID, AmountFen: it.AmountFen, Attempt: it.Attempt,
			ReissueKeyId: keyID, ReissueSignature: sig,
		})
		if err != nil {
			return err
		}
		out = it
		return outbox.Append(ctx, tx, ev)
	})
	return out, err
}
