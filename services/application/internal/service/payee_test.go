package service_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/idnumber"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
	commonv1 "github.com/edubureau/studentaid/proto/gen/aid/common/v1"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
)

// failPayment takes a submitted application of school S001 through the
// later steps' events to a payment the bank returned, and returns its batch.
func (e *env) failPayment(t *testing.T, a *applicationv1.Application) string {
	t.Helper()
	batch := uuid.NewString()
	steps := []*eventsv1.Event{
		downstream(a, schoolReviewer, "", &eventsv1.SchoolReviewApproved{AmountFen: 50000, NoticeEndsAt: timestamppb.New(time.Now().Add(time.Hour))}),
		downstream(a, noticeTimer, "", &eventsv1.NoticePassed{AmountFen: 50000, FundingSource: "government", SubmittedBy: "officer-S001", SchoolReviewer: "rev-1"}),
		downstream(a, bureauReviewer, "", &eventsv1.BureauApproved{AmountFen: 50000, FundingSource: "government", SubmittedBy: "officer-S001", SchoolReviewer: "rev-1", BureauReviewer: "bur-1"}),
		downstream(a, financeSystem, batch, &eventsv1.ItemBatched{AmountFen: 50000}),
		downstream(a, financeOfficer, batch, &eventsv1.PaymentOrdered{PaymentId: "pay-" + a.GetApplicationId(), AmountFen: 50000, Attempt: 1}),
		downstream(a, payoutSystem, batch, &eventsv1.PaymentFailed{PaymentId: "pay-" + a.GetApplicationId(), AmountFen: 50000, Reason: "ACCOUNT_CLOSED"}),
	}
	for _, ev := range steps {
		e.publish(t, ev, ev.GetEventId())
	}
	e.waitFor(t, e.officer("S001"), a.GetApplicationId(), "PAYMENT_FAILED", hasStatus(commonv1.ApplicationStatus_APPLICATION_STATUS_PAYMENT_FAILED))
	return batch
}

// audited counts the audit log's entries of rule for user.
func (e *env) audited(t *testing.T, rule, user string) int {
	t.Helper()
	return e.count(t, `SELECT count(*) FROM audit_log WHERE rule = $1 AND user_id = $2`, rule, user)
}

