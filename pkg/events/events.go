// Package events builds, encodes and names the events the services publish.
// Every event is an eventsv1.Event envelope; its type is derived from the
// body, and its subject is "aid.<type>".
package events

import (
	"fmt"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/edubureau/studentaid/proto/gen/aid/common/v1"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
)

// SubjectPrefix is the prefix of every event subject; the stream holds "aid.>".
const SubjectPrefix = "aid."

// Event types, versioned. A breaking change to a body gets a new version.
const (
	TypeApplicationSubmitted = "application.submitted.v1"
	TypePayeeCorrected       = "application.payee_corrected.v1"
	TypeSchoolReviewApproved = "schoolreview.approved.v1"
	TypeSchoolReviewRejected = "schoolreview.rejected.v1"
	TypeNoticeObjected       = "schoolreview.notice_objected.v1"
	TypeNoticePassed         = "schoolreview.notice_passed.v1"
	TypeBureauApproved       = "bureaureview.approved.v1"
	TypeBureauRejected       = "bureaureview.rejected.v1"
	TypeItemBatched          = "finance.item_batched.v1"
	TypeItemReturnedToBureau = "finance.item_returned.v1"
	TypeBatchConfirmed       = "finance.batch_confirmed.v1"
	TypePaymentOrdered       = "finance.payment_ordered.v1"
	TypePaymentSucceeded     = "payout.payment_succeeded.v1"
	TypePaymentFailed        = "payout.payment_failed.v1"

	TypeReferenceImported     = "datacomparison.reference_imported.v1"
	TypeComparisonCompleted   = "datacomparison.comparison_completed.v1"
	TypeClueRaised            = "datacomparison.clue_raised.v1"
	TypeClueAssigned          = "datacomparison.clue_assigned.v1"
	TypeClueVerified          = "datacomparison.clue_verified.v1"
	TypeClueDismissed         = "datacomparison.clue_dismissed.v1"
	TypeRefundOpened          = "datacomparison.refund_opened.v1"
	TypeRefundReceiptRecorded = "datacomparison.refund_receipt_recorded.v1"
	TypeRefundClosed          = "datacomparison.refund_closed.v1"
	TypeBackPayOpened         = "datacomparison.back_pay_opened.v1"
)

// TypeSchoolReviewWithdrawn: the school withdrew the application before its
// review decided it.
const TypeSchoolReviewWithdrawn = "schoolreview.withdrawn.v1"

// TypeTrailCheckpointed: the application service signed a checkpoint of its
// trail tree. Published on natsx.CheckpointSubject, outside "aid.>".
const TypeTrailCheckpointed = "trail.checkpointed.v1"

// TypeBatchManifestPart: a slice of a confirmed batch's signed manifest
// (pkg/manifest), written with the batch's confirmation.
const TypeBatchManifestPart = "finance.batch_manifest_part.v1"

// TypeCalendarChanged: the bureau set a year's working calendar, which
// school-review holds (its own prefix, so that the followers of
// "schoolreview.>" — the application service — do not receive it).
const TypeCalendarChanged = "calendar.changed.v1"

// TypeLoanRepaymentRecorded: a repayment or recovery was recorded against a
// loan contract in payout's loan book.
const TypeLoanRepaymentRecorded = "loan.repayment_recorded.v1"

// Subject returns the JetStream subject of an event type.
func Subject(eventType string) string { return SubjectPrefix + eventType }

// Keys are the business keys an event is about.
type Keys struct {
	ApplicationID string
	BatchID       string
	SchoolCode    string
	ProgramCode   string
	Term          string
}

// New returns an event with a fresh time-ordered ID, the current UTC time,
// the actor and keys, and body set as its payload.
func New(at time.Time, actor *commonv1.Actor, keys Keys, body proto.Message) (*eventsv1.Event, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("new event id: %w", err)
	}
	ev := &eventsv1.Event{
		EventId:       id.String(),
		OccurredAt:    timestamppb.New(at.UTC()),
		Actor:         actor,
		ApplicationId: keys.ApplicationID,
		BatchId:       keys.BatchID,
		SchoolCode:    keys.SchoolCode,
		ProgramCode:   keys.ProgramCode,
		Term:          keys.Term,
	}
	if err := setBody(ev, body); err != nil {
		return nil, err
	}
	return ev, nil
}

// MustNew is New for bodies known to be event bodies; it panics only on a
// programming error (an unknown body type) or an exhausted random source.
func MustNew(at time.Time, actor *commonv1.Actor, keys Keys, body proto.Message) *eventsv1.Event {
	ev, err := New(at, actor, keys, body)
	if err != nil {
		panic(err)
	}
	return ev
}

