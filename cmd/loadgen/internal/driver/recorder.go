package driver

import (
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/status"
)

// Step is a point an application passes on its way to PAID.
type Step int

// The steps, in order. Times come from the client (a call returned) or from
// the server (an updated_at the API reports), as noted.
const (
	// StepSubmitted: the submit call returned (client).
	StepSubmitted Step = iota
	// StepSchoolDecided: the school bot's Decide call returned (client).
	StepSchoolDecided
	// StepNoticePassed: the item appeared in the bureau's queue, i.e. the
	// notice passed and bureau-review recorded it (server: the bureau
	// review's updated_at).
	StepNoticePassed
	// StepBureauDecided: the bureau bot's Decide call returned (client).
	StepBureauDecided
	// StepBatched: the finance bot saw the item in a batch (client; the
	// resolution is the finance bot's interval).
	StepBatched
	// StepConfirmed: the ConfirmBatch call of its batch returned (client).
	StepConfirmed
	// StepPaid: payout recorded the bank's credit (server: the payment's updated_at).
	StepPaid
	// StepShownPaid: the application service shows PAID (server: the
	// application's updated_at).
	StepShownPaid
	// NumSteps counts the steps.
	NumSteps
)

var stepNames = [NumSteps]string{"submit", "school decision", "notice passed", "bureau decision", "batched", "confirmed", "paid (payout)", "shown as PAID"}

// String names the step.
func (s Step) String() string {
	if s < 0 || s >= NumSteps {
		return "unknown"
	}
	return stepNames[s]
}

// Outcome is where an application ended.
type Outcome int

// Outcomes.
const (
	OutcomePending Outcome = iota
	OutcomeSchoolRejected
	OutcomeBureauRejected
	OutcomePaid
	OutcomePaymentFailed
)

type record struct {
	start    time.Time // the submit call started
	at       [NumSteps]time.Time
	outcome  Outcome
	finished time.Time // when the outcome was recorded
}

// Recorder keeps every application's step times, the submit latencies and
// the errors of each step. It is safe for concurrent use. Marks for an
// application the recorder has not seen submitted yet are kept: a bot can
// see an item before the submit call's response arrives.
type Recorder struct {
	mu         sync.Mutex
	apps       map[string]*record
	submitted  int
	submitLat  []time.Duration
	errs       [NumSteps]int64
	errKinds   map[string]int64
	firstStart time.Time
	lastSubmit time.Time
}

// NewRecorder returns a recorder sized for n applications.
func NewRecorder(n int) *Recorder {
	return &Recorder{apps: make(map[string]*record, n), errKinds: map[string]int64{}}
}

func (r *Recorder) get(id string) *record {
	rec := r.apps[id]
	if rec == nil {
		rec = &record{}
		r.apps[id] = rec
	}
	return rec
}

// Submitted records one submit call that started at start, returned at end
// and created ids.
func (r *Recorder) Submitted(ids []string, start, end time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.submitLat = append(r.submitLat, end.Sub(start))
	if r.firstStart.IsZero() || start.Before(r.firstStart) {
		r.firstStart = start
	}
	if end.After(r.lastSubmit) {
		r.lastSubmit = end
	}
	for _, id := range ids {
		rec := r.get(id)
		if rec.start.IsZero() {
			r.submitted++
		}
		rec.start = start
		rec.at[StepSubmitted] = end
	}
}

// Mark records that application id reached step at t; the first mark of a
// step wins.
func (r *Recorder) Mark(step Step, id string, t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.get(id)
	if rec.at[step].IsZero() {
		rec.at[step] = t
	}
}

// MarkAll records that every id reached step at t.
func (r *Recorder) MarkAll(step Step, ids []string, t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		rec := r.get(id)
		if rec.at[step].IsZero() {
			rec.at[step] = t
		}
	}
}

// Finish records where application id ended.
func (r *Recorder) Finish(id string, o Outcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.get(id)
	rec.outcome = o
	if rec.finished.IsZero() {
		rec.finished = time.Now()
	}
}

// FinalAt returns when the last submitted application reached its final
// state: a paid one when payout recorded the payment (server time), the
// others when their outcome was recorded (a rejection: right after the
// Decide call returned).
func (r *Recorder) FinalAt() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	var last time.Time
	for _, rec := range r.apps {
		if rec.start.IsZero() || rec.outcome == OutcomePending {
			continue
		}
		at := rec.finished
		if rec.outcome == OutcomePaid && !rec.at[StepPaid].IsZero() {
			at = rec.at[StepPaid]
		}
		if at.After(last) {
			last = at
		}
	}
	return last
}

// Error counts a failed call of step, by gRPC code.
func (r *Recorder) Error(step Step, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs[step]++
	r.errKinds[step.String()+": "+status.Code(err).String()]++
}

// Errors returns the error counts by step and gRPC code.
func (r *Recorder) Errors() map[string]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int64, len(r.errKinds))
	maps.Copy(out, r.errKinds)
	return out
}

