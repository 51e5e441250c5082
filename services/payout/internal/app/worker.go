package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/outbox"
	"github.com/edubureau/studentaid/pkg/pii"
	"github.com/edubureau/studentaid/pkg/telemetry"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	"github.com/edubureau/studentaid/services/payout/internal/adapters"
	"github.com/edubureau/studentaid/services/payout/internal/bank"
	"github.com/edubureau/studentaid/services/payout/internal/domain"
)

// WorkerConfig tunes the pay worker.
type WorkerConfig struct {
	// Concurrency is the number of bank calls in flight at once.
	Concurrency int
	// BankTimeout bounds each bank call.
	BankTimeout time.Duration
	// RetryBackoff is the first wait after an unknown outcome; it doubles
	// per attempt up to MaxBackoff.
	RetryBackoff time.Duration
	MaxBackoff   time.Duration
	// ClaimLease is how long a claimed payment stays out of other workers'
	// reach; it must exceed the time from claim to recorded verdict, and it
	// is how soon a payment taken up by a crashed worker is looked up.
	ClaimLease time.Duration
	// PollInterval is how often an idle worker looks for due payments it
	// was not told about (retries after a backoff, other replicas' orders).
	PollInterval time.Duration
}

// maxGroup caps the verdicts recorded in one transaction.
const maxGroup = 512

// Worker pays PENDING payments and resolves UNKNOWN ones. Claims are
// committed before any bank call; verdicts are recorded in groups, each
// group one transaction with its outcome events.
type Worker struct {
	pool    *pgxpool.Pool
	gw      bank.Gateway
	sealer  *pii.Sealer
	log     *slog.Logger
	tracer  trace.Tracer
	metrics *Metrics
	notify  func()
	cfg     WorkerConfig
	now     func() time.Time

	inflight atomic.Int64
	wake     chan struct{}
	freed    chan struct{}
}

// NewWorker returns a pay worker; notify is called after verdicts commit
// (to wake the outbox relay).
func NewWorker(pool *pgxpool.Pool, gw bank.Gateway, sealer *pii.Sealer, log *slog.Logger, tracer trace.Tracer,
	metrics *Metrics, notify func(), cfg WorkerConfig) *Worker {
	return &Worker{
		pool: pool, gw: gw, sealer: sealer, log: log, tracer: tracer, metrics: metrics, notify: notify, cfg: cfg,
		now:   func() time.Time { return time.Now().UTC() },
		wake:  make(chan struct{}, 1),
		freed: make(chan struct{}, 1),
	}
}

// Wake tells the worker that new payments may be due. It never blocks.
func (w *Worker) Wake() { signal(w.wake) }

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// job is one claimed payment on its way through a bank call to a verdict.
type job struct {
	adapters.Claimed
	step domain.Step
	ctx  context.Context
	span trace.Span

	// verdict is the bank's final answer; nil when the outcome is unknown.
	verdict *domain.Verdict
	// why the outcome is unknown, and when to ask again.
	err   error
	delay time.Duration
}

// Run claims and pays until ctx is done, then lets bank calls in flight
// finish (each is bounded by BankTimeout) and records their verdicts.
// Claimed payments not yet sent are put back in the queue.
func (w *Worker) Run(ctx context.Context) error {
	maxInflight := int64(w.cfg.Concurrency * 4)
	claimBatch := int64(w.cfg.Concurrency * 2)
	jobs := make(chan *job, claimBatch)
	results := make(chan *job, maxInflight)
	var callers sync.WaitGroup
	for range w.cfg.Concurrency {
		callers.Add(1)
		go func() {
			defer callers.Done()
			for j := range jobs {
				w.execute(ctx, j)
				results <- j
			}
		}()
	}
	recorded := make(chan struct{})
	go func() {
		defer close(recorded)
		w.recordLoop(results)
	}()
	defer func() {
		close(jobs)
		callers.Wait()
		close(results)
		<-recorded
	}()

	poll := time.NewTicker(w.cfg.PollInterval)
	defer poll.Stop()
	for ctx.Err() == nil {
		room := min(maxInflight-w.inflight.Load(), claimBatch)
		// Claim in reasonable groups, unless nothing at all is in flight.
		if room > 0 && (room >= claimBatch/4 || w.inflight.Load() == 0) {
			claimed, err := w.claim(ctx, int(room))
			if err != nil {
				w.log.ErrorContext(ctx, "claim payments failed", "err", err)
			}
			for _, c := range claimed {
				w.inflight.Add(1)
				jobs <- w.newJob(c)
			}
			if err == nil && int64(len(claimed)) == room {
				continue // probably more due
			}
		}
		select {
		case <-ctx.Done():
		case <-w.wake:
		case <-w.freed:
		case <-poll.C:
		}
	}
	return nil
}

func (w *Worker) claim(ctx context.Context, n int) ([]adapters.Claimed, error) {
	// A claim that commits must be seen through, so it outlives ctx.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return adapters.Claim(cctx, w.pool, n, w.cfg.ClaimLease)
}

