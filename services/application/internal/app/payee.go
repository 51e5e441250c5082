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
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/idnumber"
	"github.com/edubureau/studentaid/pkg/outbox"
	"github.com/edubureau/studentaid/pkg/pii"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	"github.com/edubureau/studentaid/services/application/internal/domain"
)

// Rules a payee correction's refusals name (the ErrorInfo reason, and the
// audit log's rule).
const (
	RulePayeeCorrectionPending   = apperr.ReasonPayeeCorrectionPending
	RuleNoPendingPayeeCorrection = apperr.ReasonNoPendingPayeeCorrection
	RulePayeeSelfApproval        = apperr.ReasonPayeeSelfApproval
	RulePayeeApproverOtherSchool = apperr.ReasonPayeeApproverOtherSchool
	RulePayeeApproverRole        = apperr.ReasonPayeeApproverRole
)

// maxReasonRunes caps a rejection's reason.
const maxReasonRunes = 500

// refuse returns an error of code naming rule, for the caller to act on.
func refuse(code apperr.Code, rule apperr.Reason, format string, args ...any) error {
	return &apperr.Error{Code: code, Rule: rule, Message: fmt.Sprintf(format, args...)}
}

// cardFingerprint is the keyed fingerprint of a card number: its HMAC under
// the service's hashing key, so that cards can be told apart and matched in
// the trail without the number.
func (s *Service) cardFingerprint(card string) string { return s.hasher.Hash(card) }

// payeeStep is what one step of a payee correction did to the locked
// application: the trail entry's kind and reason, the event to publish (nil
// for none) and the correction still pending afterwards.
type payeeStep struct {
	kind    domain.Kind
	reason  string
	event   *eventsv1.Event
	pending *domain.PayeeCorrection
}

// runPayeeStep locks application id and runs step on it for who in one transaction,
// then appends step's trail entry (moving the application through the
// status machine), writes its event to the outbox, and returns the
// application as its caller sees it. NotFound when there is no such
// application; step decides who may see and change it.
func (s *Service) runPayeeStep(ctx context.Context, who auth.Identity, id string, step func(tx pgx.Tx, a *domain.Application, now time.Time) (payeeStep, error)) (View, error) {
	var out View
	published := false
	err := db.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		a, found, err := s.store.GetApplication(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if !found {
			return notFound(id)
		}
		annotate(ctx, a)
		now := s.clock()
		st, err := step(tx, &a, now)
		if err != nil {
			return err
		}
		next, err := domain.Apply(a.State, domain.Change{Kind: st.kind})
		if err != nil {
			return apperr.New(apperr.FailedPrecondition,
				"the payee can only be corrected after the bank returned the payment and before it is ordered again; application %s is %s", id, a.Status)
		}
		var eventID string
		if st.event != nil {
			eventID = st.event.GetEventId()
		} else {
			// Trail-only entries get an ID of their own, as events do.
			u, err := uuid.NewV7()
			if err != nil {
				return fmt.Errorf("trail entry id: %w", err)
			}
			eventID = u.String()
		}
		entry := domain.Chain(a.TrailLength, a.TrailHead, domain.TrailEntry{
			ApplicationID: a.ID, EventID: eventID, Type: string(st.kind), OccurredAt: now,
			ActorUser: who.UserID, ActorRole: string(who.Role), ActorOrg: who.Org,
			Status: next.Status, Reason: st.reason, AmountFen: next.AmountFen, BatchID: next.BatchID,
		})
		applied, err := s.store.ApplyChange(ctx, tx, next, now, appended(headOf(a), entry))
		if err != nil {
			return err
		}
		if !applied {
			return fmt.Errorf("%s on %s: the trail moved while locked", st.kind, a.ID)
		}
		if st.event != nil {
			if err := outbox.Append(ctx, tx, st.event); err != nil {
				return err
			}
			published = true
		}
		a.State, a.UpdatedAt, a.TrailLength, a.TrailHead = next, now, entry.Position, entry.Hash
		out = View{Application: a, Identity: masked(a), PendingPayee: st.pending}
		return nil
	})
	if err != nil {
		return View{}, err
	}
	s.heads.put(out.ID, headOf(out.Application))
	if published {
		s.notify()
	}
	return out, nil
}

