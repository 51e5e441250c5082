package service_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/edubureau/studentaid/internal/devtools/testenv"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/config"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/grpcx"
	"github.com/edubureau/studentaid/pkg/idnumber"
	"github.com/edubureau/studentaid/pkg/natsx"
	"github.com/edubureau/studentaid/pkg/pii"
	"github.com/edubureau/studentaid/pkg/service/servicetest"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
	commonv1 "github.com/edubureau/studentaid/proto/gen/aid/common/v1"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	appservice "github.com/edubureau/studentaid/services/application/internal/service"
)

// env is one hosted application service with its database and NATS.
type env struct {
	t      *testing.T
	run    servicetest.Running
	keys   testenv.Keys
	pool   *pgxpool.Pool
	js     jetstream.JetStream
	sealer *pii.Sealer
	// db and nats are the URLs the service runs on.
	db, nats string
}

func start(t *testing.T) *env {
	t.Helper()
	return startWith(t, appservice.Options{})
}

// startWith starts the service with o's seams set.
func startWith(t *testing.T, o appservice.Options) *env {
	t.Helper()
	dbURL := testenv.DatabaseURL(t)
	natsURL := testenv.NATS(t)
	keys := testenv.NewKeys(t)
	run := servicetest.Start(t, servicetest.Env{DatabaseURL: dbURL, NATSURL: natsURL, PublicKeyPath: keys.PublicKeyPath}, appservice.SpecWith(o))
	pool, err := db.Connect(context.Background(), dbURL, db.Options{SearchPath: "application"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	nc, js, err := natsx.Connect(natsURL, "application-test", natsx.WithNKeySeed(testenv.NATSSeed(t, natsx.AdminIdentity)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	e := &env{t: t, run: run, keys: keys, pool: pool, js: js, sealer: testenv.Sealer(t, ""), db: dbURL, nats: natsURL}
	e.registerTestSchools(t)
	return e
}

// replica starts another instance of the service on e's database and NATS
// with the given key sets (as AID_SEAL_KEYS and AID_HASH_KEYS; "" is the
// development set) and returns e as seen through it.
func (e *env) replica(t *testing.T, sealKeys, hashKeys string) *env {
	t.Helper()
	r := *e
	r.run = servicetest.Start(t, servicetest.Env{DatabaseURL: e.db, NATSURL: e.nats, PublicKeyPath: e.keys.PublicKeyPath, SealKeys: sealKeys, HashKeys: hashKeys}, appservice.Spec())
	return &r
}

// client returns an API client acting as user in role at org.
func (e *env) client(user string, role auth.Role, org string) applicationv1.ApplicationServiceClient {
	e.t.Helper()
	conn, err := grpcx.Dial(e.run.GRPCAddr, e.keys.Token(e.t, user, role, org))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = conn.Close() })
	return applicationv1.NewApplicationServiceClient(conn)
}

func (e *env) officer(school string) applicationv1.ApplicationServiceClient {
	return e.client("officer-"+school, auth.RoleSchoolOfficer, school)
}

// count runs a counting query.
func (e *env) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// footprint is what a school has written: rows in each table and events in the outbox.
type footprint struct {
	Applications, Trail, IdempotencyKeys, OutboxEvents, AllOutbox int
}

func (e *env) footprint(t *testing.T, school string) footprint {
	t.Helper()
	f := footprint{
		Applications:    e.count(t, `SELECT count(*) FROM applications WHERE school_code = $1`, school),
		Trail:           e.count(t, `SELECT count(*) FROM trail JOIN applications a ON a.id = trail.application_id WHERE a.school_code = $1`, school),
		IdempotencyKeys: e.count(t, `SELECT count(*) FROM idempotency_keys WHERE school_code = $1`, school),
		AllOutbox:       e.count(t, `SELECT count(*) FROM outbox`),
	}
	rows, err := e.pool.Query(context.Background(), `SELECT payload FROM outbox`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			t.Fatal(err)
		}
		ev, err := events.Unmarshal(b)
		if err != nil {
			t.Fatal(err)
		}
		if ev.GetSchoolCode() == school {
			f.OutboxEvents++
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return f
}

var studentSeq atomic.Int64

// student is a test student with valid, unique ID and card numbers.
type student struct {
	ID   string
	Name string
	Card string
}

func newStudent() student {
	n := studentSeq.Add(1)
	// 14 at the start of 2017-autumn: of an age for primary (up to 15),
	// junior, high school and vocational school in the seed policy.
	birth := time.Date(2003, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(n/1000))
	return student{
		ID:   idnumber.Generate("420106", birth, int(n%1000)),
		Name: fmt.Sprintf("张%d", n),
		Card: pii.GenerateCardNumber("622848", n, 19),
	}
}

// boarding is a valid rural boarding-subsidy application of a primary pupil (500 yuan).
func boarding(s student) *applicationv1.NewApplication {
	return &applicationv1.NewApplication{
		StudentIdNumber: s.ID, StudentName: s.Name, Stage: "primary", ProgramCode: "BOARDING_SUBSIDY",
		Boarding: true, Rural: true, BankCardNumber: s.Card, AccountName: s.Name + "家长",
	}
}

// hsGrant is a high-school national grant application (tiered).
func hsGrant(s student) *applicationv1.NewApplication {
	return &applicationv1.NewApplication{
		StudentIdNumber: s.ID, StudentName: s.Name, Stage: "high_school", ProgramCode: "HS_NATIONAL_GRANT",
		BankCardNumber: s.Card, AccountName: s.Name,
	}
}

const term = "2017-autumn"

func submit(t *testing.T, c applicationv1.ApplicationServiceClient, school string, apps ...*applicationv1.NewApplication) []*applicationv1.Application {
	t.Helper()
	resp, err := c.SubmitApplications(context.Background(), &applicationv1.SubmitApplicationsRequest{SchoolCode: school, Term: term, Applications: apps})
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	if len(resp.GetApplications()) != len(apps) {
		t.Fatalf("submit: %d applications back, want %d", len(resp.GetApplications()), len(apps))
	}
	return resp.GetApplications()
}

// fingerprintOf is the keyed fingerprint the trail shows for a card: the
// HMAC-SHA256 of the number under the development hashing key, in hex.
func fingerprintOf(card string) string {
	_, secret, _ := strings.Cut(config.DevHashKeys, ":")
	key, err := pii.ParseKey(secret)
	if err != nil {
		panic(err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(card))
	return hex.EncodeToString(mac.Sum(nil))
}

// payeeReason is the trail's reason for a step of payee correction id from
// card from to card to, entered by officer-S001 (the tests' officer of
// S001); outcome ends it.
func payeeReason(id, from, to, outcome string) string {
	return "correction " + id + ": old card " + idnumber.Mask(from) + " fingerprint " + fingerprintOf(from) +
		"; new card " + idnumber.Mask(to) + " fingerprint " + fingerprintOf(to) + "; entered by officer-S001 at S001; " + outcome
}

// wantCode fails unless err is a status with code.
func wantCode(t *testing.T, err error, code codes.Code) *status.Status {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != code {
		t.Fatalf("got %v, want %s", err, code)
	}
	return st
}

// violations returns the field violations of st, by field.
func violations(st *status.Status) map[string]string {
	out := map[string]string{}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				out[v.GetField()] = v.GetDescription()
			}
		}
	}
	return out
}

// rule returns the ErrorInfo reason of st.
func rule(st *status.Status) string {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

// publish puts ev on JetStream as another service's relay would, with msgID
// as the Nats-Msg-Id (the event ID unless testing redelivery).
func (e *env) publish(t *testing.T, ev *eventsv1.Event, msgID string) {
	t.Helper()
	b, err := events.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(events.Subject(ev.GetType()))
	m.Data = b
	m.Header.Set(jetstream.MsgIDHeader, msgID)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.js.PublishMsg(ctx, m); err != nil {
		t.Fatalf("publish %s: %v", ev.GetType(), err)
	}
}

// downstream builds an event of a later step about application a.
func downstream(a *applicationv1.Application, actor *commonv1.Actor, batchID string, body proto.Message) *eventsv1.Event {
	return events.MustNew(time.Now(), actor, events.Keys{ApplicationID: a.GetApplicationId(), BatchID: batchID,
		SchoolCode: a.GetSchoolCode(), ProgramCode: a.GetProgramCode(), Term: a.GetTerm()}, body)
}

// waitFor polls the application until cond holds or the deadline passes.
func (e *env) waitFor(t *testing.T, c applicationv1.ApplicationServiceClient, id string, what string, cond func(*applicationv1.Application) bool) *applicationv1.Application {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var last *applicationv1.Application
	for time.Now().Before(deadline) {
		a, err := c.GetApplication(context.Background(), &applicationv1.GetApplicationRequest{ApplicationId: id})
		if err != nil {
			t.Fatalf("get %s: %v", id, err)
		}
		if cond(a) {
			return a
		}
		last = a
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("application %s: %s not reached in time; last status %s", id, what, last.GetStatus())
	return nil
}

// outputEvents reads the service's events of type from AID_EVENTS until n
// have arrived (keyed by application ID) or the deadline passes.
func (e *env) outputEvents(t *testing.T, typ string, n int, keep func(*eventsv1.Event) bool) []*eventsv1.Event {
	t.Helper()
	out := servicetest.Events(t, e.js, typ, n, keep)
	if len(out) != n {
		t.Fatalf("%d %s events, want %d", len(out), typ, n)
	}
	return out
}