// newJob starts the payment's span as a child of the payment_ordered event's
// consumer span, so the bank call and the outcome event join that trace.
func (w *Worker) newJob(c adapters.Claimed) *job {
	parent := telemetry.WithRemoteParent(context.Background(), c.TraceParent, c.TraceState)
	ctx, span := w.tracer.Start(parent, "payout pay", trace.WithAttributes(
		attribute.String("payout.id", c.ID),
		attribute.String("application.id", c.ApplicationID),
		attribute.String("batch.id", c.BatchID),
		attribute.String("school.code", c.SchoolCode),
		attribute.String("program.code", c.ProgramCode),
		attribute.String("term", c.Term),
	))
	j := &job{Claimed: c, ctx: ctx, span: span}
	// The claim query made the same transition in the database; this copy
	// tells what to do next.
	step, err := j.Payment.Claim()
	if err != nil {
		j.err = err
		return j
	}
	j.step = step
	span.SetAttributes(attribute.Int("payout.attempts", int(j.Attempts)), attribute.Bool("payout.lookup_first", step == domain.StepLookup))
	return j
}

// execute makes the job's bank calls and leaves the verdict (or why there is
// none) on it.
func (w *Worker) execute(runCtx context.Context, j *job) {
	defer func() {
		if j.verdict == nil {
			j.delay = domain.Backoff(j.Attempts, w.cfg.RetryBackoff, w.cfg.MaxBackoff)
		}
	}()
	if j.step == 0 {
		return
	}
	if runCtx.Err() != nil {
		// Stopping: not sent by this claim; the next one looks it up.
		j.err = errors.New("worker stopped before calling the bank")
		j.delay = 0
		return
	}
	if j.step == domain.StepLookup {
		res, err := w.call(j, "lookup", func(ctx context.Context) (bank.Result, error) { return w.gw.Lookup(ctx, j.ID) })
		switch {
		case err == nil:
			w.takeResult(j, res)
			return
		case errors.Is(err, bank.ErrNotFound):
			// The bank never executed it: pay again under the same key.
		default:
			j.err = err
			return
		}
	}
	card, err := w.sealer.Open(j.CardSealed)
	var name string
	if err == nil {
		name, err = w.sealer.Open(j.NameSealed)
	}
	if err != nil {
		// Nothing was executed under this key (never sent, or the bank said so).
		w.log.ErrorContext(j.ctx, "payee cannot be unsealed; payment failed", "payment_id", j.ID, "err", err)
		j.verdict = &domain.Verdict{Reason: domain.ReasonPayeeUnreadable}
		return
	}
	res, err := w.call(j, "pay", func(ctx context.Context) (bank.Result, error) {
		return w.gw.Pay(ctx, bank.Payment{Key: j.ID, CardNumber: card, AccountName: name, AmountFen: j.AmountFen})
	})
	switch {
	case err == nil:
		w.takeResult(j, res)
	case errors.Is(err, bank.ErrInvalidPayment):
		j.verdict = &domain.Verdict{Reason: domain.ReasonInvalidPayment}
		w.log.WarnContext(j.ctx, "bank refused the payment as malformed", "payment_id", j.ID, "err", err)
	default:
		// Unknown outcome, key conflict, or anything else: ask the bank next time.
		j.err = err
	}
}

// call makes one bank call bounded by BankTimeout and counts it.
func (w *Worker) call(j *job, name string, fn func(ctx context.Context) (bank.Result, error)) (bank.Result, error) {
	ctx, cancel := context.WithTimeout(j.ctx, w.cfg.BankTimeout)
	defer cancel()
	res, err := fn(ctx)
	outcome := "unknown"
	switch {
	case err == nil:
		outcome = string(res.Status)
	case errors.Is(err, bank.ErrNotFound):
		outcome = "not_found"
	case errors.Is(err, bank.ErrInvalidPayment):
		outcome = "invalid"
	}
	w.metrics.bankCalls.WithLabelValues(name, outcome).Inc()
	return res, err
}

// takeResult turns the bank's record into a verdict, unless it does not fit the payment.
func (w *Worker) takeResult(j *job, res bank.Result) {
	if res.AmountFen != j.AmountFen {
		j.err = fmt.Errorf("bank record of %s is for %d fen, ordered %d", j.ID, res.AmountFen, j.AmountFen)
		w.log.ErrorContext(j.ctx, "bank record does not match the payment; left unknown", "payment_id", j.ID, "err", j.err)
		return
	}
	switch res.Status {
	case bank.StatusCredited:
		j.verdict = &domain.Verdict{Paid: true, BankRef: res.BankRef}
	case bank.StatusRejected:
		j.verdict = &domain.Verdict{BankRef: res.BankRef, Reason: res.Reason}
	default:
		j.err = fmt.Errorf("bank status %q", res.Status)
	}
}