func setBody(ev *eventsv1.Event, body proto.Message) error {
	switch b := body.(type) {
	case *eventsv1.ApplicationSubmitted:
		ev.Type, ev.Body = TypeApplicationSubmitted, &eventsv1.Event_ApplicationSubmitted{ApplicationSubmitted: b}
	case *eventsv1.PayeeCorrected:
		ev.Type, ev.Body = TypePayeeCorrected, &eventsv1.Event_PayeeCorrected{PayeeCorrected: b}
	case *eventsv1.SchoolReviewApproved:
		ev.Type, ev.Body = TypeSchoolReviewApproved, &eventsv1.Event_SchoolReviewApproved{SchoolReviewApproved: b}
	case *eventsv1.SchoolReviewRejected:
		ev.Type, ev.Body = TypeSchoolReviewRejected, &eventsv1.Event_SchoolReviewRejected{SchoolReviewRejected: b}
	case *eventsv1.NoticeObjected:
		ev.Type, ev.Body = TypeNoticeObjected, &eventsv1.Event_NoticeObjected{NoticeObjected: b}
	case *eventsv1.SchoolReviewWithdrawn:
		ev.Type, ev.Body = TypeSchoolReviewWithdrawn, &eventsv1.Event_SchoolReviewWithdrawn{SchoolReviewWithdrawn: b}
	case *eventsv1.NoticePassed:
		ev.Type, ev.Body = TypeNoticePassed, &eventsv1.Event_NoticePassed{NoticePassed: b}
	case *eventsv1.BureauApproved:
		ev.Type, ev.Body = TypeBureauApproved, &eventsv1.Event_BureauApproved{BureauApproved: b}
	case *eventsv1.BureauRejected:
		ev.Type, ev.Body = TypeBureauRejected, &eventsv1.Event_BureauRejected{BureauRejected: b}
	case *eventsv1.ItemBatched:
		ev.Type, ev.Body = TypeItemBatched, &eventsv1.Event_ItemBatched{ItemBatched: b}
	case *eventsv1.ItemReturnedToBureau:
		ev.Type, ev.Body = TypeItemReturnedToBureau, &eventsv1.Event_ItemReturnedToBureau{ItemReturnedToBureau: b}
	case *eventsv1.BatchConfirmed:
		ev.Type, ev.Body = TypeBatchConfirmed, &eventsv1.Event_BatchConfirmed{BatchConfirmed: b}
	case *eventsv1.PaymentOrdered:
		ev.Type, ev.Body = TypePaymentOrdered, &eventsv1.Event_PaymentOrdered{PaymentOrdered: b}
	case *eventsv1.PaymentSucceeded:
		ev.Type, ev.Body = TypePaymentSucceeded, &eventsv1.Event_PaymentSucceeded{PaymentSucceeded: b}
	case *eventsv1.PaymentFailed:
		ev.Type, ev.Body = TypePaymentFailed, &eventsv1.Event_PaymentFailed{PaymentFailed: b}
	case *eventsv1.BatchManifestPart:
		ev.Type, ev.Body = TypeBatchManifestPart, &eventsv1.Event_BatchManifestPart{BatchManifestPart: b}
	case *eventsv1.LoanRepaymentRecorded:
		ev.Type, ev.Body = TypeLoanRepaymentRecorded, &eventsv1.Event_LoanRepaymentRecorded{LoanRepaymentRecorded: b}
	default:
		return setDataComparisonBody(ev, body)
	}
	return nil
}

// setDataComparisonBody sets the bodies of the data office's events.
func setDataComparisonBody(ev *eventsv1.Event, body proto.Message) error {
	switch b := body.(type) {
	case *eventsv1.ReferenceImported:
		ev.Type, ev.Body = TypeReferenceImported, &eventsv1.Event_ReferenceImported{ReferenceImported: b}
	case *eventsv1.ComparisonCompleted:
		ev.Type, ev.Body = TypeComparisonCompleted, &eventsv1.Event_ComparisonCompleted{ComparisonCompleted: b}
	case *eventsv1.ClueRaised:
		ev.Type, ev.Body = TypeClueRaised, &eventsv1.Event_ClueRaised{ClueRaised: b}
	case *eventsv1.ClueAssigned:
		ev.Type, ev.Body = TypeClueAssigned, &eventsv1.Event_ClueAssigned{ClueAssigned: b}
	case *eventsv1.ClueVerified:
		ev.Type, ev.Body = TypeClueVerified, &eventsv1.Event_ClueVerified{ClueVerified: b}
	case *eventsv1.ClueDismissed:
		ev.Type, ev.Body = TypeClueDismissed, &eventsv1.Event_ClueDismissed{ClueDismissed: b}
	case *eventsv1.RefundOpened:
		ev.Type, ev.Body = TypeRefundOpened, &eventsv1.Event_RefundOpened{RefundOpened: b}
	case *eventsv1.RefundReceiptRecorded:
		ev.Type, ev.Body = TypeRefundReceiptRecorded, &eventsv1.Event_RefundReceiptRecorded{RefundReceiptRecorded: b}
	case *eventsv1.RefundClosed:
		ev.Type, ev.Body = TypeRefundClosed, &eventsv1.Event_RefundClosed{RefundClosed: b}
	case *eventsv1.BackPayOpened:
		ev.Type, ev.Body = TypeBackPayOpened, &eventsv1.Event_BackPayOpened{BackPayOpened: b}
	case *eventsv1.TrailCheckpointed:
		ev.Type, ev.Body = TypeTrailCheckpointed, &eventsv1.Event_TrailCheckpointed{TrailCheckpointed: b}
	case *eventsv1.CalendarChanged:
		ev.Type, ev.Body = TypeCalendarChanged, &eventsv1.Event_CalendarChanged{CalendarChanged: b}
	default:
		return fmt.Errorf("events: %T is not an event body", body)
	}
	return nil
}

