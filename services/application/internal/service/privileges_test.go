package service_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/edubureau/studentaid/internal/devtools/testenv"
	"github.com/edubureau/studentaid/pkg/config"
	"github.com/edubureau/studentaid/pkg/db"
	platform "github.com/edubureau/studentaid/pkg/service"
	"github.com/edubureau/studentaid/pkg/service/servicetest"
	appservice "github.com/edubureau/studentaid/services/application/internal/service"
	schoolmigrations "github.com/edubureau/studentaid/services/school-review/migrations"
)

// roleEnv is a database migrated for the application and school-review
// services, with a connection under each login.
type roleEnv struct {
	superURL, ownerURL, serviceURL string
	service                        *pgx.Conn
}

func migrateForRoles(t *testing.T) roleEnv {
	t.Helper()
	env := servicetest.Env{DatabaseURL: testenv.DatabaseURL(t)}
	serviceURL := servicetest.Migrate(t, env, appservice.Spec())
	servicetest.Migrate(t, env, platform.Spec{Name: "school-review", Migrations: schoolmigrations.FS()})
	ownerURL := strings.Replace(serviceURL, config.DefaultDBRole(appservice.Name)+":", config.DefaultDBOwnerRole+":", 1)
	conn, err := pgx.Connect(context.Background(), serviceURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return roleEnv{superURL: env.DatabaseURL, ownerURL: ownerURL, serviceURL: serviceURL, service: conn}
}

// TestServiceRoleCannotRewriteHistory: logged in as the application
// service does, no statement that could change or hide what happened is
// allowed: no DDL, no trigger changes, no replication role, no update,
// delete or truncation of the trail or the audit log, nothing of another
// service's schema, nothing created in public. The service's own work
// (adding to the trail, changing applications, the outbox) still runs.
func TestServiceRoleCannotRewriteHistory(t *testing.T) {
	ctx := context.Background()
	e := migrateForRoles(t)
	svc := e.service
	appID := "0190a2b0-0000-7000-8000-000000000001"
	mustExec(t, svc, `INSERT INTO application.applications (id, school_code, term, program_code, stage, funding_source,
		tiered, boarding, rural, registered_poor, student_id_hash, student_id_hash_key, student_id_masked, student_id_sealed,
		student_name_masked, student_name_sealed, bank_card_masked, bank_card_sealed, account_name_sealed,
		status, amount_fen, submitted_by, submitted_at, updated_at, trail_length, trail_head)
		VALUES ($1, 'S001', '2025-fall', 'P1', 'HIGH', 'CENTRAL', false, false, false, false, 'h', 'k', 'm', '\x00',
		'm', '\x00', 'm', '\x00', '\x00', 'SUBMITTED', 100, 'officer1', now(), now(), 1, 'head')`, appID)
	mustExec(t, svc, `INSERT INTO application.trail (application_id, position, event_id, type, occurred_at, actor_user_id,
		actor_role, actor_org, status, reason, amount_fen, batch_id, prev_hash, hash)
		VALUES ($1, 1, '0190a2b0-0000-7000-8000-0000000000e1', 'application.submitted.v1', now(), 'officer1',
		'school_officer', 'S001', 'SUBMITTED', '', 100, '', '', 'hash1')`, appID)
	mustExec(t, svc, `INSERT INTO application.audit_log (user_id, role, org, method, outcome) VALUES ('u', 'r', 'o', 'm', 'refused')`)
	mustExec(t, svc, `UPDATE application.applications SET status = 'SCHOOL_REVIEW' WHERE id = $1`, appID)
	mustExec(t, svc, `INSERT INTO application.outbox (event_id, subject, payload) VALUES ('0190a2b0-0000-7000-8000-0000000000e2', 'aid.x', '\x00')`)
	mustExec(t, svc, `UPDATE application.outbox SET published_at = now()`)

	refused := []struct {
		name, sql string
	}{
		{"create a table in its schema", `CREATE TABLE application.shadow (id int)`},
		{"create a table in public", `CREATE TABLE public.shadow (id int)`},
		{"create a function in public", `CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 1'`},
		{"create a schema", `CREATE SCHEMA shadow`},
		{"alter the trail", `ALTER TABLE application.trail ADD COLUMN note text`},
		{"drop the trail's update trigger", `DROP TRIGGER trail_no_update ON application.trail`},
		{"drop the trail's truncate trigger", `DROP TRIGGER trail_no_truncate ON application.trail`},
		{"disable the trail's triggers", `ALTER TABLE application.trail DISABLE TRIGGER trail_no_update`},
		{"disable every trigger", `ALTER TABLE application.trail DISABLE TRIGGER ALL`},
		{"replace the trigger function", `CREATE OR REPLACE FUNCTION application.trail_insert_only() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'`},
		{"skip triggers by replication role", `SET session_replication_role = replica`},
		{"update the trail", `UPDATE application.trail SET hash = 'forged' WHERE application_id = '` + appID + `'`},
		{"delete from the trail", `DELETE FROM application.trail WHERE application_id = '` + appID + `'`},
		{"truncate the trail", `TRUNCATE application.trail`},
		{"update the audit log", `UPDATE application.audit_log SET outcome = 'allowed'`},
		{"delete from the audit log", `DELETE FROM application.audit_log`},
		{"truncate the audit log", `TRUNCATE application.audit_log`},
		{"truncate the applications", `TRUNCATE application.applications`},
		{"rewrite a tree leaf", `UPDATE application.trail_leaves SET leaf_hash = leaf_hash`},
		{"delete tree leaves", `DELETE FROM application.trail_leaves`},
		{"truncate tree leaves", `TRUNCATE application.trail_leaves`},
		{"rewrite a checkpoint", `UPDATE application.trail_checkpoints SET tree_size = 0`},
		{"delete checkpoints", `DELETE FROM application.trail_checkpoints`},
		{"drop the leaves' trigger", `DROP TRIGGER trail_leaves_no_update ON application.trail_leaves`},
		{"record a migration", `INSERT INTO application.schema_migrations (version) VALUES ('999_shadow')`},
		{"forget a migration", `DELETE FROM application.schema_migrations`},
		{"read another service's schema", `SELECT count(*) FROM school_review.review`},
		{"read another service's audit log", `SELECT count(*) FROM school_review.audit_log`},
		{"write another service's outbox", `INSERT INTO school_review.outbox (event_id, subject, payload) VALUES (gen_random_uuid(), 'aid.x', '\x00')`},
		{"reset a sequence", `SELECT setval('application.audit_log_id_seq', 1)`},
		{"become the owner", `SET ROLE aid_owner`},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			_, err := svc.Exec(ctx, c.sql)
			pg, ok := errors.AsType[*pgconn.PgError](err)
			if !ok || pg.Code != "42501" {
				t.Fatalf("%s as the service role: got %v, want insufficient_privilege (42501)", c.sql, err)
			}
		})
	}

	// A grant by the role itself is a no-op (PostgreSQL only warns).
	mustExec(t, svc, `GRANT UPDATE, DELETE, TRUNCATE ON application.trail, application.audit_log TO aid_application`)
	var canRewrite bool
	if err := svc.QueryRow(ctx, `SELECT has_table_privilege('application.trail', 'UPDATE, DELETE, TRUNCATE')
		OR has_table_privilege('application.audit_log', 'UPDATE, DELETE, TRUNCATE')`).Scan(&canRewrite); err != nil {
		t.Fatal(err)
	}
	if canRewrite {
		t.Fatal("the service role granted itself UPDATE, DELETE or TRUNCATE on the trail or the audit log")
	}

	// What the refusals protect is as it was.
	var hash string
	var trail, audit int
	if err := svc.QueryRow(ctx, `SELECT hash, (SELECT count(*) FROM application.trail), (SELECT count(*) FROM application.audit_log WHERE outcome = 'refused')
		FROM application.trail WHERE application_id = $1`, appID).Scan(&hash, &trail, &audit); err != nil {
		t.Fatal(err)
	}
	if hash != "hash1" || trail != 1 || audit != 1 {
		t.Fatalf("after the attempts: hash %q, %d trail rows, %d refused audit rows; want hash1, 1, 1", hash, trail, audit)
	}

	// The refusals are the role's: the owner may do what the service may not.
	owner, err := pgx.Connect(ctx, e.ownerURL)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close(ctx)
	tx, err := owner.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `ALTER TABLE application.trail DISABLE TRIGGER trail_no_update`); err != nil {
		t.Fatalf("the owner cannot disable the trigger either (%v): the test proves nothing about the role", err)
	}
}