// recordLoop records verdicts in groups: whatever has arrived while the
// previous group committed goes into the next transaction.
func (w *Worker) recordLoop(results <-chan *job) {
	for j := range results {
		group := []*job{j}
	drain:
		for len(group) < maxGroup {
			select {
			case j, ok := <-results:
				if !ok {
					break drain
				}
				group = append(group, j)
			default:
				break drain
			}
		}
		w.record(group)
		w.inflight.Add(-int64(len(group)))
		signal(w.freed)
	}
}

// record writes a group's verdicts and outcome events, and the next attempt
// time of payments still unknown, in one transaction. If it cannot commit,
// the payments stay UNKNOWN under their lease and are looked up later.
func (w *Worker) record(group []*job) {
	ctx := context.Background()
	var settle []adapters.Settlement
	var postpone []adapters.Postponement
	for _, j := range group {
		if j.verdict != nil {
			if err := j.Payment.Settle(*j.verdict); err != nil {
				j.verdict, j.err = nil, err
			}
		}
		if j.verdict != nil {
			settle = append(settle, adapters.Settlement{PaymentID: j.ID, Status: statusOf(*j.verdict), BankRef: j.verdict.BankRef, Reason: j.verdict.Reason})
			continue
		}
		msg := ""
		if j.err != nil {
			msg = j.err.Error()
		}
		postpone = append(postpone, adapters.Postponement{PaymentID: j.ID, ClaimID: j.ClaimID, Delay: j.delay, Error: msg})
	}
	var applied map[string]bool
	var err error
	for attempt := range 3 {
		err = db.InTx(ctx, w.pool, func(tx pgx.Tx) error {
			done, err := adapters.Settle(ctx, tx, settle)
			if err != nil {
				return err
			}
			applied = done
			if err := w.appendOutcomes(tx, group, applied); err != nil {
				return err
			}
			return adapters.Postpone(ctx, tx, postpone)
		})
		if err == nil || attempt == 2 {
			break
		}
		time.Sleep(time.Duration(attempt+1) * 100 * time.Millisecond)
	}
	if err != nil {
		w.log.Error("recording bank verdicts failed; the payments will be looked up after their lease", "payments", len(group), "err", err)
	}
	for _, j := range group {
		w.finish(j, err == nil && applied[j.ID], err)
	}
	if err == nil && len(applied) > 0 {
		w.notify()
	}
}

func statusOf(v domain.Verdict) domain.Status {
	if v.Paid {
		return domain.Paid
	}
	return domain.Failed
}

// appendOutcomes writes payment_succeeded or payment_failed for each
// payment this group settled, each carrying its own payment's trace context,
// all in one statement (a round trip per payment would cap the worker).
func (w *Worker) appendOutcomes(tx pgx.Tx, group []*job, applied map[string]bool) error {
	now := w.now()
	var out []outbox.Traced
	for _, j := range group {
		if j.verdict == nil || !applied[j.ID] {
			continue
		}
		keys := events.Keys{ApplicationID: j.ApplicationID, BatchID: j.BatchID, SchoolCode: j.SchoolCode, ProgramCode: j.ProgramCode, Term: j.Term}
		var ev *eventsv1.Event
		var err error
		if j.verdict.Paid {
			ev, err = events.New(now, systemActor, keys, &eventsv1.PaymentSucceeded{PaymentId: j.ID, AmountFen: j.AmountFen, BankRef: j.verdict.BankRef})
		} else {
			ev, err = events.New(now, systemActor, keys, &eventsv1.PaymentFailed{PaymentId: j.ID, AmountFen: j.AmountFen, Reason: j.verdict.Reason})
		}
		if err != nil {
			return err
		}
		out = append(out, outbox.Traced{Ctx: j.ctx, Event: ev})
	}
	return outbox.AppendTraced(context.Background(), tx, out...)
}

// finish counts and logs a job's end and ends its span.
func (w *Worker) finish(j *job, settled bool, recordErr error) {
	defer j.span.End()
	switch {
	case recordErr != nil:
		j.span.RecordError(recordErr)
		j.span.SetStatus(codes.Error, "verdict not recorded")
	case settled:
		result := "paid"
		if !j.verdict.Paid {
			result = "failed"
			w.log.InfoContext(j.ctx, "payment returned by the bank", "payment_id", j.ID, "application_id", j.ApplicationID, "reason", j.verdict.Reason)
		}
		w.metrics.payouts.WithLabelValues(result).Inc()
		w.metrics.amountFen.WithLabelValues(result).Add(float64(j.AmountFen))
		j.span.SetAttributes(attribute.String("payout.result", result))
	case j.verdict == nil:
		j.span.SetAttributes(attribute.String("payout.result", "unknown"))
		if j.err != nil {
			j.span.RecordError(j.err)
			w.log.WarnContext(j.ctx, "payment outcome unknown; will ask the bank again", "payment_id", j.ID,
				"attempts", j.Attempts, "retry_in", j.delay, "err", j.err)
		}
	}
}
