package adapters

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/db"
)

// fact is one payment as the aggregates count it: its selection cells, its
// amount and what was recovered against it.
type fact struct {
	termRank                                   int
	program, school, stage, shares, studentIDH string
	government, loan                           bool
	amountFen, recoveredFen                    int64
}

func (f fact) net() int64 { return f.amountFen - f.recoveredFen }

// live: a grant payment still paid after refunds counts in persons and
// person-times.
func (f fact) live() bool { return !f.loan && f.net() > 0 }

const factSelect = `SELECT term_rank, program_code, school_code, stage, shares_bp::text, student_id_hash,
	government_total, loan, amount_fen, recovered_fen FROM payment_facts WHERE payment_id = $1`

// loadFact reads a recorded payment's fact, or false when the read model
// has no such payment (yet).
func loadFact(ctx context.Context, tx db.Tx, paymentID string) (fact, bool, error) {
	var f fact
	err := tx.QueryRow(ctx, factSelect, paymentID).Scan(&f.termRank, &f.program, &f.school, &f.stage, &f.shares, &f.studentIDH,
		&f.government, &f.loan, &f.amountFen, &f.recoveredFen)
	if errors.Is(err, pgx.ErrNoRows) {
		return f, false, nil
	}
	if err != nil {
		return f, false, fmt.Errorf("payment %s: %w", paymentID, err)
	}
	return f, true, nil
}

// moveFact replaces a payment's contribution to the aggregates: before
// (nil for a new payment) is taken out, after put in. It runs in the
// transaction that records the change, so the aggregates always equal
// rebuild_aggregates() of the rows.
func moveFact(ctx context.Context, tx db.Tx, w *Writes, before, after *fact) error {
	if before != nil {
		tag, err := tx.Exec(ctx, `UPDATE paid_groups SET payments = payments - 1, gross_fen = gross_fen - $9, recovered_fen = recovered_fen - $10
			WHERE term_rank = $1 AND program_code = $2 AND school_code = $3 AND stage = $4 AND government_total = $5 AND loan = $6
			  AND shares_bp = $7::jsonb AND net_fen = $8`,
			before.termRank, before.program, before.school, before.stage, before.government, before.loan, before.shares, before.net(),
			before.amountFen, before.recoveredFen)
		if err != nil {
			return fmt.Errorf("paid groups: %w", err)
		}
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("paid groups: %w", errOutOfStep)
		}
	}
	if after != nil {
		if _, err := tx.Exec(ctx, paidGroupsAdd, paidGroupsArgs(*after)...); err != nil {
			return fmt.Errorf("paid groups: %w", err)
		}
	}
	switch {
	case before != nil && before.live() && (after == nil || !after.live()):
		return personLeaves(ctx, tx, w, *before)
	case after != nil && after.live() && (before == nil || !before.live()):
		return personCounts(ctx, tx, w, *after)
	}
	return nil
}

// paidGroupsAdd puts a payment's fact in paid_groups (paidGroupsArgs).
const paidGroupsAdd = `INSERT INTO paid_groups AS g (term_rank, program_code, school_code, stage, government_total, loan,
	shares_bp, net_fen, payments, gross_fen, recovered_fen) VALUES ($1,$2,$3,$4,$5,$6,$7::jsonb,$8,1,$9,$10)
	ON CONFLICT (term_rank, program_code, school_code, stage, government_total, loan, shares_bp, net_fen) DO UPDATE
	SET payments = g.payments + 1, gross_fen = g.gross_fen + EXCLUDED.gross_fen,
	    recovered_fen = g.recovered_fen + EXCLUDED.recovered_fen`

func paidGroupsArgs(f fact) []any {
	return []any{f.termRank, f.program, f.school, f.stage, f.government, f.loan, f.shares, f.net(), f.amountFen, f.recoveredFen}
}

// errOutOfStep: the aggregates lack a payment's contribution, which
// rebuild_aggregates() repairs.
var errOutOfStep = errors.New("aggregates out of step with the rows")

// personCounts counts a payment that became live in its student's
// person_terms row.
func personCounts(ctx context.Context, tx db.Tx, w *Writes, f fact) error {
	var live int
	if err := tx.QueryRow(ctx, personTermsAdd, personTermsArgs(f)...).Scan(&live); err != nil {
		return fmt.Errorf("person terms: %w", err)
	}
	if live != 1 {
		return nil // another payment of the same cell keeps the student counted
	}
	if err := moveRuns(ctx, tx, w, f, 1); err != nil {
		return err
	}
	return movePeriods(ctx, tx, w, f, 1)
}

// personTermsAdd counts a live payment in its person_terms row and
// returns the row's live payments.
const personTermsAdd = `INSERT INTO person_terms AS t (term_rank, program_code, school_code, stage, government_total, student_id_hash, live)
	VALUES ($1,$2,$3,$4,$5,$6,1) ON CONFLICT (program_code, term_rank, school_code, stage, government_total, student_id_hash)
	DO UPDATE SET live = t.live + 1 RETURNING live`

