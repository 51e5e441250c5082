package adapters

import (
	"context"
	"errors"
	"fmt"
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
	var termRank int
	var school, stage, program string
	// One event of an application at a time: its visits are read and
	// moved together.
	err := tx.QueryRow(ctx, `SELECT term_rank, school_code, stage, program_code FROM applications
		WHERE application_id = $1 FOR NO KEY UPDATE`, e.ApplicationID).Scan(&termRank, &school, &stage, &program)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w %s (%s)", ErrUnknownApplication, e.ApplicationID, e.Step)
	}
	if err != nil {
		return err
	}
	tag, err := tx.Exec(ctx, `INSERT INTO step_visits (application_id, entered_at, ord, step, left_at, reason, event_id,
		term_rank, school_code, stage, program_code)
		SELECT $1, $2, $3, $4, (SELECT entered_at FROM step_visits WHERE application_id = $1 AND (entered_at, ord) > ($2, $3)
		                        ORDER BY entered_at, ord LIMIT 1), $5, $6, $7, $8, $9, $10
		ON CONFLICT DO NOTHING`, e.ApplicationID, e.At, ord, e.Step, e.Reason, e.EventID, termRank, school, stage, program)
	if err != nil {
		return fmt.Errorf("insert step %s of %s: %w", e.Step, e.ApplicationID, err)
	}
	if tag.RowsAffected() == 0 {
		return nil // kept before
	}
	_, err = tx.Exec(ctx, `UPDATE step_visits SET left_at = $2 WHERE (application_id, entered_at, ord) = (
		SELECT application_id, entered_at, ord FROM step_visits WHERE application_id = $1 AND (entered_at, ord) < ($2, $3)
		ORDER BY entered_at DESC, ord DESC LIMIT 1)`, e.ApplicationID, e.At, ord)
	if err != nil {
		return fmt.Errorf("end the step before %s of %s: %w", e.Step, e.ApplicationID, err)
	}
	return nil
}

// Steps computes the selection's applications by step as of its instant:
// how many are at each step, and the median time spent in each step by
// the visits that ended by then; and the school's and bureau's rejections
// by reason.
func Steps(ctx context.Context, q db.Querier, s Selection) ([]domain.StepFigure, []domain.Rejection, error) {
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
