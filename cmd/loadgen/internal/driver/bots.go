package driver

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/edubureau/studentaid/pkg/catalog"
	"github.com/edubureau/studentaid/pkg/wait"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
	bureaureviewv1 "github.com/edubureau/studentaid/proto/gen/aid/bureaureview/v1"
	commonv1 "github.com/edubureau/studentaid/proto/gen/aid/common/v1"
	financev1 "github.com/edubureau/studentaid/proto/gen/aid/finance/v1"
	payoutv1 "github.com/edubureau/studentaid/proto/gen/aid/payout/v1"
	schoolreviewv1 "github.com/edubureau/studentaid/proto/gen/aid/schoolreview/v1"
)

// PageSize is the page size the bots and the watcher list with (the APIs' maximum).
const PageSize = 500

// Reasons a school committee gives when it rejects.
var schoolReasons = []string{
	"家庭经济状况未达到困难认定标准",
	"申请材料不全，缺少家庭经济困难情况说明",
	"经入户走访核实，家庭收入高于认定标准",
	"本学期已享受同类资助",
}

// Reasons the bureau gives when it rejects.
var bureauReasons = []string{
	"与建档立卡数据比对不符",
	"学籍信息核验未通过",
	"与民政部门低保数据比对不符",
}

// hardship levels, with the share a committee typically assigns.
var levels = []struct {
	level  catalog.HardshipLevel
	weight int
}{{catalog.LevelEspeciallyDifficult, 20}, {catalog.LevelDifficult, 50}, {catalog.LevelGenerallyDifficult, 30}}

func pickLevel(rng *rand.Rand) string {
	n := rng.IntN(100)
	for _, l := range levels {
		if n < l.weight {
			return string(l.level)
		}
		n -= l.weight
	}
	return string(catalog.LevelDifficult)
}

// decideUntilDone runs round after round until ctx is done, waiting poll
// whenever a round found nothing to decide or less than a full page.
func decideUntilDone(ctx context.Context, poll time.Duration, round func() (decided int, full bool)) {
	for ctx.Err() == nil {
		n, full := round()
		if (n == 0 || !full) && !wait.For(ctx, poll) {
			return
		}
	}
}

// SchoolBot is a school's review committee: it lists the school's pending
// reviews and decides them in bulk, approving with a hardship level for
// tiered programs and rejecting a share of them with a reason.
type SchoolBot struct {
	Reviewer   *SchoolReviewer
	Term       string
	RejectRate float64
	// Poll is how long the bot waits when nothing is pending.
	Poll     time.Duration
	Recorder *Recorder
	Seed     uint64
}

// Run decides until ctx is done.
func (b *SchoolBot) Run(ctx context.Context) {
	rng := rand.New(rand.NewPCG(b.Seed, 1))
	decideUntilDone(ctx, b.Poll, func() (int, bool) { return b.round(ctx, rng) })
}

func (b *SchoolBot) round(ctx context.Context, rng *rand.Rand) (decided int, full bool) {
	r := b.Reviewer
	resp, err := r.API.ListReviews(ctx, &schoolreviewv1.ListReviewsRequest{
		SchoolCode: r.School, Term: b.Term, State: schoolreviewv1.ReviewState_REVIEW_STATE_PENDING, PageSize: PageSize,
	}, r.Call)
	if err != nil {
		if ctx.Err() == nil {
			b.Recorder.Error(StepSchoolDecided, err)
		}
		return 0, false
	}
	reviews := resp.GetReviews()
	if len(reviews) == 0 {
		return 0, false
	}
	decisions := make([]*schoolreviewv1.Decision, len(reviews))
	rejected := map[string]bool{}
	for i, rv := range reviews {
		d := &schoolreviewv1.Decision{ApplicationId: rv.GetApplicationId(), Approve: true}
		if rng.Float64() < b.RejectRate {
			d.Approve = false
			d.Reason = schoolReasons[rng.IntN(len(schoolReasons))]
			rejected[d.GetApplicationId()] = true
		} else if rv.GetTiered() {
			d.HardshipLevel = pickLevel(rng)
		}
		decisions[i] = d
	}
	if _, err := r.API.Decide(ctx, &schoolreviewv1.DecideRequest{Decisions: decisions}, r.Call); err != nil {
		if ctx.Err() == nil {
			b.Recorder.Error(StepSchoolDecided, err)
		}
		return 0, false
	}
	now := time.Now()
	for _, d := range decisions {
		b.Recorder.Mark(StepSchoolDecided, d.GetApplicationId(), now)
		if rejected[d.GetApplicationId()] {
			b.Recorder.Finish(d.GetApplicationId(), OutcomeSchoolRejected)
		}
	}
	return len(decisions), len(reviews) == PageSize
}