func personTermsArgs(f fact) []any {
	return []any{f.termRank, f.program, f.school, f.stage, f.government, f.studentIDH}
}

// personLeaves uncounts a payment no longer live (refunded in full).
func personLeaves(ctx context.Context, tx db.Tx, w *Writes, f fact) error {
	var live int
	err := tx.QueryRow(ctx, `UPDATE person_terms SET live = live - 1
		WHERE program_code = $1 AND term_rank = $2 AND school_code = $3 AND stage = $4 AND government_total = $5 AND student_id_hash = $6
		RETURNING live`,
		f.program, f.termRank, f.school, f.stage, f.government, f.studentIDH).Scan(&live)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("person terms: %w", errOutOfStep)
	}
	if err != nil {
		return fmt.Errorf("person terms: %w", err)
	}
	if live != 0 {
		return nil
	}
	if err := moveRuns(ctx, tx, w, f, -1); err != nil {
		return err
	}
	return movePeriods(ctx, tx, w, f, -1)
}

// movePeriods moves period_persons after f's person_terms row went from 0
// to 1 (delta 1) or from 1 to 0 (delta -1): in each counted cell (the term
// and its year; all stages and f's; all programs and f's) the student is
// one more person when this row is now their only live one there, one less
// when they have none left.
func movePeriods(ctx context.Context, tx db.Tx, w *Writes, f fact, delta int64) error {
	n, err := scanPeriods(tx.QueryRow(ctx, periodsSQL, periodsArgs(f)...))
	if err != nil {
		return err
	}
	queuePeriods(w, f, n, delta)
	return nil
}

// periodsSQL counts a student's live person_terms rows in each cell
// period_persons counts them in (periodsArgs; scanPeriods).
const periodsSQL = `SELECT
	count(*) FILTER (WHERE term_rank = $3), count(*) FILTER (WHERE term_rank = $3 AND government_total),
	count(*) FILTER (WHERE term_rank = $3 AND program_code = $4), count(*) FILTER (WHERE term_rank = $3 AND program_code = $4 AND government_total),
	count(*) FILTER (WHERE term_rank = $3 AND stage = $5), count(*) FILTER (WHERE term_rank = $3 AND stage = $5 AND government_total),
	count(*) FILTER (WHERE term_rank = $3 AND stage = $5 AND program_code = $4),
	count(*) FILTER (WHERE term_rank = $3 AND stage = $5 AND program_code = $4 AND government_total),
	count(*), count(*) FILTER (WHERE government_total),
	count(*) FILTER (WHERE program_code = $4), count(*) FILTER (WHERE program_code = $4 AND government_total),
	count(*) FILTER (WHERE stage = $5), count(*) FILTER (WHERE stage = $5 AND government_total),
	count(*) FILTER (WHERE stage = $5 AND program_code = $4), count(*) FILTER (WHERE stage = $5 AND program_code = $4 AND government_total)
	FROM person_terms WHERE student_id_hash = $1 AND term_rank BETWEEN $2 AND $2 + 1 AND live > 0`

func periodsArgs(f fact) []any {
	return []any{f.studentIDH, f.termRank / 2 * 2, f.termRank, f.program, f.stage}
}

func scanPeriods(row pgx.Row) ([16]int64, error) {
	var n [16]int64
	dest := make([]any, len(n))
	for i := range n {
		dest[i] = &n[i]
	}
	if err := row.Scan(dest...); err != nil {
		return n, fmt.Errorf("period persons: %w", err)
	}
	return n, nil
}

// queuePeriods queues the change of period_persons from the student's
// live rows in each cell (n, scanPeriods) after f's row moved by delta.
func queuePeriods(w *Writes, f fact, n [16]int64, delta int64) {
	year := f.termRank / 2 * 2
	var target int64 // the student's live rows in a cell when this row decides
	if delta > 0 {
		target = 1
	}
	var from, to []int
	var filters, programs []string
	var persons, gov []int64
	for pi, period := range [][2]int{{f.termRank, f.termRank}, {year, year + 1}} {
		for fi, filter := range []string{"", "stage:" + f.stage} {
			for gi, program := range []string{"", f.program} {
				i := pi*8 + fi*4 + gi*2
				var dp, dg int64
				if n[i] == target {
					dp = delta
				}
				if f.government && n[i+1] == target {
					dg = delta
				}
				if dp == 0 && dg == 0 {
					continue
				}
				from, to = append(from, period[0]), append(to, period[1])
				filters, programs = append(filters, filter), append(programs, program)
				persons, gov = append(persons, dp), append(gov, dg)
			}
		}
	}
	if len(from) == 0 {
		return
	}
	for i := range from {
		w.period(periodKey{from[i], to[i], filters[i], programs[i]}, persons[i], gov[i])
	}
}

// liveRow is one of a student's live person_terms rows.
type liveRow struct {
	term                   int
	school, stage, program string
	government             bool
}

