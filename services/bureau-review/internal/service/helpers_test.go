package service_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/edubureau/studentaid/internal/devtools/testenv"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/grpcx"
	"github.com/edubureau/studentaid/pkg/idnumber"
	"github.com/edubureau/studentaid/pkg/natsx"
	"github.com/edubureau/studentaid/pkg/service/servicetest"
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
	waitLimit = 15 * time.Second
)

// env is one test's infrastructure: a fresh database, an embedded NATS
// server and a signing key, on which the service runs.
type env struct {
	svc  servicetest.Env
	keys testenv.Keys
	js   jetstream.JetStream
	pool *pgxpool.Pool
	addr string
}

// newEnv starts the service on fresh infrastructure.
func newEnv(t *testing.T) *env {
	t.Helper()
	e := prepare(t)
	e.start(t)
	return e
}

// prepare sets up the infrastructure without starting the service.
func prepare(t *testing.T) *env {
	t.Helper()
	keys := testenv.NewKeys(t)
	e := &env{
		svc:  servicetest.Env{DatabaseURL: testenv.DatabaseURL(t), NATSURL: testenv.NATS(t), PublicKeyPath: keys.PublicKeyPath},
		keys: keys,
	}
	nc, js, err := natsx.Connect(e.svc.NATSURL, "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	e.js = js
	// search_path may name the schema before the service's migrations create it.
	pool, err := db.Connect(context.Background(), e.svc.DatabaseURL, db.Options{SearchPath: "bureau_review"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	e.pool = pool
	return e
}

// start runs the service until t ends.
func (e *env) start(t *testing.T) {
	t.Helper()
	run := servicetest.Start(t, e.svc, brservice.Spec())
	e.addr = run.GRPCAddr
}

// client returns a client acting as user in role at org.
func (e *env) client(t *testing.T, user string, role auth.Role, org string) bureaureviewv1.BureauReviewServiceClient {
	t.Helper()
	conn, err := grpcx.Dial(e.addr, e.keys.Token(t, user, role, org))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return bureaureviewv1.NewBureauReviewServiceClient(conn)
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

// publish sends events to JetStream as the application service's relay would.
func (e *env) publish(t *testing.T, evs ...*eventsv1.Event) {
	t.Helper()
	servicetest.Publish(t, e.js, evs...)
}

// pass publishes n notice_passed events like p and waits until all are under review.
func (e *env) pass(t *testing.T, p passed, n int) []string {
	t.Helper()
	ids := make([]string, n)
	evs := make([]*eventsv1.Event, n)
	for i := range ids {
		ids[i] = uuid.Must(uuid.NewV7()).String()
		evs[i] = p.event(t, ids[i])
	}
	e.publish(t, evs...)
	e.waitCount(t, `SELECT count(*) FROM review WHERE application_id = ANY($1::uuid[])`, n, ids)
	return ids
}

// waitCount polls query until it returns want.
func (e *env) waitCount(t *testing.T, query string, want int, args ...any) {
	t.Helper()
	servicetest.WaitCount(t, e.pool, query, want, args...)
}

// eventually polls fn until it succeeds or the wait limit passes.
func eventually(t *testing.T, fn func() error) { t.Helper(); servicetest.Eventually(t, fn) }

// outputs reads the events of type typ about the given applications from the
// AID_EVENTS stream until want of them have arrived.
func (e *env) outputs(t *testing.T, typ string, want int, appIDs ...string) map[string][]*eventsv1.Event {
	t.Helper()
	return servicetest.Outputs(t, e.js, typ, want, appIDs...)
}

// wantCode fails unless err is a status with code whose message contains each of parts.
func wantCode(t *testing.T, err error, code codes.Code, parts ...string) *status.Status {
	t.Helper()
	return servicetest.WantCode(t, err, code, parts...)
}

// violationFields lists the fields of a status's BadRequest detail.
func violationFields(st *status.Status) []string { return servicetest.ViolationFields(st) }

func approve(id string) *bureaureviewv1.Decision {
	return &bureaureviewv1.Decision{ApplicationId: id, Approve: true}
}

func reject(id, reason string) *bureaureviewv1.Decision {
	return &bureaureviewv1.Decision{ApplicationId: id, Reason: reason}
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
