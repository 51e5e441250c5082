// Package audit writes the security audit trail: who tried what, and which
// rule refused it.
package audit

import (
	"context"
	"embed"
	"io/fs"

	"github.com/jackc/pgx/v5/pgconn"
	"go.opentelemetry.io/otel/trace"

	"github.com/edubureau/studentaid/pkg/auth"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the audit table's migration.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err)
	}
	return sub
}

// AppendOnly names the audit tables of every schema: the service's own role
// may read them and add rows, never change or remove one (db.Grant).
func AppendOnly() []string { return []string{"audit_log"} }

// Execer runs a statement; pools and transactions satisfy it.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Entry is one audit record.
type Entry struct {
	Method  string
	Outcome string
	Rule    string
	Detail  string
}

// Record writes e for the caller in ctx. Detail must hold no personal data.
func Record(ctx context.Context, db Execer, e Entry) error {
	id, _ := auth.FromContext(ctx)
	traceID := ""
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		traceID = sc.TraceID().String()
	}
	_, err := db.Exec(ctx, `INSERT INTO audit_log (user_id, role, org, method, outcome, rule, detail, trace_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, id.UserID, string(id.Role), id.Org, e.Method, e.Outcome, e.Rule, e.Detail, traceID)
	return err
}