// runKeys are the person_runs cells a live row counts in, within one
// school or all (”).
func (r liveRow) runKeys(school string) [][3]string {
	out := make([][3]string, 0, 8)
	for _, filter := range []string{"", "stage:" + r.stage} {
		out = append(out, [3]string{school, filter, ""}, [3]string{school, filter, r.program})
		if r.government {
			out = append(out, [3]string{school, filter, "*gov"}, [3]string{school, filter, "gov:" + r.program})
		}
	}
	return out
}

// runs are a student's counts in person_runs from their live rows at one
// school: per cell, each live term with the one before it (0 for none).
func runs(rows []liveRow, school string) map[[5]string]int64 {
	terms := map[[3]string]map[int]bool{}
	for _, r := range rows {
		if r.school != school {
			continue
		}
		for _, k := range r.runKeys(school) {
			if terms[k] == nil {
				terms[k] = map[int]bool{}
			}
			terms[k][r.term] = true
		}
	}
	out := map[[5]string]int64{}
	for k, set := range terms {
		prev := 0
		for _, t := range slices.Sorted(maps.Keys(set)) {
			out[[5]string{k[0], k[1], k[2], strconv.Itoa(t), strconv.Itoa(prev)}]++
			prev = t
		}
	}
	return out
}

// moveRuns moves person_runs and multi_school_students after f's
// person_terms row went from 0 to 1 live (delta 1) or from 1 to 0 (delta
// -1): the student's counts are those of their live rows now less those of
// their live rows before, at f's school and across all schools (the
// student's rows at other schools count alike before and after, except
// across all schools, where they are read too).
func moveRuns(ctx context.Context, tx db.Tx, w *Writes, f fact, delta int64) error {
	rows, err := tx.Query(ctx, liveRowsSQL, f.studentIDH)
	if err != nil {
		return fmt.Errorf("person runs: %w", err)
	}
	now, err := scanLiveRows(rows)
	if err != nil {
		return err
	}
	queueRuns(w, f, now, delta)
	return nil
}

// liveRowsSQL reads a student's live person_terms rows (scanLiveRows).
const liveRowsSQL = `SELECT term_rank, school_code, stage, program_code, government_total FROM person_terms
	WHERE student_id_hash = $1 AND live > 0`

func scanLiveRows(rows pgx.Rows) ([]liveRow, error) {
	now, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (liveRow, error) {
		var l liveRow
		err := r.Scan(&l.term, &l.school, &l.stage, &l.program, &l.government)
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("person runs: %w", err)
	}
	return now, nil
}

// queueRuns queues the change of person_runs and multi_school_students
// from the student's live rows now after f's row moved by delta.
func queueRuns(w *Writes, f fact, now []liveRow, delta int64) {
	row := liveRow{term: f.termRank, school: f.school, stage: f.stage, program: f.program, government: f.government}
	before := slices.Clone(now)
	if delta > 0 {
		before = slices.DeleteFunc(before, func(r liveRow) bool { return r == row })
	} else {
		before = append(before, row)
	}
	schools := map[string]bool{}
	for _, r := range now {
		schools[r.school] = true
	}
	// Across all schools: the same row counted over every school's rows.
	all := func(rs []liveRow) map[[5]string]int64 {
		cp := make([]liveRow, len(rs))
		for i, r := range rs {
			cp[i] = r
			cp[i].school = ""
		}
		return runs(cp, "")
	}
	diff := runs(now, f.school)
	for k, v := range runs(before, f.school) {
		diff[k] -= v
	}
	for k, v := range all(now) {
		diff[k] += v
	}
	for k, v := range all(before) {
		diff[k] -= v
	}
	var sc, filters, keys []string
	var terms, prevs []int
	var persons []int64
	for _, k := range slices.SortedFunc(maps.Keys(diff), func(a, b [5]string) int { return strings.Compare(strings.Join(a[:], "|"), strings.Join(b[:], "|")) }) {
		v := diff[k]
		if v == 0 {
			continue
		}
		t, _ := strconv.Atoi(k[3])
		p, _ := strconv.Atoi(k[4])
		sc, filters, keys, terms, prevs, persons = append(sc, k[0]), append(filters, k[1]), append(keys, k[2]),
			append(terms, t), append(prevs, p), append(persons, v)
	}
	for i := range sc {
		w.run(runKey{sc[i], filters[i], keys[i], terms[i], prevs[i]}, persons[i])
	}
	w.multiSchool(f.studentIDH, len(schools) > 1)
}

// RebuildAggregates replaces the aggregates by those computed from the
// rows (rebuild_aggregates() of migration 003, rebuild_person_runs() of
// 007, rebuild_paid_logs() of 008).
func RebuildAggregates(ctx context.Context, tx db.Tx) error {
	for _, sql := range []string{`SELECT rebuild_aggregates()`, `SELECT rebuild_person_runs()`, `SELECT rebuild_paid_logs()`} {
		if _, err := tx.Exec(ctx, sql); err != nil {
			return err
		}
	}
	return nil
}
