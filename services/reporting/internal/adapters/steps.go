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
	"github.com/edubureau/studentaid/services/reporting/internal/domain"
)

// TopReasons is how many reasons of each rejecting step are listed by
// name; the rest are counted together as other.
const TopReasons = 50

// StepEntered is an application entering a step: the event that moved it.
type StepEntered struct {
	ApplicationID, Step, Reason, EventID string
	At                                   time.Time
}

// InsertStep keeps the visit e starts, once, between the application's
// visits before and after it by (entered_at, step order): the visit before
// now ends at e.At, and e's visit ends where the next one starts (it stays
// the current step only when no later one is known). So an event that
// arrives late never moves the application back. ErrUnknownApplication
// before the application's submission is known.
func InsertStep(ctx context.Context, tx db.Tx, e StepEntered) error {
	ord := domain.StepOrder(e.Step)
	if ord == 0 {
		return fmt.Errorf("unknown step %q", e.Step)
	}
	v, err := scanStep(tx.QueryRow(ctx, stepSQL, stepArgs(e, ord)...), e)
	if err != nil {
		return err
	}
	d := NewStepDeltas()
	if err := d.add(e, ord, v); err != nil {
		return err
	}
	return d.Flush(ctx, tx)
}

// stepCell is an application's selection cell, which all its visits
// share.
type stepCell struct {
	termRank               int
	school, stage, program string
}

// RebuildStepAggregates replaces the step aggregates by those computed
// from the visits (rebuild_step_aggregates() of migration 006,
// rebuild_step_logs() of 008).
func RebuildStepAggregates(ctx context.Context, tx db.Tx) error {
	if _, err := tx.Exec(ctx, `SELECT rebuild_step_aggregates()`); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `SELECT rebuild_step_logs()`)
	return err
}

