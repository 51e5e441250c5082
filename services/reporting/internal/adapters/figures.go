package adapters

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/policy"
	"github.com/edubureau/studentaid/services/reporting/internal/domain"
)

// Selection narrows the figures.
type Selection struct {
	FromRank, ToRank int
	Schools          []string
	Stage, Program   string
	AsOf             time.Time
	// RecoveredYear: loans recovered are the repayments received in that
	// year (the annual report); 0: the repayments of the selected loans.
	RecoveredYear int
}

// countedAhead: the selection's distinct persons are in period_persons,
// for a single term or a whole year with no school filter.
func (s Selection) countedAhead() bool {
	return len(s.Schools) == 0 && (s.FromRank == s.ToRank || (s.FromRank%2 == 0 && s.ToRank == s.FromRank+1))
}

// where adds the selection's cells as conditions on columns prefixed by
// alias ("a." or "").
func (s Selection) where(w *db.Where, alias string) {
	w.Add(alias+"term_rank >= ?", s.FromRank)
	w.Add(alias+"term_rank <= ?", s.ToRank)
	if len(s.Schools) > 0 {
		w.Add(alias+"school_code = ANY(?)", s.Schools)
	}
	w.AddIf(alias+"stage = ?", s.Stage)
	w.AddIf(alias+"program_code = ?", s.Program)
}

// programSums are a program's additive figures: each is a sum over
// students, so a set of students' part can be taken out and put back.
type programSums struct {
	payments, governmentPayments, loanPayments int64
	paidFen, grossFen, recoveredFen            int64
	persons, personTimes, loanFen              int64
}

// sums are a selection's additive figures.
type sums struct {
	programs                   map[string]*programSums
	persons, governmentPersons int64
	funding, governmentFunding map[string]int64
}

func newSums() *sums {
	return &sums{programs: map[string]*programSums{}, funding: map[string]int64{}, governmentFunding: map[string]int64{}}
}

func (s *sums) program(code string) *programSums {
	p := s.programs[code]
	if p == nil {
		p = &programSums{}
		s.programs[code] = p
	}
	return p
}

// add adds sign × o to s.
func (s *sums) add(o *sums, sign int64) {
	for code, q := range o.programs {
		p := s.program(code)
		p.payments += sign * q.payments
		p.governmentPayments += sign * q.governmentPayments
		p.loanPayments += sign * q.loanPayments
		p.paidFen += sign * q.paidFen
		p.grossFen += sign * q.grossFen
		p.recoveredFen += sign * q.recoveredFen
		p.persons += sign * q.persons
		p.personTimes += sign * q.personTimes
		p.loanFen += sign * q.loanFen
	}
	s.persons += sign * o.persons
	s.governmentPersons += sign * o.governmentPersons
	for k, v := range o.funding {
		s.funding[k] += sign * v
	}
	for k, v := range o.governmentFunding {
		s.governmentFunding[k] += sign * v
	}
}

// split adds n payments of net fen with the given shares to the funding.
func (s *sums) split(shares string, government bool, net, n int64) error {
	var bp map[policy.Source]int32
	if err := json.Unmarshal([]byte(shares), &bp); err != nil {
		return fmt.Errorf("shares %s: %w", shares, err)
	}
	for src, fen := range (policy.Program{SharesBP: bp}).SplitFen(net) {
		s.funding[string(src)] += fen * n
		if government {
			s.governmentFunding[string(src)] += fen * n
		}
	}
	return nil
}

// maxCorrected is how many students an answer as of an earlier instant
// corrects from their rows inside the instant's hour; beyond it (on both
// sides of the instant) the answer is computed from the rows alone
// (exact, slower).
const maxCorrected = 20_000

// firstLook is the limit of the first look at each end of an instant's
// hour.
const firstLook = 200

// maxLater: an answer as of an instant with at most this many students
// changed after it corrects the aggregates as of now; past it, it reads
// the aggregates as of one end of the instant's hour (the logs).
const maxLater = 1_000