// Marshal encodes ev deterministically.
func Marshal(ev *eventsv1.Event) ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(ev)
}

// Unmarshal decodes and checks an event: it must have an ID, a type that
// matches its body, and a time.
func Unmarshal(b []byte) (*eventsv1.Event, error) {
	var ev eventsv1.Event
	if err := proto.Unmarshal(b, &ev); err != nil {
		return nil, fmt.Errorf("decode event: %w", err)
	}
	if _, err := uuid.Parse(ev.GetEventId()); err != nil {
		return nil, fmt.Errorf("decode event: bad event id %q", ev.GetEventId())
	}
	if ev.GetOccurredAt() == nil || ev.GetBody() == nil {
		return nil, fmt.Errorf("decode event %s: missing time or body", ev.GetEventId())
	}
	check := &eventsv1.Event{}
	if err := setBody(check, bodyOf(&ev)); err != nil || check.GetType() != ev.GetType() {
		return nil, fmt.Errorf("decode event %s: type %q does not match its body", ev.GetEventId(), ev.GetType())
	}
	return &ev, nil
}

func bodyOf(ev *eventsv1.Event) proto.Message {
	switch b := ev.GetBody().(type) {
	case *eventsv1.Event_ApplicationSubmitted:
		return b.ApplicationSubmitted
	case *eventsv1.Event_PayeeCorrected:
		return b.PayeeCorrected
	case *eventsv1.Event_SchoolReviewApproved:
		return b.SchoolReviewApproved
	case *eventsv1.Event_SchoolReviewRejected:
		return b.SchoolReviewRejected
	case *eventsv1.Event_NoticeObjected:
		return b.NoticeObjected
	case *eventsv1.Event_SchoolReviewWithdrawn:
		return b.SchoolReviewWithdrawn
	case *eventsv1.Event_NoticePassed:
		return b.NoticePassed
	case *eventsv1.Event_BureauApproved:
		return b.BureauApproved
	case *eventsv1.Event_BureauRejected:
		return b.BureauRejected
	case *eventsv1.Event_ItemBatched:
		return b.ItemBatched
	case *eventsv1.Event_ItemReturnedToBureau:
		return b.ItemReturnedToBureau
	case *eventsv1.Event_BatchConfirmed:
		return b.BatchConfirmed
	case *eventsv1.Event_PaymentOrdered:
		return b.PaymentOrdered
	case *eventsv1.Event_PaymentSucceeded:
		return b.PaymentSucceeded
	case *eventsv1.Event_PaymentFailed:
		return b.PaymentFailed
	case *eventsv1.Event_BatchManifestPart:
		return b.BatchManifestPart
	case *eventsv1.Event_LoanRepaymentRecorded:
		return b.LoanRepaymentRecorded
	}
	return dataComparisonBodyOf(ev)
}

func dataComparisonBodyOf(ev *eventsv1.Event) proto.Message {
	switch b := ev.GetBody().(type) {
	case *eventsv1.Event_ReferenceImported:
		return b.ReferenceImported
	case *eventsv1.Event_ComparisonCompleted:
		return b.ComparisonCompleted
	case *eventsv1.Event_ClueRaised:
		return b.ClueRaised
	case *eventsv1.Event_ClueAssigned:
		return b.ClueAssigned
	case *eventsv1.Event_ClueVerified:
		return b.ClueVerified
	case *eventsv1.Event_ClueDismissed:
		return b.ClueDismissed
	case *eventsv1.Event_RefundOpened:
		return b.RefundOpened
	case *eventsv1.Event_RefundReceiptRecorded:
		return b.RefundReceiptRecorded
	case *eventsv1.Event_RefundClosed:
		return b.RefundClosed
	case *eventsv1.Event_BackPayOpened:
		return b.BackPayOpened
	case *eventsv1.Event_TrailCheckpointed:
		return b.TrailCheckpointed
	case *eventsv1.Event_CalendarChanged:
		return b.CalendarChanged
	}
	return nil
}

// Actor returns the actor proto for a user.
func Actor(userID, role, org string) *commonv1.Actor {
	return &commonv1.Actor{UserId: userID, Role: role, Org: org}
}
