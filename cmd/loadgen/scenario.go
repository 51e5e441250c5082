package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/edubureau/studentaid/cmd/loadgen/internal/driver"
	financev1 "github.com/edubureau/studentaid/proto/gen/aid/finance/v1"
)

// chain is what the scenario saw: the submissions, when the chain ended, the
// processes' CPU samples around it and the problems it met.
type chain struct {
	submitted           driver.SubmitResult
	summary             submitSummary
	end                 time.Time
	cpuBefore, cpuAfter map[string]driver.GroupSample
	// soakSamples are the processes' memory samples of a soak, taken every
	// few seconds from the first submission (none without -soak-baseline);
	// soakStart is when they began.
	soakSamples []timedSample
	soakStart   time.Time
	singleBatch *singleBatchResult
	problems    []string
}

// runScenario is the second phase: the bots and the backlog probe start, the
// officers submit, and the run waits until the chain is done, the paid
// applications are shown as paid and the outbox backlogs have drained.
func (l *load) runScenario(ctx context.Context) (chain, error) {
	b := l.startBots(ctx)
	defer b.cancel()
	probeCtx, stopProbe := context.WithCancel(ctx)
	defer stopProbe()
	var probeDone sync.WaitGroup
	probeDone.Go(func() { l.probe.Run(probeCtx) })

	ch := chain{cpuBefore: sampleGroups(l.sys.groups)}
	progressCtx, stopProgress := context.WithCancel(ctx)
	defer stopProgress()
	go reportProgress(progressCtx, l.rec, b.watcher, l.logf)
	soak := l.soakSampler(ctx)
	var err error
	if ch.submitted, ch.summary, err = l.submit(ctx); err != nil {
		return ch, err
	}
	ch.end, ch.singleBatch, ch.problems = l.waitForChain(ctx, ch.submitted, b)
	stopProgress()
	ch.soakSamples, ch.soakStart = soak()
	ch.cpuAfter = sampleGroups(l.sys.groups)
	l.probe.Mark("after_chain", time.Now())
	b.stop()

	if !l.c.SubmitOnly {
		// The application service learns of payments last; give it a moment.
		collectShown(ctx, l.who.auditor, l.c.Term, l.rec, l.c.ShownWait, l.logf)
	}
	l.waitDrained(ctx)
	stopProbe()
	probeDone.Wait()
	return ch, nil
}

// timedSample is every process's sample at one instant.
type timedSample struct {
	at time.Time
	s  map[string]driver.GroupSample
}

// soakSampler samples the processes every soakInterval from now (the first
// submission follows at once) until the function it returns is called,
// which gives the samples and when they began.
func (l *load) soakSampler(ctx context.Context) func() ([]timedSample, time.Time) {
	start := time.Now()
	if l.c.SoakBaseline <= 0 {
		return func() ([]timedSample, time.Time) { return nil, start }
	}
	var (
		mu  sync.Mutex
		out []timedSample
	)
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(soakInterval(l.c.SoakWindow))
		defer t.Stop()
		logged := false
		for {
			select {
			case <-sctx.Done():
				return
			case at := <-t.C:
				s := timedSample{at: at, s: sampleGroups(l.sys.groups)}
				mu.Lock()
				out = append(out, s)
				mu.Unlock()
				if !logged && at.Sub(start) >= l.c.SoakBaseline {
					l.logf("soak: baseline window begins (%s long)", l.c.SoakWindow)
					logged = true
				}
			}
		}
	}()
	return func() ([]timedSample, time.Time) {
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		return out, start
	}
}

// soakInterval is how often a soak samples: thirty samples per window.
func soakInterval(window time.Duration) time.Duration {
	return max(window/30, 100*time.Millisecond)
}

// bots are the reviewers' and the finance officer's stand-ins.
type bots struct {
	watcher *driver.Watcher
	finance *driver.FinanceBot
	cancel  context.CancelFunc
	running sync.WaitGroup
}

