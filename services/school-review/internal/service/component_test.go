package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"

	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/calendar"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/review/reviewtest"
	"github.com/edubureau/studentaid/pkg/service/servicetest"
	"github.com/edubureau/studentaid/pkg/telemetry"
	schoolreviewv1 "github.com/edubureau/studentaid/proto/gen/aid/schoolreview/v1"
	"github.com/edubureau/studentaid/services/school-review/internal/app"
	"github.com/edubureau/studentaid/services/school-review/internal/domain"
	srservice "github.com/edubureau/studentaid/services/school-review/internal/service"
)

// longNotice keeps approved items in notice for the whole test.
var longNotice = app.Config{NoticePeriod: domain.DefaultNoticePeriod}

func TestSubmittedApplicationBecomesPendingReview(t *testing.T) {
	t.Parallel()
	e := newEnv(t, longNotice)
	ctx := reviewtest.Ctx(t)
	id := uuid.Must(uuid.NewV7()).String()
	first := hsGrant.event(t, id)
	// The same application submitted again under a new event ID changes nothing.
	again := hsGrant.event(t, id)
	again.GetApplicationSubmitted().StudentNameMasked = "李*"
	e.Publish(t, first, again)
	e.WaitCount(t, `SELECT count(*) FROM inbox`, 2)

	rev := e.client(t, reviewer, auth.RoleSchoolReviewer, schoolA)
	got, err := rev.GetReview(ctx, &schoolreviewv1.GetReviewRequest{ApplicationId: id})
	if err != nil {
		t.Fatal(err)
	}
	want := first.GetApplicationSubmitted()
	if got.GetState() != schoolreviewv1.ReviewState_REVIEW_STATE_PENDING || got.GetSchoolCode() != schoolA ||
		got.GetProgramCode() != "HS_NATIONAL_GRANT" || got.GetTerm() != term || got.GetStage() != "high_school" ||
		!got.GetTiered() || got.GetAmountFen() != 0 || got.GetStudentIdMasked() != want.GetStudentIdMasked() ||
		got.GetStudentNameMasked() != "张*明" || got.GetHardshipLevel() != "" || got.GetNoticeEndsAt() != nil {
		t.Fatalf("review = %v", got)
	}
	var count int
	var traceparent, hash, by, funding string
	if err := e.Pool.QueryRow(ctx, `SELECT count(*) OVER (), traceparent, student_id_hash, submitted_by, funding_source FROM review`).
		Scan(&count, &traceparent, &hash, &by, &funding); err != nil {
		t.Fatal(err)
	}
	if count != 1 || hash != "hash-"+id || by != officer || funding != "government" {
		t.Fatalf("row: count %d hash %q by %q funding %q", count, hash, by, funding)
	}
	if sc := telemetry.SpanContextOf(traceparent, ""); !sc.IsValid() {
		t.Fatalf("stored traceparent %q is not a valid W3C trace context", traceparent)
	}

	list, err := rev.ListReviews(ctx, &schoolreviewv1.ListReviewsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetReviews()) != 1 || list.GetReviews()[0].GetApplicationId() != id || list.GetNextPageToken() != "" {
		t.Fatalf("pending list = %v", list)
	}
}

