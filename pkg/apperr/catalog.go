package apperr

import (
	"fmt"
	"net/http"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Domain is the ErrorInfo domain of every error the services return.
const Domain = "studentaid"

// Reason is an ErrorInfo reason: the stable, machine-readable name of why a
// call failed. Portals code against it; messages may change, reasons do not.
// Every reason a service returns is declared here and listed in Catalog.
type Reason string

// The reasons the platform gives when no rule is named: one per code.
const (
	ReasonInvalidArgument    Reason = "invalid-argument"
	ReasonNotFound           Reason = "not-found"
	ReasonAlreadyExists      Reason = "already-exists"
	ReasonFailedPrecondition Reason = "failed-precondition"
	ReasonPermissionDenied   Reason = "permission-denied"
	ReasonUnauthenticated    Reason = "unauthenticated"
	ReasonUnavailable        Reason = "unavailable"
	ReasonInternal           Reason = "internal"
	ReasonCanceled           Reason = "canceled"
	ReasonDeadlineExceeded   Reason = "deadline-exceeded"
	ReasonResourceExhausted  Reason = "resource-exhausted"
)

// The reasons of the platform's own checks.
const (
	ReasonRoleNotPermitted     Reason = "role-not-permitted"
	ReasonIdempotencyKeyReused Reason = "idempotency-key-reused"
	ReasonOwnSchoolOnly        Reason = "own-school-only"
	ReasonSchoolOfficerOnly    Reason = "school-officer-only"
	ReasonPurposeRequired      Reason = "purpose-required"
)

// The separation-of-duties and state rules of the services.
const (
	ReasonSubmitterCannotReview            Reason = "submitter-cannot-review"
	ReasonSchoolReviewerCannotBureauReview Reason = "school-reviewer-cannot-bureau-review"
	ReasonReviewAlreadyDecided             Reason = "review-already-decided"
	ReasonConfirmerReviewedItem            Reason = "confirmer-reviewed-item"
	ReasonCloseConfirmSameOfficer          Reason = "close-confirm-same-officer"
	ReasonPayeeCorrectionPending           Reason = "payee-correction-pending"
	ReasonNoPendingPayeeCorrection         Reason = "no-pending-payee-correction"
	ReasonPayeeSelfApproval                Reason = "payee-self-approval"
	ReasonPayeeApproverOtherSchool         Reason = "payee-approver-other-school"
	ReasonPayeeApproverRole                Reason = "payee-approver-role"
	ReasonClueClosed                       Reason = "clue-closed"
	ReasonClueNotAssignedToCaller          Reason = "clue-not-assigned-to-caller"
	ReasonClueNotAssigned                  Reason = "clue-not-assigned"
	ReasonRefundAmountOutOfRange           Reason = "refund-amount-out-of-range"
	ReasonClueHasNoPaymentToRecover        Reason = "clue-has-no-payment-to-recover"
	ReasonReceiptNotIntoIntegrityAccount   Reason = "receipt-not-into-integrity-account"
	ReasonReceiptExceedsOutstanding        Reason = "receipt-exceeds-outstanding"
	ReasonRefundClosed                     Reason = "refund-closed"
	ReasonReportUnchanged                  Reason = "report-unchanged"
	ReasonLoanRepaymentExceedsOutstanding  Reason = "loan-repayment-exceeds-outstanding"
	ReasonLoanBankReferenceReused          Reason = "loan-bank-reference-reused"
)

// The rules of the aid policy store and the policy's limits.
const (
	ReasonPolicySelfApproval   Reason = "policy-self-approval"
	ReasonPolicyDigestMismatch Reason = "policy-digest-mismatch"
	ReasonPolicyNotDraft       Reason = "policy-not-draft"
	ReasonPolicyVersionOverlap Reason = "policy-version-overlap"
	ReasonOneOffAlreadyGranted Reason = "one-off-already-granted"
	ReasonNoPolicyInForce      Reason = "no-policy-in-force"
)

// Back-pay (补发) of missed students.
const (
	ReasonBackPayOrderUnusable Reason = "back-pay-order-unusable"
	ReasonMissedClueIncomplete Reason = "missed-clue-incomplete"
)

// Webhooks of the change feed.
const (
	ReasonWebhookDeliveryFailed Reason = "webhook-delivery-failed"
)

// Entry describes one reason: its gRPC code, the HTTP status the REST
// gateway answers with, what it means and what the caller should do.
type Entry struct {
	Reason Reason
	GRPC   codes.Code
	HTTP   int
	Means  string
	Do     string
}

// Catalog lists every reason the services return. docs/api.md lists it too;
// TestAPIDoc fails when the two differ.
var Catalog = []Entry{
	// The platform's generic reasons.
	{ReasonInvalidArgument, codes.InvalidArgument, http.StatusBadRequest,
		"One or more fields of the request are wrong; the BadRequest detail names each field and what is wrong with it.",
		"Show each field violation next to its field; fix and send again. Do not retry unchanged."},
	{ReasonNotFound, codes.NotFound, http.StatusNotFound,
		"The named application, batch, payment, clue or refund does not exist, or is not visible to the caller.",
		"Check the ID; do not retry unchanged."},
	{ReasonAlreadyExists, codes.AlreadyExists, http.StatusConflict,
		"The request would create something that exists already (an application of the student for the program and term, a recorded bank reference); field violations name the conflicting entries when there are several.",
		"Look up the existing record instead of creating another."},
	{ReasonFailedPrecondition, codes.FailedPrecondition, http.StatusBadRequest,
		"The request is well formed but the record is not in a state that allows it (the message says which state it is in).",
		"Reload the record, show its state; retrying unchanged fails again."},
	{ReasonPermissionDenied, codes.PermissionDenied, http.StatusForbidden,
		"The caller may not do this.",
		"Do not retry; another user must do it."},
	{ReasonUnauthenticated, codes.Unauthenticated, http.StatusUnauthorized,
		"No bearer token, or the token is invalid or expired.",
		"Obtain a fresh token and send it as 'Authorization: Bearer <token>'."},
	{ReasonUnavailable, codes.Unavailable, http.StatusServiceUnavailable,
		"The service cannot answer now (a dependency or a key is missing); nothing was changed.",
		"Retry later with backoff, reusing the same idempotency key."},
	{ReasonInternal, codes.Internal, http.StatusInternalServerError,
		"An unexpected failure; the detail is logged with the request's trace, not returned.",
		"Retry once with the same idempotency key; if it persists, report the time and trace ID to the bureau."},
	{ReasonCanceled, codes.Canceled, 499,
		"The caller canceled the request before it finished.",
		"Nothing to do; send again (same idempotency key) if the result is still wanted."},
	{ReasonDeadlineExceeded, codes.DeadlineExceeded, http.StatusGatewayTimeout,
		"The request's deadline passed before it finished; it may or may not have taken effect.",
		"Retry with the same idempotency key: a submission already made is answered, not made again."},
	{ReasonResourceExhausted, codes.ResourceExhausted, http.StatusTooManyRequests,
		"The caller sent too much: a request or message larger than the limit, or too many requests.",
		"Send smaller requests (split the batch), or slow down and retry after the delay given."},

	// The platform's own checks.
	{ReasonRoleNotPermitted, codes.PermissionDenied, http.StatusForbidden,
		"The caller's role may not call this operation (or order payments).",
		"Do not retry; the operation belongs to another role."},
	{ReasonIdempotencyKeyReused, codes.InvalidArgument, http.StatusBadRequest,
		"The idempotency key was used before with a different request body.",
		"Use a new key for a new request; reuse a key only to resend exactly the same request."},
	{ReasonOwnSchoolOnly, codes.PermissionDenied, http.StatusForbidden,
		"A school user named another school's applications.",
		"Send only the caller's own school (the token's organisation)."},
	{ReasonSchoolOfficerOnly, codes.PermissionDenied, http.StatusForbidden,
		"Only a school's aid officer may submit applications.",
		"Submit with an aid officer's token."},
	{ReasonPurposeRequired, codes.InvalidArgument, http.StatusBadRequest,
		"The caller's role reads ID numbers and names in full, and every such read must say why it is made.",
		"Send the 'purpose' field with the reason for the read."},

	// Separation of duties and state rules.
	{ReasonSubmitterCannotReview, codes.PermissionDenied, http.StatusForbidden,
		"The reviewer submitted the application; four eyes are required.",
		"Another reviewer must decide it."},
	{ReasonSchoolReviewerCannotBureauReview, codes.PermissionDenied, http.StatusForbidden,
		"The bureau reviewer reviewed this application at the school.",
		"Another bureau reviewer must decide it."},
	{ReasonReviewAlreadyDecided, codes.FailedPrecondition, http.StatusBadRequest,
		"The school's review already decided the application, so it can no longer be withdrawn.",
		"Reload the application's status; a decided application follows its course."},
	{ReasonConfirmerReviewedItem, codes.PermissionDenied, http.StatusForbidden,
		"The finance officer submitted or reviewed an application of the batch.",
		"Another finance officer must confirm the batch."},
	{ReasonCloseConfirmSameOfficer, codes.PermissionDenied, http.StatusForbidden,
		"The finance officer closed the batch and may not also confirm it.",
		"A second finance officer must confirm it."},
	{ReasonPayeeCorrectionPending, codes.FailedPrecondition, http.StatusBadRequest,
		"A payee correction of the application is already awaiting a decision.",
		"Wait for a school reviewer to approve or reject it before entering another."},
	{ReasonNoPendingPayeeCorrection, codes.FailedPrecondition, http.StatusBadRequest,
		"The named payee correction is not pending (decided already, or never entered).",
		"Reload the application's payee corrections."},
	{ReasonPayeeSelfApproval, codes.PermissionDenied, http.StatusForbidden,
		"The caller entered this payee correction and may not decide it.",
		"Another school reviewer of the school must decide it."},
	{ReasonPayeeApproverOtherSchool, codes.PermissionDenied, http.StatusForbidden,
		"The application belongs to another school.",
		"Only the application's own school's reviewers decide its payee corrections."},
	{ReasonPayeeApproverRole, codes.PermissionDenied, http.StatusForbidden,
		"Only a school reviewer may decide a payee correction.",
		"Decide with a school reviewer's token."},
	{ReasonClueClosed, codes.FailedPrecondition, http.StatusBadRequest,
		"The data-comparison clue is closed.",
		"Nothing more can be done on it; reopen work through a new comparison run."},
	{ReasonClueNotAssignedToCaller, codes.PermissionDenied, http.StatusForbidden,
		"The clue is assigned to another officer.",
		"Only its assignee may work it; ask for it to be reassigned."},
	{ReasonClueNotAssigned, codes.FailedPrecondition, http.StatusBadRequest,
		"The clue is not assigned to anyone yet.",
		"Assign it first."},
	{ReasonRefundAmountOutOfRange, codes.FailedPrecondition, http.StatusBadRequest,
		"The refund amount is not between 1 fen and the payment's amount.",
		"Send an amount in fen within the payment's amount."},
	{ReasonClueHasNoPaymentToRecover, codes.FailedPrecondition, http.StatusBadRequest,
		"The clue names no payment, so there is nothing to recover.",
		"Open refunds only for clues about a paid application."},
	{ReasonReceiptNotIntoIntegrityAccount, codes.FailedPrecondition, http.StatusBadRequest,
		"The receipt was not paid into the integrity account.",
		"Record only receipts into the integrity account."},
	{ReasonReceiptExceedsOutstanding, codes.FailedPrecondition, http.StatusBadRequest,
		"The receipt is larger than what is still outstanding on the refund.",
		"Check the amount; record at most the outstanding amount."},
	{ReasonRefundClosed, codes.FailedPrecondition, http.StatusBadRequest,
		"The refund is closed.",
		"Nothing more can be recorded on it."},
	// The annual report (docs/reporting.md).
	{ReasonReportUnchanged, codes.FailedPrecondition, http.StatusBadRequest,
		"The report's figures are the same as its latest FINAL version.",
		"Nothing to correct: the latest FINAL version stands."},
	// The aid policy store (docs/policy.md).
	{ReasonPolicySelfApproval, codes.PermissionDenied, http.StatusForbidden,
		"A policy administrator tried to approve a policy version they drafted; publishing needs a second person.",
		"Ask another policy administrator to preview and approve the draft."},
	{ReasonPolicyDigestMismatch, codes.FailedPrecondition, http.StatusBadRequest,
		"The SHA-256 restated on approval is not the draft's: the approver read another document than the one stored.",
		"Read the draft again (GetPolicyVersion), check it and approve with its sha256."},
	{ReasonPolicyNotDraft, codes.FailedPrecondition, http.StatusBadRequest,
		"The policy version is already published; published versions never change.",
		"Draft a correction (corrects: <number>) instead."},
	{ReasonPolicyVersionOverlap, codes.FailedPrecondition, http.StatusBadRequest,
		"Another version taking effect from the same term was published since the draft was made, so the draft would overlap it.",
		"Draft the change again as a correction of the version now in force for that term."},
	{ReasonOneOffAlreadyGranted, codes.AlreadyExists, http.StatusConflict,
		"A student of the request already has an application for a one-off grant (once per student) in another term; field violations name each.",
		"Remove those students from the request; a one-off grant is not paid twice."},
	{ReasonNoPolicyInForce, codes.FailedPrecondition, http.StatusBadRequest,
		"No published aid policy or school register is in force for the term.",
		"Check the term; the bureau's policy administrators must publish a policy for it first."},
	{ReasonBackPayOrderUnusable, codes.FailedPrecondition, http.StatusBadRequest,
		"An application names a back-pay order (back_pay_clue_id) that is not the school's open order for that student, program and term, or that another application already fulfils; field violations name each.",
		"Check the order in ListBackPayOrders: submit the student, program and term it names, once. An order not listed yet may still be on its way from the data office; try again in a minute."},
	{ReasonMissedClueIncomplete, codes.FailedPrecondition, http.StatusBadRequest,
		"A missed-student clue (应助未助) is verified by ordering back-pay from a school for a program and term, and this clue does not name all three; nothing was recorded.",
		"Dismiss the clue with a note and raise one that names the school, program and term, then verify that one."},
	{ReasonLoanRepaymentExceedsOutstanding, codes.FailedPrecondition, http.StatusBadRequest,
		"The repayment or recovery is larger than what is still outstanding on the loan contract (the message gives the contract's amount, repaid, recovered and outstanding fen); nothing was recorded.",
		"Check the amount and the contract number against the bank's statement; record at most the outstanding amount."},
	{ReasonLoanBankReferenceReused, codes.AlreadyExists, http.StatusConflict,
		"The bank reference is already recorded against a loan contract for other money (another contract, kind, amount, day or reason; the message says what was recorded); nothing was recorded.",
		"Check the bank reference on the statement; to repeat a request, send exactly the same fields again, which answers the recorded repayment."},

	// Webhooks.
	{ReasonWebhookDeliveryFailed, codes.FailedPrecondition, http.StatusBadRequest,
		"A redelivery of a webhook's dead letter did not get a 2xx from the webhook's URL; the message gives its status or the network error, and the dead letter stays.",
		"Fix the receiving endpoint (reachable, answering 2xx after checking the signature), then redeliver again; or read the changes with ListChanges from the dead letter's after_cursor."},
}

var catalogIndex = func() map[Reason]Entry {
	m := make(map[Reason]Entry, len(Catalog))
	for _, e := range Catalog {
		if _, dup := m[e.Reason]; dup {
			panic(fmt.Sprintf("apperr: reason %q listed twice", e.Reason))
		}
		m[e.Reason] = e
	}
	return m
}()

// Lookup returns the catalog's entry for reason.
func Lookup(reason Reason) (Entry, bool) {
	e, ok := catalogIndex[reason]
	return e, ok
}

// defaultReasons is the reason of an error that names no rule, by code.
var defaultReasons = map[codes.Code]Reason{
	codes.InvalidArgument:    ReasonInvalidArgument,
	codes.NotFound:           ReasonNotFound,
	codes.AlreadyExists:      ReasonAlreadyExists,
	codes.FailedPrecondition: ReasonFailedPrecondition,
	codes.PermissionDenied:   ReasonPermissionDenied,
	codes.Unauthenticated:    ReasonUnauthenticated,
	codes.Unavailable:        ReasonUnavailable,
	codes.Internal:           ReasonInternal,
	codes.Canceled:           ReasonCanceled,
	codes.DeadlineExceeded:   ReasonDeadlineExceeded,
	codes.ResourceExhausted:  ReasonResourceExhausted,
}

// ReasonOf returns the ErrorInfo reason of a status error, "" when it carries
// none.
func ReasonOf(err error) Reason {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return Reason(info.GetReason())
		}
	}
	return ""
}