// startBots starts the school and bureau bots, the batch watcher and, unless
// the scenario confirms a single batch itself, the finance bot; with
// -submit-only none of them runs. They run until the chain is done.
func (l *load) startBots(ctx context.Context) *bots {
	c, who := l.c, l.who
	botCtx, cancel := context.WithCancel(ctx)
	b := &bots{cancel: cancel}
	b.watcher = &driver.Watcher{Finance: who.finance, Auditor: who.auditor, Poll: c.WatchPoll, Recorder: l.rec}
	b.finance = &driver.FinanceBot{Officer: who.finance, Closer: who.closer, Term: c.Term, Every: c.FinanceEvery, Recorder: l.rec, Watcher: b.watcher}
	if c.SubmitOnly {
		return b
	}
	for i, r := range who.school {
		sb := &driver.SchoolBot{Reviewer: r, Term: c.Term, RejectRate: c.RejectSchool, Poll: c.Poll, Recorder: l.rec, Seed: c.Seed + uint64(i)}
		b.running.Go(func() { sb.Run(botCtx) })
	}
	bb := &driver.BureauBot{Reviewer: who.bureau, Term: c.Term, RejectRate: c.RejectBureau, Poll: c.Poll, Recorder: l.rec, Seed: c.Seed}
	b.running.Go(func() { bb.Run(botCtx) })
	b.running.Go(func() { b.watcher.Run(botCtx) })
	if !c.SingleBatch {
		b.running.Go(func() { b.finance.Run(botCtx) })
	}
	return b
}

// stop stops the bots and waits until they have.
func (b *bots) stop() {
	b.cancel()
	b.running.Wait()
}

// submit has the school officers submit -n applications and logs how fast
// they were accepted.
func (l *load) submit(ctx context.Context) (driver.SubmitResult, submitSummary, error) {
	c := l.c
	mode := "gRPC"
	if c.REST {
		mode = "REST/JSON"
	}
	l.logf("submitting %d applications over %s from %d schools (batch %d, concurrency %d, rate %s)…",
		c.N, mode, c.Schools, c.Batch, c.Concurrency, rateString(c.Rate))
	sub := &driver.Submitter{
		Config:    driver.SubmitConfig{N: c.N, Rate: c.Rate, Concurrency: c.Concurrency, Batch: c.Batch, REST: c.REST},
		Generator: l.gen, Officers: l.who.officers, Recorder: l.rec,
	}
	sr, err := sub.Run(ctx)
	if err != nil {
		return sr, submitSummary{}, err
	}
	l.probe.Mark("after_submit", sr.End)
	sum := submitSummary{Accepted: sr.Accepted, Failed: sr.Failed, Calls: sr.Calls,
		Seconds: sec(sr.End.Sub(sr.Start)), MaxLagMs: float64(sr.MaxLag.Milliseconds())}
	if d := sr.End.Sub(sr.Start); d > 0 {
		sum.PerSecond = float64(sr.Accepted) / d.Seconds()
	}
	l.logf("submitted %d (%d failed) in %s: %.1f applications/s", sr.Accepted, sr.Failed, sr.End.Sub(sr.Start).Round(time.Millisecond), sum.PerSecond)
	return sr, sum, nil
}

// waitForChain waits, within -timeout, until the chain is done: at once with
// -submit-only, when the single batch is paid with -single-batch, and
// otherwise when every accepted application reached a final state. It
// returns when the chain ended and the problems it met.
func (l *load) waitForChain(ctx context.Context, sr driver.SubmitResult, b *bots) (time.Time, *singleBatchResult, []string) {
	deadline := time.Now().Add(l.c.Timeout)
	switch {
	case l.c.SubmitOnly:
		return sr.End, nil, nil
	case l.c.SingleBatch:
		sb, err := singleBatch(ctx, l.c, sr.Accepted, l.rec, b.finance, b.watcher, deadline, l.logf)
		if err != nil {
			l.logf("single batch: %v", err)
			return time.Now(), sb, []string{err.Error()}
		}
		return time.Now(), sb, nil
	default:
		end, err := waitChain(ctx, l.rec, sr.Accepted, deadline)
		if err != nil {
			l.logf("%v", err)
			return end, nil, []string{err.Error()}
		}
		return end, nil, nil
	}
}

// waitDrained waits, for at most 30 seconds, until the outbox backlogs have
// drained after the submissions and after the chain.
func (l *load) waitDrained(ctx context.Context) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		_, ok1 := l.probe.Drained("after_submit")
		_, ok2 := l.probe.Drained("after_chain")
		if ok1 && ok2 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// reportProgress logs how far the applications got every 5 seconds.
func reportProgress(ctx context.Context, rec *driver.Recorder, w *driver.Watcher, logf func(string, ...any)) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p := rec.Progress()
			var parts []string
			for s := range driver.StepShownPaid {
				parts = append(parts, fmt.Sprintf("%s %d", s, p.Reached[s]))
			}
			logf("progress: %s; final %d; open batches watched %d; errors %d", strings.Join(parts, ", "), p.Terminal, w.Open(), p.Errors)
		}
	}
}

