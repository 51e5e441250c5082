package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/edubureau/studentaid/cmd/loadgen/internal/driver"
	"github.com/edubureau/studentaid/pkg/natsx"
)

// measure is the third phase: it reads what the recorder, the backlog probe
// and the process samples saw during the scenario into the result.
func (l *load) measure(ctx context.Context, ch chain) *result {
	res := l.res
	res.Submit = ch.summary
	res.SingleBatch = ch.singleBatch
	res.Problems = ch.problems
	measureChain(res, l.rec, ch, l.c)
	res.Processes = processResults(l.sys.groups, ch.cpuBefore, ch.cpuAfter, ch.submitted.Accepted, ch.end.Sub(ch.submitted.Start))
	res.Soak = soakResults(l.sys.groups, ch, l.c.SoakBaseline, l.c.SoakWindow)
	measureBacklog(res, l.probe)
	if l.c.PgbenchTPS > 0 && res.EndToEndPerSecond > 0 {
		res.PgbenchTPS = l.c.PgbenchTPS
		res.PerThousandTPS = res.EndToEndPerSecond / l.c.PgbenchTPS * 1000
	}
	if l.countPool != nil {
		res.Stream = streamUse(ctx, l.countPool, l.sys.natsURL, l.sys.natsSeed, l.logf)
	}
	return res
}

// measureChain fills in the per-step report, the outcomes and the
// end-to-end figures from the recorder.
func measureChain(res *result, rec *driver.Recorder, ch chain, c config) {
	first, _ := rec.Window()
	res.Report = rec.Report()
	p := rec.Progress()
	res.Outcomes = map[string]int{
		"pending": p.Outcomes[driver.OutcomePending], "school_rejected": p.Outcomes[driver.OutcomeSchoolRejected],
		"bureau_rejected": p.Outcomes[driver.OutcomeBureauRejected], "paid": p.Outcomes[driver.OutcomePaid],
		"payment_failed": p.Outcomes[driver.OutcomePaymentFailed],
	}
	res.Errors = rec.Errors()
	if !ch.end.IsZero() && ch.end.After(first) {
		res.ChainSeconds = sec(ch.end.Sub(first))
	}
	final := p.Outcomes[driver.OutcomePaid] + p.Outcomes[driver.OutcomeSchoolRejected] + p.Outcomes[driver.OutcomeBureauRejected] + p.Outcomes[driver.OutcomePaymentFailed]
	if finalAt := rec.FinalAt(); !c.SubmitOnly && final > 0 && finalAt.After(first) {
		// Sustained end to end: applications that reached a final state (paid
		// at payout, returned by the bank, or rejected) per second, from the
		// first submission to the moment the last one got there.
		res.EndToEndPerSecond = float64(final) / finalAt.Sub(first).Seconds()
		res.EndToEndSeconds = sec(finalAt.Sub(first))
	}
	res.Shown = shownSummary{PaidAtPayout: p.Outcomes[driver.OutcomePaid], ShownPaid: p.Reached[driver.StepShownPaid], WaitedS: c.ShownWait.Seconds()}
	if last := rec.LastAt(driver.StepShownPaid); !last.IsZero() && last.After(first) {
		res.Shown.LastShownAfterS = sec(last.Sub(first))
	}
}

// measureBacklog fills in the outbox backlogs and consumer lags the probe saw
// and how long the backlogs took to drain.
func measureBacklog(res *result, probe *driver.BacklogProbe) {
	res.Backlog.Max = probe.Max()
	res.Backlog.Last = probe.Last()
	res.Backlog.MaxConsumerLag = probe.MaxLag()
	if d, ok := probe.Drained("after_submit"); ok {
		v := sec(d)
		res.Backlog.DrainAfterSubmitS = &v
	}
	if d, ok := probe.Drained("after_chain"); ok {
		v := sec(d)
		res.Backlog.DrainAfterChainS = &v
	}
}

// serviceSchemas are the services' PostgreSQL schemas (docs/architecture.md).
var serviceSchemas = map[string]string{
	"application": "application", "school-review": "school_review", "bureau-review": "bureau_review",
	"finance-confirmation": "finance_confirmation", "payout": "payout",
}

// streamUse compares the events the services published (outbox rows) with
// the messages the event stream holds: with frames, many events share one
// message, and JetStream's SyncAlways costs one fsync per message.
func streamUse(ctx context.Context, pool *pgxpool.Pool, natsURL, natsSeed string, logf func(string, ...any)) *streamResult {
	var r streamResult
	for _, schema := range serviceSchemas {
		var n int64
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+schema+".outbox").Scan(&n); err != nil {
			logf("warning: counting %s's events: %v", schema, err)
			return nil
		}
		r.Events += n
	}
	nc, js, err := natsx.Connect(natsURL, natsx.LoadgenIdentity, natsx.WithNKeySeed(natsSeed))
	if err != nil {
		logf("warning: %v", err)
		return nil
	}
	defer nc.Close()
	stream, err := js.Stream(ctx, natsx.EventStream)
	if err != nil {
		logf("warning: event stream: %v", err)
		return nil
	}
	info, err := stream.Info(ctx)
	if err != nil {
		logf("warning: event stream: %v", err)
		return nil
	}
	r.Messages, r.Bytes = info.State.Msgs, info.State.Bytes
	if r.Messages > 0 {
		r.EventsPerMessage = float64(r.Events) / float64(r.Messages)
	}
	return &r
}

