package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/edubureau/studentaid/cmd/loadgen/internal/driver"
)

// result is what a run reports, as a table and as JSON.
type result struct {
	Started  time.Time        `json:"started"`
	Config   config           `json:"config"`
	Machine  machine          `json:"machine"`
	Sampling string           `json:"trace_sampling"`
	Submit   submitSummary    `json:"submit"`
	Report   driver.Report    `json:"report"`
	Outcomes map[string]int   `json:"outcomes"`
	Errors   map[string]int64 `json:"errors"`
	// ChainSeconds: first submission → every application final (as the bots saw it).
	ChainSeconds float64 `json:"chain_seconds"`
	// EndToEndPerSecond: applications that reached a final state (paid at
	// payout, returned by the bank, or rejected) per second, from the first
	// submission until the last one got there.
	EndToEndPerSecond float64 `json:"end_to_end_per_s"`
	EndToEndSeconds   float64 `json:"end_to_end_seconds"`
	// Shown says how many paid applications the application service showed
	// as PAID by the end of the run.
	Shown         shownSummary       `json:"shown_as_paid"`
	Processes     []processResult    `json:"processes"`
	Backlog       backlogResult      `json:"outbox_backlog"`
	BacklogSource string             `json:"outbox_backlog_source"`
	Stream        *streamResult      `json:"event_stream,omitempty"`
	SingleBatch   *singleBatchResult `json:"single_batch,omitempty"`
	PgbenchTPS    float64            `json:"pgbench_tps,omitempty"`
	// PerThousandTPS is end-to-end applications/s per 1000 pgbench TPS.
	PerThousandTPS float64  `json:"apps_per_s_per_1000_pgbench_tps,omitempty"`
	Problems       []string `json:"problems,omitempty"`
	// Soak compares memory at the end with the soak's baseline (-soak-baseline).
	Soak *soakResult `json:"soak,omitempty"`
}

// soakResult is a soak's memory check: each process's resident memory at
// the baseline and at the end of the chain.
type soakResult struct {
	// BaselineAfterS is when the first window begins, WindowS how long each
	// window is; EndAfterS is when the last one ends (the chain's end).
	BaselineAfterS float64       `json:"baseline_after_s"`
	WindowS        float64       `json:"window_s"`
	Samples        int           `json:"samples_in_windows,omitempty"`
	EndAfterS      float64       `json:"end_after_s,omitempty"`
	Processes      []soakProcess `json:"processes,omitempty"`
	// Within: every process of the platform (not a test tool) ended at most
	// SoakTolerance above its baseline; Judged counts them.
	Within  bool   `json:"within_tolerance"`
	Judged  int    `json:"judged"`
	Problem string `json:"problem,omitempty"`
}

type soakProcess struct {
	Name string `json:"name"`
	// BaselineMiB and EndMiB are the means over the two windows; PeakMiB
	// the largest sample of the whole soak.
	BaselineMiB float64 `json:"baseline_mib"`
	EndMiB      float64 `json:"end_mib"`
	PeakMiB     float64 `json:"peak_mib"`
	ChangePct   float64 `json:"change_pct"`
	Within      bool    `json:"within_tolerance"`
	// Tool: a test tool's memory, reported and not judged.
	Tool bool `json:"test_tool,omitempty"`
	// PSS: the figures are the group's proportional set size (PostgreSQL's
	// processes, shared buffers counted once), not its RSS.
	PSS bool `json:"pss,omitempty"`
}

type machine struct {
	CPUs     int     `json:"cpus"`
	CPUModel string  `json:"cpu_model"`
	MemGiB   float64 `json:"mem_gib"`
	LoadAvg  string  `json:"loadavg_at_start"`
}

type shownSummary struct {
	PaidAtPayout int `json:"paid_at_payout"`
	ShownPaid    int `json:"shown_paid"`
	// LastShownAfterS: first submission → the last application shown as PAID.
	LastShownAfterS float64 `json:"last_shown_after_s"`
	WaitedS         float64 `json:"waited_after_chain_s"`
}

type submitSummary struct {
	Accepted  int     `json:"accepted"`
	Failed    int     `json:"failed"`
	Calls     int     `json:"calls"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"per_s"`
	MaxLagMs  float64 `json:"max_lag_behind_schedule_ms"`
}

type processResult struct {
	Name       string  `json:"name"`
	Pid        int     `json:"pid"`
	Processes  int     `json:"processes"`
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	CPUSeconds float64 `json:"cpu_seconds"`
	// CPUMsPerApp is CPU time per submitted application.
	CPUMsPerApp float64 `json:"cpu_ms_per_app"`
	// AvgCores is CPU time over the wall time of the run.
	AvgCores float64 `json:"avg_cores"`
}

