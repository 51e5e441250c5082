package service_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/edubureau/studentaid/cmd/banksim/sim"
	"github.com/edubureau/studentaid/cmd/banksim/sim/simtest"
	"github.com/edubureau/studentaid/internal/devtools/testenv"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/config"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/grpcx"
	"github.com/edubureau/studentaid/pkg/manifest"
	"github.com/edubureau/studentaid/pkg/natsx"
	"github.com/edubureau/studentaid/pkg/pii"
	"github.com/edubureau/studentaid/pkg/service/servicetest"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	payoutv1 "github.com/edubureau/studentaid/proto/gen/aid/payout/v1"
	"github.com/edubureau/studentaid/services/payout/internal/app"
	payoutservice "github.com/edubureau/studentaid/services/payout/internal/service"
)

const (
	term        = "2017-autumn"
	program     = "BOARDING_SUBSIDY"
	goodCard    = "6217001234567890123"
	closedCard  = "6217001234560000"
	accountName = "王小明"
)

// harness is one running payout with its own database, NATS and bank.
type harness struct {
	t    *testing.T
	run  servicetest.Running
	keys testenv.Keys
	// js reads the streams as the admin; publish sends each event as the
	// service that owns its type (owners), as NATS permissions demand.
	js      jetstream.JetStream
	natsURL string
	owners  map[string]*nats.Conn
	pool    *pgxpool.Pool
	bank    *simtest.Env
	sealer  *pii.Sealer
	// serviceURL logs in as payout's own role.
	serviceURL string
}

// testOptions make retries quick; the bank URL is filled in by start.
func testOptions() payoutservice.Options {
	return payoutservice.Options{Config: app.Config{Concurrency: 4, BankTimeout: 5 * time.Second, RetryBackoff: 100 * time.Millisecond,
		MaxBackoff: time.Second, ClaimLease: time.Minute, PollInterval: 50 * time.Millisecond}}
}

// start starts a faultless bank and then payout with the test options.
func start(t *testing.T) *harness {
	t.Helper()
	return startWith(t, sim.Faults{}, testOptions())
}

// startWith starts a bank with faults and then payout with opts.
func startWith(t *testing.T, faults sim.Faults, opts payoutservice.Options) *harness {
	t.Helper()
	return startOn(t, testenv.NATS(t), faults, opts)
}

// startOn is startWith on the NATS server at natsURL.
func startOn(t *testing.T, natsURL string, faults sim.Faults, opts payoutservice.Options) *harness {
	t.Helper()
	dbURL := testenv.DatabaseURL(t)
	keys := testenv.NewKeys(t)
	h := &harness{t: t, keys: keys, bank: simtest.Start(t, faults), sealer: testenv.Sealer(t, ""), natsURL: natsURL, owners: map[string]*nats.Conn{}}
	opts.Config.BankURL = h.bank.Server.URL
	env := servicetest.Env{DatabaseURL: dbURL, NATSURL: natsURL, PublicKeyPath: keys.PublicKeyPath}
	h.run = servicetest.Start(t, env, payoutservice.SpecWith(opts))
	h.serviceURL = servicetest.Migrate(t, env, payoutservice.SpecWith(opts))
	_, h.js = testenv.ConnectNATS(t, natsURL, natsx.AdminIdentity)
	var err error
	if h.pool, err = db.Connect(context.Background(), dbURL, db.Options{SearchPath: "payout", MaxConns: 2}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.pool.Close)
	return h
}

func (h *harness) client(role auth.Role, org string) payoutv1.PayoutServiceClient {
	h.t.Helper()
	conn, err := grpcx.Dial(h.run.GRPCAddr, h.keys.Token(h.t, "u-"+string(role), role, org))
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { conn.Close() })
	return payoutv1.NewPayoutServiceClient(conn)
}

// sealCard seals card as the application service seals application id's
// card; sealName likewise its account name.
func (h *harness) sealCard(id, card string) []byte { return h.seal(card, events.BankCardBinding(id)) }

func (h *harness) sealName(id, name string) []byte {
	return h.seal(name, events.AccountNameBinding(id))
}

func (h *harness) seal(s string, binding []byte) []byte {
	h.t.Helper()
	b, err := h.sealer.Seal(s, binding)
	if err != nil {
		h.t.Fatal(err)
	}
	return b
}

