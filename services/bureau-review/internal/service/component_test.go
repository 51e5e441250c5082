package service_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"

	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/review/reviewtest"
	"github.com/edubureau/studentaid/pkg/service/servicetest"
	"github.com/edubureau/studentaid/pkg/telemetry"
	bureaureviewv1 "github.com/edubureau/studentaid/proto/gen/aid/bureaureview/v1"
	brservice "github.com/edubureau/studentaid/services/bureau-review/internal/service"
)

func TestNoticePassedBecomesPendingReview(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := reviewtest.Ctx(t)
	id := uuid.Must(uuid.NewV7()).String()
	first := hsGrant.event(t, id)
	again := hsGrant.event(t, id) // a second event about the same application changes nothing
	again.GetNoticePassed().AmountFen = 1
	e.Publish(t, first, again)
	e.WaitCount(t, `SELECT count(*) FROM inbox`, 2)

	c := e.client(t, reviewer, auth.RoleBureauReviewer, auth.OrgBureau)
	got, err := c.GetReview(ctx, &bureaureviewv1.GetReviewRequest{ApplicationId: id})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetState() != bureaureviewv1.ReviewState_REVIEW_STATE_PENDING || got.GetSchoolCode() != schoolA || got.GetTerm() != term ||
		got.GetProgramCode() != "HS_NATIONAL_GRANT" || got.GetStage() != "high_school" || got.GetHardshipLevel() != "difficult" ||
		got.GetAmountFen() != 100000 || got.GetFundingSource() != "government" || got.GetSchoolReviewer() != schoolRev ||
		got.GetStudentIdMasked() != first.GetNoticePassed().GetStudentIdMasked() || got.GetReviewer() != "" || got.GetReturns() != 0 {
		t.Fatalf("review = %v", got)
	}
	var count int
	var traceparent, by, hash string
	if err := e.Pool.QueryRow(ctx, `SELECT count(*) OVER (), traceparent, submitted_by, student_id_hash FROM review`).Scan(&count, &traceparent, &by, &hash); err != nil {
		t.Fatal(err)
	}
	if count != 1 || by != officer || hash != "hash-"+id {
		t.Fatalf("row: count %d by %q hash %q", count, by, hash)
	}
	if !telemetry.SpanContextOf(traceparent, "").IsValid() {
		t.Fatalf("stored traceparent %q is not a valid W3C trace context", traceparent)
	}
}

func TestDecide(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := reviewtest.Ctx(t)
	ids := e.pass(t, hsGrant, 2)
	c := e.client(t, reviewer, auth.RoleBureauReviewer, auth.OrgBureau)

	_, err := c.Decide(ctx, &bureaureviewv1.DecideRequest{Decisions: []*bureaureviewv1.Decision{approve(ids[0]), reject(ids[1], "")}})
	st := servicetest.WantCode(t, err, codes.InvalidArgument)
	if f := servicetest.ViolationFields(st); !slices.Equal(f, []string{"decisions[1].reason"}) {
		t.Fatalf("violations %v", f)
	}
	e.WaitCount(t, `SELECT count(*) FROM review WHERE state = 'PENDING'`, 2)

	resp, err := c.Decide(ctx, &bureaureviewv1.DecideRequest{Decisions: []*bureaureviewv1.Decision{approve(ids[0]), reject(ids[1], "household income above the line")}})
	if err != nil {
		t.Fatal(err)
	}
	if r := resp.GetReviews()[0]; r.GetState() != bureaureviewv1.ReviewState_REVIEW_STATE_APPROVED || r.GetReviewer() != reviewer || r.GetAmountFen() != 100000 {
		t.Fatalf("approved = %v", r)
	}
	if r := resp.GetReviews()[1]; r.GetState() != bureaureviewv1.ReviewState_REVIEW_STATE_REJECTED || r.GetReason() != "household income above the line" {
		t.Fatalf("rejected = %v", r)
	}

	ev := e.Outputs(t, events.TypeBureauApproved, 1, ids[0])[ids[0]][0]
	body := ev.GetBureauApproved()
	if body.GetAmountFen() != 100000 || body.GetFundingSource() != "government" || body.GetSubmittedBy() != officer ||
		body.GetSchoolReviewer() != schoolRev || body.GetBureauReviewer() != reviewer {
		t.Fatalf("approved event %v", ev)
	}
	if a := ev.GetActor(); a.GetUserId() != reviewer || a.GetRole() != "bureau_reviewer" || a.GetOrg() != auth.OrgBureau {
		t.Fatalf("actor %v", a)
	}
	if ev.GetSchoolCode() != schoolA || ev.GetProgramCode() != "HS_NATIONAL_GRANT" || ev.GetTerm() != term {
		t.Fatalf("keys of %v", ev)
	}
	rej := e.Outputs(t, events.TypeBureauRejected, 1, ids[1])[ids[1]][0]
	if rej.GetBureauRejected().GetReason() != "household income above the line" {
		t.Fatalf("rejected event %v", rej)
	}

	for _, d := range []*bureaureviewv1.Decision{approve(ids[0]), reject(ids[0], "x"), approve(ids[1])} {
		_, err := c.Decide(ctx, &bureaureviewv1.DecideRequest{Decisions: []*bureaureviewv1.Decision{d}})
		servicetest.WantCode(t, err, codes.FailedPrecondition, d.GetApplicationId(), "not PENDING")
	}
	unknown := uuid.Must(uuid.NewV7()).String()
	_, err = c.Decide(ctx, &bureaureviewv1.DecideRequest{Decisions: []*bureaureviewv1.Decision{approve(unknown)}})
	servicetest.WantCode(t, err, codes.NotFound, unknown)
	_, err = c.GetReview(ctx, &bureaureviewv1.GetReviewRequest{ApplicationId: unknown})
	servicetest.WantCode(t, err, codes.NotFound, unknown)
}

func TestDecideBulkIsAllOrNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := reviewtest.Ctx(t)
	grants := e.pass(t, hsGrant, 600)
	boarding := e.pass(t, boardingB, 400)
	c := e.client(t, reviewer, auth.RoleBureauReviewer, auth.OrgBureau)

	if _, err := c.Decide(ctx, &bureaureviewv1.DecideRequest{Decisions: []*bureaureviewv1.Decision{reject(boarding[0], "not boarding")}}); err != nil {
		t.Fatal(err)
	}
	var ds []*bureaureviewv1.Decision
	for _, id := range grants {
		ds = append(ds, approve(id))
	}
	for _, id := range boarding {
		ds = append(ds, approve(id))
	}
	// One rejected item among 1000 refuses them all.
	_, err := c.Decide(ctx, &bureaureviewv1.DecideRequest{Decisions: ds})
	servicetest.WantCode(t, err, codes.FailedPrecondition, boarding[0], "REJECTED")
	e.WaitCount(t, `SELECT count(*) FROM review WHERE state = 'PENDING'`, 999)
	_, err = c.Decide(ctx, &bureaureviewv1.DecideRequest{Decisions: append(slices.Clone(ds), approve(uuid.NewString()))})
	servicetest.WantCode(t, err, codes.InvalidArgument, "1000")

	ds = slices.DeleteFunc(ds, func(d *bureaureviewv1.Decision) bool { return d.GetApplicationId() == boarding[0] })
	resp, err := c.Decide(ctx, &bureaureviewv1.DecideRequest{Decisions: ds})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetReviews()) != 999 {
		t.Fatalf("%d reviews back", len(resp.GetReviews()))
	}
	out := e.Outputs(t, events.TypeBureauApproved, 999)
	var sum int64
	for id, evs := range out {
		if len(evs) != 1 {
			t.Fatalf("%d approvals of %s", len(evs), id)
		}
		sum += evs[0].GetBureauApproved().GetAmountFen()
	}
	if want := int64(600*100000 + 399*62500); len(out) != 999 || sum != want {
		t.Fatalf("%d approvals for %d fen, want 999 for %d", len(out), sum, want)
	}
}

