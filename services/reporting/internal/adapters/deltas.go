package adapters

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/services/reporting/internal/domain"
)

// The step aggregates (migration 006) and their hourly logs (008) are only
// ever added to by the consumer, never read by it: the changes of one
// event, or of a whole batch of them, are summed here per key and written
// with one statement per table (Flush).

// cellKey is a step_cells row's key.
type cellKey struct {
	ord int
	c   stepCell
}

// durationKey is a step_durations row's key.
type durationKey struct {
	ord, bucket int
	c           stepCell
}

// reasonKey is a step_reasons row's key with its step.
type reasonKey struct {
	ord          int
	c            stepCell
	step, reason string
}

// cellHour, durationHour and reasonHour are the keys of the logs' rows.
type cellHour struct {
	cellKey
	hour int64
}

type durationHour struct {
	durationKey
	hour int64
}

type reasonHour struct {
	reasonKey
	hour int64
}

// sorted returns m's keys in order: concurrent consumers write the rows
// of the keys they share in the same order, so they wait for each other
// rather than deadlock.
func sorted[K comparable, V any](m map[K]V, compare func(a, b K) int) []K {
	return slices.SortedFunc(maps.Keys(m), compare)
}

func (c stepCell) cmp(o stepCell) int {
	return cmp.Or(cmp.Compare(c.termRank, o.termRank), strings.Compare(c.school, o.school), strings.Compare(c.stage, o.stage),
		strings.Compare(c.program, o.program))
}

func (k cellKey) cmp(o cellKey) int { return cmp.Or(cmp.Compare(k.ord, o.ord), k.c.cmp(o.c)) }

func (k durationKey) cmp(o durationKey) int {
	return cmp.Or(cmp.Compare(k.ord, o.ord), k.c.cmp(o.c), cmp.Compare(k.bucket, o.bucket))
}

func (k reasonKey) cmp(o reasonKey) int {
	return cmp.Or(cmp.Compare(k.ord, o.ord), k.c.cmp(o.c), strings.Compare(k.reason, o.reason), strings.Compare(k.step, o.step))
}

// StepDeltas are changes of the step aggregates and their logs, summed
// per key. A key once touched is written even when its changes cancel, as
// the changes one by one would have left its row.
type StepDeltas struct {
	cells        map[cellKey][2]int64
	durations    map[durationKey]int64
	reasons      map[reasonKey]int64
	cellsLog     map[cellHour][2]int64
	durationsLog map[durationHour]int64
	reasonsLog   map[reasonHour]int64
}

// NewStepDeltas returns empty deltas.
func NewStepDeltas() *StepDeltas {
	return &StepDeltas{cells: map[cellKey][2]int64{}, durations: map[durationKey]int64{}, reasons: map[reasonKey]int64{},
		cellsLog: map[cellHour][2]int64{}, durationsLog: map[durationHour]int64{}, reasonsLog: map[reasonHour]int64{}}
}

// count adds delta visits of step ord to the cell's counts: at the step,
// or left it with a duration in bucket.
func (d *StepDeltas) count(c stepCell, ord int, left bool, bucket *int, delta int64) error {
	if left && bucket == nil {
		return fmt.Errorf("step durations: a visit left without a bucket: %w", errOutOfStep)
	}
	k := cellKey{ord: ord, c: c}
	v := d.cells[k]
	if left {
		v[1] += delta
	} else {
		v[0] += delta
	}
	d.cells[k] = v
	if left {
		dk := durationKey{ord: ord, bucket: *bucket, c: c}
		d.durations[dk] += delta
	}
	return nil
}

