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
	// EventID is the submission's event: its first step's visit.
	EventID string
	// BackPayClueID is the missed-student clue a back-pay application
	// fulfils; "" for the others.
	BackPayClueID string
}

// ErrUnknownApplication: a payment names an application not seen yet.
var ErrUnknownApplication = errors.New("unknown application")

// ErrUnknownRefund: a receipt names a refund not seen yet.
var ErrUnknownRefund = errors.New("unknown refund")

// InsertApplication keeps a, once.
func InsertApplication(ctx context.Context, tx db.Tx, a Application) error {
	sql, args, err := applicationInsert(a)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("insert application %s: %w", a.ID, err)
	}
	return nil
}

// applicationInsert is the statement that keeps a, once.
func applicationInsert(a Application) (string, []any, error) {
	shares, err := json.Marshal(a.SharesBP)
	if err != nil {
		return "", nil, err
	}
	return `INSERT INTO applications (application_id, student_id_hash, school_code, program_code, term, term_rank,
		stage, funding_source, government_total, shares_bp, policy_version, submitted_at, back_pay_clue_id)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13) ON CONFLICT DO NOTHING`,
		[]any{a.ID, a.StudentIDHash, a.SchoolCode, a.ProgramCode, a.Term, a.TermRank, a.Stage, a.FundingSource, a.GovernmentTotal,
			shares, a.PolicyVersion, a.SubmittedAt, a.BackPayClueID}, nil
}

// InsertPayment keeps a succeeded payment, once, and adds it to the
// aggregates in the same transaction.
func InsertPayment(ctx context.Context, tx db.Tx, paymentID, applicationID string, amountFen int64, loanContract string, at time.Time) error {
	w := &Writes{}
	if err := InsertPaymentTo(ctx, tx, w, paymentID, applicationID, amountFen, loanContract, at); err != nil {
		return err
	}
	return w.Run(ctx, tx)
}

// paymentInsert keeps a payment of a known application, once, and returns
// its fact but the payment's own amount and kind: no row when the
// application is not known.
const paymentInsert = `WITH a AS (
	  SELECT term_rank, program_code, school_code, stage, shares_bp::text AS shares, student_id_hash, government_total
	  FROM applications WHERE application_id = $2::uuid),
	ins AS (
	  INSERT INTO payments (payment_id, application_id, amount_fen, loan_contract_number, paid_at)
	  SELECT $1::text, $2::uuid, $3::bigint, $4::text, $5::timestamptz FROM a ON CONFLICT DO NOTHING RETURNING 1)
	SELECT a.term_rank, a.program_code, a.school_code, a.stage, a.shares, a.student_id_hash, a.government_total,
	       EXISTS (SELECT 1 FROM ins),
	       coalesce((SELECT sum(rr.amount_fen) FROM refunds r JOIN refund_receipts rr USING (refund_id) WHERE r.payment_id = $1::text), 0)::bigint
	FROM a`

// InsertPaymentTo is InsertPayment with the writes no later statement
// reads queued in w.
func InsertPaymentTo(ctx context.Context, tx db.Tx, w *Writes, paymentID, applicationID string, amountFen int64, loanContract string, at time.Time) error {
	return InsertPaymentsTo(ctx, tx, w, []Payment{{ID: paymentID, ApplicationID: applicationID, AmountFen: amountFen,
		LoanContract: loanContract, At: at}})
}

// Payment is a succeeded payment.
type Payment struct {
	ID, ApplicationID string
	AmountFen         int64
	LoanContract      string
	At                time.Time
}

// paid is what keeping one payment reads.
type paid struct {
	f        fact
	inserted bool
	live     int
	now      []liveRow
	n        [16]int64
	h        history
}

