package service_test

import (
	"testing"
	"time"

	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/idnumber"
	"github.com/edubureau/studentaid/pkg/review/reviewtest"
	bureaureviewv1 "github.com/edubureau/studentaid/proto/gen/aid/bureaureview/v1"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	brservice "github.com/edubureau/studentaid/services/bureau-review/internal/service"
)

const (
	schoolA   = "S001"
	schoolB   = "S002"
	term      = "2017-autumn"
	officer   = "officer-a"
	schoolRev = "school-rev-a"
	reviewer  = "bureau-rev-1"
)

// env is one test's infrastructure, on which the service runs.
type env struct{ *reviewtest.Env }

// newEnv starts the service on fresh infrastructure.
func newEnv(t *testing.T) *env {
	t.Helper()
	e := prepare(t)
	e.Start(t, brservice.Spec())
	return e
}

// prepare sets up the infrastructure without starting the service.
func prepare(t *testing.T) *env {
	t.Helper()
	return &env{reviewtest.Prepare(t, "bureau_review")}
}

// client returns a client acting as user in role at org.
func (e *env) client(t *testing.T, user string, role auth.Role, org string) bureaureviewv1.BureauReviewServiceClient {
	t.Helper()
	return bureaureviewv1.NewBureauReviewServiceClient(e.Conn(t, user, role, org))
}

// passed is a schoolreview.notice_passed event to publish.
type passed struct {
	school, program, stage, level, funding string
	submitter, schoolReviewer              string
	amount                                 int64
}

func (p passed) event(t testing.TB, appID string) *eventsv1.Event {
	t.Helper()
	num := idnumber.Generate("420102", time.Date(2001, 3, 4, 0, 0, 0, 0, time.UTC), 17)
	ev, err := events.New(time.Now(), events.Actor("system:school-review", "service", p.school),
		events.Keys{ApplicationID: appID, SchoolCode: p.school, ProgramCode: p.program, Term: term},
		&eventsv1.NoticePassed{
			HardshipLevel:   p.level,
			AmountFen:       p.amount,
			FundingSource:   p.funding,
			SubmittedBy:     p.submitter,
			SchoolReviewer:  p.schoolReviewer,
			Stage:           p.stage,
			StudentIdMasked: idnumber.Mask(num),
			StudentIdHash:   "hash-" + appID,
		})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// returned is a finance.item_returned event for appID.
func returned(t testing.TB, p passed, appID, reason string) *eventsv1.Event {
	t.Helper()
	ev, err := events.New(time.Now(), events.Actor("finance-1", string(auth.RoleFinanceOfficer), auth.OrgFinance),
		events.Keys{ApplicationID: appID, SchoolCode: p.school, ProgramCode: p.program, Term: term},
		&eventsv1.ItemReturnedToBureau{Reason: reason, SchoolReviewer: p.schoolReviewer, SubmittedBy: p.submitter})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

var (
	hsGrant   = passed{school: schoolA, program: "HS_NATIONAL_GRANT", stage: "high_school", level: "difficult", funding: "government", submitter: officer, schoolReviewer: schoolRev, amount: 100000}
	boardingB = passed{school: schoolB, program: "BOARDING_SUBSIDY", stage: "junior", funding: "government", submitter: "officer-b", schoolReviewer: "school-rev-b", amount: 62500}
)

// pass publishes n notice_passed events like p and waits until all are under review.
func (e *env) pass(t *testing.T, p passed, n int) []string {
	t.Helper()
	return e.Arrive(t, n, p.event)
}

func approve(id string) *bureaureviewv1.Decision {
	return &bureaureviewv1.Decision{ApplicationId: id, Approve: true}
}

func reject(id, reason string) *bureaureviewv1.Decision {
	return &bureaureviewv1.Decision{ApplicationId: id, Reason: reason}
}
