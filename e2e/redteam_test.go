package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/edubureau/studentaid/internal/devtools/stack"
	"github.com/edubureau/studentaid/pkg/auth"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
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
