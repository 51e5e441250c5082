package service_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/auth"
	dcv1 "github.com/edubureau/studentaid/proto/gen/aid/datacomparison/v1"
	"github.com/edubureau/studentaid/services/data-comparison/internal/adapters"
	"github.com/edubureau/studentaid/services/data-comparison/internal/domain"
)

// TestListFlagsAtScale measures ListFlags (docs/performance.md, Review-time
// flags) with a registry of DC_FLAGS_PERF_REGISTRY rows and a tenth as many
// chain applications, written straight into the service's tables by SQL as
// imports would leave them, plus rosters, key persons and deaths: the time
// of one call for one application over a few hundred calls, and of calls
// for 100. Skipped unless the variable is set.
func TestListFlagsAtScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("DC_FLAGS_PERF_REGISTRY"))
	if n <= 0 {
		t.Skip("a measurement, not a check (docs/performance.md): set DC_FLAGS_PERF_REGISTRY=10000000 to time ListFlags; TestReviewTimeFlags checks the flags")
	}
	calls := 400
	if c, _ := strconv.Atoi(os.Getenv("DC_FLAGS_PERF_CALLS")); c > 0 {
		calls = c
	}
	apps := n / 10
	e, _, _ := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	exec := func(what, sql string, args ...any) {
		t.Helper()
		began := time.Now()
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		t.Logf("%s: %v", what, time.Since(began).Round(time.Millisecond))
	}
	// Person p's keyed hash, as the service stores it (64 hex digits).
	const hash = `encode(sha256(('person-' || %s)::bytea), 'hex')`
	h := func(col string) string { return fmt.Sprintf(hash, col) }
	exec("search path", `SET search_path = data_comparison`)
	// One registry (persons 1..n), key persons and deaths (every 1,000th
	// person), and one roster per school for 2017-spring listing its
	// applicants but every 500th.
	const schools = 1000
	exec("imports", `INSERT INTO imports (kind, scope, version, rows, file_name, imported_by, imported_at)
		SELECT 'poverty_registry', '', 1, $1, 'registry.csv', 'perf', now()
		UNION ALL SELECT 'key_persons', '', 1, $1 / 1000, 'key.csv', 'perf', now()
		UNION ALL SELECT 'deaths', '', 1, $1 / 1000, 'deaths.csv', 'perf', now()
		UNION ALL SELECT 'roster', 'S' || s || '/2017-spring', 1, $2 / $3, 'roster.csv', 'perf', now() FROM generate_series(0, $3 - 1) s`,
		n, apps, schools)
	// The registry's rows go into a partition of their own, as an import
	// leaves them (migration 007): filled with no index, its primary key
	// built once, attached.
	var registry int64
	if err := conn.QueryRow(ctx, `UPDATE imports SET rows = 0 WHERE kind = 'poverty_registry' RETURNING id`).Scan(&registry); err != nil {
		t.Fatal(err)
	}
	exec("registry partition", `SELECT begin_registry_partition($1)`, registry)
	exec(fmt.Sprintf("registry rows (%d)", n), fmt.Sprintf(`INSERT INTO registry_rows_%d (import_id, line, id_hash, household_id, name_hash, id_masked, township)
		SELECT $2, g + 1, `+h("g")+`, 'H' || (g / 4), md5('name-' || g), '421081********' || lpad((g %% 10000)::text, 4, '0'), '城关镇'
		FROM generate_series(1, $1) g`, registry), n, registry)
	exec("registry primary key", `SELECT finish_registry_partition($1)`, registry)
	exec("registry rows count", `UPDATE imports SET rows = $2 WHERE id = $1`, registry, n)
	exec("key persons", `INSERT INTO key_person_rows (import_id, line, id_hash, name_hash, id_masked, relation, unit)
		SELECT (SELECT id FROM imports WHERE kind = 'key_persons'), g / 1000 + 1, `+h("g")+`, md5('name-' || g), '421081********0000', '子女', '某局'
		FROM generate_series(1000, $1, 1000) g`, n)
	exec("deaths", `INSERT INTO death_rows (import_id, line, id_hash, name_hash, id_masked, event_date, event_kind)
		SELECT (SELECT id FROM imports WHERE kind = 'deaths'), g / 1000 + 1, `+h("g")+`, md5('name-' || g), '421081********0000', date '2016-12-01', 'death'
		FROM generate_series(1500, $1, 1000) g`, n)
	// Applications: person p at school p % schools, every 7th for the
	// registry-only program; every 2,000th also applied for at the next
	// school; every 50th person's application comes from outside the
	// registry (persons above n); every 300th is 15, old for primary, and
	// every 1,000th carries no birth month.
	exec(fmt.Sprintf("applications (%d)", apps), `INSERT INTO records (id, origin, student_id_hash, student_id_masked, school_code, program_code,
			term, term_ord, term_start, stage, applied_fen, status, updated_at, birth_month)
		SELECT gen_random_uuid(), 'chain', `+h("CASE WHEN p % 50 = 0 THEN p + $1 ELSE p END")+`, '421081********0000',
			'S' || (p % $3), CASE WHEN p % 7 = 0 THEN 'POVERTY_EXTENSION' ELSE 'BOARDING_SUBSIDY' END,
			'2017-spring', 4034, date '2017-03-01', 'primary', 50000, 'applied', now(),
			CASE WHEN p % 1000 = 0 THEN NULL WHEN p % 300 = 0 THEN date '2002-01-01' ELSE date '2008-05-01' END
		FROM generate_series(1, $2) p
		UNION ALL
		SELECT gen_random_uuid(), 'chain', `+h("p")+`, '421081********0000', 'S' || ((p + 1) % $3), 'BOARDING_SUBSIDY',
			'2017-spring', 4034, date '2017-03-01', 'primary', 50000, 'paid', now(), date '2008-05-01'
		FROM generate_series(2000, $2, 2000) p`, n, apps, schools)
	exec("rosters", `INSERT INTO roster_rows (import_id, line, id_hash, name_hash, id_masked, school_code, term, term_ord, stage)
		SELECT i.id, p / $2 + 2, `+h("p")+`, md5('name-' || p), '421081********0000', 'S' || (p % $2), '2017-spring', 4034, 'primary'
		FROM generate_series(1, $1) p JOIN imports i ON i.kind = 'roster' AND i.scope = 'S' || (p % $2) || '/2017-spring'
		WHERE p % 500 <> 0`, apps, schools)
	exec("analyze", `ANALYZE`)
	var size string
	if err := conn.QueryRow(ctx, `SELECT pg_size_pretty(sum(pg_total_relation_size(relid))) FROM pg_partition_tree('registry_rows')`).Scan(&size); err != nil {
		t.Fatal(err)
	}
	t.Logf("registry_rows with indexes: %s", size)

	var sample []string
	rows, err := conn.Query(ctx, `SELECT id::text FROM records WHERE origin = 'chain' ORDER BY random() LIMIT $1`, calls)
	if err != nil {
		t.Fatal(err)
	}
	if sample, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil || len(sample) < min(calls, apps) {
		t.Fatalf("sample of %d applications: %v", len(sample), err)
	}
	reviewer := e.client("br-perf", auth.RoleBureauReviewer)
	flagged := map[string]int{}
	measure := func(what string, batch, count int) {
		var took []time.Duration
		for i := range count {
			from := (i * batch) % (len(sample) - batch + 1)
			ids := sample[from : from+batch]
			began := time.Now()
			res, err := reviewer.ListFlags(ctx, &dcv1.ListFlagsRequest{ApplicationIds: ids})
			took = append(took, time.Since(began))
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range res.GetApplications() {
				if !a.GetKnown() {
					t.Fatalf("application %s unknown", a.GetApplicationId())
				}
				for _, f := range a.GetFlags() {
					flagged[f.GetKind()]++
				}
			}
		}
		slices.Sort(took)
		q := func(p float64) time.Duration {
			return took[min(len(took)-1, int(p*float64(len(took))))].Round(10 * time.Microsecond)
		}
		t.Logf("%s: %d calls, p50 %v, p90 %v, p99 %v, max %v", what, len(took), q(0.50), q(0.90), q(0.99), took[len(took)-1].Round(10*time.Microsecond))
	}
	measure("warm-up, one application per call", 1, calls)
	measure("one application per call", 1, calls)
	measure("100 applications per call", 100, 50)
	t.Logf("flags seen: %v", flagged)

	// The statements alone, on one connection, for one application.
	var rs adapters.Rules
	rs.RegistryPrograms = domain.RegistryPrograms()
	for _, st := range domain.Standards() {
		rs.Standards = append(rs.Standards, adapters.Standard(st))
	}
	step := func(what string, fn func(id string) error) {
		var took []time.Duration
		for i := range min(200, len(sample)) {
			began := time.Now()
			if err := fn(sample[i]); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			took = append(took, time.Since(began))
		}
		slices.Sort(took)
		t.Logf("%s alone: p50 %v, p99 %v", what, took[len(took)/2].Round(10*time.Microsecond), took[len(took)*99/100].Round(10*time.Microsecond))
	}
	step("the three statements", func(id string) error { _, err := adapters.ListFlags(ctx, conn, []string{id}, rs); return err })

	// The plan of the statement for one application.
	plan, err := conn.Query(ctx, `EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT 1 FROM records a
		WHERE a.id = $1 AND NOT EXISTS (SELECT 1 FROM registry_rows g WHERE g.id_hash = a.student_id_hash AND g.import_id = 1)`, sample[0])
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(plan, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("registry anti-join for one application:\n%s", strings.Join(lines, "\n"))
}