// RawSteps computes the selection's applications by step as of its
// instant from the visits alone: how many are at each step, and the median
// time spent in each step by the visits that ended by then; and the
// school's and bureau's rejections by reason. Steps reads the same from
// the aggregates; this is its reference in the tests and its fallback for
// an instant long before now.
func RawSteps(ctx context.Context, q db.Querier, s Selection) ([]domain.StepFigure, []domain.Rejection, error) {
	var w db.Where
	asOf := w.Arg(s.AsOf)
	s.where(&w, "")
	out := make([]domain.StepFigure, len(domain.Steps))
	for i, st := range domain.Steps {
		out[i].Step = st
	}
	// By the step's order, not its name: sorting and grouping small
	// integers is cheaper than text in the locale's collation.
	byStep := func(ord int) *domain.StepFigure {
		if ord < 1 || ord > len(out) {
			return nil
		}
		return &out[ord-1]
	}
	// One pass: the visits entered by the instant, at the step then or
	// left by then.
	rows, err := q.Query(ctx, `SELECT ord, count(*) FILTER (WHERE left_at IS NULL OR left_at > `+asOf+`),
		count(*) FILTER (WHERE left_at <= `+asOf+`),
		percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) FILTER (WHERE left_at <= `+asOf+`)
		FROM step_visits`+w.SQL()+` AND entered_at <= `+asOf+` GROUP BY ord`, w.Args...)
	if err != nil {
		return nil, nil, fmt.Errorf("applications by step: %w", err)
	}
	for rows.Next() {
		var ord int
		var now, left int64
		var median *float64
		if err := rows.Scan(&ord, &now, &left, &median); err != nil {
			rows.Close()
			return nil, nil, err
		}
		if f := byStep(ord); f != nil {
			f.Applications, f.Left = now, left
			if median != nil {
				f.MedianSeconds = *median
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	// The top reasons of each step by count (ties by reason), the rest as
	// one line.
	top := strconv.Itoa(TopReasons)
	rows, err = q.Query(ctx, `SELECT step, reason, other, sum(n)::bigint FROM (
		  SELECT step, n, rn > `+top+` AS other, CASE WHEN rn > `+top+` THEN '' ELSE reason END AS reason FROM (
		    SELECT step, reason, n, row_number() OVER (PARTITION BY step ORDER BY n DESC, reason) AS rn
		    FROM (SELECT step, reason, count(*) AS n FROM step_visits`+w.SQL()+` AND entered_at <= `+asOf+`
		          AND ord IN (`+strconv.Itoa(domain.StepOrder(domain.StepSchoolRejected))+`, `+
		strconv.Itoa(domain.StepOrder(domain.StepBureauRejected))+`) GROUP BY 1, 2) r) ranked) t
		GROUP BY step, reason, other
		ORDER BY step = '`+domain.StepBureauRejected+`', other, sum(n) DESC, reason`, w.Args...)
	if err != nil {
		return nil, nil, fmt.Errorf("rejections by reason: %w", err)
	}
	rejections, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Rejection, error) {
		var j domain.Rejection
		err := r.Scan(&j.Step, &j.Reason, &j.Other, &j.Count)
		return j, err
	})
	if err != nil {
		return nil, nil, err
	}
	return out, rejections, nil
}

// maxChangedVisits is how many visits entered or left between an answer's
// instant and the aggregates' own instant Steps corrects from their rows;
// beyond it the answer is read from the hourly logs, or is RawSteps
// (exact, slower) when the instant's hour has more than that on both
// sides of it.
const maxChangedVisits = 50_000

// maxLaterVisits: an answer as of an instant with at most this many
// visits entered or left after it corrects the aggregates as of now;
// past it, the aggregates as of one end of the instant's hour (the logs).
const maxLaterVisits = 5_000

// Steps computes what RawSteps does from the step aggregates. For an
// earlier instant it corrects them by the visits entered or left after it
// (none for an answer as of now) or, with more of those, starts from the
// aggregates as of one end of the instant's hour (the logs of migration
// 008) and corrects them by the visits entered or left between that end
// and the instant. Counts and the histogram of durations are sums over
// visits; a median is the value at its rank, found in the histogram's
// bucket and then looked up exactly among that bucket's visits in order
// of duration (docs/reporting.md, "Steps kept ahead").
func Steps(ctx context.Context, q db.Querier, s Selection) ([]domain.StepFigure, []domain.Rejection, error) {
	later, err := visitsBetween(ctx, q, s, s.AsOf, endOfTime, maxLaterVisits)
	if err != nil {
		return nil, nil, err
	}
	if len(later) <= maxLaterVisits {
		return stepsFrom(ctx, q, s, 0, later, -1)
	}
	st, rej, ok, err := StepsByHours(ctx, q, s)
	if err != nil || ok {
		return st, rej, err
	}
	return RawSteps(ctx, q, s)
}

// StepsByHours is Steps read from the logs: the step aggregates as of the
// end of the hour before the instant's, or of the instant's own hour,
// whichever has fewer visits entered or left between it and the instant,
// corrected by those visits. False when both have more than
// maxChangedVisits.
func StepsByHours(ctx context.Context, q db.Querier, s Selection) ([]domain.StepFigure, []domain.Rejection, bool, error) {
	h := hourOf(s.AsOf)
	var best []visitChange
	var bound int64
	var sign int64
	found := false
	for _, limit := range []int{firstLook, maxChangedVisits} {
		for _, side := range []struct {
			bound int64
			base  time.Time
		}{{h, lastBefore(hourStart(h))}, {h + 1, lastBefore(hourStart(h + 1))}} {
			lo, hi, sg := side.base, s.AsOf, int64(1)
			if hi.Before(lo) {
				lo, hi, sg = hi, lo, -1
			}
			ch, err := visitsBetween(ctx, q, s, lo, hi, limit)
			if err != nil {
				return nil, nil, false, err
			}
			if len(ch) <= limit && (!found || len(ch) < len(best)) {
				best, bound, sign, found = ch, side.bound, sg, true
			}
			if found && len(best) == 0 {
				break
			}
		}
		if found {
			break
		}
	}
	if !found {
		return nil, nil, false, nil
	}
	st, rej, err := stepsFrom(ctx, q, s, bound, best, sign)
	return st, rej, err == nil, err
}

// visitChange is a visit that entered or left its step in a window of
// time.
type visitChange struct {
	ord, bucket   int
	entered, left bool
	step, reason  string
}

// visitsBetween lists the selection's visits entered or left in (lo, hi];
// more than limit of them return limit+1. Each part (entered in the
// window; left in it, entered before) reads its instant's index in order
// and stops at limit+1 rows.
func visitsBetween(ctx context.Context, q db.Querier, s Selection, lo, hi time.Time, limit int) ([]visitChange, error) {
	if !hi.After(lo) {
		return nil, nil
	}
	var out []visitChange
	for _, col := range []string{"entered_at", "left_at"} {
		var w db.Where
		l, u := w.Arg(lo), w.Arg(hi)
		s.where(&w, "")
		in := func(col string) string { return "(" + col + " > " + l + " AND " + col + " <= " + u + ")" }
		cond := in("entered_at")
		if col == "left_at" {
			cond = in("left_at") + " AND entered_at <= " + l
		}
		rows, err := q.Query(ctx, `SELECT ord, `+in("entered_at")+`, coalesce(`+in("left_at")+`, false), coalesce(bucket, 0), step, reason
			FROM step_visits`+w.SQL()+` AND `+cond+` ORDER BY `+col+` LIMIT `+strconv.Itoa(limit+1), w.Args...)
		if err != nil {
			return nil, fmt.Errorf("visits between %s and %s: %w", lo, hi, err)
		}
		part, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (visitChange, error) {
			var c visitChange
			err := r.Scan(&c.ord, &c.entered, &c.left, &c.bucket, &c.step, &c.reason)
			return c, err
		})
		if err != nil {
			return nil, fmt.Errorf("visits between %s and %s: %w", lo, hi, err)
		}
		out = append(out, part...)
		if len(out) > limit {
			return out, nil
		}
	}
	return out, nil
}