// logVisit files delta times a visit's part in the step logs: at its step
// from the hour it entered, left it (with its duration's bucket) from the
// hour it left; a rejection (reason non-nil: step and reason) from the
// hour it entered.
func (d *StepDeltas) logVisit(c stepCell, ord int, entered time.Time, left *time.Time, bucket *int, rejection []string, delta int64) error {
	eh := hourOf(entered)
	k := cellKey{ord: ord, c: c}
	add := func(h, at, gone int64) {
		v := d.cellsLog[cellHour{k, h}]
		d.cellsLog[cellHour{k, h}] = [2]int64{v[0] + at, v[1] + gone}
	}
	if left != nil {
		if bucket == nil {
			return fmt.Errorf("step log: a visit left without a bucket: %w", errOutOfStep)
		}
		lh := hourOf(*left)
		if lh == eh {
			add(eh, 0, delta)
		} else {
			add(eh, delta, 0)
			add(lh, -delta, delta)
		}
		d.durationsLog[durationHour{durationKey{ord: ord, bucket: *bucket, c: c}, lh}] += delta
	} else {
		add(eh, delta, 0)
	}
	if rejection != nil {
		d.reasonsLog[reasonHour{reasonKey{ord: ord, c: c, step: rejection[0], reason: rejection[1]}, eh}] += delta
	}
	return nil
}

// stepVisit is what the statement that keeps one step event read and
// changed (stepSQL).
type stepVisit struct {
	cell     stepCell
	inserted bool
	leftAt   *time.Time
	bucket   *int
	// The visit before, if any, now ending at the event's instant.
	prevEntered *time.Time
	prevOrd     *int
	prevLeftAt  *time.Time
	prevBucket  *int
	newBucket   *int
}

// stepSQL keeps one step event in one statement: it locks the
// application's row (one event of an application at a time), inserts the
// visit between its neighbours by (entered_at, step order) once, and when
// it was new, ends the visit before it at its instant. No row: the
// application is not known.
const stepSQL = `WITH a AS (
	  SELECT term_rank, school_code, stage, program_code FROM applications WHERE application_id = $1::uuid FOR NO KEY UPDATE),
	ins AS (
	  INSERT INTO step_visits (application_id, entered_at, ord, step, left_at, reason, event_id, term_rank, school_code, stage, program_code)
	  SELECT $1::uuid, $2::timestamptz, $3::smallint, $4::text,
	         (SELECT entered_at FROM step_visits WHERE application_id = $1::uuid AND (entered_at, ord) > ($2::timestamptz, $3::smallint)
	          ORDER BY entered_at, ord LIMIT 1), $5::text, $6::uuid, a.term_rank, a.school_code, a.stage, a.program_code FROM a
	  ON CONFLICT DO NOTHING RETURNING left_at, bucket),
	prev AS (
	  SELECT entered_at, ord, left_at, bucket FROM step_visits
	  WHERE application_id = $1::uuid AND (entered_at, ord) < ($2::timestamptz, $3::smallint) AND EXISTS (SELECT 1 FROM ins)
	  ORDER BY entered_at DESC, ord DESC LIMIT 1),
	upd AS (
	  UPDATE step_visits s SET left_at = $2::timestamptz FROM prev
	  WHERE s.application_id = $1::uuid AND s.entered_at = prev.entered_at AND s.ord = prev.ord RETURNING s.bucket)
	SELECT a.term_rank, a.school_code, a.stage, a.program_code, EXISTS (SELECT 1 FROM ins), (SELECT left_at FROM ins),
	       (SELECT bucket FROM ins), prev.entered_at, prev.ord::int, prev.left_at, prev.bucket, (SELECT bucket FROM upd)
	FROM a LEFT JOIN prev ON true`

func stepArgs(e StepEntered, ord int) []any {
	return []any{e.ApplicationID, e.At, ord, e.Step, e.Reason, e.EventID}
}

func scanStep(row pgx.Row, e StepEntered) (stepVisit, error) {
	var v stepVisit
	err := row.Scan(&v.cell.termRank, &v.cell.school, &v.cell.stage, &v.cell.program, &v.inserted, &v.leftAt, &v.bucket,
		&v.prevEntered, &v.prevOrd, &v.prevLeftAt, &v.prevBucket, &v.newBucket)
	if errors.Is(err, pgx.ErrNoRows) {
		return v, fmt.Errorf("%w %s (%s)", ErrUnknownApplication, e.ApplicationID, e.Step)
	}
	if err != nil {
		return v, fmt.Errorf("insert step %s of %s: %w", e.Step, e.ApplicationID, err)
	}
	return v, nil
}