func TestDecideSingle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, longNotice)
	ctx := reviewtest.Ctx(t)
	grant := e.submit(t, hsGrant, 1)[0]
	tuition := e.submit(t, hsTuition, 1)[0]
	rev := e.client(t, reviewer, auth.RoleSchoolReviewer, schoolA)

	// A tiered program needs a hardship level; nothing is written without one.
	_, err := rev.Decide(ctx, &schoolreviewv1.DecideRequest{Decisions: []*schoolreviewv1.Decision{approve(grant, "")}})
	st := servicetest.WantCode(t, err, codes.InvalidArgument, grant)
	if f := servicetest.ViolationFields(st); !slices.Equal(f, []string{"decisions[0].hardship_level"}) {
		t.Fatalf("violations %v", f)
	}
	// Bad levels and missing reasons are refused before anything is read.
	_, err = rev.Decide(ctx, &schoolreviewv1.DecideRequest{Decisions: []*schoolreviewv1.Decision{approve(grant, "rich"), reject(tuition, "")}})
	st = servicetest.WantCode(t, err, codes.InvalidArgument)
	if f := servicetest.ViolationFields(st); !slices.Equal(f, []string{"decisions[0].hardship_level", "decisions[1].reason"}) {
		t.Fatalf("violations %v", f)
	}
	e.WaitCount(t, `SELECT count(*) FROM review WHERE state = 'PENDING'`, 2)
	// Nothing but the calendar seeded at start (calendar.changed) is in the outbox.
	e.WaitCount(t, `SELECT count(*) FROM outbox WHERE subject <> $1`, 0, events.Subject(events.TypeCalendarChanged))

	before := time.Now()
	resp, err := rev.Decide(ctx, &schoolreviewv1.DecideRequest{Decisions: []*schoolreviewv1.Decision{approve(grant, "difficult")}})
	if err != nil {
		t.Fatal(err)
	}
	r := resp.GetReviews()[0]
	if r.GetState() != schoolreviewv1.ReviewState_REVIEW_STATE_IN_NOTICE || r.GetAmountFen() != 100000 ||
		r.GetHardshipLevel() != "difficult" || r.GetReviewer() != reviewer {
		t.Fatalf("approved = %v", r)
	}
	// The seeded calendar is the one the service starts with.
	wantEnd, _ := calendar.Seeded().AddWorkingDays(before, 5)
	if d := r.GetNoticeEndsAt().AsTime().Sub(wantEnd); d < 0 || d > 5*time.Second {
		t.Fatalf("notice ends %s, want about %s", r.GetNoticeEndsAt().AsTime(), wantEnd)
	}

	resp, err = rev.Decide(ctx, &schoolreviewv1.DecideRequest{Decisions: []*schoolreviewv1.Decision{reject(tuition, "not enrolled this term")}})
	if err != nil {
		t.Fatal(err)
	}
	if r := resp.GetReviews()[0]; r.GetState() != schoolreviewv1.ReviewState_REVIEW_STATE_REJECTED || r.GetReason() != "not enrolled this term" || r.GetNoticeEndsAt() != nil {
		t.Fatalf("rejected = %v", r)
	}

	approved := e.Outputs(t, events.TypeSchoolReviewApproved, 1, grant)[grant][0]
	body := approved.GetSchoolReviewApproved()
	if body.GetAmountFen() != 100000 || body.GetHardshipLevel() != "difficult" || !body.GetNoticeEndsAt().AsTime().Equal(r.GetNoticeEndsAt().AsTime()) {
		t.Fatalf("approved event %v", approved)
	}
	if a := approved.GetActor(); a.GetUserId() != reviewer || a.GetRole() != "school_reviewer" || a.GetOrg() != schoolA {
		t.Fatalf("actor %v", a)
	}
	if approved.GetSchoolCode() != schoolA || approved.GetProgramCode() != "HS_NATIONAL_GRANT" || approved.GetTerm() != term {
		t.Fatalf("keys of %v", approved)
	}
	rejected := e.Outputs(t, events.TypeSchoolReviewRejected, 1, tuition)[tuition][0]
	if rejected.GetSchoolReviewRejected().GetReason() != "not enrolled this term" {
		t.Fatalf("rejected event %v", rejected)
	}

	// Decided items cannot be decided again.
	for _, d := range []*schoolreviewv1.Decision{approve(grant, "difficult"), reject(tuition, "again"), approve(tuition, "")} {
		_, err := rev.Decide(ctx, &schoolreviewv1.DecideRequest{Decisions: []*schoolreviewv1.Decision{d}})
		servicetest.WantCode(t, err, codes.FailedPrecondition, d.GetApplicationId(), "not PENDING")
	}
}

func TestDecideBulkIsAllOrNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, longNotice)
	ctx := reviewtest.Ctx(t)
	const n = 1000
	grants := e.submit(t, hsGrant, n/2)
	tuitions := e.submit(t, hsTuition, n/2)
	rev := e.client(t, reviewer, auth.RoleSchoolReviewer, schoolA)

	// One item of another state, an unknown item, a duplicate, or too many
	// decisions refuse the whole request.
	if _, err := rev.Decide(ctx, &schoolreviewv1.DecideRequest{Decisions: []*schoolreviewv1.Decision{reject(tuitions[0], "duplicate claim")}}); err != nil {
		t.Fatal(err)
	}
	_, err := rev.Decide(ctx, &schoolreviewv1.DecideRequest{Decisions: []*schoolreviewv1.Decision{
		approve(grants[0], "difficult"), approve(tuitions[1], ""), approve(tuitions[0], ""),
	}})
	servicetest.WantCode(t, err, codes.FailedPrecondition, tuitions[0], "REJECTED")
	unknown := uuid.Must(uuid.NewV7()).String()
	_, err = rev.Decide(ctx, &schoolreviewv1.DecideRequest{Decisions: []*schoolreviewv1.Decision{approve(grants[0], "difficult"), approve(unknown, "")}})
	servicetest.WantCode(t, err, codes.NotFound, unknown)
	_, err = rev.Decide(ctx, &schoolreviewv1.DecideRequest{Decisions: []*schoolreviewv1.Decision{approve(grants[0], "difficult"), approve(grants[0], "difficult")}})
	servicetest.WantCode(t, err, codes.InvalidArgument)
	_, err = rev.Decide(ctx, &schoolreviewv1.DecideRequest{})
	servicetest.WantCode(t, err, codes.InvalidArgument)
	e.WaitCount(t, `SELECT count(*) FROM review WHERE state = 'PENDING'`, n-1)

	levels := []string{"especially_difficult", "difficult", "generally_difficult"}
	// Events without a tier table are priced by the seed policy: 1,250 / 1,000 / 750 yuan.
	fen := map[string]int64{"especially_difficult": 125000, "difficult": 100000, "generally_difficult": 75000}
	var ds []*schoolreviewv1.Decision
	wantAmount := map[string]int64{}
	var wantSum int64
	for i, id := range grants {
		ds = append(ds, approve(id, levels[i%3]))
		wantAmount[id] = fen[levels[i%3]]
	}
	for _, id := range tuitions[1:] {
		ds = append(ds, approve(id, ""))
		wantAmount[id] = 85000
	}
	for _, a := range wantAmount {
		wantSum += a
	}
	tooMany := append(slices.Clone(ds), approve(tuitions[0], ""), approve(uuid.Must(uuid.NewV7()).String(), ""))
	_, err = rev.Decide(ctx, &schoolreviewv1.DecideRequest{Decisions: tooMany})
	servicetest.WantCode(t, err, codes.InvalidArgument, "1000")

	start := time.Now()
	resp, err := rev.Decide(ctx, &schoolreviewv1.DecideRequest{Decisions: ds})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("decided %d items in %s", len(ds), time.Since(start))
	if len(resp.GetReviews()) != len(ds) {
		t.Fatalf("%d reviews back, want %d", len(resp.GetReviews()), len(ds))
	}
	for i, r := range resp.GetReviews() {
		if r.GetApplicationId() != ds[i].GetApplicationId() || r.GetState() != schoolreviewv1.ReviewState_REVIEW_STATE_IN_NOTICE || r.GetAmountFen() != wantAmount[r.GetApplicationId()] {
			t.Fatalf("review %d = %v", i, r)
		}
	}
	out := e.Outputs(t, events.TypeSchoolReviewApproved, len(ds))
	var sum int64
	for id, evs := range out {
		if len(evs) != 1 {
			t.Fatalf("%d approved events for %s", len(evs), id)
		}
		if got := evs[0].GetSchoolReviewApproved().GetAmountFen(); got != wantAmount[id] {
			t.Fatalf("approved %s for %d fen, want %d", id, got, wantAmount[id])
		}
		sum += evs[0].GetSchoolReviewApproved().GetAmountFen()
	}
	if len(out) != len(ds) || sum != wantSum {
		t.Fatalf("%d approvals for %d fen, want %d for %d fen", len(out), sum, len(ds), wantSum)
	}

	// Listing pages through all of them in keyset order.
	var seen []string
	tok := ""
	for {
		page, err := rev.ListReviews(ctx, &schoolreviewv1.ListReviewsRequest{State: schoolreviewv1.ReviewState_REVIEW_STATE_IN_NOTICE, PageSize: 300, PageToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.GetReviews() {
			seen = append(seen, r.GetApplicationId())
		}
		if tok = page.GetNextPageToken(); tok == "" {
			break
		}
	}
	if len(seen) != len(ds) || !slices.IsSorted(seen) {
		t.Fatalf("listed %d in-notice items (sorted %v), want %d", len(seen), slices.IsSorted(seen), len(ds))
	}
}

func TestSeparationOfDuties(t *testing.T) {
	t.Parallel()
	e := newEnv(t, longNotice)
	ctx := reviewtest.Ctx(t)
	ids := e.submit(t, hsTuition, 2)

	// The submitter holds a reviewer role too, but may not review their own submission.
	self := e.client(t, officer, auth.RoleSchoolReviewer, schoolA)
	_, err := self.Decide(ctx, &schoolreviewv1.DecideRequest{Decisions: []*schoolreviewv1.Decision{approve(ids[0], ""), approve(ids[1], "")}})
	servicetest.WantCode(t, err, codes.PermissionDenied, ids[0])
	var user, role, rule, method string
	if err := e.Pool.QueryRow(ctx, `SELECT user_id, role, rule, method FROM audit_log WHERE outcome = 'denied'`).Scan(&user, &role, &rule, &method); err != nil {
		t.Fatal(err)
	}
	if user != officer || role != "school_reviewer" || rule != "submitter-cannot-review" || method != schoolreviewv1.SchoolReviewService_Decide_FullMethodName {
		t.Fatalf("audit row: %s %s %s %s", user, role, rule, method)
	}
	e.WaitCount(t, `SELECT count(*) FROM review WHERE state = 'PENDING'`, 2)

	// Roles outside the policy are refused and audited.
	tests := []struct {
		name string
		role auth.Role
		org  string
		call func(c schoolreviewv1.SchoolReviewServiceClient) error
	}{
		{"officer cannot decide", auth.RoleSchoolOfficer, schoolA, func(c schoolreviewv1.SchoolReviewServiceClient) error {
			_, err := c.Decide(ctx, &schoolreviewv1.DecideRequest{Decisions: []*schoolreviewv1.Decision{approve(ids[0], "")}})
			return err
		}},
		{"bureau cannot decide", auth.RoleBureauReviewer, auth.OrgBureau, func(c schoolreviewv1.SchoolReviewServiceClient) error {
			_, err := c.Decide(ctx, &schoolreviewv1.DecideRequest{Decisions: []*schoolreviewv1.Decision{approve(ids[0], "")}})
			return err
		}},
		{"auditor cannot object", auth.RoleAuditor, auth.OrgBureau, func(c schoolreviewv1.SchoolReviewServiceClient) error {
			_, err := c.RaiseObjection(ctx, &schoolreviewv1.RaiseObjectionRequest{ApplicationId: ids[0], Reason: "x"})
			return err
		}},
		{"ops cannot list", auth.RoleOps, auth.OrgIT, func(c schoolreviewv1.SchoolReviewServiceClient) error {
			_, err := c.ListReviews(ctx, &schoolreviewv1.ListReviewsRequest{})
			return err
		}},
		{"finance cannot read", auth.RoleFinanceOfficer, auth.OrgFinance, func(c schoolreviewv1.SchoolReviewServiceClient) error {
			_, err := c.GetReview(ctx, &schoolreviewv1.GetReviewRequest{ApplicationId: ids[0]})
			return err
		}},
	}
	for _, tc := range tests {
		servicetest.WantCode(t, tc.call(e.client(t, "u-"+string(tc.role), tc.role, tc.org)), codes.PermissionDenied)
	}
	e.WaitCount(t, `SELECT count(*) FROM audit_log WHERE rule = 'role-not-permitted'`, len(tests))

	// Another reviewer may.
	other := e.client(t, reviewer, auth.RoleSchoolReviewer, schoolA)
	if _, err := other.Decide(ctx, &schoolreviewv1.DecideRequest{Decisions: []*schoolreviewv1.Decision{approve(ids[0], ""), approve(ids[1], "")}}); err != nil {
		t.Fatal(err)
	}
}

func TestOtherSchoolSeesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, longNotice)
	ctx := reviewtest.Ctx(t)
	id := e.submit(t, hsTuition, 1)[0]
	otherSchool := e.submit(t, submission{school: schoolB, program: "HS_TUITION_WAIVER", stage: "high_school", submitter: "officer-b", amount: 85000}, 1)[0]
	own := e.client(t, reviewer, auth.RoleSchoolReviewer, schoolA)
	if _, err := own.Decide(ctx, &schoolreviewv1.DecideRequest{Decisions: []*schoolreviewv1.Decision{approve(id, "")}}); err != nil {
		t.Fatal(err)
	}

	for _, role := range []auth.Role{auth.RoleSchoolReviewer, auth.RoleSchoolOfficer} {
		c := e.client(t, "someone-b", role, schoolB)
		_, err := c.GetReview(ctx, &schoolreviewv1.GetReviewRequest{ApplicationId: id})
		servicetest.WantCode(t, err, codes.NotFound, id)
		for _, req := range []*schoolreviewv1.ListReviewsRequest{
			{State: schoolreviewv1.ReviewState_REVIEW_STATE_IN_NOTICE},
			{State: schoolreviewv1.ReviewState_REVIEW_STATE_IN_NOTICE, SchoolCode: schoolA},
		} {
			list, err := c.ListReviews(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if len(list.GetReviews()) != 0 || list.GetNextPageToken() != "" {
				t.Fatalf("%s of %s lists %v", role, schoolB, list)
			}
		}
		_, err = c.RaiseObjection(ctx, &schoolreviewv1.RaiseObjectionRequest{ApplicationId: id, Reason: "not ours"})
		servicetest.WantCode(t, err, codes.NotFound, id)
		// Its own pending item is visible; the other school's is not.
		list, err := c.ListReviews(ctx, &schoolreviewv1.ListReviewsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.GetReviews()) != 1 || list.GetReviews()[0].GetApplicationId() != otherSchool {
			t.Fatalf("%s of %s lists %v", role, schoolB, list)
		}
	}
	revB := e.client(t, "reviewer-b", auth.RoleSchoolReviewer, schoolB)
	_, err := revB.Decide(ctx, &schoolreviewv1.DecideRequest{Decisions: []*schoolreviewv1.Decision{approve(otherSchool, ""), reject(id, "x")}})
	servicetest.WantCode(t, err, codes.NotFound, id)

	// Bureau and audit roles read every school.
	for _, role := range []auth.Role{auth.RoleBureauReviewer, auth.RoleDataOfficer, auth.RoleAuditor} {
		c := e.client(t, "u-"+string(role), role, auth.OrgBureau)
		if _, err := c.GetReview(ctx, &schoolreviewv1.GetReviewRequest{ApplicationId: id}); err != nil {
			t.Fatalf("%s: %v", role, err)
		}
		list, err := c.ListReviews(ctx, &schoolreviewv1.ListReviewsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.GetReviews()) != 1 || list.GetReviews()[0].GetApplicationId() != otherSchool {
			t.Fatalf("%s lists %v", role, list)
		}
	}
}

