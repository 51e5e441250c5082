package service_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edubureau/studentaid/pkg/idnumber"
	dcv1 "github.com/edubureau/studentaid/proto/gen/aid/datacomparison/v1"
)

// TestExportAtScale measures an export of DC_EXPORT_PERF_ROWS imported
// history records (docs/performance.md): its time and the peak heap while
// it runs, CSV and XLSX. Skipped unless the variable is set.
func TestExportAtScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("DC_EXPORT_PERF_ROWS"))
	if n <= 0 {
		t.Skip("a measurement, not a check (docs/performance.md): set DC_EXPORT_PERF_ROWS=1000000 to time the exports; TestExchangeWithBigDataOffice checks them")
	}
	e, _, _ := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 9*time.Minute)
	defer cancel()
	f, err := os.Create(filepath.Join(e.importDir, "history.csv"))
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "id_number,name,school_code,program_code,term,stage,amount_yuan")
	for i := range n {
		id := idnumber.Generate("421081", time.Date(2008, time.January, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i/1000), i%1000)
		fmt.Fprintf(w, "%s,%s,S%d,BOARDING_SUBSIDY,2016-autumn,primary,500\n", id, name(i), i%50)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	e.importFile(ctx, &dcv1.ImportReferenceRequest{Kind: dcv1.ReferenceKind_REFERENCE_KIND_HISTORY, Source: "perf", ServerPath: "history.csv"})

	for _, format := range []dcv1.ExportFormat{dcv1.ExportFormat_EXPORT_FORMAT_CSV, dcv1.ExportFormat_EXPORT_FORMAT_XLSX} {
		runtime.GC()
		var peak atomic.Uint64
		done := make(chan struct{})
		go func() {
			var m runtime.MemStats
			for {
				select {
				case <-done:
					return
				case <-time.After(20 * time.Millisecond):
					runtime.ReadMemStats(&m)
					if m.HeapInuse > peak.Load() {
						peak.Store(m.HeapInuse)
					}
				}
			}
		}()
		began := time.Now()
		res, err := e.dc.ExportRecords(ctx, &dcv1.ExportRecordsRequest{FromTerm: "2016-autumn", ToTerm: "2016-autumn", Format: format})
		took := time.Since(began)
		close(done)
		if err != nil {
			t.Fatal(err)
		}
		if res.GetRecords() != int64(n) || res.GetAmountFen() != int64(n)*50000 {
			t.Fatalf("exported %d records, %d fen; want %d, %d", res.GetRecords(), res.GetAmountFen(), n, int64(n)*50000)
		}
		t.Logf("%s: %d records, %d MiB file, %v (%.0f rows/s), peak heap %d MiB", format, n, res.GetBytes()>>20, took.Round(time.Millisecond),
			float64(n)/took.Seconds(), peak.Load()>>20)
	}
}
