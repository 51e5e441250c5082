package driver

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestPercentileNearestRank(t *testing.T) {
	t.Parallel()
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	tests := []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.95, 95 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}, {0.001, time.Millisecond}}
	for _, tt := range tests {
		if got := Percentile(d, tt.q); got != tt.want {
			t.Errorf("Percentile(%v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	if Percentile(nil, 0.5) != 0 {
		t.Error("empty input must give 0")
	}
}

func TestRecorderStepsAndEndToEnd(t *testing.T) {
	t.Parallel()
	r := NewRecorder(3)
	t0 := time.Date(2017, 9, 1, 8, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

	// A bot can see an item before the submit response arrives.
	r.Mark(StepSchoolDecided, "a", at(50))
	r.Submitted([]string{"a", "b", "c"}, at(0), at(20))
	r.Mark(StepSchoolDecided, "a", at(999)) // later marks do not move a step
	r.Mark(StepSchoolDecided, "b", at(60))
	r.Mark(StepSchoolDecided, "c", at(70))
	beforeReject := time.Now()
	r.Finish("c", OutcomeSchoolRejected)
	afterReject := time.Now()
	for _, id := range []string{"a", "b"} {
		r.Mark(StepNoticePassed, id, at(100))
		r.Mark(StepBureauDecided, id, at(200))
	}
	r.MarkAll(StepBatched, []string{"a", "b"}, at(1000))
	r.MarkAll(StepConfirmed, []string{"a", "b"}, at(1100))
	r.Mark(StepPaid, "a", at(1500))
	r.Mark(StepPaid, "b", at(1600))
	r.Finish("a", OutcomePaid)
	r.Finish("b", OutcomePaid)
	r.Mark(StepShownPaid, "a", at(1550))
	r.Mark(StepShownPaid, "b", at(2000))
	r.Mark(StepPaid, "foreign", at(10)) // never submitted by this run
	r.Error(StepConfirmed, status.Error(codes.FailedPrecondition, "totals changed"))

	p := r.Progress()
	if p.Submitted != 3 || p.Terminal != 3 || p.Reached[StepPaid] != 2 || p.Outcomes[OutcomeSchoolRejected] != 1 || p.Errors != 1 {
		t.Fatalf("progress %+v", p)
	}
	rep := r.Report()
	want := map[string]struct {
		count int
		p50   float64
		max   float64
	}{
		"submit":          {3, 20, 20},
		"school decision": {3, 40, 50},
		"notice passed":   {2, 40, 50},
		"confirmed":       {2, 100, 100},
		"paid (payout)":   {2, 400, 500},
		"shown as PAID":   {2, 50, 400},
	}
	for _, l := range rep.Steps {
		w, ok := want[l.Name]
		if !ok {
			continue
		}
		if l.Count != w.count || l.P50Ms != w.p50 || l.MaxMs != w.max {
			t.Errorf("%s: count %d p50 %v max %v, want %d %v %v", l.Name, l.Count, l.P50Ms, l.MaxMs, w.count, w.p50, w.max)
		}
	}
	if rep.Steps[StepConfirmed].Errors != 1 {
		t.Errorf("confirm errors %d, want 1", rep.Steps[StepConfirmed].Errors)
	}
	if rep.ToPaid.Count != 2 || rep.ToPaid.MaxMs != 1600 || rep.ToShownPaid.MaxMs != 2000 {
		t.Errorf("end to end %+v / %+v", rep.ToPaid, rep.ToShownPaid)
	}
	if rep.ToShownPaid.PerSecond != 1 { // 2 applications over 2 s
		t.Errorf("throughput %v, want 1", rep.ToShownPaid.PerSecond)
	}
	// Paid ones count at payout's (2017) time; c counts when its rejection
	// was recorded, which is the latest here.
	if got := r.FinalAt(); got.Before(beforeReject) || got.After(afterReject) {
		t.Errorf("FinalAt %v, want the time c's rejection was recorded", got)
	}
	if got := r.Errors()["confirmed: FailedPrecondition"]; got != 1 {
		t.Errorf("error kinds %v", r.Errors())
	}
}

func TestParseMetric(t *testing.T) {
	t.Parallel()
	text := `# HELP aid_outbox_backlog Outbox rows not yet published.
# TYPE aid_outbox_backlog gauge
aid_outbox_backlog{service="payout"} 12
aid_outbox_backlog_other 99
aid_outbox_backlog{service="payout",shard="2"} 3
`
	tests := []struct {
		name, metric string
		want         float64
		found        bool
	}{
		{"sums label sets, skips longer names", "aid_outbox_backlog", 15, true},
		{"absent", "aid_missing", 0, false},
		{"unlabelled", "aid_outbox_backlog_other", 99, true},
	}
	for _, tt := range tests {
		got, ok := ParseMetric(text, tt.metric)
		if got != tt.want || ok != tt.found {
			t.Errorf("%s: got %v %v, want %v %v", tt.name, got, ok, tt.want, tt.found)
		}
	}
}

func TestReadProcParsesStatAndStatus(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	write := func(pid, stat, status string) {
		dir := filepath.Join(root, pid)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "status"), []byte(status), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// comm with a space and parentheses; utime 150, stime 50, cutime 7, cstime 3.
	write("42", "42 (post (gres) x) S 1 42 42 0 -1 4194560 100 0 0 0 150 50 7 3 20 0 1 0 100 1000 10",
		"Name:\tpostgres\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n")
	write("43", "43 (worker) S 42 42 42 0 -1 0 0 0 0 0 10 10 0 0 20 0 1 0 100 1000 10", "VmHWM:\t4096 kB\n")
	rollup := "00400000-7ffd1a3e6000 ---p 00000000 00:00 0 [rollup]\nRss:\t  1024 kB\nPss:\t   512 kB\nPss_Anon:\t 256 kB\n"
	if err := os.WriteFile(filepath.Join(root, "42", "smaps_rollup"), []byte(rollup), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := readProc(root, 42)
	if err != nil {
		t.Fatal(err)
	}
	if s.Comm != "post (gres) x" || s.PPid != 1 || s.CPU != 2*time.Second || s.ChildCPU != 100*time.Millisecond || s.PeakRSS != 2<<20 || s.RSS != 1<<20 || s.PSS != 512<<10 {
		t.Fatalf("%+v", s)
	}
	if w, err := readProc(root, 43); err != nil || w.PSS != 0 {
		t.Fatalf("no smaps_rollup: %+v, %v; want PSS 0", w, err)
	}
	if kids := children(root, 42); len(kids) != 1 || kids[0] != 43 {
		t.Fatalf("children %v", kids)
	}
	if _, err := readProc(root, 7); err == nil {
		t.Fatal("missing process must fail")
	}
}

func TestRetryOnlyRetryableErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		err        error
		wantCalls  int
		wantFailed int
	}{
		{"unavailable is retried", status.Error(codes.Unavailable, "down"), 3, 3},
		{"invalid argument is not", status.Error(codes.InvalidArgument, "bad"), 1, 1},
		{"plain error is not", errors.New("x"), 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			calls := 0
			failed, err := WithRetry(t.Context(), 3, func(_ context.Context) error { calls++; return tt.err })
			if err == nil || calls != tt.wantCalls || failed != tt.wantFailed {
				t.Fatalf("calls %d failed %d err %v", calls, failed, err)
			}
		})
	}
}