func TestSeparationOfDuties(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := reviewtest.Ctx(t)
	ids := e.pass(t, hsGrant, 2)

	tests := []struct {
		user string
		rule string
	}{
		{schoolRev, "school-reviewer-cannot-bureau-review"},
		{officer, "submitter-cannot-review"},
	}
	for _, tc := range tests {
		c := e.client(t, tc.user, auth.RoleBureauReviewer, auth.OrgBureau)
		_, err := c.Decide(ctx, &bureaureviewv1.DecideRequest{Decisions: []*bureaureviewv1.Decision{approve(ids[0]), approve(ids[1])}})
		servicetest.WantCode(t, err, codes.PermissionDenied, ids[0])
		var user, role, method string
		if err := e.Pool.QueryRow(ctx, `SELECT user_id, role, method FROM audit_log WHERE rule = $1`, tc.rule).Scan(&user, &role, &method); err != nil {
			t.Fatalf("audit row for %s: %v", tc.rule, err)
		}
		if user != tc.user || role != "bureau_reviewer" || method != bureaureviewv1.BureauReviewService_Decide_FullMethodName {
			t.Fatalf("audit row: %s %s %s", user, role, method)
		}
	}
	e.WaitCount(t, `SELECT count(*) FROM review WHERE state = 'PENDING'`, 2)

	// Policy: school roles and ops see nothing; finance, data and audit roles read but cannot decide.
	for _, tc := range []struct {
		role auth.Role
		org  string
	}{{auth.RoleSchoolReviewer, schoolA}, {auth.RoleSchoolOfficer, schoolA}, {auth.RoleOps, auth.OrgIT}} {
		c := e.client(t, "u-"+string(tc.role), tc.role, tc.org)
		_, err := c.ListReviews(ctx, &bureaureviewv1.ListReviewsRequest{})
		servicetest.WantCode(t, err, codes.PermissionDenied)
		_, err = c.GetReview(ctx, &bureaureviewv1.GetReviewRequest{ApplicationId: ids[0]})
		servicetest.WantCode(t, err, codes.PermissionDenied)
	}
	for _, tc := range []struct {
		role auth.Role
		org  string
	}{{auth.RoleFinanceOfficer, auth.OrgFinance}, {auth.RoleDataOfficer, auth.OrgBureau}, {auth.RoleAuditor, auth.OrgBureau}} {
		c := e.client(t, "u-"+string(tc.role), tc.role, tc.org)
		list, err := c.ListReviews(ctx, &bureaureviewv1.ListReviewsRequest{})
		if err != nil || len(list.GetReviews()) != 2 {
			t.Fatalf("%s lists %v, %v", tc.role, list, err)
		}
		_, err = c.Decide(ctx, &bureaureviewv1.DecideRequest{Decisions: []*bureaureviewv1.Decision{approve(ids[0])}})
		servicetest.WantCode(t, err, codes.PermissionDenied)
	}
	e.WaitCount(t, `SELECT count(*) FROM audit_log WHERE rule = 'role-not-permitted'`, 9)

	other := e.client(t, reviewer, auth.RoleBureauReviewer, auth.OrgBureau)
	if _, err := other.Decide(ctx, &bureaureviewv1.DecideRequest{Decisions: []*bureaureviewv1.Decision{approve(ids[0]), approve(ids[1])}}); err != nil {
		t.Fatal(err)
	}
}

func TestReturnFromFinance(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := reviewtest.Ctx(t)
	id := e.pass(t, hsGrant, 1)[0]
	c := e.client(t, reviewer, auth.RoleBureauReviewer, auth.OrgBureau)
	if _, err := c.Decide(ctx, &bureaureviewv1.DecideRequest{Decisions: []*bureaureviewv1.Decision{approve(id)}}); err != nil {
		t.Fatal(err)
	}
	e.Publish(t, returned(t, hsGrant, id, "amount differs from the standard"))
	e.WaitCount(t, `SELECT count(*) FROM review WHERE state = 'PENDING' AND returns = 1`, 1)
	got, err := c.GetReview(ctx, &bureaureviewv1.GetReviewRequest{ApplicationId: id})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetState() != bureaureviewv1.ReviewState_REVIEW_STATE_PENDING || got.GetReason() != "amount differs from the standard" || got.GetReturns() != 1 {
		t.Fatalf("after return: %v", got)
	}

	// Decided again by another reviewer, it produces a second approval.
	c2 := e.client(t, "bureau-rev-2", auth.RoleBureauReviewer, auth.OrgBureau)
	if _, err := c2.Decide(ctx, &bureaureviewv1.DecideRequest{Decisions: []*bureaureviewv1.Decision{approve(id)}}); err != nil {
		t.Fatal(err)
	}
	approvals := e.Outputs(t, events.TypeBureauApproved, 2, id)[id]
	if approvals[1].GetBureauApproved().GetBureauReviewer() != "bureau-rev-2" || approvals[1].GetBureauApproved().GetAmountFen() != 100000 {
		t.Fatalf("second approval %v", approvals[1])
	}
}

