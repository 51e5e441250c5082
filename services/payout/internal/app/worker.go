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

// maxGroup caps the verdicts recorded in one transaction.
const maxGroup = 512

// Worker pays PENDING payments and resolves UNKNOWN ones. Claims are
// committed before any bank call; verdicts are recorded in groups, each
// group one transaction with its outcome events. What follows each bank
// answer is domain.Decide's.
type Worker struct {
	pool    *pgxpool.Pool
	gw      bank.Gateway
	sealer  *pii.Sealer
	log     *slog.Logger
	tracer  trace.Tracer
	metrics *Metrics
	notify  func()
	cfg     Config
	retry   domain.Retry
	now     func() time.Time

	inflight atomic.Int64
	wake     chan struct{}
	freed    chan struct{}
}

// NewWorker returns a pay worker over d; d.Notify is called after verdicts
// commit (to wake the outbox relay).
func NewWorker(d Deps) *Worker {
	d = d.withDefaults()
	return &Worker{
		pool: d.Pool, gw: d.Bank, sealer: d.Sealer, log: d.Log.With("worker", "pay"), tracer: d.Tracer,
		metrics: d.Metrics, notify: d.Notify, cfg: d.Config, now: d.Now,
		retry: domain.Retry{Base: d.Config.RetryBackoff, Max: d.Config.MaxBackoff},
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
	ctx  context.Context //nolint:containedctx // the payment's span, from claim to recorded verdict
	span trace.Span

	// decision is what follows the job's last step.
	decision domain.Decision
	// err says why the outcome is unknown, for operators.
	err error
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
		callers.Go(func() {
			for j := range jobs {
				w.execute(ctx, j)
				results <- j
			}
		})
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
		attribute.String("payout.id", c.PaymentID),
		attribute.String("application.id", c.ApplicationID),
		attribute.String("batch.id", c.BatchID),
		attribute.String("school.code", c.SchoolCode),
		attribute.String("program.code", c.ProgramCode),
		attribute.String("term", c.Term),
	))
	j := &job{Claimed: c, ctx: ctx, span: span}
	// The claim query made the same transition in the database; this copy
	// tells what to do next.
	step, err := j.Claim()
	if err != nil {
		j.err = err
		return j
	}
	j.step = step
	span.SetAttributes(attribute.Int("payout.attempts", int(j.Attempts)), attribute.Bool("payout.lookup_first", step == domain.StepLookup))
	return j
}

// execute makes the job's bank calls and leaves on it what domain.Decide
// says follows them.
func (w *Worker) execute(runCtx context.Context, j *job) {
	switch {
	case j.step == 0:
		// Not taken up (j.err says why): ask again later.
		j.decide(domain.Answer{Outcome: domain.OutcomeUnknown}, w.retry)
		return
	case runCtx.Err() != nil:
		// Stopping: not sent by this claim; the next one looks it up.
		j.err = errors.New("worker stopped before calling the bank")
		j.decide(domain.Answer{Outcome: domain.OutcomeNotSent}, w.retry)
		return
	}
	j.decide(w.ask(j), w.retry)
	if j.decision.Next == domain.NextPay {
		j.step = domain.StepPay
		j.decide(w.ask(j), w.retry)
	}
}

// decide sets the job's decision after its step came to a.
func (j *job) decide(a domain.Answer, r domain.Retry) {
	j.decision = domain.Decide(j.step, a, j.Attempts, r)
}

// ask makes the bank call of the job's step and returns its answer.
func (w *Worker) ask(j *job) domain.Answer {
	if j.Loan() {
		return w.askLoan(j)
	}
	if j.step == domain.StepLookup {
		res, err := w.call(j, "lookup", func(ctx context.Context) (bank.Result, error) { return w.gw.Lookup(ctx, j.PaymentID) })
		return w.answer(j, res, err)
	}
	// The payee is bound to its application: a card copied from another
	// application's row or event does not open.
	card, name, ok := w.openPayee(j)
	if !ok {
		return domain.Answer{Outcome: domain.OutcomePayeeUnreadable}
	}
	res, err := w.call(j, "pay", func(ctx context.Context) (bank.Result, error) {
		return w.gw.Pay(ctx, bank.Payment{Key: j.PaymentID, CardNumber: card, AccountName: name, AmountFen: j.AmountFen})
	})
	return w.answer(j, res, err)
}

// openPayee unseals the payment's card and account name. The payee is bound
// to its application: a card copied from another application's row or event
// does not open.
func (w *Worker) openPayee(j *job) (card, name string, ok bool) {
	card, err := w.sealer.Open(j.CardSealed, events.BankCardBinding(j.ApplicationID))
	if err == nil {
		name, err = w.sealer.Open(j.NameSealed, events.AccountNameBinding(j.ApplicationID))
	}
	if err != nil {
		w.log.ErrorContext(j.ctx, "payee cannot be unsealed; payment failed", "payment_id", j.PaymentID, "err", err)
		return "", "", false
	}
	return card, name, true
}

