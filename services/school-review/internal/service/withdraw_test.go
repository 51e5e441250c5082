package service_test

import (
	"sync"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/review/reviewtest"
	"github.com/edubureau/studentaid/pkg/service/servicetest"
	schoolreviewv1 "github.com/edubureau/studentaid/proto/gen/aid/schoolreview/v1"
)

// TestWithdrawBeforeReview: the school's aid officer withdraws a pending
// item (withdrawn event, final state); a decided item cannot be withdrawn
// (FailedPrecondition naming the rule, audited) and a withdrawn one cannot
// be decided; another school's officer and a reviewer cannot withdraw.
func TestWithdrawBeforeReview(t *testing.T) {
	t.Parallel()
	e := newEnv(t, longNotice)
	ctx := reviewtest.Ctx(t)
	ids := e.submit(t, hsTuition, 2)
	rev := e.client(t, reviewer, auth.RoleSchoolReviewer, schoolA)
	off := e.client(t, officer, auth.RoleSchoolOfficer, schoolA)

	_, err := off.WithdrawApplication(ctx, &schoolreviewv1.WithdrawApplicationRequest{ApplicationId: ids[0]})
	servicetest.WantCode(t, err, codes.InvalidArgument, "reason")
	_, err = e.client(t, "officer-b", auth.RoleSchoolOfficer, schoolB).WithdrawApplication(ctx,
		&schoolreviewv1.WithdrawApplicationRequest{ApplicationId: ids[0], Reason: "学生转学"})
	servicetest.WantCode(t, err, codes.NotFound, ids[0])
	_, err = rev.WithdrawApplication(ctx, &schoolreviewv1.WithdrawApplicationRequest{ApplicationId: ids[0], Reason: "学生转学"})
	servicetest.WantCode(t, err, codes.PermissionDenied)

	r, err := off.WithdrawApplication(ctx, &schoolreviewv1.WithdrawApplicationRequest{ApplicationId: ids[0], Reason: "学生转学"})
	if err != nil {
		t.Fatal(err)
	}
	if r.GetState() != schoolreviewv1.ReviewState_REVIEW_STATE_WITHDRAWN || r.GetReason() != "学生转学" {
		t.Fatalf("withdrawn: %v", r)
	}
	ev := e.Outputs(t, events.TypeSchoolReviewWithdrawn, 1, ids[0])[ids[0]][0]
	if ev.GetSchoolReviewWithdrawn().GetReason() != "学生转学" || ev.GetActor().GetUserId() != officer || ev.GetSchoolCode() != schoolA {
		t.Fatalf("withdrawn event %v", ev)
	}
	// A withdrawn item is not decided, nor withdrawn again.
	_, err = rev.Decide(ctx, &schoolreviewv1.DecideRequest{Decisions: []*schoolreviewv1.Decision{approve(ids[0], "")}})
	servicetest.WantCode(t, err, codes.FailedPrecondition, ids[0], "WITHDRAWN")
	_, err = off.WithdrawApplication(ctx, &schoolreviewv1.WithdrawApplicationRequest{ApplicationId: ids[0], Reason: "again"})
	servicetest.WantCode(t, err, codes.FailedPrecondition, ids[0])

	// Once decided, it can no longer be withdrawn.
	if _, err := rev.Decide(ctx, &schoolreviewv1.DecideRequest{Decisions: []*schoolreviewv1.Decision{approve(ids[1], "")}}); err != nil {
		t.Fatal(err)
	}
	_, err = off.WithdrawApplication(ctx, &schoolreviewv1.WithdrawApplicationRequest{ApplicationId: ids[1], Reason: "学生转学"})
	servicetest.WantCode(t, err, codes.FailedPrecondition, ids[1], "IN_NOTICE")
	if got := ruleOf(err); got != "review-already-decided" {
		t.Fatalf("rule %q", got)
	}
	var audited int
	if err := e.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE rule = 'review-already-decided' AND user_id = $1`, officer).Scan(&audited); err != nil {
		t.Fatal(err)
	}
	if audited != 2 {
		t.Fatalf("%d audited refusals, want 2 (withdrawn twice, decided)", audited)
	}
	if n := e.StreamCount(t, events.TypeSchoolReviewWithdrawn); n != 1 {
		t.Fatalf("%d withdrawn events, want 1", n)
	}
}

// TestWithdrawRacesDecide: a withdrawal and a decision of the same pending
// item at the same moment end in exactly one of the two, with exactly one
// event.
func TestWithdrawRacesDecide(t *testing.T) {
	t.Parallel()
	e := newEnv(t, longNotice)
	const n = 20
	ids := e.submit(t, hsTuition, n)
	rev := e.client(t, reviewer, auth.RoleSchoolReviewer, schoolA)
	off := e.client(t, officer, auth.RoleSchoolOfficer, schoolA)
	ctx := reviewtest.Ctx(t)
	withdrawn, decided := 0, 0
	for _, id := range ids {
		var wg sync.WaitGroup
		var werr, derr error
		start := make(chan struct{})
		wg.Go(func() {
			<-start
			_, werr = off.WithdrawApplication(ctx, &schoolreviewv1.WithdrawApplicationRequest{ApplicationId: id, Reason: "学生转学"})
		})
		wg.Go(func() {
			<-start
			_, derr = rev.Decide(ctx, &schoolreviewv1.DecideRequest{Decisions: []*schoolreviewv1.Decision{reject(id, "不符合条件")}})
		})
		close(start)
		wg.Wait()
		switch {
		case werr == nil && status.Code(derr) == codes.FailedPrecondition:
			withdrawn++
		case derr == nil && status.Code(werr) == codes.FailedPrecondition:
			decided++
		default:
			t.Fatalf("%s: withdraw %v, decide %v: want exactly one to succeed", id, werr, derr)
		}
	}
	t.Logf("%d withdrawn, %d decided", withdrawn, decided)
	e.WaitCount(t, `SELECT count(*) FROM review WHERE state = 'WITHDRAWN'`, withdrawn)
	e.WaitCount(t, `SELECT count(*) FROM review WHERE state = 'REJECTED'`, decided)
	outs := e.Outputs(t, events.TypeSchoolReviewWithdrawn, withdrawn, ids...)
	rejs := e.Outputs(t, events.TypeSchoolReviewRejected, decided, ids...)
	for _, id := range ids {
		if len(outs[id])+len(rejs[id]) != 1 {
			t.Errorf("%s: %d withdrawn and %d rejected events, want one in all", id, len(outs[id]), len(rejs[id]))
		}
	}
}

// ruleOf is the ErrorInfo reason of err's status.
func ruleOf(err error) string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}