// Figures computes the selection's figures in one snapshot. The aggregates
// hold every row recorded; an answer as of an earlier instant takes out the
// part of the students whose rows changed after it (payments paid or
// refunds received later) and puts back their part computed from their
// rows as of the instant. With more such students it starts from the
// aggregates as of one end of the instant's hour instead (FiguresByHours).
// Every figure is a sum over students (distinct persons too: a student
// counts 0 or 1), so the result equals computing all from the rows
// (rawSums with no students), which the tests check.
func Figures(ctx context.Context, q db.Querier, s Selection) (domain.Figures, error) {
	later, err := changedBetween(ctx, q, s, s.AsOf, endOfTime, maxLater)
	if err != nil {
		return domain.Figures{}, err
	}
	if len(later) > maxLater {
		t, ok, err := hourSums(ctx, q, s)
		if err != nil {
			return domain.Figures{}, err
		}
		if !ok {
			if t, err = rawSums(ctx, q, s, nil, s.AsOf); err != nil {
				return domain.Figures{}, err
			}
		}
		return figures(ctx, q, s, t)
	}
	t, err := aggregateSums(ctx, q, s, 0, endOfTime)
	if err != nil {
		return domain.Figures{}, err
	}
	if err := correct(ctx, q, s, t, later, endOfTime); err != nil {
		return domain.Figures{}, err
	}
	return figures(ctx, q, s, t)
}

// FiguresByHours computes the figures from the aggregates as of the end of
// the hour before the instant's, or of the instant's own hour, whichever
// has fewer students with a payment paid or a receipt received between it
// and the instant, corrected by those students' rows. False when both have
// more than maxCorrected.
func FiguresByHours(ctx context.Context, q db.Querier, s Selection) (domain.Figures, bool, error) {
	t, ok, err := hourSums(ctx, q, s)
	if err != nil || !ok {
		return domain.Figures{}, ok, err
	}
	f, err := figures(ctx, q, s, t)
	return f, true, err
}