// stepsFrom reads the step aggregates (bound 0: as of now; else the logs
// of the hours before bound) and adds sign × the changes of the visits
// that entered or left between their instant and the selection's.
func stepsFrom(ctx context.Context, q db.Querier, s Selection, bound int64, changes []visitChange, sign int64) ([]domain.StepFigure, []domain.Rejection, error) {
	n := len(domain.Steps)
	at, left := make([]int64, n+1), make([]int64, n+1)
	hist := make([]map[int]int64, n+1) // by step order, bucket
	for i := range hist {
		hist[i] = map[int]int64{}
	}
	var sel db.Where
	s.where(&sel, "")
	cells, durations := "step_cells", "step_durations"
	if bound != 0 {
		cells, durations = "step_cells_log", "step_durations_log"
		sel.Add("at_hour < ?", bound)
	}
	rows, err := q.Query(ctx, `SELECT ord, sum(at_step)::bigint, sum(left_step)::bigint FROM `+cells+sel.SQL()+` GROUP BY ord`, sel.Args...)
	if err != nil {
		return nil, nil, fmt.Errorf("step cells: %w", err)
	}
	for rows.Next() {
		var ord int
		var a, l int64
		if err := rows.Scan(&ord, &a, &l); err != nil {
			rows.Close()
			return nil, nil, err
		}
		if ord >= 1 && ord <= n {
			at[ord], left[ord] = a, l
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	rows, err = q.Query(ctx, `SELECT ord, bucket, sum(visits)::bigint FROM `+durations+sel.SQL()+` GROUP BY ord, bucket`, sel.Args...)
	if err != nil {
		return nil, nil, fmt.Errorf("step durations: %w", err)
	}
	for rows.Next() {
		var ord, bucket int
		var v int64
		if err := rows.Scan(&ord, &bucket, &v); err != nil {
			rows.Close()
			return nil, nil, err
		}
		if ord >= 1 && ord <= n {
			hist[ord][bucket] += v
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	// A visit that entered in the window is at its step from then (and a
	// rejection counted); one that left in it has left with its duration.
	var rOrd []int
	var rStep, rReason []string
	var rSign []int64
	for _, c := range changes {
		if c.ord < 1 || c.ord > n {
			continue
		}
		if c.entered {
			at[c.ord] += sign
			if c.ord == domain.StepOrder(domain.StepSchoolRejected) || c.ord == domain.StepOrder(domain.StepBureauRejected) {
				rOrd, rStep, rReason, rSign = append(rOrd, c.ord), append(rStep, c.step), append(rReason, c.reason), append(rSign, sign)
			}
		}
		if c.left {
			at[c.ord] -= sign
			left[c.ord] += sign
			hist[c.ord][c.bucket] += sign
		}
	}
	out := make([]domain.StepFigure, n)
	for i, st := range domain.Steps {
		ord := i + 1
		out[i] = domain.StepFigure{Step: st, Applications: at[ord], Left: left[ord]}
		if left[ord] <= 0 {
			continue
		}
		// percentile_cont(0.5) as PostgreSQL computes it: the values at
		// ranks floor and ceil of (left − 1) / 2, interpolated.
		lo, hi := (left[ord]-1)/2, left[ord]/2
		vlo, vhi, err := valuesAt(ctx, q, s, ord, hist[ord], lo, hi)
		if err != nil {
			return nil, nil, err
		}
		out[i].MedianSeconds = vlo
		if hi > lo {
			out[i].MedianSeconds = vlo + 0.5*(vhi-vlo)
		}
	}
	rejections, err := reasonsAhead(ctx, q, s, bound, rOrd, rStep, rReason, rSign)
	if err != nil {
		return nil, nil, err
	}
	return out, rejections, nil
}

// valuesAt returns the durations at ranks lo and hi = lo or lo + 1 (from
// 0) of step ord's visits in the selection that left by its instant: the
// histogram names the bucket of each, then the bucket's visits are read in
// order of duration.
func valuesAt(ctx context.Context, q db.Querier, s Selection, ord int, hist map[int]int64, lo, hi int64) (float64, float64, error) {
	buckets := slices.Sorted(maps.Keys(hist))
	find := func(rank int64) (bucket int, offset int64, ok bool) {
		var before int64
		for _, b := range buckets {
			if n := hist[b]; n > 0 {
				if rank < before+n {
					return b, rank - before, true
				}
				before += n
			}
		}
		return 0, 0, false
	}
	bLo, oLo, ok := find(lo)
	if !ok {
		return 0, 0, fmt.Errorf("median of step %d: rank %d beyond the histogram: %w", ord, lo, errOutOfStep)
	}
	bHi, oHi, ok := find(hi)
	if !ok {
		return 0, 0, fmt.Errorf("median of step %d: rank %d beyond the histogram: %w", ord, hi, errOutOfStep)
	}
	read := func(bucket int, offset int64, limit int) ([]float64, error) {
		var w db.Where
		asOf := w.Arg(s.AsOf)
		w.Add("ord = ?", ord)
		w.Add("bucket = ?", bucket)
		s.where(&w, "")
		rows, err := q.Query(ctx, `SELECT seconds FROM step_visits`+w.SQL()+` AND left_at <= `+asOf+` AND entered_at <= `+asOf+
			` ORDER BY seconds OFFSET `+strconv.FormatInt(offset, 10)+` LIMIT `+strconv.Itoa(limit), w.Args...)
		if err != nil {
			return nil, fmt.Errorf("median of step %d: %w", ord, err)
		}
		return pgx.CollectRows(rows, pgx.RowTo[float64])
	}
	limit := 1
	if bHi == bLo {
		limit = int(hi - lo + 1)
	}
	v, err := read(bLo, oLo, limit)
	if err != nil {
		return 0, 0, err
	}
	if len(v) < limit {
		return 0, 0, fmt.Errorf("median of step %d: bucket %d holds fewer visits than counted: %w", ord, bLo, errOutOfStep)
	}
	if bHi == bLo {
		return v[0], v[len(v)-1], nil
	}
	w, err := read(bHi, oHi, 1)
	if err != nil {
		return 0, 0, err
	}
	if len(w) < 1 {
		return 0, 0, fmt.Errorf("median of step %d: bucket %d holds fewer visits than counted: %w", ord, bHi, errOutOfStep)
	}
	return v[0], w[0], nil
}

// reasonsAhead is RawSteps' rejections by reason read from step_reasons
// (bound 0) or the logs of the hours before bound, plus the rejections
// entered between their instant and the selection's (given by step order,
// step, reason and sign), ranked by the same statement.
func reasonsAhead(ctx context.Context, q db.Querier, s Selection, bound int64, ords []int, steps, reasons []string, signs []int64) ([]domain.Rejection, error) {
	var w db.Where
	s.where(&w, "")
	table := "step_reasons"
	if bound != 0 {
		table = "step_reasons_log"
		w.Add("at_hour < ?", bound)
	}
	later := `SELECT * FROM unnest(` + w.Arg(ords) + `::int[], ` + w.Arg(steps) + `::text[], ` + w.Arg(reasons) + `::text[], ` +
		w.Arg(signs) + `::bigint[]) x (ord, step, reason, sign)`
	top := strconv.Itoa(TopReasons)
	rows, err := q.Query(ctx, `SELECT step, reason, other, sum(n)::bigint FROM (
		  SELECT step, n, rn > `+top+` AS other, CASE WHEN rn > `+top+` THEN '' ELSE reason END AS reason FROM (
		    SELECT step, reason, n, row_number() OVER (PARTITION BY step ORDER BY n DESC, reason) AS rn
		    FROM (SELECT step, reason, sum(n) AS n FROM (
		            SELECT step, reason, visits AS n FROM `+table+w.SQL()+`
		            UNION ALL SELECT step, reason, sign FROM (`+later+`) l) v
		          GROUP BY 1, 2 HAVING sum(n) > 0) r) ranked) t
		GROUP BY step, reason, other
		ORDER BY step = '`+domain.StepBureauRejected+`', other, sum(n) DESC, reason`, w.Args...)
	if err != nil {
		return nil, fmt.Errorf("rejections by reason: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Rejection, error) {
		var j domain.Rejection
		err := r.Scan(&j.Step, &j.Reason, &j.Other, &j.Count)
		return j, err
	})
}