// CheckStatus reports what is wrong with a failed call's status as the
// catalog sees it: no ErrorInfo, a reason not in the catalog, or a gRPC code
// other than the catalog's for that reason. It returns nil for a good status
// (and for a nil error).
func CheckStatus(err error) error {
	if err == nil {
		return nil
	}
	st := status.Convert(err)
	reason := ReasonOf(err)
	if reason == "" {
		return fmt.Errorf("status %s %q carries no ErrorInfo reason", st.Code(), st.Message())
	}
	e, ok := Lookup(reason)
	if !ok {
		return fmt.Errorf("reason %q (status %s %q) is not in the error catalog (pkg/apperr/catalog.go)", reason, st.Code(), st.Message())
	}
	if e.GRPC != st.Code() {
		return fmt.Errorf("reason %q came with code %s; the catalog says %s", reason, st.Code(), e.GRPC)
	}
	return nil
}

// WithReason returns a status error of code and msg carrying ErrorInfo with
// the code's generic reason.
func WithReason(code codes.Code, msg string) error {
	return withInfo(status.New(code, msg), defaultReasons[code]).Err()
}

// EnsureReason returns the status error err with ErrorInfo carrying its
// code's generic reason when it carries no reason yet (a status made by gRPC
// or the REST gateway themselves, a malformed JSON body for one).
func EnsureReason(err error) error {
	if ReasonOf(err) != "" {
		return err
	}
	st := status.Convert(err)
	if st.Code() == codes.OK {
		return err
	}
	return withInfo(st, defaultReasons[st.Code()]).Err()
}

func withInfo(st *status.Status, reason Reason) *status.Status {
	if reason == "" {
		return st
	}
	if withDetails, err := st.WithDetails(&errdetails.ErrorInfo{Reason: string(reason), Domain: Domain}); err == nil {
		return withDetails
	}
	return st
}
