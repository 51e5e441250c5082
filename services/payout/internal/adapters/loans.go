package adapters

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/page"
	"github.com/edubureau/studentaid/services/payout/internal/domain"
)

// InsertLoanContracts records the contracts the bank opened, in one
// statement; a payment's contract already recorded is left alone. A
// contract number the bank gave twice fails with a unique violation.
func InsertLoanContracts(ctx context.Context, tx db.Tx, cs []domain.LoanContract) error {
	if len(cs) == 0 {
		return nil
	}
	n := len(cs)
	numbers, payments, apps, batches := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	schools, programs, terms := make([]string, n), make([]string, n), make([]string, n)
	amounts, years, opened := make([]int64, n), make([]int32, n), make([]time.Time, n)
	for i, c := range cs {
		numbers[i], payments[i], apps[i], batches[i] = c.ContractNumber, c.PaymentID, c.ApplicationID, c.BatchID
		schools[i], programs[i], terms[i] = c.SchoolCode, c.ProgramCode, c.Term
		amounts[i], years[i], opened[i] = c.AmountFen, c.Years, c.OpenedAt.UTC()
	}
	_, err := tx.Exec(ctx, `INSERT INTO loan_contracts (contract_number, payment_id, application_id, batch_id, school_code, program_code,
                            term, amount_fen, years, opened_at)
SELECT * FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::int[], $10::timestamptz[])
ON CONFLICT (payment_id) DO NOTHING`, numbers, payments, apps, batches, schools, programs, terms, amounts, years, opened)
	if err != nil {
		return fmt.Errorf("record %d loan contracts: %w", n, err)
	}
	return nil
}

// LockLoanContract serialises the repayments of one contract to the end of
// tx, so that each sees the others when it checks what is outstanding. An
// advisory lock, because the service's role may not lock rows of its
// append-only tables.
func LockLoanContract(ctx context.Context, tx db.Tx, contractNumber string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('loan:' || $1, 0))`, contractNumber); err != nil {
		return fmt.Errorf("lock loan contract %s: %w", contractNumber, err)
	}
	return nil
}

// LockLoanReference serialises the requests that name one bank reference to
// the end of tx.
func LockLoanReference(ctx context.Context, tx db.Tx, bankReference string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('loanref:' || $1, 0))`, bankReference); err != nil {
		return fmt.Errorf("lock bank reference %s: %w", bankReference, err)
	}
	return nil
}

// The loan book: every contract with its repayments summed by kind.
const loanBook = `WITH book AS (
  SELECT c.contract_number, c.payment_id::text AS payment_id, c.application_id::text AS application_id, c.batch_id::text AS batch_id,
         c.school_code, c.program_code, c.term, c.amount_fen, c.years, c.opened_at,
         coalesce(r.repaid, 0)::bigint AS repaid_fen, coalesce(r.recovered, 0)::bigint AS recovered_fen
    FROM loan_contracts c
    LEFT JOIN LATERAL (
      SELECT sum(amount_fen) FILTER (WHERE kind = 'REPAYMENT') AS repaid, sum(amount_fen) FILTER (WHERE kind = 'RECOVERY') AS recovered
        FROM loan_repayments p WHERE p.contract_number = c.contract_number
    ) r ON true
   WHERE ($1 = '' OR c.term = $1) AND ($2 = '' OR c.school_code = $2)
), selected AS (
  SELECT *, amount_fen - repaid_fen - recovered_fen AS outstanding_fen FROM book
   WHERE $3 = '' OR (CASE WHEN amount_fen - repaid_fen - recovered_fen > 0 THEN 'open' ELSE 'repaid' END) = $3
)
`

const loanColumns = `contract_number, payment_id, application_id, batch_id, school_code, program_code, term, amount_fen, years, opened_at,
       repaid_fen, recovered_fen`

func scanLoan(row pgx.CollectableRow) (domain.LoanContract, error) {
	var c domain.LoanContract
	err := row.Scan(&c.ContractNumber, &c.PaymentID, &c.ApplicationID, &c.BatchID, &c.SchoolCode, &c.ProgramCode, &c.Term,
		&c.AmountFen, &c.Years, &c.OpenedAt, &c.RepaidFen, &c.RecoveredFen)
	c.OpenedAt = c.OpenedAt.UTC()
	return c, err
}