// askLoan makes the bank call of a loan's step: it asks the bank to open the
// loan contract under the payment ID, or looks the contract up; no card is
// credited. The borrower is the payee, whose card the loan is repaid from.
func (w *Worker) askLoan(j *job) domain.Answer {
	if j.step == domain.StepLookup {
		loan, err := w.callLoan(j, "lookup_loan", func(ctx context.Context) (bank.Loan, error) { return w.gw.LookupLoan(ctx, j.PaymentID) })
		return w.answerLoan(j, loan, err)
	}
	card, name, ok := w.openPayee(j)
	if !ok {
		return domain.Answer{Outcome: domain.OutcomePayeeUnreadable}
	}
	loan, err := w.callLoan(j, "open_loan", func(ctx context.Context) (bank.Loan, error) {
		return w.gw.OpenLoan(ctx, bank.LoanRequest{Key: j.PaymentID, BorrowerName: name, CardNumber: card, AmountFen: j.AmountFen})
	})
	return w.answerLoan(j, loan, err)
}

// call makes one bank call bounded by BankTimeout and counts it.
func (w *Worker) call(j *job, name string, fn func(ctx context.Context) (bank.Result, error)) (bank.Result, error) {
	ctx, cancel := context.WithTimeout(j.ctx, w.cfg.BankTimeout)
	defer cancel()
	res, err := fn(ctx)
	w.countCall(name, string(res.Status), err)
	return res, err
}

// callLoan is call for the loan calls.
func (w *Worker) callLoan(j *job, name string, fn func(ctx context.Context) (bank.Loan, error)) (bank.Loan, error) {
	ctx, cancel := context.WithTimeout(j.ctx, w.cfg.BankTimeout)
	defer cancel()
	loan, err := fn(ctx)
	w.countCall(name, "opened", err)
	return loan, err
}

// countCall counts a bank call: by the bank's answer when it gave one, else
// by how it failed.
func (w *Worker) countCall(name, answered string, err error) {
	outcome := "unknown"
	switch {
	case err == nil:
		outcome = answered
	case errors.Is(err, bank.ErrNotFound):
		outcome = "not_found"
	case errors.Is(err, bank.ErrInvalidPayment):
		outcome = "invalid"
	}
	w.metrics.bankCalls.WithLabelValues(name, outcome).Inc()
}

// failedCall reads a bank call's error as the answer, for credits and loans
// alike: not found, refused as malformed (what the request was), or unknown.
// failed is false when the call returned a record to read.
func (w *Worker) failedCall(j *job, err error, what string) (a domain.Answer, failed bool) {
	j.err = err
	switch {
	case err == nil:
		return domain.Answer{}, false
	case errors.Is(err, bank.ErrNotFound):
		return domain.Answer{Outcome: domain.OutcomeNotFound}, true
	case errors.Is(err, bank.ErrInvalidPayment):
		w.log.WarnContext(j.ctx, "bank refused the "+what+" as malformed", "payment_id", j.PaymentID, "err", err)
		return domain.Answer{Outcome: domain.OutcomeInvalid}, true
	}
	return domain.Answer{Outcome: domain.OutcomeUnknown}, true
}

// answerLoan reads a loan call's result as a domain answer, as answer does
// for credits.
func (w *Worker) answerLoan(j *job, loan bank.Loan, err error) domain.Answer {
	if a, failed := w.failedCall(j, err, "loan request"); failed {
		return a
	}
	if loan.AmountFen != j.AmountFen {
		j.err = fmt.Errorf("bank loan contract of %s is for %d fen, ordered %d", j.PaymentID, loan.AmountFen, j.AmountFen)
		w.log.ErrorContext(j.ctx, "bank loan contract does not match the payment; left unknown", "payment_id", j.PaymentID, "err", j.err)
		return domain.Answer{Outcome: domain.OutcomeUnknown}
	}
	return domain.Answer{Outcome: domain.OutcomeContracted, ContractNumber: loan.ContractNumber, LoanYears: loan.Years}
}