// publish puts ev on its subject, logged in to NATS as the service that
// owns ev's type (a payment order as finance-confirmation).
func (h *harness) publish(ev *eventsv1.Event) {
	h.t.Helper()
	if err := h.publishAs(events.Owner(ev.GetType()), ev, "", nil); err != nil {
		h.t.Fatal(err)
	}
}

// publishAs is publish logged in as identity; it returns the server's
// refusal (which reaches the connection, not the publish: the publish only
// times out).
func (h *harness) publishAs(identity string, ev *eventsv1.Event, msgID string, headers map[string]string) error {
	h.t.Helper()
	nc, ok := h.owners[identity]
	if !ok {
		nc, _ = testenv.ConnectNATS(h.t, h.natsURL, identity)
		h.owners[identity] = nc
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	data, err := events.Marshal(ev)
	if err != nil {
		h.t.Fatal(err)
	}
	msg := nats.NewMsg(events.Subject(ev.GetType()))
	msg.Data = data
	if msgID == "" {
		msgID = ev.GetEventId()
	}
	msg.Header.Set(jetstream.MsgIDHeader, msgID)
	for k, v := range headers {
		msg.Header.Set(k, v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("%w (connection: %w)", err, nc.LastError())
	}
	return nil
}

type application struct {
	id, school string
	amount     int64
}

func newApplication(amount int64) application {
	return application{id: uuid.NewString(), school: "S001", amount: amount}
}

// submitted is the application.submitted event carrying the payee.
func (h *harness) submitted(a application, card string) *eventsv1.Event {
	return events.MustNew(time.Now(), events.Actor("off-1", string(auth.RoleSchoolOfficer), a.school),
		events.Keys{ApplicationID: a.id, SchoolCode: a.school, ProgramCode: program, Term: term},
		&eventsv1.ApplicationSubmitted{StudentIdMasked: "4201**********123X", StudentIdHash: "h", StudentNameMasked: "王*",
			Stage: "junior", FundingSource: "government", AmountFen: a.amount,
			BankCardSealed: h.sealCard(a.id, card), AccountNameSealed: h.sealName(a.id, accountName), BankCardMasked: sim.MaskCard(card), SubmittedBy: "off-1"})
}

func (h *harness) corrected(a application, card, name string) *eventsv1.Event {
	return events.MustNew(time.Now(), events.Actor("off-1", string(auth.RoleSchoolOfficer), a.school),
		events.Keys{ApplicationID: a.id, SchoolCode: a.school, ProgramCode: program, Term: term},
		&eventsv1.PayeeCorrected{BankCardSealed: h.sealCard(a.id, card), AccountNameSealed: h.sealName(a.id, name), BankCardMasked: sim.MaskCard(card)})
}

func ordered(a application, batchID, paymentID string, attempt int32) *eventsv1.Event {
	return events.MustNew(time.Now(), events.Actor("fin-1", string(auth.RoleFinanceOfficer), auth.OrgFinance),
		events.Keys{ApplicationID: a.id, BatchID: batchID, SchoolCode: a.school, ProgramCode: program, Term: term},
		&eventsv1.PaymentOrdered{PaymentId: paymentID, AmountFen: a.amount, Attempt: attempt})
}

// await reads the events on subject from the start of the stream until n
// match keep, or fails after a deadline.
func (h *harness) await(subject string, n int, keep func(*eventsv1.Event) bool) []servicetest.Message {
	h.t.Helper()
	stream := natsx.EventStream
	if strings.HasPrefix(subject, natsx.DeadPrefix) {
		stream = natsx.DeadStream
	}
	return servicetest.Read(h.t, h.js, stream, subject, n, keep)
}

func (h *harness) awaitEvents(typ string, n int) []*eventsv1.Event {
	h.t.Helper()
	return servicetest.Events(h.t, h.js, typ, n, nil)
}

// count is the number of events on subject in the event stream now.
func (h *harness) count(subject string) int {
	h.t.Helper()
	return servicetest.CountEvents(h.t, h.js, natsx.EventStream, subject)
}

// awaitConsumed waits until payout's consumer has applied everything published so far.
func (h *harness) awaitConsumed() {
	h.t.Helper()
	servicetest.AwaitConsumed(h.t, h.js, "payout")
}

// awaitSettled waits until no payment is PENDING or UNKNOWN.
func (h *harness) awaitSettled() {
	h.t.Helper()
	eventually(h.t, "payments settled", func() (bool, string) {
		var open int
		if err := h.pool.QueryRow(context.Background(), `SELECT count(*) FROM payments WHERE status IN ('PENDING', 'UNKNOWN')`).Scan(&open); err != nil {
			return false, err.Error()
		}
		return open == 0, fmt.Sprintf("%d open", open)
	})
}

func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		ok, detail := cond()
		if ok {
			return
		}
		last = detail
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within 20s (last: %s)", what, last)
}

// ledger returns the bank's totals.
func (h *harness) ledger() sim.Totals {
	h.t.Helper()
	page, err := h.bank.Ledger.List(context.Background(), "", 1000)
	if err != nil {
		h.t.Fatal(err)
	}
	return page.Totals
}

// bankLog counts the simulator's log lines that hold every one of parts.
func (h *harness) bankLog(parts ...string) int {
	n := 0
	for line := range strings.SplitSeq(h.bank.Logs.String(), "\n") {
		all := line != ""
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			n++
		}
	}
	return n
}