// BureauBot is the education bureau's reviewer: it lists pending reviews
// across all schools and decides them in bulk.
type BureauBot struct {
	Reviewer   *BureauReviewer
	Term       string
	RejectRate float64
	Poll       time.Duration
	Recorder   *Recorder
	Seed       uint64
}

// Run decides until ctx is done.
func (b *BureauBot) Run(ctx context.Context) {
	rng := rand.New(rand.NewPCG(b.Seed, 2))
	decideUntilDone(ctx, b.Poll, func() (int, bool) { return b.round(ctx, rng) })
}

func (b *BureauBot) round(ctx context.Context, rng *rand.Rand) (decided int, full bool) {
	r := b.Reviewer
	resp, err := r.API.ListReviews(ctx, &bureaureviewv1.ListReviewsRequest{
		Term: b.Term, State: bureaureviewv1.ReviewState_REVIEW_STATE_PENDING, PageSize: PageSize,
	}, r.Call)
	if err != nil {
		if ctx.Err() == nil {
			b.Recorder.Error(StepBureauDecided, err)
		}
		return 0, false
	}
	reviews := resp.GetReviews()
	if len(reviews) == 0 {
		return 0, false
	}
	seen := time.Now()
	decisions := make([]*bureaureviewv1.Decision, len(reviews))
	rejected := map[string]bool{}
	for i, rv := range reviews {
		at := seen
		if u := rv.GetUpdatedAt(); u != nil && rv.GetReturns() == 0 {
			at = u.AsTime()
		}
		b.Recorder.Mark(StepNoticePassed, rv.GetApplicationId(), at)
		d := &bureaureviewv1.Decision{ApplicationId: rv.GetApplicationId(), Approve: true}
		if rng.Float64() < b.RejectRate {
			d.Approve = false
			d.Reason = bureauReasons[rng.IntN(len(bureauReasons))]
			rejected[d.GetApplicationId()] = true
		}
		decisions[i] = d
	}
	if _, err := r.API.Decide(ctx, &bureaureviewv1.DecideRequest{Decisions: decisions}, r.Call); err != nil {
		if ctx.Err() == nil {
			b.Recorder.Error(StepBureauDecided, err)
		}
		return 0, false
	}
	now := time.Now()
	for _, d := range decisions {
		b.Recorder.Mark(StepBureauDecided, d.GetApplicationId(), now)
		if rejected[d.GetApplicationId()] {
			b.Recorder.Finish(d.GetApplicationId(), OutcomeBureauRejected)
		}
	}
	return len(decisions), len(reviews) == PageSize
}

// FinanceBot is the finance bureau's two officers: every interval Closer
// closes the open batches of the term, and Officer reads their control
// totals and confirms them with those totals.
type FinanceBot struct {
	Officer  *FinanceOfficer
	Closer   *FinanceOfficer
	Term     string
	Every    time.Duration
	Recorder *Recorder
	// Watcher, if set, is told about every confirmed batch.
	Watcher *Watcher
}

// Run settles batches every interval until ctx is done.
func (b *FinanceBot) Run(ctx context.Context) {
	for wait.For(ctx, b.Every) {
		batches, err := b.Unconfirmed(ctx, "")
		if err != nil {
			if ctx.Err() == nil {
				b.Recorder.Error(StepConfirmed, err)
			}
			continue
		}
		for _, bt := range batches {
			if bt.GetControlCount() == 0 {
				continue
			}
			if _, err := b.Settle(ctx, bt); err != nil && ctx.Err() == nil {
				b.Recorder.Error(StepConfirmed, err)
			}
		}
	}
}

// Unconfirmed lists the term's OPEN and CLOSED batches, of program if set.
func (b *FinanceBot) Unconfirmed(ctx context.Context, program string) ([]*financev1.Batch, error) {
	var out []*financev1.Batch
	for _, st := range []financev1.BatchStatus{financev1.BatchStatus_BATCH_STATUS_OPEN, financev1.BatchStatus_BATCH_STATUS_CLOSED} {
		token := ""
		for {
			resp, err := b.Officer.API.ListBatches(ctx, &financev1.ListBatchesRequest{
				Term: b.Term, ProgramCode: program, Status: st, PageSize: PageSize, PageToken: token,
			}, b.Officer.Call)
			if err != nil {
				return nil, fmt.Errorf("list %s batches: %w", st, err)
			}
			out = append(out, resp.GetBatches()...)
			if token = resp.GetNextPageToken(); token == "" {
				break
			}
		}
	}
	return out, nil
}