func TestReturnWaitsForApproval(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := reviewtest.Ctx(t)
	id := uuid.Must(uuid.NewV7()).String()
	// Out of order: the return arrives before the item, then while it is still pending.
	e.Publish(t, returned(t, hsGrant, id, "bank says account closed"))
	e.Publish(t, hsGrant.event(t, id))
	e.WaitCount(t, `SELECT count(*) FROM review`, 1)
	c := e.client(t, reviewer, auth.RoleBureauReviewer, auth.OrgBureau)
	got, err := c.GetReview(ctx, &bureaureviewv1.GetReviewRequest{ApplicationId: id})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetReturns() != 0 || got.GetState() != bureaureviewv1.ReviewState_REVIEW_STATE_PENDING {
		t.Fatalf("a return applied to a pending item: %v", got)
	}
	if _, err := c.Decide(ctx, &bureaureviewv1.DecideRequest{Decisions: []*bureaureviewv1.Decision{approve(id)}}); err != nil {
		t.Fatal(err)
	}
	// The waiting return now applies.
	e.WaitCount(t, `SELECT count(*) FROM review WHERE state = 'PENDING' AND returns = 1 AND reason = 'bank says account closed'`, 1)
	e.WaitCount(t, `SELECT count(*) FROM inbox`, 2)
}

func TestListFiltersAndPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := reviewtest.Ctx(t)
	a := e.pass(t, hsGrant, 7)
	b := e.pass(t, boardingB, 5)
	c := e.client(t, "finance-1", auth.RoleFinanceOfficer, auth.OrgFinance)
	rev := e.client(t, reviewer, auth.RoleBureauReviewer, auth.OrgBureau)
	if _, err := rev.Decide(ctx, &bureaureviewv1.DecideRequest{Decisions: []*bureaureviewv1.Decision{approve(a[0]), approve(b[0])}}); err != nil {
		t.Fatal(err)
	}

	all := func(req *bureaureviewv1.ListReviewsRequest) []string {
		t.Helper()
		var ids []string
		for {
			page, err := c.ListReviews(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.GetReviews()) > int(max(req.GetPageSize(), 50)) {
				t.Fatalf("page of %d", len(page.GetReviews()))
			}
			for _, r := range page.GetReviews() {
				ids = append(ids, r.GetApplicationId())
			}
			if page.GetNextPageToken() == "" {
				return ids
			}
			req.PageToken = page.GetNextPageToken()
		}
	}
	sorted := func(ids ...[]string) []string {
		out := slices.Concat(ids...)
		slices.Sort(out)
		return out
	}
	tests := []struct {
		name string
		req  *bureaureviewv1.ListReviewsRequest
		want []string
	}{
		{"pending by default, all schools, pages of 2", &bureaureviewv1.ListReviewsRequest{PageSize: 2}, sorted(a[1:], b[1:])},
		{"one school", &bureaureviewv1.ListReviewsRequest{SchoolCode: schoolB, PageSize: 3}, sorted(b[1:])},
		{"one program", &bureaureviewv1.ListReviewsRequest{ProgramCode: "HS_NATIONAL_GRANT"}, sorted(a[1:])},
		{"approved", &bureaureviewv1.ListReviewsRequest{State: bureaureviewv1.ReviewState_REVIEW_STATE_APPROVED}, sorted(a[:1], b[:1])},
		{"term", &bureaureviewv1.ListReviewsRequest{Term: term, State: bureaureviewv1.ReviewState_REVIEW_STATE_APPROVED, SchoolCode: schoolA}, sorted(a[:1])},
		{"other term", &bureaureviewv1.ListReviewsRequest{Term: "2018-spring"}, nil},
		{"unknown school", &bureaureviewv1.ListReviewsRequest{SchoolCode: "S999"}, nil},
	}
	for _, tc := range tests {
		if got := all(tc.req); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %d items %v, want %d %v", tc.name, len(got), got, len(tc.want), tc.want)
		}
	}

	for _, tc := range []struct {
		req   *bureaureviewv1.ListReviewsRequest
		field string
	}{
		{&bureaureviewv1.ListReviewsRequest{PageSize: 501}, "page_size"},
		{&bureaureviewv1.ListReviewsRequest{PageToken: "!!"}, "page_token"},
		{&bureaureviewv1.ListReviewsRequest{Term: "2017"}, "term"},
		{&bureaureviewv1.ListReviewsRequest{State: 9}, "state"},
	} {
		_, err := c.ListReviews(ctx, tc.req)
		if f := servicetest.ViolationFields(servicetest.WantCode(t, err, codes.InvalidArgument)); !slices.Contains(f, tc.field) {
			t.Errorf("violations %v, want %s", f, tc.field)
		}
	}
	_, err := c.GetReview(ctx, &bureaureviewv1.GetReviewRequest{ApplicationId: "not-a-uuid"})
	servicetest.WantCode(t, err, codes.InvalidArgument, "application_id")
}

