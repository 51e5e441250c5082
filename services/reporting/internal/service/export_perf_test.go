package service_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/internal/devtools/testenv"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/service/servicetest"
	rpservice "github.com/edubureau/studentaid/services/reporting/internal/service"
)

// rssKiB reads a field of /proc/self/status (VmRSS, VmHWM) in KiB.
func rssKiB(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// TestPaymentExportAtScale generates REPORTING_EXPORT_ROWS payments
// (set-based, straight into the read model) and downloads them through the
// service's HTTP route — XLSX, then CSV and JSON — measuring the time and,
// every 20 ms, the process's heap in use and resident memory (the service
// runs in this process). Skipped unless the variable is set: a
// measurement (docs/performance.md); TestCityReport checks the files.
func TestPaymentExportAtScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("REPORTING_EXPORT_ROWS"))
	if n == 0 {
		t.Skip("a measurement, not a check (docs/performance.md): set REPORTING_EXPORT_ROWS=1000000 to time the exports; TestCityReport checks them")
	}
	ctx := context.Background()
	dbURL := testenv.DatabaseURL(t)
	keys := testenv.NewKeys(t)
	run := servicetest.Start(t, servicetest.Env{DatabaseURL: dbURL, NATSURL: testenv.NATS(t), PublicKeyPath: keys.PublicKeyPath}, rpservice.Spec())
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	start := time.Now()
	for _, sql := range []string{
		`INSERT INTO reporting.applications (application_id, student_id_hash, school_code, program_code, term, term_rank, stage,
			funding_source, government_total, shares_bp, policy_version, submitted_at)
		 SELECT md5('a' || i)::uuid, md5('h' || (i % ($1::int * 7 / 10))), 'S' || lpad((i % 500)::text, 3, '0'),
			(ARRAY['PRESCHOOL_AID','BOARDING_SUBSIDY','HS_NATIONAL_GRANT','HS_TUITION_WAIVER'])[1 + i % 4],
			CASE WHEN i % 2 = 0 THEN '2017-spring' ELSE '2017-autumn' END, 4034 + i % 2,
			(ARRAY['preschool','primary','high_school','high_school'])[1 + i % 4], 'government', true,
			'{"central_provincial":8000,"municipal":2000}', 1, '2017-03-01T00:00:00Z'
		 FROM generate_series(1, $1::int) i`,
		`INSERT INTO reporting.payments (payment_id, application_id, amount_fen, loan_contract_number, paid_at)
		 SELECT 'p' || i, md5('a' || i)::uuid, (ARRAY[50000,62500,100000,85000])[1 + i % 4], '',
			'2017-11-01T00:00:00Z'::timestamptz + i * interval '1 second'
		 FROM generate_series(1, $1::int) i`,
		`INSERT INTO reporting.refunds (refund_id, payment_id, clue_id, amount_fen, opened_at)
		 SELECT 'r' || i, 'p' || i, 'c' || i, 10000, '2018-01-01T00:00:00Z' FROM generate_series(1000, $1::int, 1000) i`,
		`INSERT INTO reporting.refund_receipts (event_id, refund_id, amount_fen, received_at)
		 SELECT md5('r' || i)::uuid, 'r' || i, 10000, '2018-02-01T00:00:00Z' FROM generate_series(1000, $1::int, 1000) i`,
		`ANALYZE reporting.applications, reporting.payments, reporting.refunds, reporting.refund_receipts`,
	} {
		args := []any{n}
		if !strings.Contains(sql, "$1") {
			args = nil
		}
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("generated %d payments in %s", n, time.Since(start).Round(time.Millisecond))
	tok := keys.Token(t, "aud1", auth.RoleAuditor, auth.OrgBureau)
	for _, format := range []string{"xlsx", "csv", "json"} {
		runtime.GC()
		var peakHeap, peakRSS atomic.Uint64
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				if m.HeapInuse > peakHeap.Load() {
					peakHeap.Store(m.HeapInuse)
				}
				if r := uint64(rssKiB("VmRSS")) * 1024; r > peakRSS.Load() {
					peakRSS.Store(r)
				}
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		}()
		began := time.Now()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+run.HTTPAddr+
			"/v1/reporting/payments/export?from_term=2017-spring&to_term=2017-autumn&format="+format, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		size, err := io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		took := time.Since(began)
		close(stop)
		<-done
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: HTTP %d after %d bytes: %v", format, resp.StatusCode, size, err)
		}
		t.Logf("%s: %d payments, %.1f MiB in %s (%.0f rows/s); peak heap in use %.0f MiB, peak RSS %.0f MiB (process high-water mark %.0f MiB)",
			format, n, float64(size)/(1<<20), took.Round(10*time.Millisecond), float64(n)/took.Seconds(),
			float64(peakHeap.Load())/(1<<20), float64(peakRSS.Load())/(1<<20), float64(rssKiB("VmHWM"))/1024)
	}
}