// GetLoanContract reads a contract with its totals. Returns ErrNotFound if there is none.
func GetLoanContract(ctx context.Context, q db.Querier, contractNumber string) (domain.LoanContract, error) {
	rows, err := q.Query(ctx, loanBook+`SELECT `+loanColumns+` FROM selected WHERE contract_number = $4`, "", "", "", contractNumber)
	if err != nil {
		return domain.LoanContract{}, fmt.Errorf("read loan contract %s: %w", contractNumber, err)
	}
	c, err := pgx.CollectExactlyOneRow(rows, scanLoan)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, ErrNotFound
	}
	if err != nil {
		return c, fmt.Errorf("read loan contract %s: %w", contractNumber, err)
	}
	return c, nil
}

// ListLoans returns up to limit contracts matching f in contract-number
// order after the given one (from the first when empty), and whether more
// follow.
func ListLoans(ctx context.Context, q db.Querier, f domain.LoanFilter, after string, limit int) ([]domain.LoanContract, bool, error) {
	rows, err := q.Query(ctx, loanBook+`SELECT `+loanColumns+` FROM selected WHERE contract_number > $4 ORDER BY contract_number LIMIT $5`,
		f.Term, f.SchoolCode, string(f.Status), after, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("list loans: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanLoan)
	if err != nil {
		return nil, false, fmt.Errorf("list loans: %w", err)
	}
	out, more := page.Trim(out, limit)
	return out, more, nil
}

// LoanBookTotals sums the contracts matching f.
func LoanBookTotals(ctx context.Context, q db.Querier, f domain.LoanFilter) (domain.LoanBookTotals, error) {
	var t domain.LoanBookTotals
	err := q.QueryRow(ctx, loanBook+`SELECT count(*), coalesce(sum(amount_fen), 0)::bigint, coalesce(sum(repaid_fen), 0)::bigint,
       coalesce(sum(recovered_fen), 0)::bigint, coalesce(sum(outstanding_fen), 0)::bigint FROM selected`,
		f.Term, f.SchoolCode, string(f.Status)).Scan(&t.Contracts, &t.AmountFen, &t.RepaidFen, &t.RecoveredFen, &t.OutstandingFen)
	if err != nil {
		return t, fmt.Errorf("total the loan book: %w", err)
	}
	return t, nil
}

const repaymentColumns = `repayment_id::text, contract_number, kind, amount_fen, bank_reference, paid_on, reason, recorded_by, recorded_at`

// RepaymentByReference reads the repayment recorded under a bank reference.
// Returns ErrNotFound if there is none.
func RepaymentByReference(ctx context.Context, q db.Querier, bankReference string) (domain.Repayment, error) {
	var r domain.Repayment
	var kind string
	err := q.QueryRow(ctx, `SELECT `+repaymentColumns+` FROM loan_repayments WHERE bank_reference = $1`, bankReference).Scan(
		&r.ID, &r.ContractNumber, &kind, &r.AmountFen, &r.BankReference, &r.PaidOn, &r.Reason, &r.RecordedBy, &r.RecordedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, ErrNotFound
	}
	if err != nil {
		return r, fmt.Errorf("read repayment %s: %w", bankReference, err)
	}
	r.Kind, r.PaidOn, r.RecordedAt = domain.RepaymentKind(kind), r.PaidOn.UTC(), r.RecordedAt.UTC()
	return r, nil
}

// InsertRepayment records a repayment. A bank reference recorded before
// fails with a unique violation of LoanRepaymentReference.
func InsertRepayment(ctx context.Context, tx db.Tx, r domain.Repayment) error {
	_, err := tx.Exec(ctx, `INSERT INTO loan_repayments (repayment_id, contract_number, kind, amount_fen, bank_reference, paid_on, reason,
                             recorded_by, recorded_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		r.ID, r.ContractNumber, string(r.Kind), r.AmountFen, r.BankReference, r.PaidOn, r.Reason, r.RecordedBy, r.RecordedAt)
	if err != nil {
		return fmt.Errorf("record repayment %s on %s: %w", r.BankReference, r.ContractNumber, err)
	}
	return nil
}