// TestOnlyTheServiceRoleIsFitToRun: the start-up check finds nothing wrong
// with the service's role, and names what is wrong with the owner and the
// superuser, which AID_ENV=production refuses to start on.
func TestOnlyTheServiceRoleIsFitToRun(t *testing.T) {
	ctx := context.Background()
	e := migrateForRoles(t)
	over := func(url string) []string {
		t.Helper()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		out, err := db.OverPrivileged(ctx, conn, "application")
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := over(e.serviceURL); len(got) != 0 {
		t.Fatalf("service role: %q; want nothing", got)
	}
	if got := strings.Join(over(e.ownerURL), "; "); !strings.Contains(got, "owns schema application") || !strings.Contains(got, "owns a table") {
		t.Fatalf("owner: %q; want it named as the schema's and the tables' owner", got)
	}
	if got := strings.Join(over(e.superURL), "; "); !strings.Contains(got, "is a superuser") {
		t.Fatalf("superuser: %q; want it named a superuser", got)
	}

	keys := testenv.NewKeys(t)
	// Real-looking keys, so that only the login is wrong.
	const sealKeys, hashKeys = "s:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "h:ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="
	t.Setenv("AID_TRAIL_SIGNING_KEYS", "t:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	for _, c := range []struct{ name, url, want string }{
		// The superuser is refused by its name before the database is asked
		// ("logs in as the superuser postgres") or by the database ("is a
		// superuser"): both say superuser.
		{"superuser", e.superURL, "superuser"},
		{"owner", e.ownerURL, "owns schema application"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := config.Service{
				Name: appservice.Name, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
				DatabaseURL: c.url, NATSURL: "nats://127.0.0.1:1",
				AuthPublicKeys: keys.PublicKeyPath, AuthAudience: "studentaid", AuthIssuer: "https://idp.example",
				MaxTokenLifetime: time.Hour, DBMaxConns: 2, ShutdownTimeout: time.Second, LogLevel: "error",
				SealKeys: sealKeys, HashKeys: hashKeys, Production: true,
			}
			rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			err := platform.RunWithConfig(rctx, appservice.Spec(), cfg)
			if err == nil || !strings.Contains(err.Error(), "AID_ENV=production refuses") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("production start as the %s: %v; want a refusal saying it %s", c.name, err, c.want)
			}
		})
	}
}