// exactBacklog counts each service's unpublished outbox rows (the partial
// index outbox_unpublished makes this cheap).
func exactBacklog(pool *pgxpool.Pool) func(ctx context.Context) (map[string]float64, error) {
	return func(ctx context.Context) (map[string]float64, error) {
		out := map[string]float64{}
		for name, schema := range serviceSchemas {
			var n int64
			if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+schema+".outbox WHERE published_at IS NULL").Scan(&n); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			out[name] = float64(n)
		}
		return out, nil
	}
}

func sampleGroups(groups []driver.ProcessGroup) map[string]driver.GroupSample {
	out := map[string]driver.GroupSample{}
	for _, g := range groups {
		if s, err := g.Sample(); err == nil {
			out[g.Name] = s
		}
	}
	return out
}

// SoakTolerance is how far a process's resident memory may move between the
// soak's baseline and the end of the run.
const SoakTolerance = 0.10

// soakResults compares each process's memory averaged over the window
// that begins at the soak's baseline with its average over the window that
// ends with the chain; nil without a soak. Every process of the platform
// (each replica, each NATS node, PostgreSQL) is judged; the test tools are
// reported beside them.
func soakResults(groups []driver.ProcessGroup, ch chain, baseline, window time.Duration) *soakResult {
	if baseline <= 0 {
		return nil
	}
	out := &soakResult{BaselineAfterS: baseline.Seconds(), WindowS: window.Seconds()}
	from := ch.soakStart.Add(baseline)
	first := samplesIn(ch.soakSamples, from, from.Add(window))
	last := samplesIn(ch.soakSamples, ch.end.Add(-window+time.Nanosecond), ch.end.Add(time.Nanosecond)) // (end-window, end]
	if len(first) == 0 || len(last) == 0 || !ch.end.Add(-window).After(from.Add(window)) {
		out.Problem = "the chain ended before both windows fit: run longer (-n) or take the baseline sooner (-soak-baseline, -soak-window)"
		return out
	}
	out.EndAfterS = ch.end.Sub(ch.soakStart).Seconds()
	out.Samples = len(first) + len(last)
	out.Within = true
	for _, g := range groups {
		b, e := meanMemory(first, g), meanMemory(last, g)
		if b == 0 || e == 0 {
			continue
		}
		m := soakProcess{Name: g.Name, BaselineMiB: b / (1 << 20), EndMiB: e / (1 << 20), Tool: g.Tool, PSS: g.WithChildren,
			PeakMiB: peakMemory(ch.soakSamples, g) / (1 << 20)}
		m.ChangePct = (m.EndMiB - m.BaselineMiB) / m.BaselineMiB * 100
		m.Within = m.ChangePct <= SoakTolerance*100
		if !g.Tool {
			out.Within = out.Within && m.Within
			out.Judged++
		}
		out.Processes = append(out.Processes, m)
	}
	return out
}

// samplesIn are the samples taken in [from, to).
func samplesIn(ss []timedSample, from, to time.Time) []timedSample {
	var out []timedSample
	for _, s := range ss {
		if !s.at.Before(from) && s.at.Before(to) {
			out = append(out, s)
		}
	}
	return out
}

// meanMemory is g's memory (driver.GroupSample.Memory) averaged over the
// samples that have it; 0 when none has.
func meanMemory(ss []timedSample, g driver.ProcessGroup) float64 {
	var sum float64
	n := 0
	for _, s := range ss {
		if v, ok := s.s[g.Name]; ok && v.Memory(g.WithChildren) > 0 {
			sum += float64(v.Memory(g.WithChildren))
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// peakMemory is g's largest sampled memory.
func peakMemory(ss []timedSample, g driver.ProcessGroup) float64 {
	var peak int64
	for _, s := range ss {
		if v, ok := s.s[g.Name]; ok {
			peak = max(peak, v.Memory(g.WithChildren))
		}
	}
	return float64(peak)
}

func processResults(groups []driver.ProcessGroup, before, after map[string]driver.GroupSample, apps int, wall time.Duration) []processResult {
	var out []processResult
	for _, g := range groups {
		b, ok1 := before[g.Name]
		a, ok2 := after[g.Name]
		if !ok1 || !ok2 {
			continue
		}
		r := processResult{Name: g.Name, Pid: g.Pid, Processes: a.Procs,
			PeakRSSMiB: float64(a.PeakRSS) / (1 << 20), CPUSeconds: (a.CPU - b.CPU).Seconds()}
		if apps > 0 {
			r.CPUMsPerApp = r.CPUSeconds * 1000 / float64(apps)
		}
		if wall > 0 {
			r.AvgCores = r.CPUSeconds / wall.Seconds()
		}
		out = append(out, r)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CPUSeconds > out[j].CPUSeconds })
	return out
}

func readMachine() machine {
	m := machine{CPUs: numCPU()}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if strings.HasPrefix(line, "MemTotal:") {
				f := strings.Fields(line)
				if len(f) >= 2 {
					kb, _ := strconv.ParseFloat(f[1], 64)
					m.MemGiB = kb / (1 << 20)
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvg = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if strings.HasPrefix(line, "model name") {
				_, v, _ := strings.Cut(line, ":")
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}
