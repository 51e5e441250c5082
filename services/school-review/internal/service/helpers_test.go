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
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	schoolreviewv1 "github.com/edubureau/studentaid/proto/gen/aid/schoolreview/v1"
	"github.com/edubureau/studentaid/services/school-review/internal/app"
	srservice "github.com/edubureau/studentaid/services/school-review/internal/service"
)

const (
	schoolA   = "S001"
	schoolB   = "S002"
	term      = "2017-autumn"
	officer   = "officer-a"
	reviewer  = "reviewer-a"
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
	pool, err := db.Connect(context.Background(), e.svc.DatabaseURL, db.Options{SearchPath: "school_review"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	e.pool = pool
	return e
}

// start runs the service until t ends.
func (e *env) start(t *testing.T, cfg app.Config) {
	t.Helper()
	run := servicetest.Start(t, e.svc, srservice.SpecWith(cfg))
	e.addr = run.GRPCAddr
}

// client returns a client acting as user in role at org.
func (e *env) client(t *testing.T, user string, role auth.Role, org string) schoolreviewv1.SchoolReviewServiceClient {
	t.Helper()
	conn, err := grpcx.Dial(e.addr, e.keys.Token(t, user, role, org))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return schoolreviewv1.NewSchoolReviewServiceClient(conn)
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

// publish sends events to JetStream as the application service's relay would.
func (e *env) publish(t *testing.T, evs ...*eventsv1.Event) {
	t.Helper()
	servicetest.Publish(t, e.js, evs...)
}

// submit publishes n submissions like s and waits until all are under review.
func (e *env) submit(t *testing.T, s submission, n int) []string {
	t.Helper()
	ids := make([]string, n)
	evs := make([]*eventsv1.Event, n)
	for i := range ids {
		ids[i] = uuid.Must(uuid.NewV7()).String()
		evs[i] = s.event(t, ids[i])
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

// streamCount is how many events of type typ the stream holds.
func (e *env) streamCount(t *testing.T, typ string) int {
	t.Helper()
	return servicetest.StreamCount(t, e.js, typ)
}

// wantCode fails unless err is a status with code whose message contains each of parts.
func wantCode(t *testing.T, err error, code codes.Code, parts ...string) *status.Status {
	t.Helper()
	return servicetest.WantCode(t, err, code, parts...)
}

// violationFields lists the fields of a status's BadRequest detail.
func violationFields(st *status.Status) []string { return servicetest.ViolationFields(st) }

func approve(id, level string) *schoolreviewv1.Decision {
	return &schoolreviewv1.Decision{ApplicationId: id, Approve: true, HardshipLevel: level}
}

func reject(id, reason string) *schoolreviewv1.Decision {
	return &schoolreviewv1.Decision{ApplicationId: id, Reason: reason}
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
