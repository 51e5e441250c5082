package service_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/catalog"
	"github.com/edubureau/studentaid/pkg/idnumber"
	"github.com/edubureau/studentaid/pkg/pii"
	dcv1 "github.com/edubureau/studentaid/proto/gen/aid/datacomparison/v1"
	"github.com/edubureau/studentaid/services/data-comparison/internal/adapters"
	"github.com/edubureau/studentaid/services/data-comparison/internal/domain"
)

// memWatch samples the process's heap in use every 20 ms from now, and
// resets the kernel's peak RSS (VmHWM) so peak() reports the peak since.
type memWatch struct {
	heap atomic.Uint64
	done chan struct{}
}

func watchMemory() *memWatch {
	runtime.GC()
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // resets VmHWM (Linux)
	m := &memWatch{done: make(chan struct{})}
	go func() {
		var s runtime.MemStats
		for {
			select {
			case <-m.done:
				return
			case <-time.After(20 * time.Millisecond):
				runtime.ReadMemStats(&s)
				if s.HeapInuse > m.heap.Load() {
					m.heap.Store(s.HeapInuse)
				}
			}
		}
	}()
	return m
}

// peak stops the sampling and returns the peak heap and RSS in MiB.
func (m *memWatch) peak() (heapMiB, rssMiB uint64) {
	close(m.done)
	status, _ := os.ReadFile("/proc/self/status")
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			rssMiB = kb >> 10
		}
	}
	return m.heap.Load() >> 20, rssMiB
}

// importTimed imports one server-side file and logs its rate and memory.
func (e *env) importTimed(ctx context.Context, req *dcv1.ImportReferenceRequest, rows int) {
	e.t.Helper()
	mem := watchMemory()
	began := time.Now()
	res := e.importFile(ctx, req)
	took := time.Since(began)
	heap, rss := mem.peak()
	if got := res.GetImport().GetRows(); got != int64(rows) {
		e.t.Fatalf("import %s: %d rows, want %d", req.GetKind(), got, rows)
	}
	e.t.Logf("import %s: %d rows in %v (%.0f rows/s), peak heap %d MiB, peak RSS of the test process %d MiB",
		req.GetKind(), rows, took.Round(time.Millisecond), float64(rows)/took.Seconds(), heap, rss)
}

