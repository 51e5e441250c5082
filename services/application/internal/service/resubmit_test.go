package service_test

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/events"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
	commonv1 "github.com/edubureau/studentaid/proto/gen/aid/common/v1"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
)

// TestSecondChances: one live application per student, program and term. A
// school rejection, a withdrawal or a bureau rejection frees the student for
// a new application; the old one stays, with its trail; a second live one
// is refused.
func TestSecondChances(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := context.Background()
	officer := e.officer("S001")
	auditor := e.client("aud-1", auth.RoleAuditor, "AUDIT")
	st := newStudent()
	resubmit := func() (*applicationv1.Application, error) {
		resp, err := officer.SubmitApplications(ctx, &applicationv1.SubmitApplicationsRequest{SchoolCode: "S001", Term: term,
			Applications: []*applicationv1.NewApplication{boarding(st)}})
		if err != nil {
			return nil, err
		}
		return resp.GetApplications()[0], nil
	}
	refused := func(what string) {
		t.Helper()
		_, err := resubmit()
		if v := violations(wantCode(t, err, codes.AlreadyExists)); v["applications[0].student_id_number"] == "" {
			t.Fatalf("%s: the duplicate is not named: %v", what, err)
		}
	}

	first := submit(t, officer, "S001", boarding(st))[0]
	refused("while the first is live")

	// The school rejects it: a new application is taken.
	rej := downstream(first, schoolReviewer, "", &eventsv1.SchoolReviewRejected{Reason: "材料不全"})
	e.publish(t, rej, rej.GetEventId())
	e.waitFor(t, officer, first.GetApplicationId(), "SCHOOL_REJECTED", hasStatus(commonv1.ApplicationStatus_APPLICATION_STATUS_SCHOOL_REJECTED))
	second, err := resubmit()
	if err != nil {
		t.Fatalf("resubmission after a school rejection: %v", err)
	}
	refused("while the second is live")

	// The school withdraws the second: a third is taken.
	wd := downstream(second, events.Actor("officer-S001", "school_officer", "S001"), "", &eventsv1.SchoolReviewWithdrawn{Reason: "学生转学"})
	e.publish(t, wd, wd.GetEventId())
	w := e.waitFor(t, officer, second.GetApplicationId(), "WITHDRAWN", hasStatus(commonv1.ApplicationStatus_APPLICATION_STATUS_WITHDRAWN))
	if w.GetStatusReason() != "学生转学" {
		t.Fatalf("withdrawn: %v", w)
	}
	third, err := resubmit()
	if err != nil {
		t.Fatalf("resubmission after a withdrawal: %v", err)
	}

	// The bureau rejects the third: a fourth is taken.
	for _, ev := range []*eventsv1.Event{
		downstream(third, schoolReviewer, "", &eventsv1.SchoolReviewApproved{AmountFen: 50000}),
		downstream(third, noticeTimer, "", &eventsv1.NoticePassed{AmountFen: 50000}),
		downstream(third, bureauReviewer, "", &eventsv1.BureauRejected{Reason: "与建档立卡信息不一致"}),
	} {
		e.publish(t, ev, ev.GetEventId())
	}
	e.waitFor(t, officer, third.GetApplicationId(), "BUREAU_REJECTED", hasStatus(commonv1.ApplicationStatus_APPLICATION_STATUS_BUREAU_REJECTED))
	if _, err := resubmit(); err != nil {
		t.Fatalf("resubmission after a bureau rejection: %v", err)
	}
	refused("while the fourth is live")

	// The old applications stay, each with its trail intact.
	for _, a := range []*applicationv1.Application{first, second, third} {
		v, err := auditor.VerifyTrail(ctx, &applicationv1.VerifyTrailRequest{ApplicationId: a.GetApplicationId()})
		if err != nil || !v.GetOk() || v.GetLength() < 2 {
			t.Fatalf("trail of %s: %v %v", a.GetApplicationId(), v, err)
		}
	}
	if n := e.count(t, `SELECT count(*) FROM applications WHERE student_id_hash = (SELECT student_id_hash FROM applications WHERE id = $1)`, first.GetApplicationId()); n != 4 {
		t.Fatalf("%d applications of the student, want 4", n)
	}
	if n := e.count(t, `SELECT count(*) FROM applications WHERE live AND student_id_hash = (SELECT student_id_hash FROM applications WHERE id = $1)`, first.GetApplicationId()); n != 1 {
		t.Fatalf("%d live applications of the student, want 1", n)
	}
}
