package e2e

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/edubureau/studentaid/internal/devtools/stack"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/natsx"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	"github.com/edubureau/studentaid/services/application/anchor"
)

// TestRedTeam plays the insiders of docs/security.md against a running
// system: each attack is refused or detected, and the bank's ledger shows
// nothing paid for any of them. The chain runs first, as it would in a
// real term; it already meets the attacks that go through the API on the
// way (runChain): a payee correction approved by the officer who entered
// it (payee-self-approval), a reissue before the correction is approved,
// and a batch confirmed by the officer who closed it
// (close-confirm-same-officer).
func TestRedTeam(t *testing.T) {
	s := startStack(t, map[string]string{"SCHOOL_REVIEW_NOTICE_PERIOD": "3s"}, false)
	chain := runChain(t, s)
	before := readLedger(t, s.BankURL)

	t.Run("NATS refuses a publisher without credentials or off its own subjects", func(t *testing.T) {
		natsRefuses(t, s)
	})
	t.Run("orders not proven by a signed manifest are dead-lettered, not paid", func(t *testing.T) {
		forgedOrders(t, s, chain)
	})
	t.Run("an event of one service's type from another is refused", func(t *testing.T) {
		wrongOrigin(t, s, chain)
	})
	t.Run("service role changes no schema, trigger or trail", func(t *testing.T) {
		serviceRoleIsRefused(t, s)
	})
	t.Run("a copied ciphertext does not open", func(t *testing.T) {
		copiedCiphertext(t, s, chain)
	})
	t.Run("a consistent trail rewrite by the database owner is detected", func(t *testing.T) {
		trailRewrite(t, s, chain)
	})

	after := readLedger(t, s.BankURL)
	if after.creditedCount != before.creditedCount || after.creditedSum != before.creditedSum || len(after.keys) != len(before.keys) {
		t.Errorf("the bank's ledger moved during the attacks: %d credits / %d fen / %d entries before, %d / %d / %d after",
			before.creditedCount, before.creditedSum, len(before.keys), after.creditedCount, after.creditedSum, len(after.keys))
	}
	for k, st := range after.keys {
		if before.keys[k] != st {
			t.Errorf("bank ledger entry %s: %q before the attacks, %q after", k, before.keys[k], st)
		}
	}
}

// natsRefuses: a process that reaches NATS without credentials cannot log
// in; payout's and application's credentials cannot publish a payment
// order (finance's subject); the server refuses and the stream holds no
// such message.
func natsRefuses(t *testing.T, s *stack.Stack) {
	t.Helper()
	if nc, err := nats.Connect(s.NATSURL, nats.Name("intruder"), nats.Timeout(3*time.Second)); err == nil {
		nc.Close()
		t.Error("NATS accepted a connection without credentials")
	} else if !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Errorf("connect without credentials: %v, want an authorization violation", err)
	}
	_, admin := redteamNATS(t, s, natsx.AdminIdentity)
	before := subjectCount(t, admin, events.Subject(events.TypePaymentOrdered))
	for _, identity := range []string{"payout", "application"} {
		nc, _ := redteamNATS(t, s, identity)
		refused := make(chan error, 1)
		nc.SetErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case refused <- err:
			default:
			}
		})
		order := events.MustNew(time.Now(), events.Actor("fin-x", string(auth.RoleFinanceOfficer), auth.OrgFinance),
			events.Keys{ApplicationID: uuid.NewString(), BatchID: uuid.NewString(), SchoolCode: "S001", ProgramCode: "PRESCHOOL_AID", Term: "2017-autumn"},
			&eventsv1.PaymentOrdered{PaymentId: uuid.NewString(), AmountFen: 5_000_000, Attempt: 1})
		data, err := events.Marshal(order)
		if err != nil {
			t.Fatal(err)
		}
		if err := nc.Publish(events.Subject(events.TypePaymentOrdered), data); err != nil {
			t.Fatal(err)
		}
		_ = nc.FlushTimeout(3 * time.Second)
		select {
		case err := <-refused:
			if !errors.Is(err, nats.ErrPermissionViolation) && !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
				t.Errorf("%s publishing a payment order: %v, want a permissions violation", identity, err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%s published a payment order and the server said nothing", identity)
		}
	}
	if after := subjectCount(t, admin, events.Subject(events.TypePaymentOrdered)); after != before {
		t.Errorf("payment orders on the stream: %d before, %d after the refused publishes", before, after)
	}
}

