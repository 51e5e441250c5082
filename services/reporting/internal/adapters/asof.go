package adapters

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/db"
)

// The aggregates kept per hour (migration 008): every change of an
// aggregate is also filed under the hour of the instant it happened, so
// the aggregates as of the end of hour H are the sums of the changes of
// hours <= H (docs/reporting.md, "As of an earlier instant").

// hourOf is the hour t falls in, counted from the Unix epoch (hour_of()
// of migration 008).
func hourOf(t time.Time) int64 {
	s := t.Unix()
	h := s / 3600
	if s%3600 < 0 {
		h--
	}
	return h
}

// hourStart is the first instant of hour h.
func hourStart(h int64) time.Time { return time.Unix(h*3600, 0).UTC() }

// lastBefore is the last recorded instant before t (the read model keeps
// microseconds): an answer as of it holds what happened before t.
func lastBefore(t time.Time) time.Time { return t.Add(-time.Microsecond) }

// histPayment is one of a student's payments with its selection cells.
type histPayment struct {
	id     string
	row    liveRow
	loan   bool
	shares string
	amount int64
	paid   time.Time
}

// histReceipt is one receipt against one of a student's payments.
type histReceipt struct {
	eventID, paymentID string
	amount             int64
	at                 time.Time
}

// history is all that was recorded of one student's payments.
type history struct {
	payments []histPayment
	receipts []histReceipt
}

// studentHistory reads a student's payments and the receipts against them.
// The receipt whose event is eventID (if any) has eventID set, the others
// none.
func studentHistory(ctx context.Context, tx db.Tx, student, eventID string) (history, error) {
	var h history
	r := &stmts{}
	queueHistory(r, &h, student, eventID)
	return h, r.run(ctx, tx)
}

// queueHistory queues the reads of studentHistory into h.
func queueHistory(r *stmts, h *history, student, eventID string) {
	r.add(func(res results) error {
		rows, err := res.Query()
		if err == nil {
			h.payments, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (histPayment, error) {
				var p histPayment
				err := r.Scan(&p.id, &p.row.term, &p.row.school, &p.row.stage, &p.row.program, &p.row.government, &p.loan, &p.shares,
					&p.amount, &p.paid)
				return p, err
			})
		}
		if err != nil {
			return fmt.Errorf("history of %s: %w", student, err)
		}
		return nil
	}, `SELECT p.payment_id, a.term_rank, a.school_code, a.stage, a.program_code, a.government_total,
		p.loan_contract_number <> '', a.shares_bp::text, p.amount_fen, p.paid_at
		FROM applications a JOIN payments p USING (application_id) WHERE a.student_id_hash = $1`, student)
	r.add(func(res results) error {
		rows, err := res.Query()
		if err == nil {
			h.receipts, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (histReceipt, error) {
				var x histReceipt
				err := r.Scan(&x.eventID, &x.paymentID, &x.amount, &x.at)
				return x, err
			})
		}
		if err != nil {
			return fmt.Errorf("receipts of %s: %w", student, err)
		}
		return nil
	}, `SELECT CASE WHEN rr.event_id = nullif($2, '')::uuid THEN $2 ELSE '' END, r.payment_id, rr.amount_fen,
		rr.received_at
		FROM applications a JOIN payments p USING (application_id) JOIN refunds r USING (payment_id)
		JOIN refund_receipts rr USING (refund_id) WHERE a.student_id_hash = $1`, student, eventID)
}

// without is h less one payment (paymentID) or one receipt (eventID).
func (h history) without(paymentID, eventID string) history {
	return history{
		payments: slices.DeleteFunc(slices.Clone(h.payments), func(p histPayment) bool { return paymentID != "" && p.id == paymentID }),
		receipts: slices.DeleteFunc(slices.Clone(h.receipts), func(r histReceipt) bool { return eventID != "" && r.eventID == eventID }),
	}
}