// Settle closes bt if it is open, reads its control totals and items, and
// confirms it with those totals. It returns the confirmed batch.
func (b *FinanceBot) Settle(ctx context.Context, bt *financev1.Batch) (*financev1.Batch, error) {
	prepared, ids, err := b.Prepare(ctx, bt)
	if err != nil {
		return nil, err
	}
	confirmed, err := b.Confirm(ctx, prepared, ids)
	return confirmed, err
}

// Prepare closes bt if open (as Closer), reads its totals with GetBatch and
// lists its items, marking them batched. It returns the batch as read and
// its applications.
func (b *FinanceBot) Prepare(ctx context.Context, bt *financev1.Batch) (*financev1.Batch, []string, error) {
	o := b.Officer
	if bt.GetStatus() == financev1.BatchStatus_BATCH_STATUS_OPEN {
		c := b.Closer
		if _, err := c.API.CloseBatch(ctx, &financev1.CloseBatchRequest{BatchId: bt.GetBatchId()}, c.Call); err != nil {
			return nil, nil, fmt.Errorf("close batch %s: %w", bt.GetBatchId(), err)
		}
	}
	got, err := o.API.GetBatch(ctx, &financev1.GetBatchRequest{BatchId: bt.GetBatchId()}, o.Call)
	if err != nil {
		return nil, nil, fmt.Errorf("get batch %s: %w", bt.GetBatchId(), err)
	}
	ids, err := b.Items(ctx, got.GetBatchId())
	if err != nil {
		return nil, nil, err
	}
	b.Recorder.MarkAll(StepBatched, ids, time.Now())
	return got, ids, nil
}

// Confirm confirms bt with the control totals it carries and marks ids confirmed.
func (b *FinanceBot) Confirm(ctx context.Context, bt *financev1.Batch, ids []string) (*financev1.Batch, error) {
	o := b.Officer
	confirmed, err := o.API.ConfirmBatch(ctx, &financev1.ConfirmBatchRequest{
		BatchId: bt.GetBatchId(), ControlCount: bt.GetControlCount(), ControlSumFen: bt.GetControlSumFen(),
	}, o.Call)
	if err != nil {
		return nil, fmt.Errorf("confirm batch %s: %w", bt.GetBatchId(), err)
	}
	now := time.Now()
	b.Recorder.MarkAll(StepConfirmed, ids, now)
	if b.Watcher != nil {
		b.Watcher.Track(confirmed.GetBatchId(), confirmed.GetControlCount(), now)
	}
	return confirmed, nil
}

// Items lists the applications of a batch's PENDING (not returned) items.
func (b *FinanceBot) Items(ctx context.Context, batchID string) ([]string, error) {
	var ids []string
	token := ""
	for {
		resp, err := b.Officer.API.ListBatchItems(ctx, &financev1.ListBatchItemsRequest{
			BatchId: batchID, PageSize: PageSize, PageToken: token,
		}, b.Officer.Call)
		if err != nil {
			return nil, fmt.Errorf("list items of batch %s: %w", batchID, err)
		}
		for _, it := range resp.GetItems() {
			if it.GetStatus() != financev1.ItemStatus_ITEM_STATUS_RETURNED {
				ids = append(ids, it.GetApplicationId())
			}
		}
		if token = resp.GetNextPageToken(); token == "" {
			return ids, nil
		}
	}
}

// Watcher follows confirmed batches until every item is paid or failed:
// it polls the batch's paid and failed counts (GetBatch, as the finance
// officer) and, once they add up, lists the batch's payments at payout (as
// the auditor) to time each application's payment by the payment's
// updated_at.
type Watcher struct {
	Finance  *FinanceOfficer
	Auditor  *Auditor
	Poll     time.Duration
	Recorder *Recorder

	mu      sync.Mutex
	batches map[string]*watched
}

type watched struct {
	id          string
	count       int64
	confirmedAt time.Time
	progressAt  time.Time
	lastSeen    int64
	doneAt      time.Time
	lastPaidAt  time.Time
}

// BatchDone is what the watcher knows about a finished batch.
type BatchDone struct {
	ID    string
	Count int64
	// ObservedAt is when GetBatch first showed every item paid or failed.
	ObservedAt time.Time
	// LastPaidAt is the latest payment's updated_at at payout.
	LastPaidAt time.Time
}

// Track adds a confirmed batch of count items.
func (w *Watcher) Track(batchID string, count int64, confirmedAt time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.batches == nil {
		w.batches = map[string]*watched{}
	}
	if _, ok := w.batches[batchID]; !ok {
		w.batches[batchID] = &watched{id: batchID, count: count, confirmedAt: confirmedAt, progressAt: confirmedAt}
	}
}