func TestObjectionDuringNoticeSendsBackToReview(t *testing.T) {
	t.Parallel()
	e := newEnv(t, longNotice)
	ctx := reviewtest.Ctx(t)
	ids := e.submit(t, hsGrant, 2)
	rev := e.client(t, reviewer, auth.RoleSchoolReviewer, schoolA)
	off := e.client(t, officer, auth.RoleSchoolOfficer, schoolA)

	_, err := off.RaiseObjection(ctx, &schoolreviewv1.RaiseObjectionRequest{ApplicationId: ids[0], Reason: "not in notice yet"})
	servicetest.WantCode(t, err, codes.FailedPrecondition, ids[0], "PENDING")
	if _, err := rev.Decide(ctx, &schoolreviewv1.DecideRequest{Decisions: []*schoolreviewv1.Decision{
		approve(ids[0], "especially_difficult"), reject(ids[1], "income above the line"),
	}}); err != nil {
		t.Fatal(err)
	}
	_, err = off.RaiseObjection(ctx, &schoolreviewv1.RaiseObjectionRequest{ApplicationId: ids[0]})
	servicetest.WantCode(t, err, codes.InvalidArgument, "reason")
	_, err = off.RaiseObjection(ctx, &schoolreviewv1.RaiseObjectionRequest{ApplicationId: ids[1], Reason: "too late"})
	servicetest.WantCode(t, err, codes.FailedPrecondition, ids[1], "REJECTED")

	r, err := off.RaiseObjection(ctx, &schoolreviewv1.RaiseObjectionRequest{ApplicationId: ids[0], Reason: "家庭新购轿车"})
	if err != nil {
		t.Fatal(err)
	}
	if r.GetState() != schoolreviewv1.ReviewState_REVIEW_STATE_PENDING || r.GetObjections() != 1 || r.GetHardshipLevel() != "" ||
		r.GetAmountFen() != 0 || r.GetNoticeEndsAt() != nil || r.GetReason() != "家庭新购轿车" {
		t.Fatalf("after objection: %v", r)
	}
	objected := e.Outputs(t, events.TypeNoticeObjected, 1, ids[0])[ids[0]][0]
	if objected.GetNoticeObjected().GetReason() != "家庭新购轿车" || objected.GetActor().GetUserId() != officer || objected.GetActor().GetRole() != "school_officer" {
		t.Fatalf("objected event %v", objected)
	}

	// Back in review: it can be decided again, at a new level.
	resp, err := rev.Decide(ctx, &schoolreviewv1.DecideRequest{Decisions: []*schoolreviewv1.Decision{approve(ids[0], "generally_difficult")}})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetReviews()[0]; got.GetAmountFen() != 75000 || got.GetObjections() != 1 {
		t.Fatalf("re-approved: %v", got)
	}
	// A reviewer may object too.
	if _, err := rev.RaiseObjection(ctx, &schoolreviewv1.RaiseObjectionRequest{ApplicationId: ids[0], Reason: "second thoughts"}); err != nil {
		t.Fatal(err)
	}
	e.Outputs(t, events.TypeNoticeObjected, 2, ids[0])
}

func TestNoticePassesOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, app.Config{NoticePeriod: domain.FixedNotice(time.Second)})
	ctx := reviewtest.Ctx(t)
	id := e.submit(t, hsGrant, 1)[0]
	rev := e.client(t, reviewer, auth.RoleSchoolReviewer, schoolA)
	resp, err := rev.Decide(ctx, &schoolreviewv1.DecideRequest{Decisions: []*schoolreviewv1.Decision{approve(id, "difficult")}})
	if err != nil {
		t.Fatal(err)
	}
	endsAt := resp.GetReviews()[0].GetNoticeEndsAt().AsTime()

	passed := e.Outputs(t, events.TypeNoticePassed, 1, id)[id][0]
	if passed.GetOccurredAt().AsTime().Before(endsAt) {
		t.Fatalf("notice passed at %s, before its end %s", passed.GetOccurredAt().AsTime(), endsAt)
	}
	body := passed.GetNoticePassed()
	if body.GetHardshipLevel() != "difficult" || body.GetAmountFen() != 100000 || body.GetFundingSource() != "government" ||
		body.GetSubmittedBy() != officer || body.GetSchoolReviewer() != reviewer || body.GetStage() != "high_school" ||
		body.GetStudentIdHash() != "hash-"+id || body.GetStudentIdMasked() == "" {
		t.Fatalf("notice passed body %v", body)
	}
	if a := passed.GetActor(); a.GetUserId() != "system:school-review" || a.GetRole() != "service" || a.GetOrg() != schoolA {
		t.Fatalf("actor %v", a)
	}
	got, err := rev.GetReview(ctx, &schoolreviewv1.GetReviewRequest{ApplicationId: id})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetState() != schoolreviewv1.ReviewState_REVIEW_STATE_PASSED {
		t.Fatalf("state %s", got.GetState())
	}
	_, err = rev.RaiseObjection(ctx, &schoolreviewv1.RaiseObjectionRequest{ApplicationId: id, Reason: "too late"})
	servicetest.WantCode(t, err, codes.FailedPrecondition, "PASSED")
	e.wantPassedOnce(t)
}