// Progress is a snapshot of how far the submitted applications got.
type Progress struct {
	Submitted int
	// Reached counts submitted applications by the furthest step they reached.
	Reached  [NumSteps]int
	Outcomes map[Outcome]int
	// Terminal counts applications that were rejected, paid or failed.
	Terminal int
	Errors   int64
}

// Progress returns a snapshot. Only applications the recorder saw submitted count.
func (r *Recorder) Progress() Progress {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := Progress{Submitted: r.submitted, Outcomes: map[Outcome]int{}}
	for _, rec := range r.apps {
		if rec.start.IsZero() {
			continue
		}
		for s := range NumSteps {
			if !rec.at[s].IsZero() {
				p.Reached[s]++
			}
		}
		p.Outcomes[rec.outcome]++
		if rec.outcome != OutcomePending {
			p.Terminal++
		}
	}
	for _, e := range r.errs {
		p.Errors += e
	}
	return p
}

// Window returns when the first submit call started and the last returned.
func (r *Recorder) Window() (first, lastSubmit time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.firstStart, r.lastSubmit
}

// LastAt returns the latest time any application reached step.
func (r *Recorder) LastAt(step Step) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	var last time.Time
	for _, rec := range r.apps {
		if !rec.start.IsZero() && rec.at[step].After(last) {
			last = rec.at[step]
		}
	}
	return last
}

// Latencies are a step's figures, in milliseconds.
type Latencies struct {
	Name string `json:"step"`
	// Count is how many submitted applications reached the step.
	Count int `json:"count"`
	// Errors counts failed calls of the step.
	Errors int64 `json:"errors"`
	// PerSecond is Count over the time from the first submission to the
	// last application reaching the step.
	PerSecond float64 `json:"throughput_per_s"`
	// Samples is how many latencies the percentiles are over.
	Samples int     `json:"samples"`
	P50Ms   float64 `json:"p50_ms"`
	P95Ms   float64 `json:"p95_ms"`
	P99Ms   float64 `json:"p99_ms"`
	MaxMs   float64 `json:"max_ms"`
}

// previous is the step each step's latency is measured from.
var previous = [NumSteps]Step{StepSubmitted, StepSubmitted, StepSchoolDecided, StepNoticePassed, StepBureauDecided, StepBatched, StepConfirmed, StepPaid}

// Report holds every step's figures and the end-to-end ones.
type Report struct {
	// Steps: the submit row's latencies are per call (one call carries
	// -batch applications); the other rows' are per application, from the
	// previous step.
	Steps []Latencies `json:"steps"`
	// ToPaid is submit (call started) → paid at payout, per application.
	ToPaid Latencies `json:"end_to_end_paid"`
	// ToShownPaid is submit (call started) → shown as PAID by the
	// application service, per application.
	ToShownPaid Latencies `json:"end_to_end_shown_paid"`
}

// Report computes the figures.
func (r *Recorder) Report() Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	var rep Report
	for s := range NumSteps {
		var lats []time.Duration
		count := 0
		var last time.Time
		if s == StepSubmitted {
			lats = slices.Clone(r.submitLat)
		}
		for _, rec := range r.apps {
			if rec.start.IsZero() || rec.at[s].IsZero() {
				continue
			}
			count++
			if rec.at[s].After(last) {
				last = rec.at[s]
			}
			if s == StepSubmitted {
				continue
			}
			if from := rec.at[previous[s]]; !from.IsZero() {
				lats = append(lats, max(rec.at[s].Sub(from), 0))
			}
		}
		l := latencies(s.String(), count, lats, r.firstStart, last)
		l.Errors = r.errs[s]
		rep.Steps = append(rep.Steps, l)
	}
	rep.ToPaid = r.endToEnd("submit → paid (payout)", StepPaid)
	rep.ToShownPaid = r.endToEnd("submit → shown as PAID", StepShownPaid)
	return rep
}

func (r *Recorder) endToEnd(name string, to Step) Latencies {
	var lats []time.Duration
	var last time.Time
	for _, rec := range r.apps {
		if rec.start.IsZero() || rec.at[to].IsZero() {
			continue
		}
		lats = append(lats, max(rec.at[to].Sub(rec.start), 0))
		if rec.at[to].After(last) {
			last = rec.at[to]
		}
	}
	return latencies(name, len(lats), lats, r.firstStart, last)
}

func latencies(name string, count int, lats []time.Duration, first, last time.Time) Latencies {
	l := Latencies{Name: name, Count: count, Samples: len(lats)}
	if count > 0 && last.After(first) {
		l.PerSecond = round(float64(count)/last.Sub(first).Seconds(), 1)
	}
	if len(lats) == 0 {
		return l
	}
	slices.Sort(lats)
	l.P50Ms = ms(Percentile(lats, 0.50))
	l.P95Ms = ms(Percentile(lats, 0.95))
	l.P99Ms = ms(Percentile(lats, 0.99))
	l.MaxMs = ms(lats[len(lats)-1])
	return l
}

// Percentile returns the q-quantile (0 < q ≤ 1) of sorted by the
// nearest-rank method.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 2) }

func round(f float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(f*p) / p
}
