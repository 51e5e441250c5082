package service_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/idnumber"
	"github.com/edubureau/studentaid/pkg/natsx"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
	commonv1 "github.com/edubureau/studentaid/proto/gen/aid/common/v1"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
)

var (
	schoolReviewer = events.Actor("rev-1", "school_reviewer", "S001")
	noticeTimer    = events.Actor("system:school-review", "service", "S001")
	bureauReviewer = events.Actor("bur-1", "bureau_reviewer", auth.OrgBureau)
	financeOfficer = events.Actor("fin-1", "finance_officer", auth.OrgFinance)
	financeSystem  = events.Actor("system:finance-confirmation", "service", auth.OrgFinance)
	payoutSystem   = events.Actor("system:payout", "service", auth.OrgFinance)
)

func hasStatus(s commonv1.ApplicationStatus) func(*applicationv1.Application) bool {
	return func(a *applicationv1.Application) bool { return a.GetStatus() == s }
}

func trailOf(t *testing.T, c applicationv1.ApplicationServiceClient, id string) []*applicationv1.TrailEvent {
	t.Helper()
	tr, err := c.GetTrail(context.Background(), &applicationv1.GetTrailRequest{ApplicationId: id})
	if err != nil {
		t.Fatalf("trail %s: %v", id, err)
	}
	return tr.GetEvents()
}