// wantPassedOnce checks that exactly one notice_passed event was written and
// published.
func (e *env) wantPassedOnce(t *testing.T) {
	t.Helper()
	e.WaitCount(t, `SELECT count(*) FROM outbox WHERE subject = $1 AND published_at IS NOT NULL`, 1, events.Subject(events.TypeNoticePassed))
	e.WaitCount(t, `SELECT count(*) FROM outbox WHERE subject = $1`, 1, events.Subject(events.TypeNoticePassed))
	if n := e.StreamCount(t, events.TypeNoticePassed); n != 1 {
		t.Fatalf("%d notice_passed events in the stream, want 1", n)
	}
}

func TestNoticeTimerSurvivesRestart(t *testing.T) {
	t.Parallel()
	e := prepare(t)
	cfg := app.Config{NoticePeriod: domain.FixedNotice(3 * time.Second)}
	var id string
	var endsAt time.Time
	t.Run("before restart", func(t *testing.T) {
		e.start(t, cfg)
		id = e.submit(t, hsTuition, 1)[0]
		rev := e.client(t, reviewer, auth.RoleSchoolReviewer, schoolA)
		resp, err := rev.Decide(reviewtest.Ctx(t), &schoolreviewv1.DecideRequest{Decisions: []*schoolreviewv1.Decision{approve(id, "")}})
		if err != nil {
			t.Fatal(err)
		}
		endsAt = resp.GetReviews()[0].GetNoticeEndsAt().AsTime()
		// The service stops when this subtest ends.
	})
	if t.Failed() {
		return
	}
	var state string
	if err := e.Pool.QueryRow(context.Background(), `SELECT state FROM review WHERE application_id = $1`, id).Scan(&state); err != nil {
		t.Fatal(err)
	}
	if state != "IN_NOTICE" || !time.Now().Before(endsAt) {
		t.Fatalf("stopped with the item %s at %s (notice ends %s); the restart proves nothing", state, time.Now(), endsAt)
	}

	e.start(t, cfg)
	passed := e.Outputs(t, events.TypeNoticePassed, 1, id)[id][0]
	if passed.GetNoticePassed().GetAmountFen() != 85000 || passed.GetOccurredAt().AsTime().Before(endsAt) {
		t.Fatalf("notice passed %v (ends %s)", passed, endsAt)
	}
	e.wantPassedOnce(t)
}

func TestInvalidRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t, longNotice)
	ctx := reviewtest.Ctx(t)
	rev := e.client(t, reviewer, auth.RoleSchoolReviewer, schoolA)
	tests := []struct {
		name  string
		call  func() error
		field string
	}{
		{"bad id", func() error {
			_, err := rev.GetReview(ctx, &schoolreviewv1.GetReviewRequest{ApplicationId: "42"})
			return err
		}, "application_id"},
		{"page size too big", func() error {
			_, err := rev.ListReviews(ctx, &schoolreviewv1.ListReviewsRequest{PageSize: 501})
			return err
		}, "page_size"},
		{"negative page size", func() error {
			_, err := rev.ListReviews(ctx, &schoolreviewv1.ListReviewsRequest{PageSize: -1})
			return err
		}, "page_size"},
		{"forged page token", func() error {
			_, err := rev.ListReviews(ctx, &schoolreviewv1.ListReviewsRequest{PageToken: "bm9wZQ"})
			return err
		}, "page_token"},
		{"bad term", func() error {
			_, err := rev.ListReviews(ctx, &schoolreviewv1.ListReviewsRequest{Term: "autumn"})
			return err
		}, "term"},
		{"unknown state", func() error {
			_, err := rev.ListReviews(ctx, &schoolreviewv1.ListReviewsRequest{State: 42})
			return err
		}, "state"},
		{"overlong reason", func() error {
			_, err := rev.Decide(ctx, &schoolreviewv1.DecideRequest{Decisions: []*schoolreviewv1.Decision{reject(uuid.NewString(), strings.Repeat("长", 501))}})
			return err
		}, "decisions[0].reason"},
		{"objection without id", func() error {
			_, err := rev.RaiseObjection(ctx, &schoolreviewv1.RaiseObjectionRequest{Reason: "x"})
			return err
		}, "application_id"},
	}
	for _, tc := range tests {
		st := servicetest.WantCode(t, tc.call(), codes.InvalidArgument)
		if f := servicetest.ViolationFields(st); !slices.Contains(f, tc.field) {
			t.Errorf("%s: violations %v, want %s", tc.name, f, tc.field)
		}
	}
}

func TestRESTGateway(t *testing.T) {
	t.Parallel()
	e := prepare(t)
	run := e.Start(t, srservice.SpecWith(srservice.Options{Config: &longNotice}))
	id := uuid.Must(uuid.NewV7()).String()
	e.Publish(t, hsTuition.event(t, id))
	url := fmt.Sprintf("http://%s/v1/school-reviews/%s", run.HTTPAddr, id)
	var body struct {
		ApplicationID string `json:"application_id"`
		State         string `json:"state"`
		AmountFen     string `json:"amount_fen"`
	}
	servicetest.Eventually(t, func() error {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+e.Keys.Token(t, reviewer, auth.RoleSchoolReviewer, schoolA))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return json.NewDecoder(resp.Body).Decode(&body)
	})
	if body.ApplicationID != id || body.State != "REVIEW_STATE_PENDING" || body.AmountFen != "85000" {
		t.Fatalf("REST body %+v", body)
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without a token: %s", resp.Status)
	}
}