// CorrectPayee enters a new bank card and account name for an application
// whose payment failed. The correction waits, sealed, for a school reviewer
// of the same school other than the caller (ApprovePayeeCorrection); the
// trail records the old and the new card, masked and by fingerprint.
//
// Returns InvalidArgument for a bad ID, card or name, NotFound if the
// application does not exist or belongs to another school, and
// FailedPrecondition unless the payment failed, or (rule
// payee-correction-pending) while another correction waits.
func (s *Service) CorrectPayee(ctx context.Context, who auth.Identity, id, card, accountName string) (View, error) {
	var v apperr.Violations
	if err := checkID("application_id", id); err != nil {
		return View{}, err
	}
	if err := pii.ValidateCardNumber(card); err != nil {
		v.Addf("bank_card_number", "%s", cardProblem(err))
	}
	accountName = checkName(&v, "account_name", accountName)
	if err := v.Err(); err != nil {
		return View{}, err
	}
	correctionID, err := uuid.NewV7()
	if err != nil {
		return View{}, fmt.Errorf("new correction id: %w", err)
	}
	c := domain.PayeeCorrection{ID: correctionID.String(), CardMasked: idnumber.Mask(card), CardFingerprint: s.cardFingerprint(card), EnteredBy: who}
	if c.CardSealed, err = s.sealer.Seal(card, pendingCardBinding(c.ID)); err != nil {
		return View{}, err
	}
	if c.AccountNameSealed, err = s.sealer.Seal(accountName, pendingNameBinding(c.ID)); err != nil {
		return View{}, err
	}
	return s.runPayeeStep(ctx, who, id, func(tx pgx.Tx, a *domain.Application, now time.Time) (payeeStep, error) {
		if !visible(who, *a) || who.Role != auth.RoleSchoolOfficer {
			return payeeStep{}, notFound(id)
		}
		if _, pending, err := s.store.PendingPayeeCorrection(ctx, tx, a.ID); err != nil || pending {
			if err != nil {
				return payeeStep{}, err
			}
			return payeeStep{}, refuse(apperr.FailedPrecondition, RulePayeeCorrectionPending,
				"application %s already has a payee correction waiting for a school reviewer; it must be approved or rejected first", id)
		}
		if _, err := domain.Apply(a.State, domain.Change{Kind: domain.KindPayeeCorrectionEntered}); err != nil {
			return payeeStep{}, apperr.New(apperr.FailedPrecondition,
				"the payee can only be corrected after the bank returned the payment; application %s is %s", id, a.Status)
		}
		old, err := s.sealer.Open(a.BankCardSealed, events.BankCardBinding(a.ID))
		if err != nil {
			return payeeStep{}, unsealable(a.ID, "bank card", err)
		}
		c.ApplicationID, c.EnteredAt = a.ID, now
		c.PreviousCardMasked, c.PreviousCardFingerprint = a.BankCardMasked, s.cardFingerprint(old)
		if err := s.store.InsertPayeeCorrection(ctx, tx, c); err != nil {
			return payeeStep{}, err
		}
		return payeeStep{kind: domain.KindPayeeCorrectionEntered, reason: domain.PayeeTrailReason(domain.KindPayeeCorrectionEntered, c, ""), pending: &c}, nil
	})
}

// ApprovePayeeCorrection approves the pending payee correction correctionID
// of application id: the new card replaces the old one, and the
// application.payee_corrected event lets finance reissue the payment to it.
//
// Returns InvalidArgument for bad IDs, NotFound for an unknown application,
// PermissionDenied when the caller is not a school reviewer (rule
// payee-approver-role), not of the application's school
// (payee-approver-other-school) or entered the correction
// (payee-self-approval), and FailedPrecondition when correctionID is not
// pending (no-pending-payee-correction) or the payment is no longer failed.
func (s *Service) ApprovePayeeCorrection(ctx context.Context, who auth.Identity, id, correctionID string) (View, error) {
	return s.decidePayee(ctx, who, id, correctionID, true, "")
}

// RejectPayeeCorrection rejects the pending payee correction correctionID of
// application id with reason; the application keeps its card. Errors as
// ApprovePayeeCorrection, and InvalidArgument without a reason.
func (s *Service) RejectPayeeCorrection(ctx context.Context, who auth.Identity, id, correctionID, reason string) (View, error) {
	return s.decidePayee(ctx, who, id, correctionID, false, reason)
}

