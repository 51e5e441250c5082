package service_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/edubureau/studentaid/internal/devtools/testenv"
	"github.com/edubureau/studentaid/pkg/service/servicetest"
	srservice "github.com/edubureau/studentaid/services/school-review/internal/service"
)

// The record of the calendar's versions cannot be rewritten by the
// service's own login: it may read and add versions, never change or
// remove one. The current days it replaces freely.
func TestCalendarVersionsAreAppendOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	serviceURL := servicetest.Migrate(t, servicetest.Env{DatabaseURL: testenv.DatabaseURL(t)}, srservice.Spec())
	conn, err := pgx.Connect(ctx, serviceURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	if _, err := conn.Exec(ctx, `INSERT INTO school_review.calendar_versions (year, version, changed_by, changed_by_role, changed_by_org,
		changed_at, reason, holidays, working_days) VALUES (2019, 1, 'policy-admin-1', 'policy_admin', 'BUREAU', now(), 'r', '[]', '[]')`); err != nil {
		t.Fatalf("adding a version: %v", err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO school_review.calendar_days (year, day, kind, name, version)
		VALUES (2019, '2019-10-01', 'holiday', '国庆节', 1)`); err != nil {
		t.Fatalf("adding a day: %v", err)
	}
	if _, err := conn.Exec(ctx, `DELETE FROM school_review.calendar_days WHERE year = 2019`); err != nil {
		t.Fatalf("replacing the days: %v", err)
	}
	for _, stmt := range []string{
		`UPDATE school_review.calendar_versions SET reason = 'rewritten'`,
		`DELETE FROM school_review.calendar_versions`,
		`TRUNCATE school_review.calendar_versions`,
	} {
		_, err := conn.Exec(ctx, stmt)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Errorf("%s: %v, want insufficient_privilege (42501)", stmt, err)
		}
	}
	// The days' own checks: a swapped working day on a weekday is refused.
	if _, err := conn.Exec(ctx, `INSERT INTO school_review.calendar_days (year, day, kind, version)
		VALUES (2019, '2019-10-08', 'working_day', 1)`); err == nil {
		t.Error("a working day on a Tuesday was stored")
	}
}