// InsertPaymentsTo is InsertPaymentTo of each of ps in order, payments of
// different students (no two of ps may be the same student's): one round
// trip keeps them all (paymentInsert), one adds them to paid_groups and
// person_terms and reads what the rest follows from. Each payment reads
// only its own student's rows, and adds to paid_groups, so the others'
// statements before its own do not change what it reads or keeps.
func InsertPaymentsTo(ctx context.Context, tx db.Tx, w *Writes, ps []Payment) error {
	st := make([]paid, len(ps))
	r := &stmts{}
	for i, p := range ps {
		x := &st[i]
		r.add(func(res results) error {
			err := res.QueryRow().Scan(&x.f.termRank, &x.f.program, &x.f.school, &x.f.stage, &x.f.shares, &x.f.studentIDH,
				&x.f.government, &x.inserted, &x.f.recoveredFen)
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("%w %s (payment %s)", ErrUnknownApplication, p.ApplicationID, p.ID)
			}
			if err != nil {
				return fmt.Errorf("insert payment %s: %w", p.ID, err)
			}
			// Receipts of a refund can arrive before the payment they
			// recover: they are in its recovered amount.
			x.f.loan, x.f.amountFen = p.LoanContract != "", p.AmountFen
			return nil
		}, paymentInsert, p.ID, p.ApplicationID, p.AmountFen, p.LoanContract, p.At)
	}
	if err := r.run(ctx, tx); err != nil {
		return err
	}
	for i, p := range ps {
		x := &st[i]
		if !x.inserted {
			continue // kept before: already in the aggregates
		}
		f := x.f
		what := func(err error) error { return fmt.Errorf("aggregate payment %s: %w", p.ID, err) }
		r.add(func(res results) error {
			if _, err := res.Exec(); err != nil {
				return what(fmt.Errorf("paid groups: %w", err))
			}
			return nil
		}, paidGroupsAdd, paidGroupsArgs(f)...)
		if f.live() {
			r.add(func(res results) error {
				if err := res.QueryRow().Scan(&x.live); err != nil {
					return what(fmt.Errorf("person terms: %w", err))
				}
				return nil
			}, personTermsAdd, personTermsArgs(f)...)
			r.add(func(res results) error {
				rows, err := res.Query()
				if err != nil {
					return what(fmt.Errorf("person runs: %w", err))
				}
				if x.now, err = scanLiveRows(rows); err != nil {
					return what(err)
				}
				return nil
			}, liveRowsSQL, f.studentIDH)
			r.add(func(res results) error {
				var err error
				if x.n, err = scanPeriods(res.QueryRow()); err != nil {
					return what(err)
				}
				return nil
			}, periodsSQL, periodsArgs(f)...)
		}
		queueHistory(r, &x.h, f.studentIDH, "")
	}
	if err := r.run(ctx, tx); err != nil {
		return err
	}
	for i, p := range ps {
		x := &st[i]
		if !x.inserted {
			continue
		}
		// personCounts: the student's counts move when this row is their
		// only live one in its cell.
		if x.f.live() && x.live == 1 {
			queueRuns(w, x.f, x.now, 1)
			queuePeriods(w, x.f, x.n, 1)
		}
		queueLogStudent(w, x.f.studentIDH, x.h.without(p.ID, ""), x.h)
	}
	return nil
}

// Students returns the students of the known applications among ids.
func Students(ctx context.Context, q db.Querier, ids []string) (map[string]string, error) {
	rows, err := q.Query(ctx, `SELECT application_id::text, student_id_hash FROM applications WHERE application_id = ANY ($1::uuid[])`, ids)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	var id, student string
	_, err = pgx.ForEachRow(rows, []any{&id, &student}, func() error {
		out[id] = student
		return nil
	})
	return out, err
}

// InsertRefund keeps an ordered refund, once.
func InsertRefund(ctx context.Context, tx db.Tx, refundID, paymentID, clueID string, amountFen int64, at time.Time) error {
	_, err := tx.Exec(ctx, `INSERT INTO refunds (refund_id, payment_id, clue_id, amount_fen, opened_at)
		VALUES ($1,$2,$3,$4,$5) ON CONFLICT DO NOTHING`, refundID, paymentID, clueID, amountFen, at)
	return err
}

// InsertReceipt keeps one refund receipt, once per event, and moves the
// refunded payment (if it is known yet) to its new net amount in the
// aggregates, in the same transaction.
func InsertReceipt(ctx context.Context, tx db.Tx, eventID, refundID string, amountFen int64, at time.Time) error {
	w := &Writes{}
	if err := InsertReceiptTo(ctx, tx, w, eventID, refundID, amountFen, at); err != nil {
		return err
	}
	return w.Run(ctx, tx)
}

// InsertReceiptTo is InsertReceipt with the writes no later statement
// reads queued in w.
func InsertReceiptTo(ctx context.Context, tx db.Tx, w *Writes, eventID, refundID string, amountFen int64, at time.Time) error {
	var paymentID string
	err := tx.QueryRow(ctx, `SELECT payment_id FROM refunds WHERE refund_id = $1`, refundID).Scan(&paymentID)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w %s", ErrUnknownRefund, refundID)
	}
	if err != nil {
		return err
	}
	tag, err := tx.Exec(ctx, `INSERT INTO refund_receipts (event_id, refund_id, amount_fen, received_at)
		VALUES ($1,$2,$3,$4) ON CONFLICT DO NOTHING`, eventID, refundID, amountFen, at)
	if err != nil || tag.RowsAffected() == 0 {
		return err
	}
	after, ok, err := loadFact(ctx, tx, paymentID)
	if err != nil || !ok {
		return err // a payment not known yet counts its receipts when it arrives
	}
	before := after
	before.recoveredFen -= amountFen
	if err := moveFact(ctx, tx, w, &before, &after); err != nil {
		return fmt.Errorf("aggregate receipt %s: %w", eventID, err)
	}
	return logPaymentChange(ctx, tx, w, after.studentIDH, paymentID, eventID)
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
	if err := q.QueryRow(ctx, `SELECT count(DISTINCT a.student_id_hash), coalesce(sum(p.amount_fen), 0)
		FROM payments p JOIN applications a USING (application_id)
		WHERE a.back_pay_clue_id <> '' AND `+yearOf("p.paid_at")+` = $1 AND p.paid_at <= $2`, year, asOf).Scan(&c.BackPaidStudents, &c.BackPaidFen); err != nil {
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