// TestLifecycleToPaid feeds every later step's events through JetStream and
// follows one application from submission to payment, through a bank return
// and a payee correction, with an early event and a duplicate on the way.
func TestLifecycleToPaid(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := context.Background()
	officer := e.officer("S001")
	auditor := e.client("aud-1", auth.RoleAuditor, "AUDIT")
	st := newStudent()
	got := submit(t, officer, "S001", hsGrant(st), boarding(newStudent()))
	a, marker := got[0], got[1]
	id := a.GetApplicationId()
	batch := uuid.NewString()

	// notice_passed arrives before the approval it follows: it waits.
	passed := downstream(a, noticeTimer, "", &eventsv1.NoticePassed{HardshipLevel: "difficult", AmountFen: 100000,
		FundingSource: "government", SubmittedBy: "officer-S001", SchoolReviewer: "rev-1", Stage: "high_school"})
	e.publish(t, passed, passed.GetEventId())
	// An event after it in the stream, for another application: once that is
	// applied, the early event has been tried.
	markerApproved := downstream(marker, schoolReviewer, "", &eventsv1.SchoolReviewApproved{AmountFen: 50000})
	e.publish(t, markerApproved, markerApproved.GetEventId())
	e.waitFor(t, officer, marker.GetApplicationId(), "IN_NOTICE", hasStatus(commonv1.ApplicationStatus_APPLICATION_STATUS_IN_NOTICE))
	if cur, err := officer.GetApplication(ctx, &applicationv1.GetApplicationRequest{ApplicationId: id}); err != nil ||
		cur.GetStatus() != commonv1.ApplicationStatus_APPLICATION_STATUS_SUBMITTED || len(trailOf(t, officer, id)) != 1 {
		t.Fatalf("early notice_passed was applied before the approval: %v %v", cur, err)
	}

	approved := downstream(a, schoolReviewer, "", &eventsv1.SchoolReviewApproved{HardshipLevel: "difficult", AmountFen: 100000,
		NoticeEndsAt: timestamppb.New(time.Now().Add(5 * 24 * time.Hour)), Reason: "家庭经济困难"})
	e.publish(t, approved, approved.GetEventId())
	cur := e.waitFor(t, officer, id, "SCHOOL_APPROVED", hasStatus(commonv1.ApplicationStatus_APPLICATION_STATUS_SCHOOL_APPROVED))
	if cur.GetAmountFen() != 100000 || cur.GetHardshipLevel() != "difficult" {
		t.Fatalf("after approval: %v", cur)
	}

	// The bureau's approval, delivered three times: JetStream drops the
	// repeat with the same message ID, the inbox drops the re-published one.
	bureauApproved := downstream(a, bureauReviewer, "", &eventsv1.BureauApproved{AmountFen: 100000, FundingSource: "government",
		SubmittedBy: "officer-S001", SchoolReviewer: "rev-1", BureauReviewer: "bur-1", Reason: "核实无误"})
	e.publish(t, bureauApproved, bureauApproved.GetEventId())
	e.publish(t, bureauApproved, bureauApproved.GetEventId())
	e.publish(t, bureauApproved, bureauApproved.GetEventId()+"-republished")
	batched := downstream(a, financeSystem, batch, &eventsv1.ItemBatched{AmountFen: 100000})
	e.publish(t, batched, batched.GetEventId())
	cur = e.waitFor(t, officer, id, "batched", func(x *applicationv1.Application) bool { return x.GetBatchId() == batch })
	if cur.GetStatus() != commonv1.ApplicationStatus_APPLICATION_STATUS_BUREAU_APPROVED {
		t.Fatalf("after batching: %v", cur)
	}

	ordered1 := downstream(a, financeOfficer, batch, &eventsv1.PaymentOrdered{PaymentId: "pay-1", AmountFen: 100000, Attempt: 1})
	failed := downstream(a, payoutSystem, batch, &eventsv1.PaymentFailed{PaymentId: "pay-1", AmountFen: 100000, Reason: "ACCOUNT_CLOSED"})
	e.publish(t, ordered1, ordered1.GetEventId())
	e.publish(t, failed, failed.GetEventId())
	cur = e.waitFor(t, officer, id, "PAYMENT_FAILED", hasStatus(commonv1.ApplicationStatus_APPLICATION_STATUS_PAYMENT_FAILED))
	if cur.GetStatusReason() != "ACCOUNT_CLOSED" {
		t.Fatalf("after the bank return: %v", cur)
	}

	// The school corrects the payee.
	newCard := newStudent().Card
	_, err := officer.CorrectPayee(ctx, &applicationv1.CorrectPayeeRequest{ApplicationId: id, BankCardNumber: newCard[:18] + "x", AccountName: st.Name})
	wantCode(t, err, codes.InvalidArgument)
	_, err = e.officer("S009").CorrectPayee(ctx, &applicationv1.CorrectPayeeRequest{ApplicationId: id, BankCardNumber: newCard, AccountName: st.Name})
	wantCode(t, err, codes.NotFound)
	entered, err := officer.CorrectPayee(ctx, &applicationv1.CorrectPayeeRequest{ApplicationId: id, BankCardNumber: newCard, AccountName: st.Name})
	if err != nil {
		t.Fatal(err)
	}
	pending := entered.GetPendingPayeeCorrection()
	if entered.GetBankCardMasked() != idnumber.Mask(st.Card) || pending.GetBankCardMasked() != idnumber.Mask(newCard) ||
		entered.GetStatus() != commonv1.ApplicationStatus_APPLICATION_STATUS_PAYMENT_FAILED {
		t.Fatalf("entered: %v", entered)
	}
	// A school reviewer of the school approves it: only now does it take effect.
	corrected, err := e.client("rev-1", auth.RoleSchoolReviewer, "S001").ApprovePayeeCorrection(ctx,
		&applicationv1.ApprovePayeeCorrectionRequest{ApplicationId: id, CorrectionId: pending.GetCorrectionId()})
	if err != nil {
		t.Fatal(err)
	}
	if corrected.GetBankCardMasked() != idnumber.Mask(newCard) || corrected.GetPendingPayeeCorrection() != nil ||
		corrected.GetStatus() != commonv1.ApplicationStatus_APPLICATION_STATUS_PAYMENT_FAILED {
		t.Fatalf("corrected: %v", corrected)
	}
	pc := e.outputEvents(t, events.TypePayeeCorrected, 1, func(ev *eventsv1.Event) bool { return ev.GetApplicationId() == id })[0]
	if card, err := e.sealer.Open(pc.GetPayeeCorrected().GetBankCardSealed(), events.BankCardBinding(id)); err != nil || card != newCard {
		t.Fatalf("payee_corrected card %q %v", card, err)
	}
	if name, err := e.sealer.Open(pc.GetPayeeCorrected().GetAccountNameSealed(), events.AccountNameBinding(id)); err != nil || name != st.Name {
		t.Fatalf("payee_corrected account name: %v", err)
	}
	if pc.GetBatchId() != batch || pc.GetPayeeCorrected().GetBankCardMasked() != idnumber.Mask(newCard) || pc.GetActor().GetUserId() != "rev-1" ||
		pc.GetPayeeCorrected().GetEnteredBy().GetUserId() != "officer-S001" {
		t.Fatalf("payee_corrected %v", pc)
	}

	// Reissued and paid.
	ordered2 := downstream(a, financeOfficer, batch, &eventsv1.PaymentOrdered{PaymentId: "pay-2", AmountFen: 100000, Attempt: 2})
	paid := downstream(a, payoutSystem, batch, &eventsv1.PaymentSucceeded{PaymentId: "pay-2", AmountFen: 100000, BankRef: "RCB-0001"})
	// The success overtakes its order: it waits.
	e.publish(t, paid, paid.GetEventId())
	e.publish(t, ordered2, ordered2.GetEventId())
	cur = e.waitFor(t, officer, id, "PAID", hasStatus(commonv1.ApplicationStatus_APPLICATION_STATUS_PAID))
	if cur.GetAmountFen() != 100000 || cur.GetBatchId() != batch || cur.GetStatusReason() != "" {
		t.Fatalf("paid: %v", cur)
	}

	// The full trail, in order, once per event.
	S := func(s string) commonv1.ApplicationStatus {
		return commonv1.ApplicationStatus(commonv1.ApplicationStatus_value["APPLICATION_STATUS_"+s])
	}
	want := []struct {
		ev     *eventsv1.Event
		typ    string
		status commonv1.ApplicationStatus
		amount int64
		batch  string
		reason string
		actor  string
	}{
		{nil, events.TypeApplicationSubmitted, S("SUBMITTED"), 0, "", "", "officer-S001"},
		{approved, events.TypeSchoolReviewApproved, S("IN_NOTICE"), 100000, "", "家庭经济困难", "rev-1"},
		{passed, events.TypeNoticePassed, S("SCHOOL_APPROVED"), 100000, "", "", "system:school-review"},
		{bureauApproved, events.TypeBureauApproved, S("BUREAU_APPROVED"), 100000, "", "核实无误", "bur-1"},
		{batched, events.TypeItemBatched, S("BUREAU_APPROVED"), 100000, batch, "", "system:finance-confirmation"},
		{ordered1, events.TypePaymentOrdered, S("CONFIRMED"), 100000, batch, "", "fin-1"},
		{failed, events.TypePaymentFailed, S("PAYMENT_FAILED"), 100000, batch, "ACCOUNT_CLOSED", "system:payout"},
		{nil, "application.payee_correction_entered.v1", S("PAYMENT_FAILED"), 100000, batch,
			payeeReason(pending.GetCorrectionId(), st.Card, newCard, "awaiting a school reviewer's approval"), "officer-S001"},
		{pc, events.TypePayeeCorrected, S("PAYMENT_FAILED"), 100000, batch,
			payeeReason(pending.GetCorrectionId(), st.Card, newCard, "approved"), "rev-1"},
		{ordered2, events.TypePaymentOrdered, S("CONFIRMED"), 100000, batch, "", "fin-1"},
		{paid, events.TypePaymentSucceeded, S("PAID"), 100000, batch, "", "system:payout"},
	}
	tr := trailOf(t, auditor, id)
	if len(tr) != len(want) {
		for _, x := range tr {
			t.Logf("%d %s %s", x.GetPosition(), x.GetType(), x.GetStatus())
		}
		t.Fatalf("trail has %d entries, want %d", len(tr), len(want))
	}
	prev := strings.Repeat("0", 64)
	for i, w := range want {
		x := tr[i]
		if x.GetPosition() != int64(i+1) || x.GetType() != w.typ || x.GetStatus() != w.status || x.GetAmountFen() != w.amount ||
			x.GetBatchId() != w.batch || x.GetReason() != w.reason || x.GetActor().GetUserId() != w.actor || x.GetPrevHash() != prev {
			t.Errorf("trail[%d] = %v", i, x)
		}
		if w.ev != nil && (x.GetEventId() != w.ev.GetEventId() || !x.GetOccurredAt().AsTime().Equal(w.ev.GetOccurredAt().AsTime().Truncate(time.Microsecond))) {
			t.Errorf("trail[%d] event %s at %v, want %s at %v", i, x.GetEventId(), x.GetOccurredAt().AsTime(), w.ev.GetEventId(), w.ev.GetOccurredAt().AsTime())
		}
		prev = x.GetHash()
	}
	for _, c := range []applicationv1.ApplicationServiceClient{auditor, e.client("bur-1", auth.RoleBureauReviewer, auth.OrgBureau), e.client("d-1", auth.RoleDataOfficer, auth.OrgBureau)} {
		v, err := c.VerifyTrail(ctx, &applicationv1.VerifyTrailRequest{ApplicationId: id})
		if err != nil || !v.GetOk() || v.GetLength() != 11 || v.GetFirstBadPosition() != 0 || v.GetProblem() != "" {
			t.Fatalf("verify: %v %v", v, err)
		}
	}

	// An impossible event (a rejection after payment) is dead-lettered and changes nothing.
	late := downstream(a, bureauReviewer, "", &eventsv1.BureauRejected{Reason: "too late"})
	e.publish(t, late, late.GetEventId())
	dead := e.deadLetter(t, late.GetEventId())
	if !strings.Contains(dead.Headers().Get(natsx.HeaderError), "impossible") {
		t.Fatalf("dead letter error %q", dead.Headers().Get(natsx.HeaderError))
	}
	if cur, err := officer.GetApplication(ctx, &applicationv1.GetApplicationRequest{ApplicationId: id}); err != nil ||
		cur.GetStatus() != commonv1.ApplicationStatus_APPLICATION_STATUS_PAID || len(trailOf(t, officer, id)) != 11 {
		t.Fatalf("impossible event changed the application: %v %v", cur, err)
	}
	// Every path that wrote a trail entry above fed the change feed with it.
	checkFeedMirrorsTrail(t, e)
}