// Open returns how many tracked batches are not finished.
func (w *Watcher) Open() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, b := range w.batches {
		if b.doneAt.IsZero() {
			n++
		}
	}
	return n
}

// Done returns the finished batch batchID, if it is.
func (w *Watcher) Done(batchID string) (BatchDone, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	b, ok := w.batches[batchID]
	if !ok || b.doneAt.IsZero() {
		return BatchDone{}, false
	}
	return BatchDone{ID: b.id, Count: b.count, ObservedAt: b.doneAt, LastPaidAt: b.lastPaidAt}, true
}

// Run polls until ctx is done.
func (w *Watcher) Run(ctx context.Context) {
	for wait.For(ctx, w.Poll) {
		w.mu.Lock()
		var open []*watched
		for _, b := range w.batches {
			if b.doneAt.IsZero() {
				open = append(open, b)
			}
		}
		w.mu.Unlock()
		for _, b := range open {
			if ctx.Err() != nil {
				return
			}
			w.check(ctx, b)
		}
	}
}

// stallAfter is how long a batch may show no progress in GetBatch before
// the watcher looks at payout directly.
const stallAfter = 10 * time.Second

func (w *Watcher) check(ctx context.Context, b *watched) {
	got, err := w.Finance.API.GetBatch(ctx, &financev1.GetBatchRequest{BatchId: b.id}, w.Finance.Call)
	if err != nil {
		if ctx.Err() == nil {
			w.Recorder.Error(StepPaid, err)
		}
		return
	}
	now := time.Now()
	seen := got.GetPaidCount() + got.GetFailedCount()
	if seen != b.lastSeen {
		b.lastSeen, b.progressAt = seen, now
	}
	if seen < b.count && now.Sub(b.progressAt) < stallAfter {
		return
	}
	terminal, lastPaid, err := w.collect(ctx, b.id)
	if err != nil {
		if ctx.Err() == nil {
			w.Recorder.Error(StepPaid, err)
		}
		return
	}
	b.progressAt = now
	if int64(terminal) >= b.count {
		w.mu.Lock()
		b.doneAt, b.lastPaidAt = now, lastPaid
		w.mu.Unlock()
	}
}

// collect lists a batch's payments and records the paid and failed ones.
func (w *Watcher) collect(ctx context.Context, batchID string) (terminal int, lastPaid time.Time, err error) {
	a := w.Auditor
	token := ""
	for {
		resp, err := a.Payout.ListPayments(ctx, &payoutv1.ListPaymentsRequest{BatchId: batchID, PageSize: PageSize, PageToken: token}, a.Call)
		if err != nil {
			return 0, time.Time{}, fmt.Errorf("list payments of batch %s: %w", batchID, err)
		}
		now := time.Now()
		for _, p := range resp.GetPayments() {
			switch p.GetStatus() {
			case payoutv1.PaymentStatus_PAYMENT_STATUS_PAID:
				at := now
				if u := p.GetUpdatedAt(); u != nil {
					at = u.AsTime()
				}
				w.Recorder.Mark(StepPaid, p.GetApplicationId(), at)
				w.Recorder.Finish(p.GetApplicationId(), OutcomePaid)
				if at.After(lastPaid) {
					lastPaid = at
				}
				terminal++
			case payoutv1.PaymentStatus_PAYMENT_STATUS_FAILED:
				w.Recorder.Finish(p.GetApplicationId(), OutcomePaymentFailed)
				terminal++
			default:
				// Pending (or not yet known) payments are not final: a later poll sees them settle.
			}
		}
		if token = resp.GetNextPageToken(); token == "" {
			return terminal, lastPaid, nil
		}
	}
}

// CollectShownPaid lists the term's applications the application service
// shows as PAID and records when it recorded that (updated_at). It returns
// how many it found.
func CollectShownPaid(ctx context.Context, a *Auditor, term string, rec *Recorder) (int, error) {
	n := 0
	token := ""
	for {
		resp, err := a.Application.ListApplications(ctx, &applicationv1.ListApplicationsRequest{
			Term: term, Status: commonv1.ApplicationStatus_APPLICATION_STATUS_PAID, PageSize: PageSize, PageToken: token,
			// An auditor's listing shows students in full and is recorded with its purpose.
			Purpose: "load test: when each payment was shown paid",
		}, a.Call)
		if err != nil {
			return n, fmt.Errorf("list PAID applications: %w", err)
		}
		now := time.Now()
		for _, app := range resp.GetApplications() {
			at := now
			if u := app.GetUpdatedAt(); u != nil {
				at = u.AsTime()
			}
			rec.Mark(StepShownPaid, app.GetApplicationId(), at)
			n++
		}
		if token = resp.GetNextPageToken(); token == "" {
			return n, nil
		}
	}
}