// add sums the changes of the visit e started (v) in d: its own part, and
// the move of the visit before it, which now ends at e.At (it was at its
// step, or left it at a later instant).
func (d *StepDeltas) add(e StepEntered, ord int, v stepVisit) error {
	if !v.inserted {
		return nil // kept before
	}
	c := v.cell
	if err := d.count(c, ord, v.leftAt != nil, v.bucket, 1); err != nil {
		return err
	}
	rejected := ord == domain.StepOrder(domain.StepSchoolRejected) || ord == domain.StepOrder(domain.StepBureauRejected)
	var rejection []string
	if rejected {
		rejection = []string{e.Step, e.Reason}
	}
	if err := d.logVisit(c, ord, e.At, v.leftAt, v.bucket, rejection, 1); err != nil {
		return err
	}
	if rejected {
		d.reasons[reasonKey{ord: ord, c: c, step: e.Step, reason: e.Reason}]++
	}
	if v.prevOrd == nil {
		return nil
	}
	if v.newBucket == nil {
		return fmt.Errorf("end the step before %s of %s: %w", e.Step, e.ApplicationID, errOutOfStep)
	}
	prevOrd, prevEntered := *v.prevOrd, *v.prevEntered
	if err := d.count(c, prevOrd, v.prevLeftAt != nil, v.prevBucket, -1); err != nil {
		return err
	}
	if err := d.count(c, prevOrd, true, v.newBucket, 1); err != nil {
		return err
	}
	if err := d.logVisit(c, prevOrd, prevEntered, v.prevLeftAt, v.prevBucket, nil, -1); err != nil {
		return err
	}
	at := e.At
	return d.logVisit(c, prevOrd, prevEntered, &at, v.newBucket, nil, 1)
}

// cellCols are a stepCell's columns as arrays for unnest.
type cellCols struct {
	ords, terms              []int
	schools, stages, program []string
}

func (cc *cellCols) add(ord int, c stepCell) {
	cc.ords, cc.terms = append(cc.ords, ord), append(cc.terms, c.termRank)
	cc.schools, cc.stages, cc.program = append(cc.schools, c.school), append(cc.stages, c.stage), append(cc.program, c.program)
}