// answer reads a bank call's result as a domain answer. A record that does
// not fit the payment, a key conflict, or anything unexpected is an unknown
// outcome; j.err says why.
func (w *Worker) answer(j *job, res bank.Result, err error) domain.Answer {
	if a, failed := w.failedCall(j, err, "request"); failed {
		return a
	}
	switch {
	case res.AmountFen != j.AmountFen:
		j.err = fmt.Errorf("bank record of %s is for %d fen, ordered %d", j.PaymentID, res.AmountFen, j.AmountFen)
		w.log.ErrorContext(j.ctx, "bank record does not match the payment; left unknown", "payment_id", j.PaymentID, "err", j.err)
		return domain.Answer{Outcome: domain.OutcomeUnknown}
	case res.Status == bank.StatusCredited:
		return domain.Answer{Outcome: domain.OutcomeCredited, BankRef: res.BankRef}
	case res.Status == bank.StatusRejected:
		return domain.Answer{Outcome: domain.OutcomeRejected, BankRef: res.BankRef, Reason: res.Reason}
	}
	j.err = fmt.Errorf("bank status %q", res.Status)
	return domain.Answer{Outcome: domain.OutcomeUnknown}
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
		if j.settles() {
			if err := j.Settle(j.decision.Verdict); err != nil {
				j.err = err
				j.decide(domain.Answer{Outcome: domain.OutcomeUnknown}, w.retry)
			}
		}
		if j.settles() {
			v := j.decision.Verdict
			settle = append(settle, adapters.Settlement{PaymentID: j.PaymentID, Status: j.Status, BankRef: v.BankRef, Reason: v.Reason})
			continue
		}
		msg := ""
		if j.err != nil {
			msg = j.err.Error()
		}
		postpone = append(postpone, adapters.Postponement{PaymentID: j.PaymentID, ClaimID: j.ClaimID, Delay: j.decision.Wait, Error: msg})
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
			if err := adapters.InsertLoanContracts(ctx, tx, w.contracts(group, applied)); err != nil {
				return err
			}
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
		w.finish(j, err == nil && applied[j.PaymentID], err)
	}
	if err == nil && len(applied) > 0 {
		w.notify()
	}
}

// contracts are the loan contracts the bank opened for the loans of group
// this transaction settled.
func (w *Worker) contracts(group []*job, applied map[string]bool) []domain.LoanContract {
	now := w.now().UTC()
	var out []domain.LoanContract
	for _, j := range group {
		v := j.decision.Verdict
		if !j.settles() || !applied[j.PaymentID] || !v.Paid || v.ContractNumber == "" {
			continue
		}
		out = append(out, domain.LoanContract{ContractNumber: v.ContractNumber, PaymentID: j.PaymentID, ApplicationID: j.ApplicationID,
			BatchID: j.BatchID, SchoolCode: j.SchoolCode, ProgramCode: j.ProgramCode, Term: j.Term, AmountFen: j.AmountFen,
			Years: v.LoanYears, OpenedAt: now})
	}
	return out
}

// settles reports whether the job ends in a verdict.
func (j *job) settles() bool { return j.decision.Next == domain.NextSettle }

// appendOutcomes writes payment_succeeded or payment_failed for each
// payment this group settled, each carrying its own payment's trace context,
// all in one statement (a round trip per payment would cap the worker).
func (w *Worker) appendOutcomes(tx db.Tx, group []*job, applied map[string]bool) error {
	now := w.now().UTC()
	var out []outbox.Traced
	for _, j := range group {
		if !j.settles() || !applied[j.PaymentID] {
			continue
		}
		keys := events.Keys{ApplicationID: j.ApplicationID, BatchID: j.BatchID, SchoolCode: j.SchoolCode, ProgramCode: j.ProgramCode, Term: j.Term}
		var ev *eventsv1.Event
		var err error
		if v := j.decision.Verdict; v.Paid {
			ev, err = events.New(now, systemActor, keys, &eventsv1.PaymentSucceeded{PaymentId: j.PaymentID, AmountFen: j.AmountFen, BankRef: v.BankRef,
				LoanContractNumber: v.ContractNumber})
		} else {
			ev, err = events.New(now, systemActor, keys, &eventsv1.PaymentFailed{PaymentId: j.PaymentID, AmountFen: j.AmountFen, Reason: v.Reason})
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
		v := j.decision.Verdict
		switch {
		case !v.Paid:
			result = "failed"
			w.log.InfoContext(j.ctx, "payment returned by the bank", "payment_id", j.PaymentID, "application_id", j.ApplicationID, "reason", v.Reason)
		case v.ContractNumber != "":
			result = "contracted"
			j.span.SetAttributes(attribute.String("payout.loan_contract", v.ContractNumber))
		}
		if result == "contracted" {
			// A loan credits no card: it is counted in the loan book's metrics.
			w.metrics.loanContracts.Inc()
			w.metrics.loanContractedFen.Add(float64(j.AmountFen))
		} else {
			w.metrics.payouts.WithLabelValues(result).Inc()
			w.metrics.amountFen.WithLabelValues(result).Add(float64(j.AmountFen))
		}
		j.span.SetAttributes(attribute.String("payout.result", result))
	case !j.settles():
		j.span.SetAttributes(attribute.String("payout.result", "unknown"))
		if j.err != nil {
			j.span.RecordError(j.err)
			w.log.WarnContext(j.ctx, "payment outcome unknown; will ask the bank again", "payment_id", j.PaymentID,
				"attempts", j.Attempts, "retry_in", j.decision.Wait, "err", j.err)
		}
	}
}