// TestObjectionReturnAndRejection takes an application back and forth: an
// objection during the notice, a return from finance, then the bureau's rejection.
func TestObjectionReturnAndRejection(t *testing.T) {
	t.Parallel()
	e := start(t)
	officer := e.officer("S001")
	a := submit(t, officer, "S001", boarding(newStudent()))[0]
	id := a.GetApplicationId()
	batch := uuid.NewString()
	evs := []*eventsv1.Event{
		downstream(a, schoolReviewer, "", &eventsv1.SchoolReviewApproved{AmountFen: 50000}),
		downstream(a, schoolReviewer, "", &eventsv1.NoticeObjected{Reason: "实名举报"}),
		downstream(a, schoolReviewer, "", &eventsv1.SchoolReviewApproved{AmountFen: 50000, Reason: "复核属实困难"}),
		downstream(a, noticeTimer, "", &eventsv1.NoticePassed{AmountFen: 50000}),
		downstream(a, bureauReviewer, "", &eventsv1.BureauApproved{AmountFen: 50000}),
		downstream(a, financeSystem, batch, &eventsv1.ItemBatched{AmountFen: 50000}),
		downstream(a, financeOfficer, batch, &eventsv1.ItemReturnedToBureau{Reason: "与学籍不符"}),
	}
	for _, ev := range evs {
		e.publish(t, ev, ev.GetEventId())
	}
	cur := e.waitFor(t, officer, id, "returned", func(x *applicationv1.Application) bool {
		return x.GetStatus() == commonv1.ApplicationStatus_APPLICATION_STATUS_SCHOOL_APPROVED && len(trailOf(t, officer, id)) == 8
	})
	if cur.GetBatchId() != "" || cur.GetStatusReason() != "与学籍不符" {
		t.Fatalf("after return: %v", cur)
	}
	rejected := downstream(a, bureauReviewer, "", &eventsv1.BureauRejected{Reason: "学籍不符"})
	e.publish(t, rejected, rejected.GetEventId())
	cur = e.waitFor(t, officer, id, "BUREAU_REJECTED", hasStatus(commonv1.ApplicationStatus_APPLICATION_STATUS_BUREAU_REJECTED))
	if cur.GetStatusReason() != "学籍不符" {
		t.Fatalf("rejected: %v", cur)
	}
	var types []string
	for _, x := range trailOf(t, officer, id) {
		types = append(types, x.GetType()+"→"+strings.TrimPrefix(x.GetStatus().String(), "APPLICATION_STATUS_"))
	}
	want := []string{
		"application.submitted.v1→SUBMITTED",
		"schoolreview.approved.v1→IN_NOTICE",
		"schoolreview.notice_objected.v1→SUBMITTED",
		"schoolreview.approved.v1→IN_NOTICE",
		"schoolreview.notice_passed.v1→SCHOOL_APPROVED",
		"bureaureview.approved.v1→BUREAU_APPROVED",
		"finance.item_batched.v1→BUREAU_APPROVED",
		"finance.item_returned.v1→SCHOOL_APPROVED",
		"bureaureview.rejected.v1→BUREAU_REJECTED",
	}
	if strings.Join(types, "\n") != strings.Join(want, "\n") {
		t.Fatalf("trail:\n%s\nwant\n%s", strings.Join(types, "\n"), strings.Join(want, "\n"))
	}
	// Every path that wrote a trail entry above fed the change feed with it.
	checkFeedMirrorsTrail(t, e)
}

