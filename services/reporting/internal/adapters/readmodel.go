// Package adapters is the reporting service's PostgreSQL read model: the
// rows it keeps from the chain's events and the queries its figures come
// from.
package adapters

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/policy"
	"github.com/edubureau/studentaid/services/reporting/internal/domain"
)

// Application is a submitted application as the read model keeps it.
type Application struct {
	ID, StudentIDHash, SchoolCode, ProgramCode, Term, Stage, FundingSource string
	TermRank                                                               int
	GovernmentTotal                                                        bool
	SharesBP                                                               map[string]int32
	PolicyVersion                                                          int64
	SubmittedAt                                                            time.Time
}

// ErrUnknownApplication: a payment names an application not seen yet.
var ErrUnknownApplication = errors.New("unknown application")

// ErrUnknownRefund: a receipt names a refund not seen yet.
var ErrUnknownRefund = errors.New("unknown refund")

// InsertApplication keeps a, once.
func InsertApplication(ctx context.Context, tx db.Tx, a Application) error {
	shares, err := json.Marshal(a.SharesBP)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO applications (application_id, student_id_hash, school_code, program_code, term, term_rank,
		stage, funding_source, government_total, shares_bp, policy_version, submitted_at)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12) ON CONFLICT DO NOTHING`,
		a.ID, a.StudentIDHash, a.SchoolCode, a.ProgramCode, a.Term, a.TermRank, a.Stage, a.FundingSource, a.GovernmentTotal,
		shares, a.PolicyVersion, a.SubmittedAt)
	if err != nil {
		return fmt.Errorf("insert application %s: %w", a.ID, err)
	}
	return nil
}

// InsertPayment keeps a succeeded payment, once.
func InsertPayment(ctx context.Context, tx db.Tx, paymentID, applicationID string, amountFen int64, loanContract string, at time.Time) error {
	var known bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM applications WHERE application_id = $1)`, applicationID).Scan(&known); err != nil {
		return err
	}
	if !known {
		return fmt.Errorf("%w %s (payment %s)", ErrUnknownApplication, applicationID, paymentID)
	}
	_, err := tx.Exec(ctx, `INSERT INTO payments (payment_id, application_id, amount_fen, loan_contract_number, paid_at)
		VALUES ($1,$2,$3,$4,$5) ON CONFLICT DO NOTHING`, paymentID, applicationID, amountFen, loanContract, at)
	if err != nil {
		return fmt.Errorf("insert payment %s: %w", paymentID, err)
	}
	return nil
}

// InsertRefund keeps an ordered refund, once.
func InsertRefund(ctx context.Context, tx db.Tx, refundID, paymentID, clueID string, amountFen int64, at time.Time) error {
	_, err := tx.Exec(ctx, `INSERT INTO refunds (refund_id, payment_id, clue_id, amount_fen, opened_at)
		VALUES ($1,$2,$3,$4,$5) ON CONFLICT DO NOTHING`, refundID, paymentID, clueID, amountFen, at)
	return err
}