func TestRESTGateway(t *testing.T) {
	t.Parallel()
	e := prepare(t)
	run := e.Start(t, brservice.Spec())
	id := e.pass(t, boardingB, 1)[0]
	url := fmt.Sprintf("http://%s/v1/bureau-reviews?school_code=%s", run.HTTPAddr, schoolB)
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+e.Keys.Token(t, reviewer, auth.RoleBureauReviewer, auth.OrgBureau))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	var body struct {
		Reviews []struct {
			ApplicationID string `json:"application_id"`
			AmountFen     string `json:"amount_fen"`
			State         string `json:"state"`
		} `json:"reviews"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if len(body.Reviews) != 1 || body.Reviews[0].ApplicationID != id || body.Reviews[0].AmountFen != "62500" || body.Reviews[0].State != "REVIEW_STATE_PENDING" {
		t.Fatalf("REST body %+v", body)
	}
}

// TestDecisionRecordsFlagsShown checks that the review-time flag kinds the
// reviewer saw are validated, stored with the decision, returned on the
// review and carried in the decision's event, and cleared when finance
// sends the item back.
func TestDecisionRecordsFlagsShown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := reviewtest.Ctx(t)
	ids := e.pass(t, hsGrant, 3)
	c := e.client(t, reviewer, auth.RoleBureauReviewer, auth.OrgBureau)
	withFlags := func(d *bureaureviewv1.Decision, kinds ...string) *bureaureviewv1.Decision {
		d.FlagsShown = kinds
		return d
	}

	_, err := c.Decide(ctx, &bureaureviewv1.DecideRequest{Decisions: []*bureaureviewv1.Decision{
		withFlags(approve(ids[0]), "not_on_roster", "too_rich"),
		withFlags(approve(ids[1]), "deceased", "deceased"),
		withFlags(reject(ids[2], "x"), "not_in_registry", "other_school_same_term", "key_person_relative", "not_on_roster",
			"deceased", "above_standard", "age_stage_mismatch", "deceased"),
	}})
	st := servicetest.WantCode(t, err, codes.InvalidArgument, "too_rich")
	if f := servicetest.ViolationFields(st); !slices.Equal(f, []string{"decisions[0].flags_shown[1]", "decisions[1].flags_shown[1]", "decisions[2].flags_shown"}) {
		t.Fatalf("violations %v", f)
	}
	e.WaitCount(t, `SELECT count(*) FROM review WHERE state = 'PENDING' AND flags_shown = '{}'`, 3)

	resp, err := c.Decide(ctx, &bureaureviewv1.DecideRequest{Decisions: []*bureaureviewv1.Decision{
		withFlags(approve(ids[0]), "not_on_roster", "key_person_relative"),
		withFlags(reject(ids[1], "deceased before the term"), "deceased"),
		approve(ids[2]),
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"not_on_roster", "key_person_relative"}, {"deceased"}, nil}
	for i, r := range resp.GetReviews() {
		if !slices.Equal(r.GetFlagsShown(), want[i]) {
			t.Errorf("decided %d: flags shown %q, want %q", i, r.GetFlagsShown(), want[i])
		}
		got, err := c.GetReview(ctx, &bureaureviewv1.GetReviewRequest{ApplicationId: ids[i]})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.GetFlagsShown(), want[i]) {
			t.Errorf("read back %d: flags shown %q, want %q", i, got.GetFlagsShown(), want[i])
		}
	}
	e.WaitCount(t, `SELECT count(*) FROM review WHERE flags_shown = ARRAY['not_on_roster', 'key_person_relative'] AND application_id = $1`, 1, ids[0])

	approved := e.Outputs(t, events.TypeBureauApproved, 2, ids[0], ids[2])
	if f := approved[ids[0]][0].GetBureauApproved().GetFlagsShown(); !slices.Equal(f, want[0]) {
		t.Errorf("approved event flags shown %q, want %q", f, want[0])
	}
	if f := approved[ids[2]][0].GetBureauApproved().GetFlagsShown(); len(f) != 0 {
		t.Errorf("approved event without flags carries %q", f)
	}
	rej := e.Outputs(t, events.TypeBureauRejected, 1, ids[1])[ids[1]][0]
	if f := rej.GetBureauRejected().GetFlagsShown(); !slices.Equal(f, want[1]) {
		t.Errorf("rejected event flags shown %q, want %q", f, want[1])
	}

	e.Publish(t, returned(t, hsGrant, ids[0], "check the roster"))
	e.WaitCount(t, `SELECT count(*) FROM review WHERE state = 'PENDING' AND returns = 1 AND flags_shown = '{}'`, 1)
}
