package service_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/edubureau/studentaid/internal/devtools/testenv"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/grpcx"
	"github.com/edubureau/studentaid/pkg/natsx"
	"github.com/edubureau/studentaid/pkg/service/servicetest"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	financev1 "github.com/edubureau/studentaid/proto/gen/aid/finance/v1"
	"github.com/edubureau/studentaid/services/finance-confirmation/internal/service"
)

const term = "2017-autumn"

// harness is one running finance-confirmation with its own database and NATS.
type harness struct {
	t    *testing.T
	run  servicetest.Running
	keys testenv.Keys
	js   jetstream.JetStream
	pool *pgxpool.Pool
}

func start(t *testing.T) *harness {
	t.Helper()
	return startWith(t, service.Options{})
}

// startWith is start with the test seams of o set.
func startWith(t *testing.T, o service.Options) *harness {
	t.Helper()
	dbURL := testenv.DatabaseURL(t)
	natsURL := testenv.NATS(t)
	keys := testenv.NewKeys(t)
	run := servicetest.Start(t, servicetest.Env{DatabaseURL: dbURL, NATSURL: natsURL, PublicKeyPath: keys.PublicKeyPath}, service.SpecWith(o))
	// The fixtures publish other services' events: the admin may.
	_, js := testenv.ConnectNATS(t, natsURL, natsx.AdminIdentity)
	pool, err := db.Connect(context.Background(), dbURL, db.Options{SearchPath: "finance_confirmation", MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return &harness{t: t, run: run, keys: keys, js: js, pool: pool}
}

// client returns a gRPC client acting as user.
func (h *harness) client(user string, role auth.Role, org string) financev1.FinanceConfirmationServiceClient {
	h.t.Helper()
	conn, err := grpcx.Dial(h.run.GRPCAddr, h.keys.Token(h.t, user, role, org))
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { conn.Close() })
	return financev1.NewFinanceConfirmationServiceClient(conn)
}

func (h *harness) officer(user string) financev1.FinanceConfirmationServiceClient {
	return h.client(user, auth.RoleFinanceOfficer, auth.OrgFinance)
}

// closeBatch closes batchID as "fin-closer", the first of the two finance
// officers a batch takes; the tests confirm as another one.
func (h *harness) closeBatch(batchID string) {
	h.t.Helper()
	if _, err := h.officer("fin-closer").CloseBatch(context.Background(), &financev1.CloseBatchRequest{BatchId: batchID}); err != nil {
		h.t.Fatalf("close batch %s: %v", batchID, err)
	}
}

// publish puts ev on its subject as its writer's relay would.
func (h *harness) publish(ev *eventsv1.Event) {
	h.t.Helper()
	data, err := events.Marshal(ev)
	if err != nil {
		h.t.Fatal(err)
	}
	msg := nats.NewMsg(events.Subject(ev.GetType()))
	msg.Data = data
	msg.Header.Set(jetstream.MsgIDHeader, ev.GetEventId())
	if _, err := h.js.PublishMsg(context.Background(), msg); err != nil {
		h.t.Fatal(err)
	}
}

// awaitEvents reads events of typ from the start of the stream until n
// match keep, or fails after a deadline.
func (h *harness) awaitEvents(typ string, n int, keep func(*eventsv1.Event) bool) []*eventsv1.Event {
	h.t.Helper()
	return servicetest.Events(h.t, h.js, typ, n, keep)
}

// countEvents counts the events of typ in the stream now.
func (h *harness) countEvents(typ string, keep func(*eventsv1.Event) bool) int {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := h.js.Stream(ctx, natsx.EventStream)
	if err != nil {
		h.t.Fatal(err)
	}
	si, err := info.Info(ctx, jetstream.WithSubjectFilter(events.Subject(typ)))
	if err != nil {
		h.t.Fatal(err)
	}
	total := int(si.State.Subjects[events.Subject(typ)])
	if total == 0 {
		return 0
	}
	return countKept(h.awaitEvents(typ, total, nil), keep)
}

func countKept(evs []*eventsv1.Event, keep func(*eventsv1.Event) bool) int {
	n := 0
	for _, ev := range evs {
		if keep == nil || keep(ev) {
			n++
		}
	}
	return n
}

// awaitConsumed waits until the service's consumer has applied everything published so far.
func (h *harness) awaitConsumed() {
	h.t.Helper()
	servicetest.AwaitConsumed(h.t, h.js, "finance-confirmation")
}

type approval struct {
	app, school, program string
	amount               int64
	submitter, schoolRev string
	bureauRev            string
}

func newApproval(school, program string, amount int64) approval {
	return approval{app: uuid.NewString(), school: school, program: program, amount: amount,
		submitter: "off-" + school, schoolRev: "rev-" + school, bureauRev: "bureau-1"}
}

func (a approval) event(t *testing.T) *eventsv1.Event {
	t.Helper()
	ev, err := events.New(time.Now(), events.Actor(a.bureauRev, string(auth.RoleBureauReviewer), auth.OrgBureau),
		events.Keys{ApplicationID: a.app, SchoolCode: a.school, ProgramCode: a.program, Term: term},
		&eventsv1.BureauApproved{AmountFen: a.amount, FundingSource: "government", SubmittedBy: a.submitter,
			SchoolReviewer: a.schoolRev, BureauReviewer: a.bureauRev, Reason: "eligible"})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// batchOf publishes approvals and waits until each is batched; it returns
// the batch ID of each approval.
func (h *harness) batchOf(as ...approval) map[string]string {
	h.t.Helper()
	want := map[string]bool{}
	for _, a := range as {
		h.publish(a.event(h.t))
		want[a.app] = true
	}
	evs := h.awaitEvents(events.TypeItemBatched, len(as), func(ev *eventsv1.Event) bool { return want[ev.GetApplicationId()] })
	out := map[string]string{}
	for _, ev := range evs {
		out[ev.GetApplicationId()] = ev.GetBatchId()
	}
	return out
}

func wantCode(t *testing.T, err error, code codes.Code, msgPart string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code || !strings.Contains(st.Message(), msgPart) {
		t.Fatalf("got %v %q, want %v containing %q", st.Code(), st.Message(), code, msgPart)
	}
}