// InsertReceipt keeps one refund receipt, once per event.
func InsertReceipt(ctx context.Context, tx db.Tx, eventID, refundID string, amountFen int64, at time.Time) error {
	var known bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM refunds WHERE refund_id = $1)`, refundID).Scan(&known); err != nil {
		return err
	}
	if !known {
		return fmt.Errorf("%w %s", ErrUnknownRefund, refundID)
	}
	_, err := tx.Exec(ctx, `INSERT INTO refund_receipts (event_id, refund_id, amount_fen, received_at)
		VALUES ($1,$2,$3,$4) ON CONFLICT DO NOTHING`, eventID, refundID, amountFen, at)
	return err
}

// InsertRepayment keeps a loan repayment or recovery, once.
func InsertRepayment(ctx context.Context, tx db.Tx, id, contract, kind string, amountFen int64, paidOn, at time.Time) error {
	_, err := tx.Exec(ctx, `INSERT INTO loan_repayments (repayment_id, contract_number, kind, amount_fen, paid_on, recorded_at)
		VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT DO NOTHING`, id, contract, kind, amountFen, paidOn, at)
	return err
}

// InsertComparison keeps a comparison run, once.
func InsertComparison(ctx context.Context, tx db.Tx, runID int64, from, to string, records, newClues int64, at time.Time) error {
	_, err := tx.Exec(ctx, `INSERT INTO comparisons (run_id, from_term, to_term, records, new_clues, completed_at)
		VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT DO NOTHING`, runID, from, to, records, newClues, at)
	return err
}

// Clue is a raised clue.
type Clue struct {
	ID, Kind, Origin, SchoolCode, ProgramCode, Term, StudentIDHash string
	AmountFen                                                      int64
	RaisedAt                                                       time.Time
}

// InsertClue keeps a raised clue, once.
func InsertClue(ctx context.Context, tx db.Tx, c Clue) error {
	_, err := tx.Exec(ctx, `INSERT INTO clues (clue_id, kind, origin, school_code, program_code, term, student_id_hash, amount_fen, raised_at)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) ON CONFLICT DO NOTHING`,
		c.ID, c.Kind, c.Origin, c.SchoolCode, c.ProgramCode, c.Term, c.StudentIDHash, c.AmountFen, c.RaisedAt)
	return err
}

// CloseClue records a clue's outcome (verified or dismissed), once.
func CloseClue(ctx context.Context, tx db.Tx, clueID, outcome string, ineligible bool, at time.Time) error {
	_, err := tx.Exec(ctx, `UPDATE clues SET outcome = $2, ineligible = $3, closed_at = $4 WHERE clue_id = $1 AND outcome = ''`,
		clueID, outcome, ineligible, at)
	return err
}

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

// payCTE is each selected payment with what was recovered against it by
// the instant: a refund lowers the term of its original payment.
const payCTE = `WITH pay AS (
  SELECT p.payment_id, p.amount_fen, p.loan_contract_number, p.loan_contract_number <> '' AS loan,
         a.program_code, a.government_total, a.shares_bp::text AS shares, a.student_id_hash,
         coalesce((SELECT sum(rr.amount_fen) FROM refunds r JOIN refund_receipts rr USING (refund_id)
                   WHERE r.payment_id = p.payment_id AND rr.received_at <= $6), 0) AS recovered
  FROM payments p JOIN applications a USING (application_id)
  WHERE a.term_rank BETWEEN $1 AND $2
    AND (cardinality($3::text[]) = 0 OR a.school_code = ANY($3))
    AND ($4 = '' OR a.stage = $4) AND ($5 = '' OR a.program_code = $5)
    AND p.paid_at <= $6)