// Flush writes d in tx: one statement per table, the counts taken out of
// a row (which must be there) by an update, the others by an upsert (an
// insert's row with a negative count would fail the counts' checks before
// its conflict is seen). The statements are sent together.
func (d *StepDeltas) Flush(ctx context.Context, tx db.Tx) error {
	if len(d.cells) == 0 && len(d.reasonsLog) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	var checks []func(tag int64) error
	queue := func(sql string, want int, what string, args ...any) {
		b.Queue(sql, args...)
		checks = append(checks, func(n int64) error {
			if want >= 0 && n != int64(want) {
				return fmt.Errorf("%s: %w", what, errOutOfStep)
			}
			return nil
		})
	}
	var up, down cellCols
	var upAt, upLeft, downAt, downLeft []int64
	for _, k := range sorted(d.cells, cellKey.cmp) {
		v := d.cells[k]
		if v[0] < 0 || v[1] < 0 {
			down.add(k.ord, k.c)
			downAt, downLeft = append(downAt, v[0]), append(downLeft, v[1])
		} else {
			up.add(k.ord, k.c)
			upAt, upLeft = append(upAt, v[0]), append(upLeft, v[1])
		}
	}
	if len(up.ords) > 0 {
		queue(`INSERT INTO step_cells AS c (ord, term_rank, school_code, stage, program_code, at_step, left_step)
			SELECT * FROM unnest($1::smallint[], $2::int[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[])
			ON CONFLICT (ord, term_rank, school_code, stage, program_code)
			DO UPDATE SET at_step = c.at_step + EXCLUDED.at_step, left_step = c.left_step + EXCLUDED.left_step`, -1, "step cells",
			up.ords, up.terms, up.schools, up.stages, up.program, upAt, upLeft)
	}
	if len(down.ords) > 0 {
		queue(`UPDATE step_cells c SET at_step = c.at_step + x.a, left_step = c.left_step + x.l
			FROM unnest($1::smallint[], $2::int[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[]) x (o, t, sc, st, pc, a, l)
			WHERE c.ord = x.o AND c.term_rank = x.t AND c.school_code = x.sc AND c.stage = x.st AND c.program_code = x.pc`,
			len(down.ords), "step cells", down.ords, down.terms, down.schools, down.stages, down.program, downAt, downLeft)
	}
	var dUp, dDown cellCols
	var dUpB, dDownB []int
	var dUpV, dDownV []int64
	for _, k := range sorted(d.durations, durationKey.cmp) {
		v := d.durations[k]
		if v < 0 {
			dDown.add(k.ord, k.c)
			dDownB, dDownV = append(dDownB, k.bucket), append(dDownV, v)
		} else {
			dUp.add(k.ord, k.c)
			dUpB, dUpV = append(dUpB, k.bucket), append(dUpV, v)
		}
	}
	if len(dUp.ords) > 0 {
		queue(`INSERT INTO step_durations AS d (ord, term_rank, school_code, stage, program_code, bucket, visits)
			SELECT * FROM unnest($1::smallint[], $2::int[], $3::text[], $4::text[], $5::text[], $6::int[], $7::bigint[])
			ON CONFLICT (ord, term_rank, school_code, stage, program_code, bucket) DO UPDATE SET visits = d.visits + EXCLUDED.visits`,
			-1, "step durations", dUp.ords, dUp.terms, dUp.schools, dUp.stages, dUp.program, dUpB, dUpV)
	}
	if len(dDown.ords) > 0 {
		queue(`UPDATE step_durations d SET visits = d.visits + x.v
			FROM unnest($1::smallint[], $2::int[], $3::text[], $4::text[], $5::text[], $6::int[], $7::bigint[]) x (o, t, sc, st, pc, b, v)
			WHERE d.ord = x.o AND d.term_rank = x.t AND d.school_code = x.sc AND d.stage = x.st AND d.program_code = x.pc AND d.bucket = x.b`,
			len(dDown.ords), "step durations", dDown.ords, dDown.terms, dDown.schools, dDown.stages, dDown.program, dDownB, dDownV)
	}
	if len(d.reasons) > 0 {
		var rc cellCols
		var steps, reasons []string
		var n []int64
		for _, k := range sorted(d.reasons, reasonKey.cmp) {
			v := d.reasons[k]
			rc.add(k.ord, k.c)
			steps, reasons, n = append(steps, k.step), append(reasons, k.reason), append(n, v)
		}
		queue(`INSERT INTO step_reasons AS r (ord, term_rank, school_code, stage, program_code, step, reason, visits)
			SELECT * FROM unnest($1::smallint[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[])
			ON CONFLICT (ord, term_rank, school_code, stage, program_code, reason) DO UPDATE SET visits = r.visits + EXCLUDED.visits`,
			-1, "step reasons", rc.ords, rc.terms, rc.schools, rc.stages, rc.program, steps, reasons, n)
	}
	if len(d.cellsLog) > 0 {
		var lc cellCols
		var hours, at, gone []int64
		for _, k := range sorted(d.cellsLog, func(a, b cellHour) int { return cmp.Or(a.cmp(b.cellKey), cmp.Compare(a.hour, b.hour)) }) {
			v := d.cellsLog[k]
			lc.add(k.ord, k.c)
			hours, at, gone = append(hours, k.hour), append(at, v[0]), append(gone, v[1])
		}
		queue(`INSERT INTO step_cells_log AS l (ord, term_rank, school_code, stage, program_code, at_hour, at_step, left_step)
			SELECT * FROM unnest($1::smallint[], $2::int[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::bigint[])
			ON CONFLICT (ord, term_rank, school_code, stage, program_code, at_hour)
			DO UPDATE SET at_step = l.at_step + EXCLUDED.at_step, left_step = l.left_step + EXCLUDED.left_step`, -1, "step log",
			lc.ords, lc.terms, lc.schools, lc.stages, lc.program, hours, at, gone)
	}
	if len(d.durationsLog) > 0 {
		var lc cellCols
		var buckets []int
		var hours, n []int64
		for _, k := range sorted(d.durationsLog, func(a, b durationHour) int {
			return cmp.Or(a.cmp(b.durationKey), cmp.Compare(a.hour, b.hour))
		}) {
			v := d.durationsLog[k]
			lc.add(k.ord, k.c)
			buckets, hours, n = append(buckets, k.bucket), append(hours, k.hour), append(n, v)
		}
		queue(`INSERT INTO step_durations_log AS l (ord, term_rank, school_code, stage, program_code, bucket, at_hour, visits)
			SELECT * FROM unnest($1::smallint[], $2::int[], $3::text[], $4::text[], $5::text[], $6::int[], $7::bigint[], $8::bigint[])
			ON CONFLICT (ord, term_rank, school_code, stage, program_code, bucket, at_hour) DO UPDATE SET visits = l.visits + EXCLUDED.visits`,
			-1, "step log", lc.ords, lc.terms, lc.schools, lc.stages, lc.program, buckets, hours, n)
	}
	if len(d.reasonsLog) > 0 {
		var lc cellCols
		var steps, reasons []string
		var hours, n []int64
		for _, k := range sorted(d.reasonsLog, func(a, b reasonHour) int { return cmp.Or(a.cmp(b.reasonKey), cmp.Compare(a.hour, b.hour)) }) {
			v := d.reasonsLog[k]
			lc.add(k.ord, k.c)
			steps, reasons, hours, n = append(steps, k.step), append(reasons, k.reason), append(hours, k.hour), append(n, v)
		}
		queue(`INSERT INTO step_reasons_log AS l (ord, term_rank, school_code, stage, program_code, step, reason, at_hour, visits)
			SELECT * FROM unnest($1::smallint[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::bigint[])
			ON CONFLICT (ord, term_rank, school_code, stage, program_code, reason, at_hour) DO UPDATE SET visits = l.visits + EXCLUDED.visits`,
			-1, "step log", lc.ords, lc.terms, lc.schools, lc.stages, lc.program, steps, reasons, hours, n)
	}
	res := send(ctx, tx, b)
	for _, check := range checks {
		tag, err := res.Exec()
		if err == nil {
			err = check(tag.RowsAffected())
		}
		if err != nil {
			_ = res.Close()
			return fmt.Errorf("step aggregates: %w", err)
		}
	}
	return res.Close()
}

