package db

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// MigrationsTable is the table Migrate records applied versions in; the
// service role may only read it (to check that its schema is up to date).
const MigrationsTable = "schema_migrations"

// Grants say what a service's login role may do in its schema.
type Grants struct {
	// Schema is the service's schema.
	Schema string
	// Role is the service's login role.
	Role string
	// AppendOnly are the tables the role may only read and add rows to
	// (trails, audit logs): no UPDATE, DELETE or TRUNCATE.
	AppendOnly []string
}

// Grant gives g.Role exactly what a running service needs in g.Schema and
// nothing more: USAGE on the schema (not CREATE, so no DDL), SELECT, INSERT,
// UPDATE and DELETE on each table (SELECT and INSERT only on the append-only
// ones, SELECT only on schema_migrations and on views), never TRUNCATE, REFERENCES or
// TRIGGER, and USAGE and SELECT on the sequences (nextval, not setval). It
// revokes everything from PUBLIC on the schema and its tables, and sets the
// default privileges of the schema's owner so tables made later start at
// SELECT and INSERT until the next Grant. The caller is the schema's owner
// (the migrate step); Grant is idempotent, run after every migration, in one
// transaction.
func Grant(ctx context.Context, pool *pgxpool.Pool, g Grants) error {
	if !validIdent(g.Schema) || !validIdent(g.Role) {
		return fmt.Errorf("grant: invalid schema %q or role %q", g.Schema, g.Role)
	}
	return InTx(ctx, pool, func(tx pgx.Tx) error {
		// Concurrent starters of the same migrate step would otherwise race
		// on the same catalog rows ("tuple concurrently updated").
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(hashString("grant:"+g.Schema))); err != nil {
			return fmt.Errorf("grant %s: lock: %w", g.Schema, err)
		}
		rows, err := tx.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY tablename`, g.Schema)
		if err != nil {
			return fmt.Errorf("grant %s: tables: %w", g.Schema, err)
		}
		tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("grant %s: tables: %w", g.Schema, err)
		}
		rows, err = tx.Query(ctx, `SELECT viewname FROM pg_views WHERE schemaname = $1
UNION ALL SELECT matviewname FROM pg_matviews WHERE schemaname = $1 ORDER BY 1`, g.Schema)
		if err != nil {
			return fmt.Errorf("grant %s: views: %w", g.Schema, err)
		}
		views, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("grant %s: views: %w", g.Schema, err)
		}
		for _, t := range g.AppendOnly {
			if !slices.Contains(tables, t) {
				return fmt.Errorf("grant %s: append-only table %q does not exist", g.Schema, t)
			}
		}
		s, r := pgx.Identifier{g.Schema}.Sanitize(), pgx.Identifier{g.Role}.Sanitize()
		stmts := []string{
			"REVOKE ALL ON SCHEMA " + s + " FROM PUBLIC",
			"REVOKE ALL ON SCHEMA " + s + " FROM " + r,
			"GRANT USAGE ON SCHEMA " + s + " TO " + r,
			"REVOKE ALL ON ALL TABLES IN SCHEMA " + s + " FROM PUBLIC",
			"REVOKE ALL ON ALL SEQUENCES IN SCHEMA " + s + " FROM PUBLIC",
			"REVOKE ALL ON ALL SEQUENCES IN SCHEMA " + s + " FROM " + r,
			"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA " + s + " TO " + r,
			"ALTER DEFAULT PRIVILEGES IN SCHEMA " + s + " GRANT SELECT, INSERT ON TABLES TO " + r,
			"ALTER DEFAULT PRIVILEGES IN SCHEMA " + s + " GRANT USAGE, SELECT ON SEQUENCES TO " + r,
		}
		for _, t := range tables {
			table := pgx.Identifier{g.Schema, t}.Sanitize()
			stmts = append(stmts,
				"REVOKE ALL ON TABLE "+table+" FROM "+r,
				"GRANT "+tablePrivileges(t, g.AppendOnly)+" ON TABLE "+table+" TO "+r)
		}
		// Views are read: a view runs with its owner's rights over the tables
		// below, so the role gets SELECT on it and nothing that writes.
		for _, v := range views {
			view := pgx.Identifier{g.Schema, v}.Sanitize()
			stmts = append(stmts, "REVOKE ALL ON TABLE "+view+" FROM PUBLIC", "REVOKE ALL ON TABLE "+view+" FROM "+r,
				"GRANT SELECT ON TABLE "+view+" TO "+r)
		}
		if _, err := tx.Exec(ctx, strings.Join(stmts, ";\n")); err != nil {
			return fmt.Errorf("grant %s to %s: %w", g.Schema, g.Role, err)
		}
		return nil
	})
}

// tablePrivileges is what a service role may do to rows of table.
func tablePrivileges(table string, appendOnly []string) string {
	switch {
	case table == MigrationsTable:
		return "SELECT"
	case slices.Contains(appendOnly, table):
		return "SELECT, INSERT"
	default:
		return "SELECT, INSERT, UPDATE, DELETE"
	}
}

// OverPrivileged lists what the current login may do beyond a service
// role's rows in schema: be a superuser (who may change anything, disable
// triggers and set session_replication_role), own (or be a member of the
// owner of) the schema or one of its tables (who may ALTER and DROP them and
// their triggers), create objects in the schema, in public or in the
// database, create roles or databases, or bypass row security. An empty list
// is a login fit to run the service.
func OverPrivileged(ctx context.Context, q Querier, schema string) ([]string, error) {
	var (
		user                                   string
		super, createRole, createDB, bypassRLS bool
		ownsSchema, ownsTable, createInSchema  bool
		createInPublic, createInDatabase       bool
	)
	err := q.QueryRow(ctx, `
SELECT r.rolname, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolbypassrls,
       coalesce(pg_has_role(r.oid, n.nspowner, 'MEMBER'), false),
       EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = n.oid AND pg_has_role(r.oid, c.relowner, 'MEMBER')),
       coalesce(has_schema_privilege(r.oid, n.oid, 'CREATE'), false),
       coalesce(has_schema_privilege(r.oid, 'public', 'CREATE'), false),
       has_database_privilege(r.oid, current_database(), 'CREATE')
FROM pg_roles r LEFT JOIN pg_namespace n ON n.nspname = $1
WHERE r.rolname = current_user`, schema).Scan(&user, &super, &createRole, &createDB, &bypassRLS,
		&ownsSchema, &ownsTable, &createInSchema, &createInPublic, &createInDatabase)
	if err != nil {
		return nil, fmt.Errorf("check the privileges of the database login: %w", err)
	}
	var out []string
	add := func(bad bool, what string) {
		if bad {
			out = append(out, fmt.Sprintf("the database login %s %s", user, what))
		}
	}
	add(super, "is a superuser")
	add(ownsSchema, "owns schema "+schema+" (or is a member of its owner)")
	add(ownsTable, "owns a table of schema "+schema+" (or is a member of its owner)")
	add(createInSchema, "may create objects in schema "+schema)
	add(createInPublic, "may create objects in schema public")
	add(createInDatabase, "may create schemas in the database")
	add(createRole, "may create roles")
	add(createDB, "may create databases")
	add(bypassRLS, "bypasses row-level security")
	return out, nil
}

// Pending lists the versions among sets that schema has not applied yet
// (all of them when it has no schema_migrations table); a service refuses to
// start on a schema its migrate step has not brought up to date.
func Pending(ctx context.Context, q Querier, schema string, sets ...fs.FS) ([]string, error) {
	files, err := migrationFiles(schema, sets)
	if err != nil {
		return nil, err
	}
	applied := map[string]bool{}
	rows, err := q.Query(ctx, "SELECT version FROM "+pgx.Identifier{schema, MigrationsTable}.Sanitize())
	if err == nil {
		var versions []string
		versions, err = pgx.CollectRows(rows, pgx.RowTo[string])
		for _, v := range versions {
			applied[v] = true
		}
	}
	if pg, ok := errors.AsType[*pgconn.PgError](err); ok && (pg.Code == "42P01" || pg.Code == "3F000") {
		err = nil // no schema or no table yet: nothing applied
	}
	if err != nil {
		return nil, fmt.Errorf("read %s.%s: %w", schema, MigrationsTable, err)
	}
	var out []string
	for _, f := range files {
		if !applied[f.version] {
			out = append(out, f.version)
		}
	}
	return out, nil
}