func hourSums(ctx context.Context, q db.Querier, s Selection) (*sums, bool, error) {
	h := hourOf(s.AsOf)
	var best []string
	var bound int64
	var base time.Time
	found := false
	// A first look with a small limit on each side, so that a side with
	// few changes is found without reading the other's many.
	for _, limit := range []int{firstLook, maxCorrected} {
		for _, side := range []struct {
			bound int64
			base  time.Time
		}{{h, lastBefore(hourStart(h))}, {h + 1, lastBefore(hourStart(h + 1))}} {
			lo, hi := side.base, s.AsOf
			if hi.Before(lo) {
				lo, hi = hi, lo
			}
			students, err := changedBetween(ctx, q, s, lo, hi, limit)
			if err != nil {
				return nil, false, err
			}
			if len(students) <= limit && (!found || len(students) < len(best)) {
				best, bound, base, found = students, side.bound, side.base, true
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
		return nil, false, nil
	}
	t, err := aggregateSums(ctx, q, s, bound, base)
	if err != nil {
		return nil, false, err
	}
	return t, true, correct(ctx, q, s, t, best, base)
}

// correct replaces the given students' part in t, their figures as of
// base, by their figures as of the selection's instant.
func correct(ctx context.Context, q db.Querier, s Selection, t *sums, students []string, base time.Time) error {
	if len(students) == 0 {
		return nil
	}
	then, err := rawSums(ctx, q, s, students, base)
	if err != nil {
		return err
	}
	now, err := rawSums(ctx, q, s, students, s.AsOf)
	if err != nil {
		return err
	}
	t.add(then, -1)
	t.add(now, 1)
	return nil
}

// RawFigures computes the selection's figures from the rows alone, as the
// service did before the aggregates: the reference the tests compare
// Figures with.
func RawFigures(ctx context.Context, q db.Querier, s Selection) (domain.Figures, error) {
	t, err := rawSums(ctx, q, s, nil, s.AsOf)
	if err != nil {
		return domain.Figures{}, err
	}
	return figures(ctx, q, s, t)
}

// endOfTime is after every recorded instant: the aggregates' view.
var endOfTime = time.Date(9999, time.December, 31, 0, 0, 0, 0, time.UTC)

func figures(ctx context.Context, q db.Querier, s Selection, t *sums) (domain.Figures, error) {
	f := domain.Figures{AsOf: s.AsOf, Funding: t.funding, GovernmentFunding: t.governmentFunding,
		Persons: t.persons, GovernmentPersons: t.governmentPersons}
	for _, code := range slices.Sorted(maps.Keys(t.programs)) {
		ps := t.programs[code]
		if ps.payments <= 0 {
			continue
		}
		p := domain.ProgramFigure{ProgramCode: code, GovernmentTotal: ps.governmentPayments > 0, Loan: ps.loanPayments > 0,
			PaidFen: ps.paidFen, GrossFen: ps.grossFen, RecoveredFen: ps.recoveredFen, Persons: ps.persons, PersonTimes: ps.personTimes}
		if p.Loan {
			p.Persons, p.PersonTimes, p.GrossFen, p.PaidFen = ps.loanPayments, ps.loanPayments, ps.loanFen, ps.loanFen
			f.LoansIssuedFen += ps.loanFen
			f.LoansIssuedCount += ps.loanPayments
		} else {
			f.PaidFen += p.PaidFen
			f.GrossFen += p.GrossFen
			f.RefundsRecoveredFen += p.RecoveredFen
			f.PersonTimes += p.PersonTimes
			if p.GovernmentTotal {
				f.GovernmentFen += p.PaidFen
			}
		}
		f.Programs = append(f.Programs, p)
	}
	// Refunds and loan repayments are few: they are read from their rows,
	// as of the instant, joined to the selected payments.
	var w db.Where
	asOf := w.Arg(s.AsOf)
	s.where(&w, "a.")
	if err := q.QueryRow(ctx, `SELECT coalesce(sum(r.amount_fen), 0) FROM refunds r
		JOIN payments p USING (payment_id) JOIN applications a USING (application_id)`+w.SQL()+
		` AND r.opened_at <= `+asOf+` AND p.paid_at <= `+asOf, w.Args...).Scan(&f.RefundsOrderedFen); err != nil {
		return f, fmt.Errorf("refunds ordered: %w", err)
	}
	var err error
	if s.RecoveredYear != 0 {
		err = q.QueryRow(ctx, `SELECT coalesce(sum(amount_fen), 0) FROM loan_repayments
			WHERE date_part('year', paid_on) = $1 AND recorded_at <= $2`, s.RecoveredYear, s.AsOf).Scan(&f.LoansRecoveredFen)
	} else {
		err = q.QueryRow(ctx, `SELECT coalesce(sum(lr.amount_fen), 0) FROM loan_repayments lr
			WHERE lr.recorded_at <= `+asOf+` AND EXISTS (SELECT 1 FROM payments p JOIN applications a USING (application_id)`+
			w.SQL()+` AND p.loan_contract_number = lr.contract_number AND p.loan_contract_number <> '' AND p.paid_at <= `+asOf+`)`,
			w.Args...).Scan(&f.LoansRecoveredFen)
	}
	if err != nil {
		return f, fmt.Errorf("loans recovered: %w", err)
	}
	return f, nil
}

// changedBetween lists the selected students with a payment paid or a
// refund received in (lo, hi]; more than limit of them (or of such
// payments or receipts) return limit+1 names. Each part reads its
// instant's index in order and stops at limit+1 rows, so the cost is
// bounded by the rows it reads, not by all that happened in the window.
func changedBetween(ctx context.Context, q db.Querier, s Selection, lo, hi time.Time, limit int) ([]string, error) {
	if !hi.After(lo) {
		return nil, nil
	}
	seen := map[string]bool{}
	var out []string
	for _, part := range []struct{ from, at string }{
		{`payments p JOIN applications a USING (application_id)`, "p.paid_at"},
		{`refund_receipts rr JOIN refunds r USING (refund_id) JOIN payments p USING (payment_id) JOIN applications a USING (application_id)`,
			"rr.received_at"},
	} {
		var w db.Where
		w.Add(part.at+" > ?", lo)
		w.Add(part.at+" <= ?", hi)
		s.where(&w, "a.")
		rows, err := q.Query(ctx, `SELECT a.student_id_hash FROM `+part.from+w.SQL()+` ORDER BY `+part.at+` LIMIT `+strconv.Itoa(limit+1),
			w.Args...)
		if err != nil {
			return nil, fmt.Errorf("changed between %s and %s: %w", lo, hi, err)
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, fmt.Errorf("changed between %s and %s: %w", lo, hi, err)
		}
		for _, n := range names {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
		if len(names) > limit {
			for len(out) <= limit {
				out = append(out, "") // more than limit: the caller reads the rows another way
			}
			return out, nil
		}
	}
	return out, nil
}

// aggregateSums reads the selection's sums from the aggregates (bound 0)
// or from the logs of the hours before bound, which hold the aggregates as
// of base, the last instant before hour bound.
func aggregateSums(ctx context.Context, q db.Querier, s Selection, bound int64, base time.Time) (*sums, error) {
	t := newSums()
	var w db.Where
	s.where(&w, "")
	paidGroups := "paid_groups"
	if bound != 0 {
		paidGroups = `(SELECT term_rank, program_code, school_code, stage, government_total, loan, shares_bp, net_fen,
		  sum(payments) AS payments, sum(gross_fen) AS gross_fen, sum(recovered_fen) AS recovered_fen
		  FROM paid_log WHERE at_hour < ` + strconv.FormatInt(bound, 10) + ` GROUP BY 1, 2, 3, 4, 5, 6, 7, 8) g`
	}
	rows, err := q.Query(ctx, `SELECT program_code, sum(payments), coalesce(sum(payments) FILTER (WHERE government_total), 0),
		coalesce(sum(payments) FILTER (WHERE loan), 0),
		coalesce(sum(net_fen * payments) FILTER (WHERE NOT loan), 0), coalesce(sum(gross_fen) FILTER (WHERE NOT loan), 0),
		coalesce(sum(recovered_fen) FILTER (WHERE NOT loan), 0), coalesce(sum(payments) FILTER (WHERE NOT loan AND net_fen > 0), 0),
		coalesce(sum(gross_fen) FILTER (WHERE loan), 0)
		FROM `+paidGroups+w.SQL()+` GROUP BY program_code`, w.Args...)
	if err != nil {
		return nil, fmt.Errorf("paid groups: %w", err)
	}
	for rows.Next() {
		var code string
		var p programSums
		if err := rows.Scan(&code, &p.payments, &p.governmentPayments, &p.loanPayments, &p.paidFen, &p.grossFen, &p.recoveredFen,
			&p.personTimes, &p.loanFen); err != nil {
			rows.Close()
			return nil, err
		}
		*t.program(code) = p
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = q.Query(ctx, `SELECT shares_bp::text, government_total, net_fen, sum(payments)::bigint
		FROM `+paidGroups+w.SQL()+` AND NOT loan AND net_fen > 0 GROUP BY 1, 2, 3`, w.Args...)
	if err != nil {
		return nil, fmt.Errorf("funding split: %w", err)
	}
	defer rows.Close()
	if err := scanSplits(rows, t); err != nil {
		return nil, err
	}
	if bound == 0 && s.countedAhead() {
		filter := ""
		if s.Stage != "" {
			filter = "stage:" + s.Stage
		}
		rows, err := q.Query(ctx, `SELECT program_code, persons, government_persons FROM period_persons
			WHERE from_rank = $1 AND to_rank = $2 AND filter = $3 AND ($4 = '' OR program_code = $4)`, s.FromRank, s.ToRank, filter, s.Program)
		if err != nil {
			return nil, fmt.Errorf("period persons: %w", err)
		}
		for rows.Next() {
			var code string
			var n, gov int64
			if err := rows.Scan(&code, &n, &gov); err != nil {
				rows.Close()
				return nil, err
			}
			if code != "" {
				t.program(code).persons = n
			}
			if code == s.Program {
				t.persons, t.governmentPersons = n, gov
			}
		}
		rows.Close()
		return t, rows.Err()
	}
	return t, personRuns(ctx, q, s, t, bound, base)
}

// personRuns reads the distinct persons of any term range and school set
// from person_runs: per cell, a student's terms in the range with no term
// of theirs before it in the range count them once. A school set adds up
// its schools, then takes out the extra schools of the students with live
// rows at two schools or more (multi_school_students), counted from their
// person_terms rows.
//
// From the logs (bound non-zero), the runs are summed over the hours before
// bound, and the students at several schools are those who ever had
// grant payments at two (multi_school_ever), their live rows as of base
// read from their payments.
func personRuns(ctx context.Context, q db.Querier, s Selection, t *sums, bound int64, base time.Time) error {
	var w db.Where
	table := "person_runs"
	if bound != 0 {
		table = "person_runs_log"
		w.Add("at_hour < ?", bound)
	}
	if len(s.Schools) > 0 {
		w.Add("school_code = ANY(?)", s.Schools)
	} else {
		w.Add("school_code = ?", "")
	}
	filter := ""
	if s.Stage != "" {
		filter = "stage:" + s.Stage
	}
	w.Add("filter = ?", filter)
	if s.Program != "" {
		w.Add("program_key = ANY(?)", []string{s.Program, "gov:" + s.Program})
	}
	from := w.Arg(s.FromRank)
	w.Add("term_rank <= ?", s.ToRank)
	counts := map[string]int64{}
	rows, err := q.Query(ctx, `SELECT program_key, sum(persons)::bigint FROM `+table+w.SQL()+
		` AND term_rank >= `+from+` AND prev_rank < `+from+` GROUP BY program_key`, w.Args...)
	if err != nil {
		return fmt.Errorf("person runs: %w", err)
	}
	for rows.Next() {
		var key string
		var n int64
		if err := rows.Scan(&key, &n); err != nil {
			rows.Close()
			return err
		}
		counts[key] += n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(s.Schools) > 1 {
		var m db.Where
		var rows pgx.Rows
		var err error
		if bound == 0 {
			s.where(&m, "t.")
			rows, err = q.Query(ctx, `SELECT k, sum(n - 1)::bigint FROM (
			  SELECT t.student_id_hash, p.k, count(DISTINCT t.school_code) AS n
			  FROM multi_school_students ms JOIN person_terms t ON t.student_id_hash = ms.student_id_hash,
			       LATERAL (VALUES (''), (t.program_code), (CASE WHEN t.government_total THEN '*gov' END),
			                       (CASE WHEN t.government_total THEN 'gov:' || t.program_code END)) p (k)`+m.SQL()+
				` AND t.live > 0 AND p.k IS NOT NULL GROUP BY 1, 2) x GROUP BY k`, m.Args...)
		} else {
			at := m.Arg(base)
			s.where(&m, "a.")
			rows, err = q.Query(ctx, `SELECT k, sum(n - 1)::bigint FROM (
			  SELECT a.student_id_hash, p.k, count(DISTINCT a.school_code) AS n
			  FROM multi_school_ever ms JOIN applications a ON a.student_id_hash = ms.student_id_hash
			       JOIN payments pm USING (application_id),
			       LATERAL (VALUES (''), (a.program_code), (CASE WHEN a.government_total THEN '*gov' END),
			                       (CASE WHEN a.government_total THEN 'gov:' || a.program_code END)) p (k)`+m.SQL()+
				` AND pm.loan_contract_number = '' AND pm.paid_at <= `+at+` AND p.k IS NOT NULL
				  AND pm.amount_fen > coalesce((SELECT sum(rr.amount_fen) FROM refunds r JOIN refund_receipts rr USING (refund_id)
				                                WHERE r.payment_id = pm.payment_id AND rr.received_at <= `+at+`), 0)
				GROUP BY 1, 2) x GROUP BY k`, m.Args...)
		}
		if err != nil {
			return fmt.Errorf("students at several schools: %w", err)
		}
		for rows.Next() {
			var key string
			var n int64
			if err := rows.Scan(&key, &n); err != nil {
				rows.Close()
				return err
			}
			counts[key] -= n
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	for key, n := range counts {
		switch {
		case key == "":
		case key == "*gov":
		case strings.HasPrefix(key, "gov:"):
		default:
			t.program(key).persons = n
		}
	}
	if s.Program != "" {
		t.persons, t.governmentPersons = counts[s.Program], counts["gov:"+s.Program]
	} else {
		t.persons, t.governmentPersons = counts[""], counts["*gov"]
	}
	return nil
}

type rowsScanner interface {
	Next() bool
	Scan(dest ...any) error
	Close()
	Err() error
}

func scanSplits(rows rowsScanner, t *sums) error {
	defer rows.Close()
	for rows.Next() {
		var shares string
		var gov bool
		var net, n int64
		if err := rows.Scan(&shares, &gov, &net, &n); err != nil {
			return err
		}
		if err := t.split(shares, gov, net, n); err != nil {
			return err
		}
	}
	return rows.Err()
}

// rawSums computes the selection's sums from the rows as of asOf, for the
// given students only (nil: all).
func rawSums(ctx context.Context, q db.Querier, s Selection, students []string, asOf time.Time) (*sums, error) {
	t := newSums()
	var w db.Where
	at := w.Arg(asOf)
	s.where(&w, "a.")
	if students != nil {
		w.Add("a.student_id_hash = ANY(?)", students)
	}
	// Each selected payment with what was recovered against it by the
	// instant: a refund lowers the term of its original payment.
	cte := `WITH pay AS (
	  SELECT p.payment_id, p.amount_fen, p.loan_contract_number <> '' AS loan,
	         a.program_code, a.government_total, a.shares_bp::text AS shares, a.student_id_hash,
	         coalesce((SELECT sum(rr.amount_fen) FROM refunds r JOIN refund_receipts rr USING (refund_id)
	                   WHERE r.payment_id = p.payment_id AND rr.received_at <= ` + at + `), 0) AS recovered
	  FROM payments p JOIN applications a USING (application_id)` + w.SQL() + ` AND p.paid_at <= ` + at + `)
	`
	rows, err := q.Query(ctx, cte+`SELECT program_code, count(*), count(*) FILTER (WHERE government_total), count(*) FILTER (WHERE loan),
		coalesce(sum(amount_fen - recovered) FILTER (WHERE NOT loan), 0), coalesce(sum(amount_fen) FILTER (WHERE NOT loan), 0),
		coalesce(sum(recovered) FILTER (WHERE NOT loan), 0),
		count(DISTINCT student_id_hash) FILTER (WHERE NOT loan AND amount_fen > recovered),
		count(*) FILTER (WHERE NOT loan AND amount_fen > recovered),
		coalesce(sum(amount_fen) FILTER (WHERE loan), 0)
		FROM pay GROUP BY program_code`, w.Args...)
	if err != nil {
		return nil, fmt.Errorf("figures by program: %w", err)
	}
	for rows.Next() {
		var code string
		var p programSums
		if err := rows.Scan(&code, &p.payments, &p.governmentPayments, &p.loanPayments, &p.paidFen, &p.grossFen, &p.recoveredFen,
			&p.persons, &p.personTimes, &p.loanFen); err != nil {
			rows.Close()
			return nil, err
		}
		*t.program(code) = p
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if err := q.QueryRow(ctx, cte+`SELECT
		count(DISTINCT student_id_hash) FILTER (WHERE NOT loan AND amount_fen > recovered),
		count(DISTINCT student_id_hash) FILTER (WHERE NOT loan AND government_total AND amount_fen > recovered)
		FROM pay`, w.Args...).Scan(&t.persons, &t.governmentPersons); err != nil {
		return nil, fmt.Errorf("persons: %w", err)
	}
	// Each payment splits by its own shares: a group of equal payments with
	// equal shares splits as one payment times their number.
	rows, err = q.Query(ctx, cte+`SELECT shares, government_total, amount_fen - recovered, count(*)
		FROM pay WHERE NOT loan AND amount_fen > recovered GROUP BY 1, 2, 3`, w.Args...)
	if err != nil {
		return nil, fmt.Errorf("funding split: %w", err)
	}
	defer rows.Close()
	if err := scanSplits(rows, t); err != nil {
		return nil, err
	}
	return t, nil
}

// PaymentRecord is one paid record of an export.
type PaymentRecord struct {
	PaymentID, School, Student, Program, Stage, Term string
	AmountFen, RefundedFen                           int64
	PaidAt                                           time.Time
	Loan                                             bool
}

// EachPayment calls fn with every payment of the selection paid by its
// instant, with what was recovered against it by then, ordered by school,
// term, program and payment. The rows stream from the query (pgx reads
// them as they arrive); none are held but the one passed to fn.
func EachPayment(ctx context.Context, q db.Querier, s Selection, fn func(PaymentRecord) error) error {
	var w db.Where
	at := w.Arg(s.AsOf)
	s.where(&w, "a.")
	rows, err := q.Query(ctx, `SELECT p.payment_id, a.school_code, left(a.student_id_hash, 12), a.program_code, a.stage, a.term,
		p.amount_fen, coalesce((SELECT sum(rr.amount_fen) FROM refunds r JOIN refund_receipts rr USING (refund_id)
		                        WHERE r.payment_id = p.payment_id AND rr.received_at <= `+at+`), 0)::bigint,
		p.paid_at, p.loan_contract_number <> ''
		FROM payments p JOIN applications a USING (application_id)`+w.SQL()+` AND p.paid_at <= `+at+`
		ORDER BY a.school_code, a.term_rank, a.program_code, p.payment_id`, w.Args...)
	if err != nil {
		return fmt.Errorf("payments: %w", err)
	}
	defer rows.Close()
	var r PaymentRecord
	for rows.Next() {
		if err := rows.Scan(&r.PaymentID, &r.School, &r.Student, &r.Program, &r.Stage, &r.Term, &r.AmountFen, &r.RefundedFen,
			&r.PaidAt, &r.Loan); err != nil {
			return err
		}
		r.PaidAt = r.PaidAt.UTC()
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}