type backlogResult struct {
	Max map[string]float64 `json:"max"`
	// MaxConsumerLag is the largest aid_consumer_lag each service reported.
	MaxConsumerLag map[string]float64 `json:"max_consumer_lag"`
	Last           map[string]float64 `json:"last"`
	// DrainAfterSubmitS: from the last submit call to the first moment every
	// service reported a backlog of 0 (nil: never within the run).
	DrainAfterSubmitS *float64 `json:"drain_after_submit_s"`
	// DrainAfterChainS: from the chain's end to every backlog 0.
	DrainAfterChainS *float64 `json:"drain_after_chain_s"`
}

// streamResult is how the events travelled: JetStream stores (and with
// SyncAlways fsyncs) once per message, and a frame carries many events.
type streamResult struct {
	// Events is the number of events the services wrote to their outboxes.
	Events int64 `json:"events"`
	// Messages and Bytes are what the event stream holds at the end.
	Messages         uint64  `json:"messages"`
	Bytes            uint64  `json:"bytes"`
	EventsPerMessage float64 `json:"events_per_message"`
}

type singleBatchResult struct {
	Program       string `json:"program"`
	Items         int    `json:"items"`
	Batches       int    `json:"batches"`
	ControlSumFen int64  `json:"control_sum_fen"`
	// AllBatchedAfterApprovalS: last bureau approval → every item in an open batch.
	AllBatchedAfterApprovalS float64 `json:"all_batched_after_approval_s"`
	ConfirmCallMs            float64 `json:"confirm_call_ms"`
	// ConfirmToAllPaidS: ConfirmBatch sent → the last payment's updated_at at payout.
	ConfirmToAllPaidS float64 `json:"confirm_to_all_paid_s"`
	// ConfirmToObservedS: ConfirmBatch sent → finance's GetBatch showed every item paid.
	ConfirmToObservedS float64 `json:"confirm_to_finance_shows_all_paid_s"`
}

// report is the last phase: the result as a table on stdout and, when
// jsonPath is set, as JSON; the error names the problems the run met.
func report(res *result, jsonPath string, logf func(string, ...any)) error {
	printResult(os.Stdout, res)
	if jsonPath != "" {
		if err := writeJSON(jsonPath, res); err != nil {
			return err
		}
		logf("results written to %s", jsonPath)
	}
	if len(res.Problems) > 0 {
		return errors.New(strings.Join(res.Problems, "; "))
	}
	return nil
}

func numCPU() int { return runtime.NumCPU() }

func writeJSON(path string, r *result) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644) //nolint:gosec // G703: the path is the operator's own -json flag
}