// publishAsFinance publishes ev under finance-confirmation's NATS identity.
// Every finance event of these tests, genuine or forged, goes out here: a
// forged order is forged by an insider holding finance's NATS credentials,
// not its signing key.
func (h *harness) publishAsFinance(ev *eventsv1.Event, msgID string, headers map[string]string) {
	h.t.Helper()
	if err := h.publishAs("finance-confirmation", ev, msgID, headers); err != nil {
		h.t.Fatal(err)
	}
}

// devSigner signs as finance does in development: payout is started with
// its public key (config.DevFinanceVerifyKeys).
func devSigner(t *testing.T) *manifest.Signer {
	t.Helper()
	s, err := manifest.ParseSigningKeys(config.DevFinanceSigningKeys)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// itemOf is a's entry in a manifest, first ordered as paymentID.
func itemOf(a application, paymentID string) manifest.Item {
	return manifest.Item{ApplicationID: a.id, PaymentID: paymentID, AmountFen: a.amount}
}

var financeActor = events.Actor("fin-1", string(auth.RoleFinanceOfficer), auth.OrgFinance)

// manifestEvents are the batch_confirmed and manifest parts finance writes
// when it confirms batchID over items, signed by s.
func manifestEvents(t *testing.T, s *manifest.Signer, batchID string, items ...manifest.Item) []*eventsv1.Event {
	t.Helper()
	b := manifest.Batch{ID: batchID, ProgramCode: program, Term: term, FundingSource: "government", ControlCount: int64(len(items))}
	for _, it := range items {
		b.ControlSumFen += it.AmountFen
	}
	header, parts, err := manifest.Build(b, items, s)
	if err != nil {
		t.Fatal(err)
	}
	keys := events.Keys{BatchID: batchID, ProgramCode: program, Term: term}
	evs := []*eventsv1.Event{events.MustNew(time.Now(), financeActor, keys, &eventsv1.BatchConfirmed{
		ControlCount: b.ControlCount, ControlSumFen: b.ControlSumFen, FundingSource: b.FundingSource, Manifest: manifest.HeaderProto(header),
	})}
	for i, p := range parts {
		evs = append(evs, events.MustNew(time.Now(), financeActor, keys, manifest.PartProto(i, p)))
	}
	return evs
}

// confirm publishes the signed manifest of batchID over items, as finance
// does on confirmation.
func (h *harness) confirm(batchID string, items ...manifest.Item) {
	h.t.Helper()
	for _, ev := range manifestEvents(h.t, devSigner(h.t), batchID, items...) {
		h.publishAsFinance(ev, "", nil)
	}
}

// reissued is finance's signed order paying a again under paymentID.
func reissued(t *testing.T, a application, batchID, paymentID string, attempt int32) *eventsv1.Event {
	t.Helper()
	ev := ordered(a, batchID, paymentID, attempt)
	keyID, sig, err := devSigner(t).SignReissue(manifest.Reissue{BatchID: batchID, ApplicationID: a.id, PaymentID: paymentID, AmountFen: a.amount, Attempt: attempt})
	if err != nil {
		t.Fatal(err)
	}
	ev.GetPaymentOrdered().ReissueKeyId, ev.GetPaymentOrdered().ReissueSignature = keyID, sig
	return ev
}