// TestVerifyTrailFindsTampering edits the trail behind the service's back
// (the insert-only trigger stops ordinary edits) and checks VerifyTrail
// names the first bad position.
func TestVerifyTrailFindsTampering(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := context.Background()
	officer := e.officer("S001")
	auditor := e.client("aud-1", auth.RoleAuditor, "AUDIT")
	apps := submit(t, officer, "S001", boarding(newStudent()), boarding(newStudent()), boarding(newStudent()), boarding(newStudent()))
	for _, a := range apps {
		for _, ev := range []*eventsv1.Event{
			downstream(a, schoolReviewer, "", &eventsv1.SchoolReviewApproved{AmountFen: 50000}),
			downstream(a, noticeTimer, "", &eventsv1.NoticePassed{AmountFen: 50000}),
			downstream(a, bureauReviewer, "", &eventsv1.BureauApproved{AmountFen: 50000}),
		} {
			e.publish(t, ev, ev.GetEventId())
		}
	}
	for _, a := range apps {
		e.waitFor(t, officer, a.GetApplicationId(), "BUREAU_APPROVED", hasStatus(commonv1.ApplicationStatus_APPLICATION_STATUS_BUREAU_APPROVED))
	}

	// Ordinary edits are refused.
	for _, sql := range []string{`UPDATE trail SET reason = 'forged' WHERE application_id = $1`, `DELETE FROM trail WHERE application_id = $1`} {
		if _, err := e.pool.Exec(ctx, sql, apps[0].GetApplicationId()); err == nil || !strings.Contains(err.Error(), "insert-only") {
			t.Fatalf("%s: %v", sql, err)
		}
	}

	tamper := func(sql string, id string) {
		t.Helper()
		tx, err := e.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
			t.Fatal(err)
		}
		for stmt := range strings.SplitSeq(sql, ";") {
			if _, err := tx.Exec(ctx, stmt, id); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name     string
		sql      string
		firstBad int64
		problem  string
	}{
		{"changed amount", `UPDATE trail SET amount_fen = 5000000 WHERE application_id = $1 AND position = 3`, 3, "content changed"},
		{"deleted entry", `DELETE FROM trail WHERE application_id = $1 AND position = 2`, 2, "missing (deleted)"},
		{"reordered", `UPDATE trail SET position = 100 WHERE application_id = $1 AND position = 2;` +
			`UPDATE trail SET position = 2 WHERE application_id = $1 AND position = 3;` +
			`UPDATE trail SET position = 3 WHERE application_id = $1 AND position = 100`, 2, "reordered"},
		{"deleted last entry", `DELETE FROM trail WHERE application_id = $1 AND position = 4`, 4, "missing at the end"},
	}
	for i, tc := range cases {
		id := apps[i].GetApplicationId()
		tamper(tc.sql, id)
		v, err := auditor.VerifyTrail(ctx, &applicationv1.VerifyTrailRequest{ApplicationId: id})
		if err != nil {
			t.Fatal(err)
		}
		if v.GetOk() || v.GetFirstBadPosition() != tc.firstBad || !strings.Contains(v.GetProblem(), tc.problem) {
			t.Errorf("%s: %v", tc.name, v)
		}
	}
}

// deadLetter waits for the dead-lettered copy of an event.
func (e *env) deadLetter(t *testing.T, eventID string) jetstream.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cons, err := e.js.OrderedConsumer(ctx, natsx.DeadStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		msg, err := cons.Next(jetstream.FetchMaxWait(time.Second))
		if err != nil {
			continue
		}
		if msg.Headers().Get(jetstream.MsgIDHeader) != "" {
			if ev, err := events.Unmarshal(msg.Data()); err == nil && ev.GetEventId() == eventID {
				return msg
			}
		}
	}
	t.Fatalf("event %s not dead-lettered", eventID)
	return nil
}
