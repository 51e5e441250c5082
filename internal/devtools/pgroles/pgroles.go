// Package pgroles creates, on a development or test PostgreSQL server and
// logged in as its superuser, the roles the services run under: aid_owner,
// which owns the services' schemas and runs their migrations, and one login
// role per service (aid_application, aid_school_review…), which the migrate
// step grants rows of its own schema and nothing else. docs/operations.md
// gives the same steps for production.
package pgroles

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/config"
)

// TempTables are the services whose role may create temporary tables
// (TEMPORARY on the database: tables in its own session's pg_temp schema,
// gone at the end of the transaction or session, never objects in a
// service schema). data-comparison stages a reference import in one before
// inserting it sorted (docs/data-comparison.md). deploy/postgres/roles.sql
// and cluster.yaml grant the same.
var TempTables = map[string]bool{"data-comparison": true}

// DevPassword is every development role's password. The throwaway clusters
// trust local logins anyway; a server that checks passwords gets this one.
const DevPassword = "aid-dev"

// Roles are the logins of one database whose roles Provision made.
type Roles struct {
	base *url.URL
}

// OwnerURL logs in as the schemas' owner: the migrate step's
// AID_MIGRATE_DATABASE_URL.
func (r Roles) OwnerURL() string { return r.as(config.DefaultDBOwnerRole) }

// ServiceURL logs in as service's own role: the service's DATABASE_URL.
func (r Roles) ServiceURL(service string) string { return r.as(config.DefaultDBRole(service)) }

func (r Roles) as(role string) string {
	u := *r.base
	u.User = url.UserPassword(role, DevPassword)
	return u.String()
}

// made remembers the clusters whose roles this process has made.
var (
	madeMu sync.Mutex
	made   = map[string]bool{}
)

// Provision makes (if missing) the owner role and the roles of services on
// the server of superURL, which logs in as a superuser, and prepares its
// database: only these roles may connect, the owner may create schemas,
// nobody may create objects in public, and service schemas left over from
// before the roles existed pass to the owner. It is idempotent and safe to
// run concurrently.
func Provision(ctx context.Context, superURL string, services []string) (Roles, error) {
	base, err := url.Parse(superURL)
	if err != nil {
		return Roles{}, fmt.Errorf("pgroles: parse url: %w", err)
	}
	roles := []string{config.DefaultDBOwnerRole}
	for _, s := range services {
		roles = append(roles, config.DefaultDBRole(s))
	}
	if err := makeRoles(ctx, base, roles); err != nil {
		return Roles{}, err
	}
	if err := prepareDatabase(ctx, superURL, services); err != nil {
		return Roles{}, err
	}
	return Roles{base: base}, nil
}

// makeRoles creates or resets the login roles, once per cluster and process.
// Roles belong to the cluster, not a database, and advisory locks to a
// database, so every caller locks in the same one: the maintenance database.
func makeRoles(ctx context.Context, base *url.URL, roles []string) error {
	cluster := base.Host + "|" + strings.Join(roles, ",")
	madeMu.Lock()
	defer madeMu.Unlock()
	if made[cluster] {
		return nil
	}
	maint := *base
	maint.Path = "/postgres"
	conn, err := pgx.Connect(ctx, maint.String())
	if err != nil {
		return fmt.Errorf("pgroles: connect to the maintenance database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('aid:roles'))"); err != nil {
			return err
		}
		for _, role := range roles {
			var exists bool
			if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", role).Scan(&exists); err != nil {
				return err
			}
			verb := "CREATE"
			if exists {
				verb = "ALTER"
			}
			// Neither superuser nor creator of roles or databases, and no
			// member of another role: exactly the rights granted to it.
			stmt := fmt.Sprintf("%s ROLE %s LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION PASSWORD %s",
				verb, pgx.Identifier{role}.Sanitize(), quote(DevPassword))
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("%s role %s: %w", strings.ToLower(verb), role, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pgroles: %w", err)
	}
	made[cluster] = true
	return nil
}

// prepareDatabase sets the database-wide rights, and hands service schemas
// made by the superuser before the roles existed (a `make run` cluster of an
// earlier version) to the owner.
func prepareDatabase(ctx context.Context, superURL string, services []string) error {
	conn, err := pgx.Connect(ctx, superURL)
	if err != nil {
		return fmt.Errorf("pgroles: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	owner := pgx.Identifier{config.DefaultDBOwnerRole}.Sanitize()
	var dbName string
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&dbName); err != nil {
		return fmt.Errorf("pgroles: %w", err)
	}
	database := pgx.Identifier{dbName}.Sanitize()
	stmts := []string{
		"SELECT pg_advisory_xact_lock(hashtext('aid:database'))",
		"REVOKE ALL ON DATABASE " + database + " FROM PUBLIC",
		"GRANT CONNECT, CREATE ON DATABASE " + database + " TO " + owner,
		"REVOKE CREATE ON SCHEMA public FROM PUBLIC",
	}
	schemas := make([]string, len(services))
	for i, s := range services {
		schemas[i] = quote(strings.ReplaceAll(s, "-", "_"))
		stmts = append(stmts, "GRANT CONNECT ON DATABASE "+database+" TO "+pgx.Identifier{config.DefaultDBRole(s)}.Sanitize())
		if TempTables[s] {
			stmts = append(stmts, "GRANT TEMPORARY ON DATABASE "+database+" TO "+pgx.Identifier{config.DefaultDBRole(s)}.Sanitize())
		}
	}
	if len(schemas) > 0 {
		stmts = append(stmts, adoptSchemas(config.DefaultDBOwnerRole, schemas))
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, strings.Join(stmts, ";\n"))
		return err
	})
	if err != nil {
		return fmt.Errorf("pgroles: prepare database %s: %w", dbName, err)
	}
	return nil
}

// adoptSchemas is a statement that gives owner the schemas named (quoted
// literals) and their tables, sequences and functions, where another role
// owns them.
func adoptSchemas(owner string, quotedSchemas []string) string {
	in := "ARRAY[" + strings.Join(quotedSchemas, ", ") + "]::text[]"
	return `DO $adopt$
DECLARE r record;
BEGIN
  FOR r IN SELECT nspname FROM pg_namespace WHERE nspname = ANY(` + in + `) AND nspowner <> ` + quote(owner) + `::regrole LOOP
    EXECUTE format('ALTER SCHEMA %I OWNER TO %I', r.nspname, ` + quote(owner) + `);
  END LOOP;
  FOR r IN SELECT c.oid::regclass AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = ANY(` + in + `) AND c.relkind IN ('r', 'p', 'v', 'm') AND c.relowner <> ` + quote(owner) + `::regrole LOOP
    EXECUTE format('ALTER TABLE %s OWNER TO %I', r.t, ` + quote(owner) + `);
  END LOOP;
  FOR r IN SELECT c.oid::regclass AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = ANY(` + in + `) AND c.relkind = 'S' AND c.relowner <> ` + quote(owner) + `::regrole LOOP
    EXECUTE format('ALTER SEQUENCE %s OWNER TO %I', r.t, ` + quote(owner) + `);
  END LOOP;
  FOR r IN SELECT p.oid::regprocedure AS f FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = ANY(` + in + `) AND p.proowner <> ` + quote(owner) + `::regrole LOOP
    EXECUTE format('ALTER ROUTINE %s OWNER TO %I', r.f, ` + quote(owner) + `);
  END LOOP;
END
$adopt$`
}

// quote is s as an SQL string literal.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