// forgedOrders: an insider holding finance-confirmation's NATS credentials
// (not its signing key) publishes payment orders: for an application no
// manifest lists, for more than a real item's amount, a reissue without
// finance's signature. Payout dead-letters each, counts it, and the bank
// is never called.
func forgedOrders(t *testing.T, s *stack.Stack, chain chainResult) {
	t.Helper()
	ctx := ctxT(t)
	var genuine *planned
	for _, p := range chain.apps {
		if p.paid() && !p.failsOnce {
			genuine = p
			break
		}
	}
	finance := newUser(t, s, "finance-redteam", auth.RoleFinanceOfficer, auth.OrgFinance)
	item := findBatchItem(t, finance, genuine.id)
	actor := events.Actor("finance-1", string(auth.RoleFinanceOfficer), auth.OrgFinance)
	keys := func(appID string) events.Keys {
		return events.Keys{ApplicationID: appID, BatchID: item.GetBatchId(), SchoolCode: genuine.school, ProgramCode: genuine.req.GetProgramCode(), Term: genuine.term}
	}
	forged := map[string]*eventsv1.Event{
		"not_in_manifest": events.MustNew(time.Now(), actor, keys(uuid.NewString()),
			&eventsv1.PaymentOrdered{PaymentId: uuid.NewString(), AmountFen: genuine.amount, Attempt: 1}),
		"more than its manifest": events.MustNew(time.Now(), actor, keys(genuine.id),
			&eventsv1.PaymentOrdered{PaymentId: item.GetPaymentId(), AmountFen: genuine.amount * 10, Attempt: 1}),
		"unsigned reissue": events.MustNew(time.Now(), actor, keys(genuine.id),
			&eventsv1.PaymentOrdered{PaymentId: uuid.NewString(), AmountFen: genuine.amount, Attempt: 2}),
	}
	_, admin := redteamNATS(t, s, natsx.AdminIdentity)
	deadBefore := deadCount(t, admin, "payout")
	refusedBefore := sumMetric(scrape(t, s.Endpoints["payout"].HTTP), "aid_payout_orders_refused_total")
	_, fin := redteamNATS(t, s, "finance-confirmation")
	for name, ev := range forged {
		data, err := events.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fin.Publish(ctx, events.Subject(ev.GetType()), data, jetstream.WithMsgID(ev.GetEventId())); err != nil {
			t.Fatalf("%s: finance's credentials may publish orders: %v", name, err)
		}
	}
	eventually(t, "payout dead-letters the forged orders", 60*time.Second, func() error {
		if n := deadCount(t, admin, "payout") - deadBefore; n < len(forged) {
			return errf("%d of %d forged orders dead-lettered", n, len(forged))
		}
		if n := sumMetric(scrape(t, s.Endpoints["payout"].HTTP), "aid_payout_orders_refused_total") - refusedBefore; n < float64(len(forged)) {
			return errf("aid_payout_orders_refused_total moved by %v, want %d", n, len(forged))
		}
		return nil
	})
}

// wrongOrigin: the application service's credentials put a payment order
// on the one subject they may publish, application.submitted. Payout (and
// every other consumer of that subject) refuses it: an event's type must
// be its subject's, and each type has one owner.
func wrongOrigin(t *testing.T, s *stack.Stack, chain chainResult) {
	t.Helper()
	ctx := ctxT(t)
	p := chain.apps[0]
	order := events.MustNew(time.Now(), events.Actor("finance-1", string(auth.RoleFinanceOfficer), auth.OrgFinance),
		events.Keys{ApplicationID: p.id, BatchID: uuid.NewString(), SchoolCode: p.school, ProgramCode: p.req.GetProgramCode(), Term: p.term},
		&eventsv1.PaymentOrdered{PaymentId: uuid.NewString(), AmountFen: p.amount, Attempt: 1})
	data, err := events.Marshal(order)
	if err != nil {
		t.Fatal(err)
	}
	refusedBefore := scrape(t, s.Endpoints["payout"].HTTP)[`aid_events_refused_total{consumer="payout",reason="wrong_subject"}`]
	_, app := redteamNATS(t, s, "application")
	if _, err := app.Publish(ctx, events.Subject(events.TypeApplicationSubmitted), data, jetstream.WithMsgID(order.GetEventId())); err != nil {
		t.Fatalf("the application's credentials publish on its own subject: %v", err)
	}
	eventually(t, "payout refuses an order on the application's subject", 60*time.Second, func() error {
		m := scrape(t, s.Endpoints["payout"].HTTP)
		if got := m[`aid_events_refused_total{consumer="payout",reason="wrong_subject"}`]; got <= refusedBefore {
			return errf("aid_events_refused_total{consumer=payout,reason=wrong_subject} = %v, want more than %v", got, refusedBefore)
		}
		return nil
	})
}