func sizeFromEnv(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// TestImportAtScale imports a generated registry CSV of
// DC_IMPORT_PERF_REGISTRY rows through ImportReference (a server-side file,
// the path aidctl's import takes) and reports the rows per second and the
// peak heap and RSS of the process (the service runs in it), then imports
// the same file again (a new version) and a copy with one bad row on its
// last line, which is refused whole. docs/performance.md, "Data comparison
// at scale". Skipped unless the variable is set.
func TestImportAtScale(t *testing.T) {
	n := sizeFromEnv("DC_IMPORT_PERF_REGISTRY", 0)
	if n <= 0 {
		t.Skip("a measurement, not a check (docs/performance.md): set DC_IMPORT_PERF_REGISTRY=10000000 to time a registry import; TestGeneratedCity checks imports")
	}
	pv := province{students: 1000, registry: n, schools: 10}
	e, _, _ := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	began := time.Now()
	path := filepath.Join(e.importDir, "registry.csv")
	if err := pv.writeRegistry(path); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	t.Logf("generated %d registry rows (%d MiB) in %v", n, st.Size()>>20, time.Since(began).Round(time.Millisecond))
	req := &dcv1.ImportReferenceRequest{Kind: dcv1.ReferenceKind_REFERENCE_KIND_POVERTY_REGISTRY, ServerPath: "registry.csv"}
	e.importTimed(ctx, req, n)
	if os.Getenv("DC_IMPORT_PERF_ONCE") != "" {
		return
	}
	e.importTimed(ctx, req, n)

	// The same file with a bad ID number on its last line: refused whole.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	good := provincePerson(0)
	bad := good[:17] + map[bool]string{true: "0", false: "1"}[good[17] != '0'] // a wrong check character
	fmt.Fprintf(f, "H0,%s,坏行,城关镇\n", bad)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	began = time.Now()
	res, err := e.dc.ImportReference(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.GetImported() || len(res.GetBadRows()) != 1 || res.GetBadRows()[0].GetLine() != int64(n+2) {
		t.Fatalf("bad file: imported %v, bad rows %v; want refused with line %d", res.GetImported(), res.GetBadRows(), n+2)
	}
	t.Logf("bad file refused in %v", time.Since(began).Round(time.Millisecond))
	conn, err := pgx.Connect(ctx, e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	var versions, rows int64
	if err := conn.QueryRow(ctx, `SELECT count(*), coalesce(sum(rows), 0)::bigint FROM data_comparison.imports WHERE kind = 'poverty_registry'`).Scan(&versions, &rows); err != nil {
		t.Fatal(err)
	}
	var stored int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM data_comparison.registry_rows`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if versions != 2 || rows != 2*int64(n) || stored != 2*int64(n) {
		t.Fatalf("after two imports and a refused one: %d versions of %d rows, %d rows stored; want 2, %d, %d", versions, rows, stored, 2*n, 2*n)
	}
}

// TestComparisonAtScale runs one comparison of every clue kind over a
// generated province (province_test.go) of DC_COMPARE_PERF_RECORDS payment
// records (about: two a student) against a registry of
// DC_COMPARE_PERF_REGISTRY rows, with rosters, key persons and deaths, and
// checks that it finds exactly the planted clues; then runs it again (no
// new clue) and shows the plan of each kind's statement. The registry, key
// persons and deaths go through ImportReference; the payment records and
// rosters are written straight into the service's tables, as the chain's
// events and roster imports leave them. docs/performance.md, "Data
// comparison at scale". Skipped unless DC_COMPARE_PERF_RECORDS is set.
func TestComparisonAtScale(t *testing.T) {
	records := sizeFromEnv("DC_COMPARE_PERF_RECORDS", 0)
	if records <= 0 {
		t.Skip("a measurement, not a check (docs/performance.md): set DC_COMPARE_PERF_RECORDS=5000000 DC_COMPARE_PERF_REGISTRY=10000000 to time a comparison; TestGeneratedCity checks it")
	}
	pv := province{students: records / 2 / 1000 * 1000, registry: sizeFromEnv("DC_COMPARE_PERF_REGISTRY", 2*records), schools: 500}
	if pv.registry < pv.students+pv.students/1000 {
		t.Fatalf("the registry (%d) must be larger than the students (%d)", pv.registry, pv.students)
	}
	e, h, _ := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	if _, err := conn.Exec(ctx, `SET search_path = data_comparison`); err != nil {
		t.Fatal(err)
	}

	began := time.Now()
	for _, f := range []struct {
		name  string
		write func(string) error
	}{{"registry.csv", pv.writeRegistry}, {"key.csv", pv.writeKeyPersons}, {"deaths.csv", pv.writeDeaths}} {
		if err := f.write(filepath.Join(e.importDir, f.name)); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("generated the reference files in %v", time.Since(began).Round(time.Millisecond))
	e.importTimed(ctx, &dcv1.ImportReferenceRequest{Kind: dcv1.ReferenceKind_REFERENCE_KIND_POVERTY_REGISTRY, ServerPath: "registry.csv"}, pv.registry)
	e.importTimed(ctx, &dcv1.ImportReferenceRequest{Kind: dcv1.ReferenceKind_REFERENCE_KIND_KEY_PERSONS, ServerPath: "key.csv"}, pv.students/1000+1000)
	e.importTimed(ctx, &dcv1.ImportReferenceRequest{Kind: dcv1.ReferenceKind_REFERENCE_KIND_DEATHS, ServerPath: "deaths.csv"}, 2*pv.students/1000)

	loadRecords(ctx, t, conn, h, pv)
	loadRosters(ctx, t, conn, h, pv)
	began = time.Now()
	if _, err := conn.Exec(ctx, `VACUUM ANALYZE`); err != nil {
		t.Fatal(err)
	}
	t.Logf("vacuum analyze: %v", time.Since(began).Round(time.Millisecond))

	run := func(what string) *dcv1.ComparisonRun {
		t.Helper()
		began := time.Now()
		res, err := e.dc.RunComparison(ctx, &dcv1.RunComparisonRequest{FromTerm: autumn, ToTerm: spring})
		took := time.Since(began)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d records compared in %v, new clues %v", what, res.GetRecords(), took.Round(time.Millisecond), res.GetNewClues())
		return res
	}
	first := run("first run")
	if first.GetRecords() != int64(pv.records()) {
		t.Errorf("compared %d records, want %d", first.GetRecords(), pv.records())
	}
	want := pv.wantClues()
	if got := first.GetNewClues(); !maps.Equal(got, want) {
		t.Errorf("new clues %v, want %v", got, want)
	}
	second := run("second run")
	for kind, n := range second.GetNewClues() {
		if n != 0 {
			t.Errorf("the second run added %d %s clues", n, kind)
		}
	}

	// The plan of each kind's statement, in a transaction rolled back.
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	cur, err := adapters.CurrentImports(ctx, tx)
	if err != nil {
		t.Fatal(err)
	}
	rng, err := domain.ParseTermRange(autumn, spring)
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range domain.ComparedKinds {
		plan, err := adapters.ExplainFindings(ctx, tx, adapters.Run{ID: 1, From: rng.From, To: rng.To, StartedAt: time.Now()}, kind, cur, scaleRules())
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("plan of %s:\n%s", kind, strings.Join(plan, "\n"))
	}
}

func scaleRules() adapters.Rules {
	r := adapters.Rules{RegistryPrograms: domain.RegistryPrograms()}
	for _, s := range domain.Standards() {
		r.Standards = append(r.Standards, adapters.Standard(s))
	}
	for _, st := range []string{"preschool", "primary", "junior", "high_school", "vocational", "university"} {
		if p, fen, ok := domain.Entitlement(catalog.Stage(st)); ok {
			r.Entitlements = append(r.Entitlements, adapters.Entitlement{Stage: st, Program: p, Fen: fen})
		}
	}
	return r
}

// copyRows streams rows into table with one COPY and logs the time.
func copyRows(ctx context.Context, t *testing.T, conn *pgx.Conn, table string, columns []string, src pgx.CopyFromSource) {
	t.Helper()
	began := time.Now()
	n, err := conn.CopyFrom(ctx, pgx.Identifier{table}, columns, src)
	if err != nil {
		t.Fatalf("copy %s: %v", table, err)
	}
	t.Logf("%s: %d rows in %v", table, n, time.Since(began).Round(time.Millisecond))
}

// funcSource is a CopyFromSource over a push iterator, run in a goroutine.
type funcSource struct {
	rows chan []any
	cur  []any
}

func sourceOf(push func(yield func([]any) bool)) *funcSource {
	s := &funcSource{rows: make(chan []any, 4096)}
	go func() {
		defer close(s.rows)
		push(func(r []any) bool { s.rows <- r; return true })
	}()
	return s
}

func (s *funcSource) Next() bool {
	r, ok := <-s.rows
	s.cur = r
	return ok
}
func (s *funcSource) Values() ([]any, error) { return s.cur, nil }
func (s *funcSource) Err() error             { return nil }

// loadRecords writes the province's payments as the chain's paid records.
func loadRecords(ctx context.Context, t *testing.T, conn *pgx.Conn, h *pii.Hasher, pv province) {
	t.Helper()
	at := time.Date(2017, time.April, 1, 0, 0, 0, 0, time.UTC)
	copyRows(ctx, t, conn, "records", []string{"id", "origin", "student_id_hash", "student_id_masked", "school_code", "program_code",
		"term", "term_ord", "term_start", "stage", "applied_fen", "status", "paid_fen", "payment_id", "updated_at"},
		sourceOf(func(yield func([]any) bool) {
			for p := range pv.payments {
				num := provincePerson(p.person)
				id := uuid.New()
				if !yield([]any{id, "chain", h.Hash(num), idnumber.Mask(num), p.school, p.program, p.term, p.ord, p.start, p.stage,
					p.fen, "paid", p.fen, "P" + id.String()[:8], at}) {
					return
				}
			}
		}))
}

// loadRosters records one roster import per school and term and writes
// their rows.
func loadRosters(ctx context.Context, t *testing.T, conn *pgx.Conn, h *pii.Hasher, pv province) {
	t.Helper()
	if _, err := conn.Exec(ctx, `INSERT INTO imports (kind, scope, version, rows, file_name, imported_by, imported_at)
		SELECT 'roster', 'S' || s || '/' || t, 1, 0, 'roster.csv', 'perf', now()
		FROM generate_series(0, $1 - 1) s, unnest(ARRAY[$2, $3]) t`, pv.schools, autumn, spring); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, `SELECT scope, id FROM imports WHERE kind = 'roster'`)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]int64{}
	for rows.Next() {
		var scope string
		var id int64
		if err := rows.Scan(&scope, &id); err != nil {
			t.Fatal(err)
		}
		ids[scope] = id
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	lines := map[int64]int64{}
	copyRows(ctx, t, conn, "roster_rows", []string{"import_id", "line", "id_hash", "name_hash", "id_masked", "school_code", "term", "term_ord", "stage"},
		sourceOf(func(yield func([]any) bool) {
			for r := range pv.rosters {
				id := ids[r.school+"/"+r.term]
				lines[id]++
				num := provincePerson(r.person)
				if !yield([]any{id, lines[id] + 1, h.Hash(num), h.Hash("name:" + provinceName(r.person)), idnumber.Mask(num), r.school, r.term, r.ord, "primary"}) {
					return
				}
			}
		}))
	if _, err := conn.Exec(ctx, `UPDATE imports i SET rows = (SELECT count(*) FROM roster_rows r WHERE r.import_id = i.id) WHERE kind = 'roster'`); err != nil {
		t.Fatal(err)
	}
	t.Logf("rosters: %d imports", len(ids))
}