func (s *Service) decidePayee(ctx context.Context, who auth.Identity, id, correctionID string, approve bool, reason string) (View, error) {
	var v apperr.Violations
	if err := checkID("application_id", id); err != nil {
		return View{}, err
	}
	if err := checkID("correction_id", correctionID); err != nil {
		return View{}, err
	}
	if !approve {
		reason = checkText(&v, "reason", reason, maxReasonRunes, true)
	}
	if err := v.Err(); err != nil {
		return View{}, err
	}
	return s.runPayeeStep(ctx, who, id, func(tx pgx.Tx, a *domain.Application, now time.Time) (payeeStep, error) {
		c, pending, err := s.store.PendingPayeeCorrection(ctx, tx, a.ID)
		if err != nil {
			return payeeStep{}, err
		}
		if err := domain.CheckPayeeApprover(c, a.SchoolCode, who); err != nil {
			return payeeStep{}, approverRefusal(err, id)
		}
		if !pending || c.ID != correctionID {
			return payeeStep{}, refuse(apperr.FailedPrecondition, RuleNoPendingPayeeCorrection,
				"correction %s of application %s is not waiting for a decision; read the application for its pending correction", correctionID, id)
		}
		if !approve {
			if err := s.store.DecidePayeeCorrection(ctx, tx, c.ID, false, who, now, reason); err != nil {
				return payeeStep{}, err
			}
			return payeeStep{kind: domain.KindPayeeCorrectionRejected, reason: domain.PayeeTrailReason(domain.KindPayeeCorrectionRejected, c, reason)}, nil
		}
		if _, err := domain.Apply(a.State, domain.Change{Kind: domain.KindPayeeCorrected}); err != nil {
			return payeeStep{}, apperr.New(apperr.FailedPrecondition,
				"application %s is %s: a payee correction takes effect only while the payment is failed; reject this one", id, a.Status)
		}
		ev, err := s.applyPayee(ctx, tx, a, c, who, now)
		if err != nil {
			return payeeStep{}, err
		}
		return payeeStep{kind: domain.KindPayeeCorrected, reason: domain.PayeeTrailReason(domain.KindPayeeCorrected, c, ""), event: ev}, nil
	})
}

// applyPayee makes the approved correction c the payee of the locked
// application a, erases it from the pending corrections, and returns the
// application.payee_corrected event to publish. The card and the name are
// sealed anew for the application's row.
func (s *Service) applyPayee(ctx context.Context, tx pgx.Tx, a *domain.Application, c domain.PayeeCorrection, who auth.Identity, now time.Time) (*eventsv1.Event, error) {
	card, err := s.sealer.Open(c.CardSealed, pendingCardBinding(c.ID))
	if err != nil {
		return nil, unsealable(a.ID, "corrected bank card", err)
	}
	name, err := s.sealer.Open(c.AccountNameSealed, pendingNameBinding(c.ID))
	if err != nil {
		return nil, unsealable(a.ID, "corrected account name", err)
	}
	cardSealed, err := s.sealer.Seal(card, events.BankCardBinding(a.ID))
	if err != nil {
		return nil, err
	}
	nameSealed, err := s.sealer.Seal(name, events.AccountNameBinding(a.ID))
	if err != nil {
		return nil, err
	}
	if err := s.store.UpdatePayee(ctx, tx, a.ID, c.CardMasked, cardSealed, nameSealed); err != nil {
		return nil, err
	}
	if err := s.store.DecidePayeeCorrection(ctx, tx, c.ID, true, who, now, ""); err != nil {
		return nil, err
	}
	a.BankCardMasked, a.BankCardSealed, a.AccountNameSealed = c.CardMasked, cardSealed, nameSealed
	return events.New(now, events.Actor(who.UserID, string(who.Role), who.Org),
		events.Keys{ApplicationID: a.ID, BatchID: a.BatchID, SchoolCode: a.SchoolCode, ProgramCode: a.ProgramCode, Term: a.Term},
		&eventsv1.PayeeCorrected{BankCardSealed: cardSealed, AccountNameSealed: nameSealed, BankCardMasked: c.CardMasked,
			EnteredBy: events.Actor(c.EnteredBy.UserID, string(c.EnteredBy.Role), c.EnteredBy.Org)})
}

// approverRefusal is the PermissionDenied answer to a refusal of
// domain.CheckPayeeApprover.
func approverRefusal(err error, id string) error {
	switch {
	case errors.Is(err, domain.ErrPayeeSelfApproval):
		return apperr.Denied(RulePayeeSelfApproval, "you entered this payee correction of application %s; another school reviewer of your school must decide it", id)
	case errors.Is(err, domain.ErrPayeeApproverOtherSchool):
		return apperr.Denied(RulePayeeApproverOtherSchool, "application %s belongs to another school; only its own school's reviewers decide its payee corrections", id)
	default:
		return apperr.Denied(RulePayeeApproverRole, "only a school reviewer may decide a payee correction")
	}
}