// hours are the hours in which h's state changes: a payment paid, or a
// receipt received (counting from its payment's hour when that is later).
func (h history) hours() []int64 {
	paid := map[string]int64{}
	set := map[int64]bool{}
	for _, p := range h.payments {
		paid[p.id] = hourOf(p.paid)
		set[hourOf(p.paid)] = true
	}
	for _, r := range h.receipts {
		if ph, ok := paid[r.paymentID]; ok {
			set[max(ph, hourOf(r.at))] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// paidKey is a paid_log row's key but its hour.
type paidKey struct {
	term                           int
	program, school, stage, shares string
	government, loan               bool
	net                            int64
}

// paidVal is a paid_log row's figures.
type paidVal struct{ payments, gross, recovered int64 }

// state is h's part in paid_groups and person_runs as of the end of hour
// hr: its payments paid by then, each with what was received against it by
// then.
func (h history) state(hr int64) (map[paidKey]paidVal, map[[5]string]int64) {
	recovered := map[string]int64{}
	for _, r := range h.receipts {
		if hourOf(r.at) <= hr {
			recovered[r.paymentID] += r.amount
		}
	}
	paid := map[paidKey]paidVal{}
	var live []liveRow
	for _, p := range h.payments {
		if hourOf(p.paid) > hr {
			continue
		}
		rec := recovered[p.id]
		k := paidKey{term: p.row.term, program: p.row.program, school: p.row.school, stage: p.row.stage, shares: p.shares,
			government: p.row.government, loan: p.loan, net: p.amount - rec}
		v := paid[k]
		paid[k] = paidVal{v.payments + 1, v.gross + p.amount, v.recovered + rec}
		if !p.loan && p.amount > rec {
			live = append(live, p.row)
		}
	}
	return paid, studentRuns(live)
}

// studentRuns is a student's part in person_runs from their live rows:
// at each of their schools and across all schools.
func studentRuns(live []liveRow) map[[5]string]int64 {
	out := allRuns(live)
	schools := map[string]bool{}
	for _, r := range live {
		schools[r.school] = true
	}
	for sc := range schools {
		for k, v := range runs(live, sc) {
			out[k] += v
		}
	}
	return out
}

// allRuns counts rows in person_runs across all schools (school ”).
func allRuns(rs []liveRow) map[[5]string]int64 {
	cp := make([]liveRow, len(rs))
	for i, r := range rs {
		cp[i] = r
		cp[i].school = ""
	}
	return runs(cp, "")
}

// sub returns a − b of two paid_log parts.
func (v paidVal) sub(o paidVal) paidVal {
	return paidVal{v.payments - o.payments, v.gross - o.gross, v.recovered - o.recovered}
}

// subPaid returns a − b, key by key.
func subPaid(a, b map[paidKey]paidVal) map[paidKey]paidVal {
	out := map[paidKey]paidVal{}
	maps.Copy(out, a)
	for k, v := range b {
		out[k] = out[k].sub(v)
	}
	return out
}

// subRuns returns a − b, key by key.
func subRuns(a, b map[[5]string]int64) map[[5]string]int64 {
	out := map[[5]string]int64{}
	maps.Copy(out, a)
	for k, v := range b {
		out[k] -= v
	}
	return out
}

// logRows are the rows a change adds to paid_log and person_runs_log.
type logRows struct {
	paidHours []int64
	paidKeys  []paidKey
	paidVals  []paidVal
	runHours  []int64
	runKeys   [][5]string
	runVals   []int64
}

// studentLogRows are the changes of the logs when a student's history
// goes from before to after: at each hour where either changes, the
// difference (after − before) as of that hour less the difference as of
// the hour before. A history that changed only in hour H changes the logs
// of H and of the later hours where its state changes again.
func studentLogRows(before, after history) logRows {
	set := map[int64]bool{}
	for _, h := range append(before.hours(), after.hours()...) {
		set[h] = true
	}
	var out logRows
	prevPaid := map[paidKey]paidVal{}
	prevRuns := map[[5]string]int64{}
	for _, hr := range slices.Sorted(maps.Keys(set)) {
		pa, ra := after.state(hr)
		pb, rb := before.state(hr)
		diffPaid, diffRuns := subPaid(pa, pb), subRuns(ra, rb)
		for k, v := range subPaid(diffPaid, prevPaid) {
			if v != (paidVal{}) {
				out.paidHours, out.paidKeys, out.paidVals = append(out.paidHours, hr), append(out.paidKeys, k), append(out.paidVals, v)
			}
		}
		for k, v := range subRuns(diffRuns, prevRuns) {
			if v != 0 {
				out.runHours, out.runKeys, out.runVals = append(out.runHours, hr), append(out.runKeys, k), append(out.runVals, v)
			}
		}
		prevPaid, prevRuns = diffPaid, diffRuns
	}
	return out
}

// queueLogStudent queues the filing of the change of a student's history
// from before to after in paid_log, person_runs_log and
// multi_school_ever.
func queueLogStudent(w *Writes, student string, before, after history) {
	rows := studentLogRows(before, after)
	queuePaidLog(w, rows)
	queueRunsLog(w, rows)
	schools := map[string]bool{}
	for _, p := range after.payments {
		if !p.loan {
			schools[p.row.school] = true
		}
	}
	if len(schools) > 1 {
		w.everMultiSchool(student)
	}
}

func queuePaidLog(w *Writes, rows logRows) {
	for i, k := range rows.paidKeys {
		w.paidLog(paidHour{k, rows.paidHours[i]}, rows.paidVals[i])
	}
}

func queueRunsLog(w *Writes, rows logRows) {
	for i, k := range rows.runKeys {
		t, _ := strconv.Atoi(k[3])
		p, _ := strconv.Atoi(k[4])
		w.runLog(runHour{runKey{k[0], k[1], k[2], t, p}, rows.runHours[i]}, rows.runVals[i])
	}
}

// logPaymentChange files in the logs the change a payment (eventID "") or
// a receipt (eventID) made to its student's history.
func logPaymentChange(ctx context.Context, tx db.Tx, w *Writes, student, paymentID, eventID string) error {
	after, err := studentHistory(ctx, tx, student, eventID)
	if err != nil {
		return err
	}
	var before history
	if eventID == "" {
		before = after.without(paymentID, "")
	} else {
		before = after.without("", eventID)
	}
	queueLogStudent(w, student, before, after)
	return nil
}