// waitChain waits until every accepted application reached a final state.
func waitChain(ctx context.Context, rec *driver.Recorder, accepted int, deadline time.Time) (time.Time, error) {
	for {
		p := rec.Progress()
		if p.Terminal >= accepted {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Now(), fmt.Errorf("timed out: %d of %d applications reached a final state", p.Terminal, accepted)
		}
		select {
		case <-ctx.Done():
			return time.Now(), ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// collectShown lists the PAID applications until the application service
// shows every paid one, for at most wait.
func collectShown(ctx context.Context, a *driver.Auditor, term string, rec *driver.Recorder, wait time.Duration, logf func(string, ...any)) {
	deadline := time.Now().Add(wait)
	for {
		n, err := driver.CollectShownPaid(ctx, a, term, rec)
		p := rec.Progress()
		paid := p.Outcomes[driver.OutcomePaid]
		if err != nil {
			logf("listing PAID applications: %v", err)
		}
		if (err == nil && p.Reached[driver.StepShownPaid] >= paid) || time.Now().After(deadline) || ctx.Err() != nil {
			logf("application service shows %d applications of %s as PAID (%d paid at payout)", n, term, paid)
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// singleBatch waits until every accepted application sits in an open batch,
// confirms the batch(es) and times confirm → all paid.
func singleBatch(ctx context.Context, c config, accepted int, rec *driver.Recorder, fin *driver.FinanceBot,
	w *driver.Watcher, deadline time.Time, logf func(string, ...any)) (*singleBatchResult, error) {
	out := &singleBatchResult{Items: accepted, Program: c.Program}
	logf("single batch: waiting for the bots to approve all %d applications…", accepted)
	for {
		p := rec.Progress()
		if p.Reached[driver.StepBureauDecided] >= accepted {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return out, fmt.Errorf("only %d of %d applications were approved by the bureau before the deadline", p.Reached[driver.StepBureauDecided], accepted)
		}
		time.Sleep(200 * time.Millisecond)
	}
	approved := time.Now()
	logf("single batch: all approved; waiting until they sit in open batches…")
	var batches []*financev1.Batch
	for {
		var err error
		batches, err = fin.Unconfirmed(ctx, c.Program)
		if err != nil {
			rec.Error(driver.StepBatched, err)
		}
		var n int64
		for _, b := range batches {
			n += b.GetControlCount()
		}
		if n >= int64(accepted) {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return out, fmt.Errorf("only %d of %d items reached a batch before the deadline", n, accepted)
		}
		time.Sleep(200 * time.Millisecond)
	}
	out.AllBatchedAfterApprovalS = sec(time.Since(approved))
	out.Batches = len(batches)
	if len(batches) > 1 {
		logf("single batch: the items sit in %d batches, not one; confirming all of them", len(batches))
	}
	type prepared struct {
		batch *financev1.Batch
		ids   []string
	}
	var ready []prepared
	for _, b := range batches {
		got, ids, err := fin.Prepare(ctx, b)
		if err != nil {
			return out, err
		}
		ready = append(ready, prepared{got, ids})
		out.ControlSumFen += got.GetControlSumFen()
	}
	logf("single batch: confirming %d items…", accepted)
	t0 := time.Now()
	for _, p := range ready {
		if _, err := fin.Confirm(ctx, p.batch, p.ids); err != nil {
			return out, err
		}
	}
	out.ConfirmCallMs = float64(time.Since(t0).Microseconds()) / 1000
	var observed, lastPaid time.Time
	for _, p := range ready {
		for {
			d, ok := w.Done(p.batch.GetBatchId())
			if ok {
				observed = maxTime(observed, d.ObservedAt)
				lastPaid = maxTime(lastPaid, d.LastPaidAt)
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return out, fmt.Errorf("batch %s not paid before the deadline", p.batch.GetBatchId())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	out.ConfirmToAllPaidS = sec(lastPaid.Sub(t0))
	out.ConfirmToObservedS = sec(observed.Sub(t0))
	logf("single batch: confirm → all %d paid at payout in %.2fs (finance showed all paid after %.2fs)", accepted, out.ConfirmToAllPaidS, out.ConfirmToObservedS)
	return out, nil
}
