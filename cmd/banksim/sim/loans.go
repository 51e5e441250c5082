package sim

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/db"
)

// The bank's rule for the term of a student loan (生源地信用助学贷款): the
// years of study left plus LoanGraceYears, at most MaxLoanYears. A request
// that does not say how many years of study are left is taken as a
// four-year course just begun (DefaultStudyYearsLeft), i.e. 19 years.
const (
	LoanGraceYears        = 15
	MaxLoanYears          = 22
	DefaultStudyYearsLeft = 4
	// MaxStudyYearsLeft bounds the years of study a request may give.
	MaxStudyYearsLeft = 10
)

// LoanYears is the term in years the bank sets for a loan to a student with
// studyYearsLeft years of study left (0: not given, DefaultStudyYearsLeft).
func LoanYears(studyYearsLeft int) int {
	if studyYearsLeft == 0 {
		studyYearsLeft = DefaultStudyYearsLeft
	}
	return min(studyYearsLeft+LoanGraceYears, MaxLoanYears)
}

// LoanRequest asks the bank to open a loan contract of AmountFen for a
// borrower, once per idempotency key.
type LoanRequest struct {
	IdempotencyKey string `json:"idempotency_key"`
	BorrowerName   string `json:"borrower_name"`
	// CardNumber is the borrower's account the loan is repaid from.
	CardNumber string `json:"card_number"`
	AmountFen  int64  `json:"amount_fen"`
	// StudyYearsLeft is optional; 0 means not given.
	StudyYearsLeft int `json:"study_years_left"`
}

// Loan is the bank's record of a loan contract.
type Loan struct {
	IdempotencyKey string
	ContractNumber string
	BorrowerName   string
	CardNumber     string
	AmountFen      int64
	StudyYearsLeft int
	Years          int
	CreatedAt      time.Time
}

// Validate reports, wrapping ErrInvalidPayment, what is wrong with r. Its
// messages never contain the card number or the name.
func (r LoanRequest) Validate() error {
	if err := ValidateKey(r.IdempotencyKey); err != nil {
		return err
	}
	n := len(r.CardNumber)
	if n < MinCardLen || n > MaxCardLen || !allDigits(r.CardNumber) {
		return fmt.Errorf("%w: card_number must be %d to %d digits", ErrInvalidPayment, MinCardLen, MaxCardLen)
	}
	if strings.TrimSpace(r.BorrowerName) == "" || !utf8.ValidString(r.BorrowerName) || utf8.RuneCountInString(r.BorrowerName) > MaxAccountNameLen {
		return fmt.Errorf("%w: borrower_name must be valid UTF-8 of 1 to %d characters", ErrInvalidPayment, MaxAccountNameLen)
	}
	if r.AmountFen <= 0 {
		return fmt.Errorf("%w: amount_fen must be positive", ErrInvalidPayment)
	}
	if r.StudyYearsLeft < 0 || r.StudyYearsLeft > MaxStudyYearsLeft {
		return fmt.Errorf("%w: study_years_left must be in 0..%d", ErrInvalidPayment, MaxStudyYearsLeft)
	}
	return nil
}

const loanColumns = `idempotency_key, contract_number, borrower_name, card_number, amount_fen, study_years_left, years, created_at`

// newContractNumber is a contract number of the simulated bank:
// BSIM-L<yyyymmdd>-<10 random hex digits>.
func newContractNumber(now time.Time) string {
	b := make([]byte, 5)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return fmt.Sprintf("BSIM-L%s-%X", now.UTC().Format("20060102"), b)
}

// OpenLoan opens the loan contract r asks for at most once per key. The
// first call records it and reports created; later calls with the same
// request return that record unchanged. Returns ErrInvalidPayment for a
// malformed r and ErrKeyReused when the key was used for another borrower,
// card or amount.
func (l *Ledger) OpenLoan(ctx context.Context, r LoanRequest, now time.Time) (loan Loan, created bool, err error) {
	if err := r.Validate(); err != nil {
		return Loan{}, false, err
	}
	err = db.InTx(ctx, l.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO `+l.loans+` (`+loanColumns+`)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (idempotency_key) DO NOTHING`,
			r.IdempotencyKey, newContractNumber(now), r.BorrowerName, r.CardNumber, r.AmountFen, r.StudyYearsLeft, LoanYears(r.StudyYearsLeft), now)
		if err != nil {
			return fmt.Errorf("insert loan: %w", err)
		}
		created = tag.RowsAffected() == 1
		loan, err = l.getLoan(ctx, tx, r.IdempotencyKey)
		return err
	})
	if err != nil {
		return Loan{}, false, fmt.Errorf("open loan %s: %w", r.IdempotencyKey, err)
	}
	if loan.BorrowerName != r.BorrowerName || loan.CardNumber != r.CardNumber || loan.AmountFen != r.AmountFen || loan.StudyYearsLeft != r.StudyYearsLeft {
		return Loan{}, false, fmt.Errorf("open loan %s: %w", r.IdempotencyKey, ErrKeyReused)
	}
	return loan, created, nil
}

// GetLoan returns the loan contract opened under key, or ErrNotFound.
func (l *Ledger) GetLoan(ctx context.Context, key string) (Loan, error) {
	loan, err := l.getLoan(ctx, l.pool, key)
	if err != nil {
		return Loan{}, fmt.Errorf("get loan %s: %w", key, err)
	}
	return loan, nil
}

func (l *Ledger) getLoan(ctx context.Context, q querier, key string) (Loan, error) {
	var loan Loan
	err := q.QueryRow(ctx, `SELECT `+loanColumns+` FROM `+l.loans+` WHERE idempotency_key = $1`, key).Scan(
		&loan.IdempotencyKey, &loan.ContractNumber, &loan.BorrowerName, &loan.CardNumber, &loan.AmountFen,
		&loan.StudyYearsLeft, &loan.Years, &loan.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Loan{}, ErrNotFound
	}
	return loan, err
}

// LoanTotals sum up the loan contracts the bank opened.
type LoanTotals struct {
	Count  int64
	SumFen int64
}

// LoanTotals counts and sums every loan contract.
func (l *Ledger) LoanTotals(ctx context.Context) (LoanTotals, error) {
	var t LoanTotals
	if err := l.pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(amount_fen), 0)::bigint FROM `+l.loans).Scan(&t.Count, &t.SumFen); err != nil {
		return t, fmt.Errorf("loan totals: %w", err)
	}
	return t, nil
}
