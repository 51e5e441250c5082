package service_test

import (
	"testing"
	"time"

	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/idnumber"
	"github.com/edubureau/studentaid/pkg/review/reviewtest"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	schoolreviewv1 "github.com/edubureau/studentaid/proto/gen/aid/schoolreview/v1"
	"github.com/edubureau/studentaid/services/school-review/internal/app"
	srservice "github.com/edubureau/studentaid/services/school-review/internal/service"
)

const (
	schoolA  = "S001"
	schoolB  = "S002"
	term     = "2017-autumn"
	officer  = "officer-a"
	reviewer = "reviewer-a"
)

// env is one test's infrastructure, on which the service runs.
type env struct{ *reviewtest.Env }

// newEnv starts the service with cfg on fresh infrastructure.
func newEnv(t *testing.T, cfg app.Config) *env {
	t.Helper()
	e := prepare(t)
	e.start(t, cfg)
	return e
}

// prepare sets up the infrastructure without starting the service.
func prepare(t *testing.T) *env {
	t.Helper()
	return &env{reviewtest.Prepare(t, "school_review")}
}

// start runs the service with cfg until t ends.
func (e *env) start(t *testing.T, cfg app.Config) {
	t.Helper()
	e.Start(t, srservice.SpecWith(srservice.Options{Config: &cfg}))
}

// client returns a client acting as user in role at org.
func (e *env) client(t *testing.T, user string, role auth.Role, org string) schoolreviewv1.SchoolReviewServiceClient {
	t.Helper()
	return schoolreviewv1.NewSchoolReviewServiceClient(e.Conn(t, user, role, org))
}

// submission is an application.submitted event to publish.
type submission struct {
	school, program, stage, submitter string
	tiered                            bool
	amount                            int64
}

func (s submission) event(t testing.TB, appID string) *eventsv1.Event {
	t.Helper()
	num := idnumber.Generate("420102", time.Date(2001, 3, 4, 0, 0, 0, 0, time.UTC), 17)
	ev, err := events.New(time.Now(), events.Actor(s.submitter, string(auth.RoleSchoolOfficer), s.school),
		events.Keys{ApplicationID: appID, SchoolCode: s.school, ProgramCode: s.program, Term: term},
		&eventsv1.ApplicationSubmitted{
			StudentIdMasked:   idnumber.Mask(num),
			StudentIdHash:     "hash-" + appID,
			StudentNameMasked: "张*明",
			Stage:             s.stage,
			FundingSource:     "government",
			Tiered:            s.tiered,
			AmountFen:         s.amount,
			BankCardMasked:    "6222**********0123",
			SubmittedBy:       s.submitter,
		})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

var (
	hsGrant   = submission{school: schoolA, program: "HS_NATIONAL_GRANT", stage: "high_school", submitter: officer, tiered: true}
	hsTuition = submission{school: schoolA, program: "HS_TUITION_WAIVER", stage: "high_school", submitter: officer, amount: 85000}
)

// submit publishes n submissions like s and waits until all are under review.
func (e *env) submit(t *testing.T, s submission, n int) []string {
	t.Helper()
	return e.Arrive(t, n, s.event)
}

func approve(id, level string) *schoolreviewv1.Decision {
	return &schoolreviewv1.Decision{ApplicationId: id, Approve: true, HardshipLevel: level}
}

func reject(id, reason string) *schoolreviewv1.Decision {
	return &schoolreviewv1.Decision{ApplicationId: id, Reason: reason}
}
