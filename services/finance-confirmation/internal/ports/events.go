package ports

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/natsx"
	"github.com/edubureau/studentaid/pkg/policy/seed"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	"github.com/edubureau/studentaid/services/finance-confirmation/internal/app"
	"github.com/edubureau/studentaid/services/finance-confirmation/internal/domain"
)

// Subjects are the events finance-confirmation follows: bureau approvals,
// payout's results and payee corrections.
var Subjects = []string{
	events.Subject(events.TypeBureauApproved),
	events.Subject(events.TypePaymentSucceeded),
	events.Subject(events.TypePaymentFailed),
	events.Subject(events.TypePayeeCorrected),
}

// Limits on values read from events.
const (
	maxReasonCodeLen = 64
	maxUserLen       = 64
)

// Consumer is the service's durable consumer: the events of Subjects,
// applied by the use cases in a.
func Consumer(a *app.Service) *natsx.Consumer {
	h := &eventHandler{app: a}
	return &natsx.Consumer{Subjects: Subjects, Handle: h.Handle, HandleBatch: h.HandleBatch}
}

// eventHandler applies approvals, payment results and payee corrections.
type eventHandler struct {
	app *app.Service
}

// Handle applies ev inside tx. It returns natsx.ErrNotYet for a payee
// correction that overtook its payment's failure, and a natsx.Permanent
// error for an event that can never apply: malformed, or a payment result
// that fits no ordered item.
func (h *eventHandler) Handle(ctx context.Context, tx pgx.Tx, ev *eventsv1.Event) error {
	switch ev.GetType() {
	case events.TypeBureauApproved:
		it, err := approvedItemOf(ev)
		if err != nil {
			return err
		}
		return classify(h.app.AddApproved(ctx, tx, it))
	case events.TypePaymentSucceeded, events.TypePaymentFailed:
		r, err := paymentResultOf(ev)
		if err != nil {
			return err
		}
		return classify(h.app.RecordPaymentResult(ctx, tx, r))
	case events.TypePayeeCorrected:
		if err := checkUUID("application_id", ev.GetApplicationId()); err != nil {
			return err
		}
		return classify(h.app.RecordPayeeCorrected(ctx, tx, ev.GetApplicationId()))
	}
	return natsx.Permanent(fmt.Errorf("finance-confirmation does not consume %s", ev.GetType()))
}