// TestPayeeCorrectionTakesTwoPeople: an officer's new card waits for a
// school reviewer of the same school who did not enter it; every other
// decider is refused with the rule named and audited; a rejection keeps the
// old card; only an approval publishes application.payee_corrected; the
// trail shows old and new card, masked and by fingerprint, at each step.
func TestPayeeCorrectionTakesTwoPeople(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := context.Background()
	officer := e.officer("S001")
	reviewer := e.client("rev-1", auth.RoleSchoolReviewer, "S001")
	st := newStudent()
	a := submit(t, officer, "S001", boarding(st))[0]
	id := a.GetApplicationId()

	// Before the bank returned anything there is nothing to correct.
	_, err := officer.CorrectPayee(ctx, &applicationv1.CorrectPayeeRequest{ApplicationId: id, BankCardNumber: newStudent().Card, AccountName: st.Name})
	wantCode(t, err, codes.FailedPrecondition)
	e.failPayment(t, a)

	wrongCard := newStudent().Card
	entered, err := officer.CorrectPayee(ctx, &applicationv1.CorrectPayeeRequest{ApplicationId: id, BankCardNumber: wrongCard, AccountName: st.Name})
	if err != nil {
		t.Fatal(err)
	}
	first := entered.GetPendingPayeeCorrection()
	if first.GetCorrectionId() == "" || first.GetBankCardMasked() != idnumber.Mask(wrongCard) || first.GetBankCardFingerprint() != fingerprintOf(wrongCard) ||
		first.GetPreviousBankCardMasked() != idnumber.Mask(st.Card) || first.GetPreviousBankCardFingerprint() != fingerprintOf(st.Card) ||
		first.GetEnteredBy().GetUserId() != "officer-S001" || entered.GetBankCardMasked() != idnumber.Mask(st.Card) {
		t.Fatalf("entered: %v", entered)
	}
	// The reviewer reads it before deciding.
	if got, err := reviewer.GetApplication(ctx, &applicationv1.GetApplicationRequest{ApplicationId: id}); err != nil ||
		got.GetPendingPayeeCorrection().GetCorrectionId() != first.GetCorrectionId() {
		t.Fatalf("reviewer reads the pending correction: %v %v", got, err)
	}
	// It is in the school's queue of corrections to decide, and only it.
	submit(t, officer, "S001", boarding(newStudent()))
	queue := func() []string {
		t.Helper()
		resp, err := reviewer.ListApplications(ctx, &applicationv1.ListApplicationsRequest{SchoolCode: "S001", PendingPayeeCorrection: true})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, a := range resp.GetApplications() {
			ids = append(ids, a.GetApplicationId())
			// Each carries its pending correction, as GetApplication shows it.
			if c := a.GetPendingPayeeCorrection(); c.GetCorrectionId() != first.GetCorrectionId() || c.GetBankCardMasked() != idnumber.Mask(wrongCard) ||
				c.GetPreviousBankCardMasked() != idnumber.Mask(st.Card) || c.GetEnteredBy().GetUserId() != "officer-S001" {
				t.Fatalf("queued %s with correction %v, want %s entered by officer-S001", a.GetApplicationId(), c, first.GetCorrectionId())
			}
		}
		return ids
	}
	if got := queue(); len(got) != 1 || got[0] != id {
		t.Fatalf("pending corrections %v, want only %s", got, id)
	}
	// One pending correction at a time.
	_, err = officer.CorrectPayee(ctx, &applicationv1.CorrectPayeeRequest{ApplicationId: id, BankCardNumber: newStudent().Card, AccountName: st.Name})
	if got := rule(wantCode(t, err, codes.FailedPrecondition)); got != "payee-correction-pending" {
		t.Fatalf("second correction: rule %q", got)
	}

	approve := func(c applicationv1.ApplicationServiceClient, correction string) error {
		_, err := c.ApprovePayeeCorrection(ctx, &applicationv1.ApprovePayeeCorrectionRequest{ApplicationId: id, CorrectionId: correction})
		return err
	}
	refusals := []struct {
		name   string
		client applicationv1.ApplicationServiceClient
		user   string
		code   codes.Code
		rule   string
	}{
		// The officer who entered it, with a reviewer's token.
		{"self-approval", e.client("officer-S001", auth.RoleSchoolReviewer, "S001"), "officer-S001", codes.PermissionDenied, "payee-self-approval"},
		{"reviewer of another school", e.client("rev-9", auth.RoleSchoolReviewer, "S009"), "rev-9", codes.PermissionDenied, "payee-approver-other-school"},
		{"another officer of the school", e.client("officer-2", auth.RoleSchoolOfficer, "S001"), "officer-2", codes.PermissionDenied, "role-not-permitted"},
		{"bureau reviewer", e.client("bur-1", auth.RoleBureauReviewer, auth.OrgBureau), "bur-1", codes.PermissionDenied, "role-not-permitted"},
	}
	for _, r := range refusals {
		err := approve(r.client, first.GetCorrectionId())
		if got := rule(wantCode(t, err, r.code)); got != r.rule {
			t.Errorf("%s: rule %q, want %q", r.name, got, r.rule)
		}
		if n := e.audited(t, r.rule, r.user); n != 1 {
			t.Errorf("%s: %d audit entries, want 1", r.name, n)
		}
	}
	// Approving a correction that is not the pending one.
	err = approve(e.client("rev-2", auth.RoleSchoolReviewer, "S001"), uuid.NewString())
	if got := rule(wantCode(t, err, codes.FailedPrecondition)); got != "no-pending-payee-correction" {
		t.Fatalf("unknown correction: rule %q", got)
	}
	if n := e.audited(t, "no-pending-payee-correction", "rev-2"); n != 1 {
		t.Fatalf("unknown correction: %d audit entries", n)
	}

	// The reviewer rejects the wrong card: the old card stays.
	_, err = reviewer.RejectPayeeCorrection(ctx, &applicationv1.RejectPayeeCorrectionRequest{ApplicationId: id, CorrectionId: first.GetCorrectionId()})
	wantCode(t, err, codes.InvalidArgument)
	rejected, err := reviewer.RejectPayeeCorrection(ctx, &applicationv1.RejectPayeeCorrectionRequest{ApplicationId: id, CorrectionId: first.GetCorrectionId(), Reason: "户名与银行卡不符"})
	if err != nil {
		t.Fatal(err)
	}
	if got := queue(); len(got) != 0 {
		t.Fatalf("a rejected correction is still in the queue: %v", got)
	}
	if rejected.GetBankCardMasked() != idnumber.Mask(st.Card) || rejected.GetPendingPayeeCorrection() != nil {
		t.Fatalf("rejected: %v", rejected)
	}
	err = approve(reviewer, first.GetCorrectionId())
	if got := rule(wantCode(t, err, codes.FailedPrecondition)); got != "no-pending-payee-correction" {
		t.Fatalf("approve a rejected correction: rule %q", got)
	}
	if n := e.count(t, `SELECT count(*) FROM outbox WHERE subject = $1`, events.Subject(events.TypePayeeCorrected)); n != 0 {
		t.Fatalf("%d payee_corrected events before any approval", n)
	}

	// A second correction, approved by the reviewer.
	newCard := newStudent().Card
	entered, err = officer.CorrectPayee(ctx, &applicationv1.CorrectPayeeRequest{ApplicationId: id, BankCardNumber: newCard, AccountName: st.Name})
	if err != nil {
		t.Fatal(err)
	}
	second := entered.GetPendingPayeeCorrection()
	approved, err := reviewer.ApprovePayeeCorrection(ctx, &applicationv1.ApprovePayeeCorrectionRequest{ApplicationId: id, CorrectionId: second.GetCorrectionId()})
	if err != nil {
		t.Fatal(err)
	}
	if approved.GetBankCardMasked() != idnumber.Mask(newCard) || approved.GetPendingPayeeCorrection() != nil {
		t.Fatalf("approved: %v", approved)
	}
	pc := e.outputEvents(t, events.TypePayeeCorrected, 1, func(ev *eventsv1.Event) bool { return ev.GetApplicationId() == id })[0]
	if card, err := e.sealer.Open(pc.GetPayeeCorrected().GetBankCardSealed(), events.BankCardBinding(id)); err != nil || card != newCard {
		t.Fatalf("payee_corrected card: %v", err)
	}
	if pc.GetActor().GetUserId() != "rev-1" || pc.GetPayeeCorrected().GetEnteredBy().GetUserId() != "officer-S001" {
		t.Fatalf("payee_corrected by %v, entered by %v", pc.GetActor(), pc.GetPayeeCorrected().GetEnteredBy())
	}
	// The sealed cards of decided corrections are erased.
	if n := e.count(t, `SELECT count(*) FROM payee_corrections WHERE application_id = $1 AND (bank_card_sealed <> '' OR account_name_sealed <> '')`, id); n != 0 {
		t.Fatalf("%d decided corrections still hold a sealed card", n)
	}

	// The trail: each step with the old and the new card, masked and by fingerprint.
	tr := trailOf(t, e.client("aud-1", auth.RoleAuditor, "AUDIT"), id)
	var steps []*applicationv1.TrailEvent
	for _, x := range tr {
		if strings.HasPrefix(x.GetType(), "application.payee_") {
			steps = append(steps, x)
		}
	}
	want := []struct{ typ, actor, reason string }{
		{"application.payee_correction_entered.v1", "officer-S001", payeeReason(first.GetCorrectionId(), st.Card, wrongCard, "awaiting a school reviewer's approval")},
		{"application.payee_correction_rejected.v1", "rev-1", payeeReason(first.GetCorrectionId(), st.Card, wrongCard, "rejected: 户名与银行卡不符")},
		{"application.payee_correction_entered.v1", "officer-S001", payeeReason(second.GetCorrectionId(), st.Card, newCard, "awaiting a school reviewer's approval")},
		{events.TypePayeeCorrected, "rev-1", payeeReason(second.GetCorrectionId(), st.Card, newCard, "approved")},
	}
	if len(steps) != len(want) {
		t.Fatalf("%d payee steps in the trail, want %d: %v", len(steps), len(want), steps)
	}
	for i, w := range want {
		if steps[i].GetType() != w.typ || steps[i].GetActor().GetUserId() != w.actor || steps[i].GetReason() != w.reason ||
			steps[i].GetStatus() != commonv1.ApplicationStatus_APPLICATION_STATUS_PAYMENT_FAILED {
			t.Errorf("payee step %d: %v\nwant %s by %s: %s", i, steps[i], w.typ, w.actor, w.reason)
		}
	}
	if steps[3].GetEventId() != pc.GetEventId() {
		t.Errorf("the approval's trail entry is event %s, the event is %s", steps[3].GetEventId(), pc.GetEventId())
	}
	if v, err := e.client("aud-1", auth.RoleAuditor, "AUDIT").VerifyTrail(ctx, &applicationv1.VerifyTrailRequest{ApplicationId: id}); err != nil || !v.GetOk() {
		t.Fatalf("verify: %v %v", v, err)
	}
	// Every path that wrote a trail entry above fed the change feed with it.
	checkFeedMirrorsTrail(t, e)
}