`

// Figures computes the selection's figures in one snapshot.
func Figures(ctx context.Context, q db.Querier, s Selection) (domain.Figures, error) {
	f := domain.Figures{AsOf: s.AsOf, Funding: map[string]int64{}, GovernmentFunding: map[string]int64{}}
	schools := s.Schools
	if schools == nil {
		schools = []string{}
	}
	args := []any{s.FromRank, s.ToRank, schools, s.Stage, s.Program, s.AsOf}
	rows, err := q.Query(ctx, payCTE+`SELECT program_code, bool_or(government_total), bool_or(loan),
		coalesce(sum(amount_fen - recovered) FILTER (WHERE NOT loan), 0), coalesce(sum(amount_fen) FILTER (WHERE NOT loan), 0),
		coalesce(sum(recovered) FILTER (WHERE NOT loan), 0),
		count(DISTINCT student_id_hash) FILTER (WHERE NOT loan AND amount_fen > recovered),
		count(*) FILTER (WHERE NOT loan AND amount_fen > recovered),
		coalesce(sum(amount_fen) FILTER (WHERE loan), 0), count(*) FILTER (WHERE loan)
		FROM pay GROUP BY program_code ORDER BY program_code`, args...)
	if err != nil {
		return f, fmt.Errorf("figures by program: %w", err)
	}
	for rows.Next() {
		var p domain.ProgramFigure
		var loanFen, loanN int64
		if err := rows.Scan(&p.ProgramCode, &p.GovernmentTotal, &p.Loan, &p.PaidFen, &p.GrossFen, &p.RecoveredFen,
			&p.Persons, &p.PersonTimes, &loanFen, &loanN); err != nil {
			rows.Close()
			return f, err
		}
		if p.Loan {
			p.Persons, p.PersonTimes, p.GrossFen, p.PaidFen = loanN, loanN, loanFen, loanFen
			f.LoansIssuedFen += loanFen
			f.LoansIssuedCount += loanN
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
	rows.Close()
	if err := rows.Err(); err != nil {
		return f, err
	}
	if err := q.QueryRow(ctx, payCTE+`SELECT
		count(DISTINCT student_id_hash) FILTER (WHERE NOT loan AND amount_fen > recovered),
		count(DISTINCT student_id_hash) FILTER (WHERE NOT loan AND government_total AND amount_fen > recovered),
		(SELECT coalesce(sum(r.amount_fen), 0) FROM refunds r WHERE r.opened_at <= $6 AND r.payment_id IN (SELECT payment_id FROM pay))
		FROM pay`, args...).Scan(&f.Persons, &f.GovernmentPersons, &f.RefundsOrderedFen); err != nil {
		return f, fmt.Errorf("persons: %w", err)
	}
	// Each payment splits by its own shares: a group of equal payments with
	// equal shares splits as one payment times their number.
	rows, err = q.Query(ctx, payCTE+`SELECT shares, government_total, amount_fen - recovered, count(*)
		FROM pay WHERE NOT loan AND amount_fen > recovered GROUP BY 1, 2, 3`, args...)
	if err != nil {
		return f, fmt.Errorf("funding split: %w", err)
	}
	for rows.Next() {
		var shares string
		var gov bool
		var net, n int64
		if err := rows.Scan(&shares, &gov, &net, &n); err != nil {
			rows.Close()
			return f, err
		}
		var bp map[policy.Source]int32
		if err := json.Unmarshal([]byte(shares), &bp); err != nil {
			rows.Close()
			return f, fmt.Errorf("shares %s: %w", shares, err)
		}
		for src, fen := range (policy.Program{SharesBP: bp}).SplitFen(net) {
			f.Funding[string(src)] += fen * n
			if gov {
				f.GovernmentFunding[string(src)] += fen * n
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return f, err
	}
	if s.RecoveredYear != 0 {
		err = q.QueryRow(ctx, `SELECT coalesce(sum(amount_fen), 0) FROM loan_repayments
			WHERE date_part('year', paid_on) = $1 AND recorded_at <= $2`, s.RecoveredYear, s.AsOf).Scan(&f.LoansRecoveredFen)
	} else {
		err = q.QueryRow(ctx, payCTE+`SELECT coalesce(sum(lr.amount_fen), 0) FROM loan_repayments lr
			WHERE lr.recorded_at <= $6 AND lr.contract_number IN (SELECT loan_contract_number FROM pay WHERE loan)`, args...).Scan(&f.LoansRecoveredFen)
	}
	if err != nil {
		return f, fmt.Errorf("loans recovered: %w", err)
	}
	return f, nil
}

// yearOf is the local (Asia/Shanghai) year of a timestamp column.
func yearOf(col string) string { return "date_part('year', " + col + " AT TIME ZONE 'Asia/Shanghai')" }

// Comparison computes the data office's figures of a year as of an instant.
func Comparison(ctx context.Context, q db.Querier, year int, asOf time.Time) (domain.Comparison, error) {
	var c domain.Comparison
	rows, err := q.Query(ctx, `SELECT from_term, to_term, records, new_clues FROM comparisons
		WHERE `+yearOf("completed_at")+` = $1 AND completed_at <= $2 ORDER BY completed_at, run_id`, year, asOf)
	if err != nil {
		return c, err
	}
	c.Runs, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Run, error) {
		var run domain.Run
		err := r.Scan(&run.FromTerm, &run.ToTerm, &run.Records, &run.NewClues)
		return run, err
	})
	if err != nil {
		return c, err
	}
	counts := func(sql string) ([]domain.Count, error) {
		rows, err := q.Query(ctx, sql, year, asOf)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Count, error) {
			var n domain.Count
			err := r.Scan(&n.Key, &n.N)
			return n, err
		})
	}
	raised := ` FROM clues WHERE ` + yearOf("raised_at") + ` = $1 AND raised_at <= $2`
	if c.CluesByKind, err = counts(`SELECT kind, count(*)` + raised + ` GROUP BY kind ORDER BY kind`); err != nil {
		return c, err
	}
	if c.CluesByOrigin, err = counts(`SELECT origin, count(*)` + raised + ` GROUP BY origin ORDER BY origin`); err != nil {
		return c, err
	}
	closed := ` FROM clues WHERE ` + yearOf("closed_at") + ` = $1 AND closed_at <= $2`
	if c.VerifiedByProg, err = counts(`SELECT program_code, count(*)` + closed + ` AND outcome = 'verified' GROUP BY program_code ORDER BY program_code`); err != nil {
		return c, err
	}
	if err := q.QueryRow(ctx, `SELECT count(*) FILTER (WHERE outcome = 'verified'), count(*) FILTER (WHERE outcome = 'dismissed'),
		count(DISTINCT student_id_hash), count(DISTINCT student_id_hash) FILTER (WHERE outcome = 'verified' AND ineligible)`+closed, year, asOf).
		Scan(&c.Verified, &c.Dismissed, &c.StudentsInvolved, &c.FoundIneligible); err != nil {
		return c, err
	}
	if err := q.QueryRow(ctx, `SELECT count(*), coalesce(sum(amount_fen), 0) FROM refunds
		WHERE `+yearOf("opened_at")+` = $1 AND opened_at <= $2`, year, asOf).Scan(&c.RefundsOpened, &c.RefundOrderedFen); err != nil {
		return c, err
	}
	if err := q.QueryRow(ctx, `SELECT coalesce(sum(rr.amount_fen), 0), count(DISTINCT a.student_id_hash)
		FROM refund_receipts rr JOIN refunds r USING (refund_id)
		LEFT JOIN payments p ON p.payment_id = r.payment_id LEFT JOIN applications a ON a.application_id = p.application_id
		WHERE `+yearOf("rr.received_at")+` = $1 AND rr.received_at <= $2`, year, asOf).Scan(&c.RefundedFen, &c.RefundedStudents); err != nil {
		return c, err
	}
	return c, nil
}

// Version is a FINAL version of a year's report.
type Version struct {
	Year, Version     int
	AsOf, CreatedAt   time.Time
	Report            domain.Report
	SHA256            string
	FinalisedBy, Role string
	Note              string
	Changes           []string
}

// LatestVersion returns the year's latest FINAL version (version 0: the
// latest), or false.
func LatestVersion(ctx context.Context, q db.Querier, year, version int) (Version, bool, error) {
	var v Version
	var content, changes []byte
	err := q.QueryRow(ctx, `SELECT year, version, as_of, created_at, content, content_sha256, finalised_by, finalised_role, note, changes
		FROM report_versions WHERE year = $1 AND ($2 = 0 OR version = $2) ORDER BY version DESC LIMIT 1`, year, version).
		Scan(&v.Year, &v.Version, &v.AsOf, &v.CreatedAt, &content, &v.SHA256, &v.FinalisedBy, &v.Role, &v.Note, &changes)
	if errors.Is(err, pgx.ErrNoRows) {
		return v, false, nil
	}
	if err != nil {
		return v, false, err
	}
	if err := json.Unmarshal(content, &v.Report); err != nil {
		return v, false, err
	}
	return v, true, json.Unmarshal(changes, &v.Changes)
}

// ListVersions lists the year's FINAL versions, oldest first.
func ListVersions(ctx context.Context, q db.Querier, year int) ([]Version, error) {
	rows, err := q.Query(ctx, `SELECT version FROM report_versions WHERE year = $1 ORDER BY version`, year)
	if err != nil {
		return nil, err
	}
	nums, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return nil, err
	}
	out := make([]Version, 0, len(nums))
	for _, n := range nums {
		v, _, err := LatestVersion(ctx, q, year, n)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// InsertVersion appends v; the primary key refuses a concurrent same number.
func InsertVersion(ctx context.Context, tx db.Tx, v Version) error {
	content, err := json.Marshal(v.Report)
	if err != nil {
		return err
	}
	changes, err := json.Marshal(v.Changes)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO report_versions (year, version, as_of, content, content_sha256, finalised_by, finalised_role, note, changes, created_at)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)`, v.Year, v.Version, v.AsOf, content, v.SHA256, v.FinalisedBy, v.Role, v.Note, changes, v.CreatedAt)
	return err
}