// HandleBatch applies a fetched batch of new events in stream order inside
// tx: each run of approvals, and each run of payment results, is applied by
// a few set-based statements; other events one by one between them. Any
// error rolls the batch back and the consumer applies its events singly
// through Handle.
func (h *eventHandler) HandleBatch(_ context.Context, tx pgx.Tx, ds []natsx.Delivery) error {
	for len(ds) > 0 {
		n := 1
		for n < len(ds) && kind(ds[n].Event) == kind(ds[0].Event) {
			n++
		}
		run := ds[:n]
		ds = ds[n:]
		var err error
		switch kind(run[0].Event) {
		case kindApproval:
			err = applyRun(run, approvedItemOf, func(items []app.Delivered[domain.ApprovedItem]) error {
				return h.app.AddApprovedBatch(tx, items)
			})
		case kindResult:
			err = applyRun(run, paymentResultOf, func(rs []app.Delivered[domain.PaymentResult]) error {
				return h.app.RecordPaymentResults(tx, rs)
			})
		default:
			for _, d := range run {
				if err = h.Handle(d.Ctx, tx, d.Event); err != nil {
					break
				}
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// applyRun decodes a run of deliveries of one kind and applies them at once.
func applyRun[E any](run []natsx.Delivery, decode func(*eventsv1.Event) (E, error), apply func([]app.Delivered[E]) error) error {
	out := make([]app.Delivered[E], len(run))
	for i, d := range run {
		e, err := decode(d.Event)
		if err != nil {
			return err
		}
		out[i] = app.Delivered[E]{Ctx: d.Ctx, Event: e}
	}
	return classify(apply(out))
}

const (
	kindOther = iota
	kindApproval
	kindResult
)

// kind groups the event types HandleBatch applies together.
func kind(ev *eventsv1.Event) int {
	switch ev.GetType() {
	case events.TypeBureauApproved:
		return kindApproval
	case events.TypePaymentSucceeded, events.TypePaymentFailed:
		return kindResult
	}
	return kindOther
}

// classify maps a use case's error to the consumer's: natsx.ErrNotYet to
// retry later, natsx.Permanent for never, anything else to retry. The
// message stays the use case's.
func classify(err error) error {
	switch {
	case errors.Is(err, app.ErrImpossible):
		return natsx.Permanent(err)
	case errors.Is(err, app.ErrNotYet):
		return natsx.NotYet(err)
	}
	return err
}

func checkUUID(name, v string) error {
	if _, err := uuid.Parse(v); err != nil {
		return natsx.Permanent(fmt.Errorf("event %s %q is not a UUID", name, v))
	}
	return nil
}

// approvedItemOf checks an application.bureau_approved event and returns
// the item it adds. An approval without a funding source takes its
// program's.
func approvedItemOf(ev *eventsv1.Event) (domain.ApprovedItem, error) {
	body := ev.GetBureauApproved()
	if body == nil {
		return domain.ApprovedItem{}, natsx.Permanent(fmt.Errorf("%s without a body", ev.GetType()))
	}
	if err := checkUUID("application_id", ev.GetApplicationId()); err != nil {
		return domain.ApprovedItem{}, err
	}
	for _, k := range [][2]string{{"school_code", ev.GetSchoolCode()}, {"term", ev.GetTerm()}, {"program_code", ev.GetProgramCode()}} {
		if err := natsx.CheckKey(k[0], k[1]); err != nil {
			return domain.ApprovedItem{}, err
		}
	}
	if body.GetAmountFen() <= 0 {
		return domain.ApprovedItem{}, natsx.Permanent(fmt.Errorf("approval of %s: amount %d fen is not positive", ev.GetApplicationId(), body.GetAmountFen()))
	}
	funding := body.GetFundingSource()
	if funding == "" {
		if p, ok := seed.Program(ev.GetProgramCode()); ok {
			funding = string(p.Funding)
		}
	}
	if err := natsx.CheckKey("funding_source", funding); err != nil {
		return domain.ApprovedItem{}, err
	}
	for _, u := range []string{body.GetSubmittedBy(), body.GetSchoolReviewer(), body.GetBureauReviewer()} {
		if len(u) > maxUserLen || !utf8.ValidString(u) {
			return domain.ApprovedItem{}, natsx.Permanent(fmt.Errorf("approval of %s: malformed user id", ev.GetApplicationId()))
		}
	}
	return domain.ApprovedItem{
		ApplicationID: ev.GetApplicationId(),
		SchoolCode:    ev.GetSchoolCode(),
		AmountFen:     body.GetAmountFen(),
		Term:          ev.GetTerm(),
		ProgramCode:   ev.GetProgramCode(),
		FundingSource: funding,
		Reviewers: domain.Reviewers{
			SubmittedBy:    body.GetSubmittedBy(),
			SchoolReviewer: body.GetSchoolReviewer(),
			BureauReviewer: body.GetBureauReviewer(),
		},
	}, nil
}

// paymentResultOf checks a payout.payment_succeeded or payment_failed event
// and returns the result it reports.
func paymentResultOf(ev *eventsv1.Event) (domain.PaymentResult, error) {
	var r domain.PaymentResult
	switch {
	case ev.GetPaymentSucceeded() != nil:
		b := ev.GetPaymentSucceeded()
		r = domain.PaymentResult{PaymentID: b.GetPaymentId(), AmountFen: b.GetAmountFen(), Paid: true}
	case ev.GetPaymentFailed() != nil:
		b := ev.GetPaymentFailed()
		r = domain.PaymentResult{PaymentID: b.GetPaymentId(), AmountFen: b.GetAmountFen(), Reason: b.GetReason()}
		if r.Reason == "" || len(r.Reason) > maxReasonCodeLen || !utf8.ValidString(r.Reason) {
			return r, natsx.Permanent(fmt.Errorf("payment %s failed with a malformed reason", r.PaymentID))
		}
	default:
		return r, natsx.Permanent(fmt.Errorf("%s is not a payment result", ev.GetType()))
	}
	if err := checkUUID("payment_id", r.PaymentID); err != nil {
		return r, err
	}
	return r, nil
}
