// Package reviewtest is the test support of the review services' component
// tests: one test's infrastructure (a fresh database, NATS, signing keys),
// the service started on it, clients, and the events in and out.
package reviewtest

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"

	"github.com/edubureau/studentaid/internal/devtools/testenv"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/grpcx"
	"github.com/edubureau/studentaid/pkg/natsx"
	platform "github.com/edubureau/studentaid/pkg/service"
	"github.com/edubureau/studentaid/pkg/service/servicetest"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
)

// Env is one test's infrastructure: a fresh database, a NATS server and a
// signing key, on which the service runs.
type Env struct {
	Svc  servicetest.Env
	Keys testenv.Keys
	JS   jetstream.JetStream
	// Pool reads the service's schema.
	Pool *pgxpool.Pool
	// Addr is the gRPC address of the service Start last started.
	Addr string
}

// Prepare sets up the infrastructure without starting a service; Pool's
// search path is schema.
func Prepare(t *testing.T, schema string) *Env {
	t.Helper()
	keys := testenv.NewKeys(t)
	e := &Env{
		Svc:  servicetest.Env{DatabaseURL: testenv.DatabaseURL(t), NATSURL: testenv.NATS(t), PublicKeyPath: keys.PublicKeyPath},
		Keys: keys,
	}
	nc, js, err := natsx.Connect(e.Svc.NATSURL, "test", natsx.WithNKeySeed(testenv.NATSSeed(t, natsx.AdminIdentity)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	e.JS = js
	// search_path may name the schema before the service's migrations create it.
	pool, err := db.Connect(context.Background(), e.Svc.DatabaseURL, db.Options{SearchPath: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	e.Pool = pool
	return e
}

// Start runs spec until t ends.
func (e *Env) Start(t *testing.T, spec platform.Spec) servicetest.Running {
	t.Helper()
	run := servicetest.Start(t, e.Svc, spec)
	e.Addr = run.GRPCAddr
	return run
}

// Conn is a connection to the service acting as user in role at org,
// closed when t ends.
func (e *Env) Conn(t *testing.T, user string, role auth.Role, org string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpcx.Dial(e.Addr, e.Keys.Token(t, user, role, org))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// Publish sends events to JetStream as the upstream service's relay would.
func (e *Env) Publish(t *testing.T, evs ...*eventsv1.Event) {
	t.Helper()
	servicetest.Publish(t, e.JS, evs...)
}

// Arrive publishes n events that event makes about new applications and
// waits until the service holds all n of them; it returns their IDs.
func (e *Env) Arrive(t *testing.T, n int, event func(t testing.TB, appID string) *eventsv1.Event) []string {
	t.Helper()
	ids := make([]string, n)
	evs := make([]*eventsv1.Event, n)
	for i := range ids {
		ids[i] = uuid.Must(uuid.NewV7()).String()
		evs[i] = event(t, ids[i])
	}
	e.Publish(t, evs...)
	e.WaitCount(t, `SELECT count(*) FROM review WHERE application_id = ANY($1::uuid[])`, n, ids)
	return ids
}

// WaitCount polls query until it returns want.
func (e *Env) WaitCount(t *testing.T, query string, want int, args ...any) {
	t.Helper()
	servicetest.WaitCount(t, e.Pool, query, want, args...)
}

// Outputs reads the events of type typ about the given applications from
// the AID_EVENTS stream until want of them have arrived.
func (e *Env) Outputs(t *testing.T, typ string, want int, appIDs ...string) map[string][]*eventsv1.Event {
	t.Helper()
	return servicetest.Outputs(t, e.JS, typ, want, appIDs...)
}

// StreamCount is how many events of type typ the stream holds.
func (e *Env) StreamCount(t *testing.T, typ string) int {
	t.Helper()
	return servicetest.StreamCount(t, e.JS, typ)
}

// Ctx is a context for one test's calls, cancelled after 30s or when t ends.
func Ctx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
