package adapters

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"strings"

	"github.com/edubureau/studentaid/pkg/db"
)

// Writes are the changes of the tables the consumer only adds to and never
// reads back (person_runs, multi_school_students, period_persons, and the
// hourly logs of payments), of one event or a batch of them: summed per
// key, or for multi_school_students the last word on each student, and
// written with one statement per table (Run). A key once touched is
// written even when its changes cancel, as the changes one by one would
// have left its row.
type Writes struct {
	runs    map[runKey]int64
	periods map[periodKey][2]int64
	paid    map[paidHour]paidVal
	runsLog map[runHour]int64
	multi   map[string]bool
	ever    map[string]bool
}

// runKey is a person_runs row's key.
type runKey struct {
	school, filter, program string
	term, prev              int
}

// periodKey is a period_persons row's key.
type periodKey struct {
	from, to        int
	filter, program string
}

// paidHour and runHour are the keys of paid_log's and person_runs_log's
// rows.
type paidHour struct {
	paidKey
	hour int64
}

type runHour struct {
	runKey
	hour int64
}

func (k runKey) cmp(o runKey) int {
	return cmp.Or(strings.Compare(k.school, o.school), strings.Compare(k.filter, o.filter), strings.Compare(k.program, o.program),
		cmp.Compare(k.term, o.term), cmp.Compare(k.prev, o.prev))
}

func (k periodKey) cmp(o periodKey) int {
	return cmp.Or(cmp.Compare(k.from, o.from), cmp.Compare(k.to, o.to), strings.Compare(k.filter, o.filter), strings.Compare(k.program, o.program))
}