// redteamNATS connects to the stack's NATS as identity, with its seed.
func redteamNATS(t *testing.T, s *stack.Stack, identity string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, js, err := natsx.Connect(s.NATSURL, identity, natsx.WithNKeySeed(s.NATSSeed(identity)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc, js
}

// subjectCount is how many messages the event stream holds on subject.
func subjectCount(t *testing.T, js jetstream.JetStream, subject string) uint64 {
	t.Helper()
	st, err := js.Stream(ctxT(t), natsx.EventStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctxT(t), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[subject]
}

// deadCount is how many dead letters consumer has.
func deadCount(t *testing.T, js jetstream.JetStream, consumer string) int {
	t.Helper()
	dead, err := natsx.ListDead(ctxT(t), js, consumer)
	if err != nil {
		t.Fatal(err)
	}
	return len(dead)
}

// serviceRoleIsRefused logs in as each service's own role and tries what
// an attacker holding a service's database password would: DDL, trigger
// changes, replication mode, rewriting the trail, reading another schema.
// PostgreSQL refuses each with insufficient_privilege (42501) and nothing
// changes.
func serviceRoleIsRefused(t *testing.T, s *stack.Stack) {
	t.Helper()
	ctx := ctxT(t)
	app := connect(t, s.ServiceDatabaseURL("application"))
	attacks := []struct{ name, sql string }{
		{"drop the trail's trigger", `DROP TRIGGER trail_no_update ON application.trail`},
		{"disable the trail's triggers", `ALTER TABLE application.trail DISABLE TRIGGER USER`},
		{"replace the trigger function", `CREATE OR REPLACE FUNCTION application.trail_insert_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END; $$`},
		{"replication mode skips triggers", `SET session_replication_role = replica`},
		{"create a table", `CREATE TABLE application.shadow (x int)`},
		{"rewrite a trail entry", `UPDATE application.trail SET reason = 'nothing to see' WHERE position = 1`},
		{"delete a trail entry", `DELETE FROM application.trail WHERE position = 1`},
		{"truncate the trail", `TRUNCATE application.trail`},
		{"erase a recorded read", `DELETE FROM application.pii_reads`},
		{"read payout's schema", `SELECT count(*) FROM payout.payments`},
		{"read finance's schema", `SELECT count(*) FROM finance_confirmation.items`},
	}
	for _, a := range attacks {
		_, err := app.Exec(ctx, a.sql)
		if code := sqlState(err); code != "42501" {
			t.Errorf("application's role: %s: %v (SQLSTATE %q), want insufficient_privilege 42501", a.name, err, code)
		}
	}
	payout := connect(t, s.ServiceDatabaseURL("payout"))
	for _, a := range []struct{ name, sql string }{
		{"read the application schema", `SELECT count(*) FROM application.applications`},
		{"create a table", `CREATE TABLE payout.shadow (x int)`},
		{"replication mode", `SET session_replication_role = replica`},
	} {
		_, err := payout.Exec(ctx, a.sql)
		if code := sqlState(err); code != "42501" {
			t.Errorf("payout's role: %s: %v (SQLSTATE %q), want 42501", a.name, err, code)
		}
	}
	dc := connect(t, s.ServiceDatabaseURL("data-comparison"))
	for _, a := range []struct{ name, sql string }{
		{"rewrite a clue's trail", `UPDATE data_comparison.clue_trail SET note = 'nothing to see'`},
		{"erase a refund receipt", `DELETE FROM data_comparison.receipts`},
		{"read the application schema", `SELECT count(*) FROM application.applications`},
	} {
		_, err := dc.Exec(ctx, a.sql)
		if code := sqlState(err); code != "42501" {
			t.Errorf("data-comparison's role: %s: %v (SQLSTATE %q), want 42501", a.name, err, code)
		}
	}
	// The trigger is still there and the trail is whole.
	super := connect(t, s.DatabaseURL)
	var enabled string
	if err := super.QueryRow(ctx, `SELECT tgenabled FROM pg_trigger WHERE tgname = 'trail_no_update'`).Scan(&enabled); err != nil || enabled != "O" {
		t.Errorf("trail_no_update after the attacks: enabled %q, %v", enabled, err)
	}
}

// copiedCiphertext copies one application's sealed ID number into
// another's row, as a database owner could: the copy is bound to the first
// row and does not open in the second; the read is refused with a message
// an officer can act on, and the other fields stay readable.
func copiedCiphertext(t *testing.T, s *stack.Stack, chain chainResult) {
	t.Helper()
	ctx := ctxT(t)
	a, b := chain.apps[0].id, chain.apps[1].id
	super := connect(t, s.DatabaseURL)
	if _, err := super.Exec(ctx, `UPDATE application.applications SET student_id_sealed = (SELECT student_id_sealed FROM application.applications WHERE id = $1) WHERE id = $2`, a, b); err != nil {
		t.Fatal(err)
	}
	auditor := newUser(t, s, "auditor-redteam", auth.RoleAuditor, auth.OrgAudit)
	_, err := auditor.app.GetApplication(ctx, &applicationv1.GetApplicationRequest{ApplicationId: b, Purpose: "red team"})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(status.Convert(err).Message(), "copied from another record") {
		t.Errorf("reading an application with another's sealed ID number: %v, want FailedPrecondition naming the copy", err)
	}
	if _, err := auditor.app.GetApplication(ctx, &applicationv1.GetApplicationRequest{ApplicationId: a, Purpose: "red team"}); err != nil {
		t.Errorf("the original still opens: %v", err)
	}
}

// trailRewrite does what a superuser or the schema owner could: with
// triggers off, change the reason of one trail entry, recompute the hash
// chain after it and the application's trail_head. The chain and head
// checks pass; the entry no longer matches its leaf in the tree the
// checkpoint on the stream signed, and VerifyTrail says so.
func trailRewrite(t *testing.T, s *stack.Stack, chain chainResult) {
	t.Helper()
	ctx := ctxT(t)
	var target string
	for _, p := range chain.apps {
		if p.paid() {
			target = p.id
			break
		}
	}
	auditor := newUser(t, s, "auditor-trail", auth.RoleAuditor, auth.OrgAudit)
	eventually(t, "the paid application's trail anchored by a checkpoint", 90*time.Second, func() error {
		v, err := auditor.app.VerifyTrail(ctx, &applicationv1.VerifyTrailRequest{ApplicationId: target})
		if err != nil {
			return err
		}
		if !v.GetOk() || v.GetAnchoredEntries() < 2 {
			return errf("verify before the rewrite: ok %v, %d entries anchored: %s", v.GetOk(), v.GetAnchoredEntries(), v.GetProblem())
		}
		return nil
	})

	super := connect(t, s.DatabaseURL)
	tx, err := super.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
		t.Fatal(err)
	}
	rows, err := tx.Query(ctx, `SELECT application_id::text, position, event_id::text, type, occurred_at, actor_user_id, actor_role,
	actor_org, status, reason, amount_fen, batch_id FROM application.trail WHERE application_id = $1 ORDER BY position`, target)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (anchor.Entry, error) {
		var e anchor.Entry
		err := r.Scan(&e.ApplicationID, &e.Position, &e.EventID, &e.Type, &e.OccurredAt, &e.ActorUser, &e.ActorRole,
			&e.ActorOrg, &e.Status, &e.Reason, &e.AmountFen, &e.BatchID)
		return e, err
	})
	if err != nil {
		t.Fatal(err)
	}
	prev := anchor.GenesisHash
	for _, e := range entries {
		if e.Position == 2 {
			e.Reason = "审核通过（已改写）"
		}
		h := anchor.EntryHash(prev, e)
		if _, err := tx.Exec(ctx, `UPDATE application.trail SET reason = $3, prev_hash = $4, hash = $5 WHERE application_id = $1 AND position = $2`,
			target, e.Position, e.Reason, prev, h); err != nil {
			t.Fatal(err)
		}
		prev = h
	}
	if _, err := tx.Exec(ctx, `UPDATE application.applications SET trail_head = $2 WHERE id = $1`, target, prev); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	v, err := auditor.app.VerifyTrail(ctx, &applicationv1.VerifyTrailRequest{ApplicationId: target})
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, c := range v.GetChecks() {
		if !c.GetOk() {
			failed = append(failed, c.GetName())
		}
	}
	if v.GetOk() || !slices.Contains(failed, "inclusion") || slices.Contains(failed, "chain") || slices.Contains(failed, "head") {
		t.Errorf("VerifyTrail after a consistent rewrite: ok %v, failed checks %v (%s); want only the checkpoint's inclusion to fail", v.GetOk(), failed, v.GetProblem())
	}
}

// connect opens one connection to url for the test.
func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(ctxT(t), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// sqlState is err's SQLSTATE, or "" when err is not a PostgreSQL error.
func sqlState(err error) string {
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		return pgErr.Code
	}
	return ""
}