// StepPipeline keeps many step events (and the submissions they follow)
// in order with one round trip: their statements are sent together, each
// seeing the ones before it, and the aggregates' changes summed in d.
type StepPipeline struct {
	b     pgx.Batch
	items []pipelined
}

type pipelined struct {
	app  bool // an application's insert, not a step
	e    StepEntered
	ord  int
	what string
}

// Len is how many statements are queued.
func (p *StepPipeline) Len() int { return len(p.items) }

// Application queues the insert of a, once.
func (p *StepPipeline) Application(a Application) error {
	sql, args, err := applicationInsert(a)
	if err != nil {
		return err
	}
	p.b.Queue(sql, args...)
	p.items = append(p.items, pipelined{app: true, what: "insert application " + a.ID})
	return nil
}

// Step queues the visit e starts (InsertStep).
func (p *StepPipeline) Step(e StepEntered) error {
	ord := domain.StepOrder(e.Step)
	if ord == 0 {
		return fmt.Errorf("unknown step %q", e.Step)
	}
	p.b.Queue(stepSQL, stepArgs(e, ord)...)
	p.items = append(p.items, pipelined{e: e, ord: ord})
	return nil
}

// Run sends the queued statements in tx and sums the aggregates' changes
// in d. ErrUnknownApplication for a step whose application is not known
// (nor inserted before it in the pipeline).
func (p *StepPipeline) Run(ctx context.Context, tx db.Tx, d *StepDeltas) error {
	if len(p.items) == 0 {
		return nil
	}
	res := send(ctx, tx, &p.b)
	for _, it := range p.items {
		if it.app {
			if _, err := res.Exec(); err != nil {
				_ = res.Close()
				return fmt.Errorf("%s: %w", it.what, err)
			}
			continue
		}
		v, err := scanStep(res.QueryRow(), it.e)
		if err == nil {
			err = d.add(it.e, it.ord, v)
		}
		if err != nil {
			_ = res.Close()
			return err
		}
	}
	return res.Close()
}