func (k paidHour) cmp(o paidHour) int {
	a, b := k.paidKey, o.paidKey
	return cmp.Or(cmp.Compare(a.term, b.term), strings.Compare(a.program, b.program), strings.Compare(a.school, b.school),
		strings.Compare(a.stage, b.stage), cmp.Compare(boolInt(a.government), boolInt(b.government)), cmp.Compare(boolInt(a.loan), boolInt(b.loan)),
		strings.Compare(a.shares, b.shares), cmp.Compare(a.net, b.net), cmp.Compare(k.hour, o.hour))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (w *Writes) run(k runKey, persons int64) {
	if w.runs == nil {
		w.runs = map[runKey]int64{}
	}
	w.runs[k] += persons
}

func (w *Writes) period(k periodKey, persons, government int64) {
	if w.periods == nil {
		w.periods = map[periodKey][2]int64{}
	}
	v := w.periods[k]
	w.periods[k] = [2]int64{v[0] + persons, v[1] + government}
}

func (w *Writes) paidLog(k paidHour, v paidVal) {
	if w.paid == nil {
		w.paid = map[paidHour]paidVal{}
	}
	o := w.paid[k]
	w.paid[k] = paidVal{o.payments + v.payments, o.gross + v.gross, o.recovered + v.recovered}
}

func (w *Writes) runLog(k runHour, persons int64) {
	if w.runsLog == nil {
		w.runsLog = map[runHour]int64{}
	}
	w.runsLog[k] += persons
}

// multiSchool says whether a student now has live rows at two schools or
// more.
func (w *Writes) multiSchool(student string, multi bool) {
	if w.multi == nil {
		w.multi = map[string]bool{}
	}
	w.multi[student] = multi
}

func (w *Writes) everMultiSchool(student string) {
	if w.ever == nil {
		w.ever = map[string]bool{}
	}
	w.ever[student] = true
}

// Run writes w in tx, the statements sent together, and empties it.
func (w *Writes) Run(ctx context.Context, tx db.Tx) error {
	s := &stmts{}
	if n := len(w.runs); n > 0 {
		sc, filters, keys := make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		terms, prevs, persons := make([]int, 0, n), make([]int, 0, n), make([]int64, 0, n)
		for _, k := range sorted(w.runs, runKey.cmp) {
			v := w.runs[k]
			sc, filters, keys = append(sc, k.school), append(filters, k.filter), append(keys, k.program)
			terms, prevs, persons = append(terms, k.term), append(prevs, k.prev), append(persons, v)
		}
		s.exec("person runs", `INSERT INTO person_runs AS r (school_code, filter, program_key, term_rank, prev_rank, persons)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::int[], $6::bigint[])
			ON CONFLICT (school_code, filter, program_key, term_rank, prev_rank) DO UPDATE SET persons = r.persons + EXCLUDED.persons`,
			sc, filters, keys, terms, prevs, persons)
	}
	var multi, single []string
	for _, st := range slices.Sorted(maps.Keys(w.multi)) {
		if w.multi[st] {
			multi = append(multi, st)
		} else {
			single = append(single, st)
		}
	}
	if len(multi) > 0 {
		s.exec("multi-school students", `INSERT INTO multi_school_students (student_id_hash) SELECT * FROM unnest($1::text[])
			ON CONFLICT DO NOTHING`, multi)
	}
	if len(single) > 0 {
		s.exec("multi-school students", `DELETE FROM multi_school_students WHERE student_id_hash = ANY ($1::text[])`, single)
	}
	if n := len(w.periods); n > 0 {
		from, to := make([]int, 0, n), make([]int, 0, n)
		filters, programs := make([]string, 0, n), make([]string, 0, n)
		persons, gov := make([]int64, 0, n), make([]int64, 0, n)
		for _, k := range sorted(w.periods, periodKey.cmp) {
			v := w.periods[k]
			from, to, filters, programs = append(from, k.from), append(to, k.to), append(filters, k.filter), append(programs, k.program)
			persons, gov = append(persons, v[0]), append(gov, v[1])
		}
		s.exec("period persons", `INSERT INTO period_persons AS pp (from_rank, to_rank, filter, program_code, persons, government_persons)
			SELECT * FROM unnest($1::int[], $2::int[], $3::text[], $4::text[], $5::bigint[], $6::bigint[])
			ON CONFLICT (from_rank, to_rank, filter, program_code) DO UPDATE
			SET persons = pp.persons + EXCLUDED.persons, government_persons = pp.government_persons + EXCLUDED.government_persons`,
			from, to, filters, programs, persons, gov)
	}
	if n := len(w.paid); n > 0 {
		hours := make([]int64, 0, n)
		terms := make([]int, 0, n)
		programs, schools, stages, shares := make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		govs, loans := make([]bool, 0, n), make([]bool, 0, n)
		nets, payments, gross, recovered := make([]int64, 0, n), make([]int64, 0, n), make([]int64, 0, n), make([]int64, 0, n)
		for _, k := range sorted(w.paid, paidHour.cmp) {
			v := w.paid[k]
			hours, terms, programs, schools, stages, shares = append(hours, k.hour), append(terms, k.term), append(programs, k.program),
				append(schools, k.school), append(stages, k.stage), append(shares, k.shares)
			govs, loans = append(govs, k.government), append(loans, k.loan)
			nets, payments, gross, recovered = append(nets, k.net), append(payments, v.payments), append(gross, v.gross),
				append(recovered, v.recovered)
		}
		s.exec("paid log", `INSERT INTO paid_log AS g (at_hour, term_rank, program_code, school_code, stage, government_total,
			loan, shares_bp, net_fen, payments, gross_fen, recovered_fen)
			SELECT h, t, pc, sc, st, gov, loan, sh::jsonb, net, n, gross, rec FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[],
			  $5::text[], $6::bool[], $7::bool[], $8::text[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[])
			  x (h, t, pc, sc, st, gov, loan, sh, net, n, gross, rec)
			ON CONFLICT (term_rank, program_code, school_code, stage, government_total, loan, shares_bp, net_fen, at_hour) DO UPDATE
			SET payments = g.payments + EXCLUDED.payments, gross_fen = g.gross_fen + EXCLUDED.gross_fen,
			    recovered_fen = g.recovered_fen + EXCLUDED.recovered_fen`,
			hours, terms, programs, schools, stages, govs, loans, shares, nets, payments, gross, recovered)
	}
	if n := len(w.runsLog); n > 0 {
		sc, filters, keys := make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		terms, prevs := make([]int, 0, n), make([]int, 0, n)
		hours, persons := make([]int64, 0, n), make([]int64, 0, n)
		for _, k := range sorted(w.runsLog, func(a, b runHour) int { return cmp.Or(a.cmp(b.runKey), cmp.Compare(a.hour, b.hour)) }) {
			v := w.runsLog[k]
			sc, filters, keys = append(sc, k.school), append(filters, k.filter), append(keys, k.program)
			terms, prevs, hours, persons = append(terms, k.term), append(prevs, k.prev), append(hours, k.hour), append(persons, v)
		}
		s.exec("person runs log", `INSERT INTO person_runs_log AS r (school_code, filter, program_key, term_rank, prev_rank, at_hour, persons)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::int[], $6::bigint[], $7::bigint[])
			ON CONFLICT (school_code, filter, program_key, term_rank, prev_rank, at_hour) DO UPDATE SET persons = r.persons + EXCLUDED.persons`,
			sc, filters, keys, terms, prevs, hours, persons)
	}
	if len(w.ever) > 0 {
		students := slices.Sorted(maps.Keys(w.ever))
		s.exec("multi-school students", `INSERT INTO multi_school_ever (student_id_hash) SELECT * FROM unnest($1::text[])
			ON CONFLICT DO NOTHING`, students)
	}
	*w = Writes{}
	return s.run(ctx, tx)
}
