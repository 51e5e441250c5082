package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/internal/devtools/stack"
	"github.com/edubureau/studentaid/pkg/catalog"
)

// TestPostgresFailover runs the chain on a primary with a synchronous
// streaming standby; between submission and review the standby is promoted
// and the primary killed. The services, given the multi-host URL with
// target_session_attrs=read-write, reconnect to the new primary on their
// own: every application submitted before the failover is still there and
// ends PAID at its amount.
func TestPostgresFailover(t *testing.T) {
	s := startStackWith(t, map[string]string{"SCHOOL_REVIEW_NOTICE_PERIOD": "2s"}, false, func(o *stack.Options) {
		o.DatabaseURL, o.FreshDatabase, o.Standby = "", false, true
	})
	if !strings.Contains(s.DatabaseURL, ",") || !strings.Contains(s.DatabaseURL, "target_session_attrs=read-write") {
		t.Fatalf("the services' database URL %q is not the pair's multi-host URL", s.DatabaseURL)
	}
	cases := []*policyCase{
		{name: "preschool", school: "S006", term: "2017-autumn", program: "PRESCHOOL_AID", stage: catalog.StagePreschool, born: 2013, wantFen: 50000, wantPolicy: 1},
		{name: "boarding", school: "S004", term: "2017-autumn", program: "BOARDING_SUBSIDY", stage: catalog.StagePrimary, born: 2008, boarding: true, wantFen: 50000, wantPolicy: 1},
		{name: "grant", school: "S013", term: "2017-autumn", program: "HS_NATIONAL_GRANT", stage: catalog.StageHighSchool, born: 2001, level: catalog.LevelEspeciallyDifficult, wantFen: 125000, wantPolicy: 1},
		{name: "vocational waiver", school: "S005", term: "2017-autumn", program: "VOC_TUITION_WAIVER", stage: catalog.StageVocational, born: 2001, wantFen: 110000, wantPolicy: 1},
	}
	submitCases(t, s, cases, 300)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := s.FailOver(ctx); err != nil {
		t.Fatalf("fail over: %v", err)
	}
	// Each service answers again once its pool reached the new primary.
	for _, name := range stack.Services {
		eventually(t, name+" ready on the new primary", 60*time.Second, func() error {
			resp, err := http.Get("http://" + s.Endpoints[name].HTTP + "/readyz")
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return errf("readyz: HTTP %d", resp.StatusCode)
			}
			return nil
		})
	}
	driveToPaid(t, s, cases)

	// It all happened on the promoted standby: a primary now, holding the
	// applications committed before the failover and since.
	conn, err := pgx.Connect(ctx, s.Postgres().URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var recovering bool
	var paid int
	if err := conn.QueryRow(ctx, `SELECT pg_is_in_recovery(), (SELECT count(*) FROM application.applications WHERE status = 'PAID')`).Scan(&recovering, &paid); err != nil {
		t.Fatal(err)
	}
	if recovering || paid != len(cases) {
		t.Errorf("the promoted server: in recovery %v, %d PAID applications; want a primary with %d", recovering, paid, len(cases))
	}
}