func mustExec(t *testing.T, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// TestGrantIsRerunnableAndCoversNewTables: a table a later migration adds
// starts at SELECT and INSERT for the service role (default privileges),
// gets its full rights at the next migrate step, and running the step again
// changes nothing, the trail staying append-only.
func TestGrantIsRerunnableAndCoversNewTables(t *testing.T) {
	ctx := context.Background()
	e := migrateForRoles(t)
	owner, err := pgx.Connect(ctx, e.ownerURL)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close(ctx)
	mustExec(t, owner, `CREATE TABLE application.later (id bigserial PRIMARY KEY, note text NOT NULL)`)
	privileges := func(table string) string {
		t.Helper()
		var got string
		if err := e.service.QueryRow(ctx, `SELECT concat_ws(',',
			CASE WHEN has_table_privilege($1, 'SELECT') THEN 'SELECT' END,
			CASE WHEN has_table_privilege($1, 'INSERT') THEN 'INSERT' END,
			CASE WHEN has_table_privilege($1, 'UPDATE') THEN 'UPDATE' END,
			CASE WHEN has_table_privilege($1, 'DELETE') THEN 'DELETE' END,
			CASE WHEN has_table_privilege($1, 'TRUNCATE') THEN 'TRUNCATE' END,
			CASE WHEN has_table_privilege($1, 'TRIGGER') THEN 'TRIGGER' END)`, table).Scan(&got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := privileges("application.later"); got != "SELECT,INSERT" {
		t.Fatalf("a new table before the grant step: %s; want SELECT,INSERT", got)
	}
	mustExec(t, e.service, `INSERT INTO application.later (note) VALUES ('x')`) // its sequence is usable too
	env := servicetest.Env{DatabaseURL: e.superURL}
	for range 2 {
		servicetest.Migrate(t, env, appservice.Spec())
		if got := privileges("application.later"); got != "SELECT,INSERT,UPDATE,DELETE" {
			t.Fatalf("a new table after the grant step: %s; want SELECT,INSERT,UPDATE,DELETE", got)
		}
		if got := privileges("application.trail"); got != "SELECT,INSERT" {
			t.Fatalf("the trail after the grant step: %s; want SELECT,INSERT", got)
		}
		if got := privileges("application.audit_log"); got != "SELECT,INSERT" {
			t.Fatalf("the audit log after the grant step: %s; want SELECT,INSERT", got)
		}
	}
}
