package pgroles_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/internal/devtools/pgroles"
	"github.com/edubureau/studentaid/internal/devtools/testenv"
)

// TestProvisionAdoptsSchemasMadeBeforeTheRoles: a database whose service
// schema the superuser made (a `make run` cluster from before the roles)
// passes to aid_owner, tables, sequences and functions alike, so the owner's
// migrate step can go on from where it was; running it again changes nothing.
func TestProvisionAdoptsSchemasMadeBeforeTheRoles(t *testing.T) {
	ctx := context.Background()
	superURL := testenv.DatabaseURL(t)
	conn, err := pgx.Connect(ctx, superURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE SCHEMA application;
CREATE TABLE application.audit_log (id bigserial PRIMARY KEY);
CREATE SEQUENCE application.loose;
CREATE FUNCTION application.f() RETURNS int LANGUAGE sql AS 'SELECT 1'`); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := pgroles.Provision(ctx, superURL, []string{"application"}); err != nil {
			t.Fatal(err)
		}
	}
	var notOwned int
	if err := conn.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM pg_namespace WHERE nspname = 'application' AND nspowner <> 'aid_owner'::regrole) +
		(SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'application' AND c.relowner <> 'aid_owner'::regrole) +
		(SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'application' AND p.proowner <> 'aid_owner'::regrole)`).Scan(&notOwned); err != nil {
		t.Fatal(err)
	}
	if notOwned != 0 {
		t.Fatalf("%d objects of schema application are not aid_owner's after Provision", notOwned)
	}
}
