package e2e

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/edubureau/studentaid/internal/devtools/stack"
	"github.com/edubureau/studentaid/pkg/auth"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
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