func printResult(out io.Writer, r *result) {
	fmt.Fprintf(out, "\nmachine: %d CPUs (%s), %.1f GiB; load average at start %s\n", r.Machine.CPUs, r.Machine.CPUModel, r.Machine.MemGiB, r.Machine.LoadAvg)
	fmt.Fprintf(out, "tracing: %s\n", r.Sampling)
	transport := "gRPC"
	if r.Config.REST {
		transport = "REST/JSON"
	}
	fmt.Fprintf(out, "load: %d applications over %s, batch %d, concurrency %d, rate %s, %d schools, reject school %.0f%% / bureau %.0f%%\n\n",
		r.Config.N, transport, r.Config.Batch, r.Config.Concurrency, rateString(r.Config.Rate), r.Config.Schools, r.Config.RejectSchool*100, r.Config.RejectBureau*100)

	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "step\tcount\terrors\tper s\tp50 ms\tp95 ms\tp99 ms\tmax ms\t")
	row := func(l driver.Latencies) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t\n", l.Name, l.Count, l.Errors, l.PerSecond, l.P50Ms, l.P95Ms, l.P99Ms, l.MaxMs)
	}
	for _, l := range r.Report.Steps {
		if r.Config.SubmitOnly && l.Name != driver.StepSubmitted.String() {
			continue
		}
		row(l)
	}
	if !r.Config.SubmitOnly {
		row(r.Report.ToPaid)
		row(r.Report.ToShownPaid)
	}
	_ = tw.Flush() // like every line printed here, the table goes to stdout; a failed write has nowhere better to be reported
	fmt.Fprintln(out, "  (submit: latency per call; other steps: per application, from the previous step; per s: count over first submission → last arrival)")
	fmt.Fprintf(out, "\nsubmitted %d in %.1fs (%.1f/s, %d calls, %d failed, worst lag behind schedule %.0f ms)\n",
		r.Submit.Accepted, r.Submit.Seconds, r.Submit.PerSecond, r.Submit.Calls, r.Submit.Failed, r.Submit.MaxLagMs)
	fmt.Fprintf(out, "outcomes: %s\n", formatMap(r.Outcomes))
	if r.EndToEndPerSecond > 0 {
		fmt.Fprintf(out, "END TO END: %.1f applications/s reached a final state (paid at payout, returned by the bank or rejected) over %.1fs from the first submission\n", r.EndToEndPerSecond, r.EndToEndSeconds)
	}
	if !r.Config.SubmitOnly {
		fmt.Fprintf(out, "application service: shows %d of %d paid applications as PAID (last after %.1fs; waited up to %.0fs after the chain ended)\n",
			r.Shown.ShownPaid, r.Shown.PaidAtPayout, r.Shown.LastShownAfterS, r.Shown.WaitedS)
	}
	if r.SingleBatch != nil {
		sb := r.SingleBatch
		fmt.Fprintf(out, "SINGLE BATCH: %d items of %s in %d batch(es), %d fen; ConfirmBatch call %.0f ms; confirm → all paid at payout %.2fs (finance shows all paid after %.2fs)\n",
			sb.Items, sb.Program, sb.Batches, sb.ControlSumFen, sb.ConfirmCallMs, sb.ConfirmToAllPaidS, sb.ConfirmToObservedS)
	}
	if len(r.Errors) > 0 {
		fmt.Fprintf(out, "errors: %s\n", formatMap(r.Errors))
	}

	fmt.Fprintln(out)
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "process\tpid\tpeak RSS MiB\tCPU s\tCPU ms/app\tavg cores\t")
	var total float64
	for _, p := range r.Processes {
		name := p.Name
		if p.Processes > 1 {
			name = fmt.Sprintf("%s (%d procs)", p.Name, p.Processes)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.1f\t%.2f\t%.2f\t\n", name, p.Pid, p.PeakRSSMiB, p.CPUSeconds, p.CPUMsPerApp, p.AvgCores)
		total += p.CPUMsPerApp
	}
	fmt.Fprintf(tw, "total\t\t\t\t%.2f\t\t\n", total)
	_ = tw.Flush()
	fmt.Fprintln(out, "  (postgres: largest VmHWM of its processes, which counts shared buffers touched; CPU includes exited backends)")

	if sk := r.Soak; sk != nil {
		printSoak(out, sk)
	}

	fmt.Fprintf(out, "\noutbox backlog: max %s\n  drained to 0 in %s after the last submission, %s after the chain ended\n  (source: %s)\n",
		formatFloatMap(r.Backlog.Max), drain(r.Backlog.DrainAfterSubmitS), drain(r.Backlog.DrainAfterChainS), r.BacklogSource)
	fmt.Fprintf(out, "consumer lag (aid_consumer_lag): max %s\n", formatFloatMap(r.Backlog.MaxConsumerLag))
	if st := r.Stream; st != nil {
		fmt.Fprintf(out, "event stream: %d events in %d JetStream messages (%.1f events per message, %.1f MiB)\n",
			st.Events, st.Messages, st.EventsPerMessage, float64(st.Bytes)/(1<<20))
	}
	if r.PgbenchTPS > 0 {
		fmt.Fprintf(out, "\npgbench: %.0f TPS; end to end %.1f applications/s = %.1f applications/s per 1000 pgbench TPS\n", r.PgbenchTPS, r.EndToEndPerSecond, r.PerThousandTPS)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(out, "PROBLEM: %s\n", p)
	}
}

func drain(d *float64) string {
	if d == nil {
		return "never (within the run)"
	}
	return fmt.Sprintf("%.2fs", *d)
}

func formatMap[V int | int64](m map[string]V) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func formatFloatMap(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.0f", k, m[k]))
	}
	if len(parts) == 0 {
		return "(no metrics)"
	}
	return strings.Join(parts, ", ")
}

// printSoak prints the soak's memory check.
func printSoak(out io.Writer, sk *soakResult) {
	fmt.Fprintln(out)
	if sk.Problem != "" {
		fmt.Fprintf(out, "SOAK: %s\n", sk.Problem)
		return
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(out, "soak: memory (RSS; PostgreSQL the PSS of all its processes) averaged over %.0f s from %.0f s and over the last %.0f s to the chain's end at %.0f s\n",
		sk.WindowS, sk.BaselineAfterS, sk.WindowS, sk.EndAfterS)
	fmt.Fprintf(tw, "process\tMiB, first window\tMiB, last window\tchange\tpeak MiB\twithin %.0f %%\t\n", SoakTolerance*100)
	for _, p := range sk.Processes {
		within := strconv.FormatBool(p.Within)
		if p.Tool {
			within = "(test tool, not judged)"
		}
		name := p.Name
		if p.PSS {
			name += " (PSS of all its processes)"
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%+.1f %%\t%.1f\t%s\t\n", name, p.BaselineMiB, p.EndMiB, p.ChangePct, p.PeakMiB, within)
	}
	_ = tw.Flush()
	fmt.Fprintf(out, "SOAK: every one of the platform's %d processes within %.0f %% of its memory at the baseline: %t\n", sk.Judged, SoakTolerance*100, sk.Within)
}
