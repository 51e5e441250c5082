// Package adapters keeps payout's payees and payments in PostgreSQL: the
// work queue the pay worker claims from with FOR UPDATE SKIP LOCKED, and
// set-based settlement of many bank verdicts in one statement.
package adapters

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/page"

	"github.com/edubureau/studentaid/services/payout/internal/domain"
)

// ErrNotFound: no such payment.
var ErrNotFound = errors.New("not found")

// OneLivePaymentPerApplication is the unique index that keeps an application
// from having two open or paid payments.
const OneLivePaymentPerApplication = "payments_one_live_per_application"

// SavePayee stores p unless a newer description of the application's payee is already stored.
func SavePayee(ctx context.Context, tx db.Tx, p domain.Payee) error {
	_, err := tx.Exec(ctx, `INSERT INTO payees (application_id, bank_card_sealed, account_name_sealed, bank_card_masked, source_event_id, source_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (application_id) DO UPDATE
   SET bank_card_sealed = EXCLUDED.bank_card_sealed, account_name_sealed = EXCLUDED.account_name_sealed,
       bank_card_masked = EXCLUDED.bank_card_masked, source_event_id = EXCLUDED.source_event_id,
       source_at = EXCLUDED.source_at, updated_at = now()
 WHERE payees.source_at <= EXCLUDED.source_at`,
		p.ApplicationID, p.CardSealed, p.NameSealed, p.CardMasked, p.EventID, p.At)
	if err != nil {
		return fmt.Errorf("save payee of %s: %w", p.ApplicationID, err)
	}
	return nil
}

// NewPayment is a payment finance ordered, with the trace context of the
// order's consumer span, which the bank call continues.
type NewPayment struct {
	domain.Order
	TraceParent string
	TraceState  string
}

// AddPayment stores a PENDING payment with a copy of the application's
// current payee. payeeKnown is false (and nothing is stored) when the payee
// has not arrived yet; inserted is false when the payment was already stored.
func AddPayment(ctx context.Context, tx db.Tx, p NewPayment) (payeeKnown, inserted bool, err error) {
	err = tx.QueryRow(ctx, `WITH p AS (
  SELECT bank_card_sealed, account_name_sealed, bank_card_masked FROM payees WHERE application_id = $2
), ins AS (
  INSERT INTO payments (payment_id, application_id, batch_id, school_code, program_code, term, amount_fen, order_attempt,
                        bank_card_sealed, account_name_sealed, bank_card_masked, traceparent, tracestate)
  SELECT $1, $2, $3, $4, $5, $6, $7, $8, p.bank_card_sealed, p.account_name_sealed, p.bank_card_masked, $9, $10 FROM p
  ON CONFLICT (payment_id) DO NOTHING
  RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM p), EXISTS (SELECT 1 FROM ins)`,
		p.PaymentID, p.ApplicationID, p.BatchID, p.SchoolCode, p.ProgramCode, p.Term, p.AmountFen, p.Attempt,
		p.TraceParent, p.TraceState).Scan(&payeeKnown, &inserted)
	if err != nil {
		return false, false, fmt.Errorf("add payment %s: %w", p.PaymentID, err)
	}
	return payeeKnown, inserted, nil
}

// AddPayments stores PENDING payments, each with a copy of its
// application's current payee, in one statement; payments already stored are
// left alone. missing counts the payments whose payee has not arrived, and
// unproven those that their batch's verified manifest does not prove (no
// verified manifest yet, another program or term, not listed, another amount, or a first order under
// another payment ID: domain.Order.CheckAgainst as one join): the caller must
// then roll back, as those were not stored. A second live payment for one
// application fails with a unique violation of OneLivePaymentPerApplication.
func AddPayments(ctx context.Context, tx db.Tx, ps []NewPayment) (missing, unproven int, err error) {
	n := len(ps)
	ids, apps, batches := make([]string, n), make([]string, n), make([]string, n)
	schools, programs, terms := make([]string, n), make([]string, n), make([]string, n)
	amounts, orders := make([]int64, n), make([]int32, n)
	parents, states := make([]string, n), make([]string, n)
	for i, p := range ps {
		ids[i], apps[i], batches[i] = p.PaymentID, p.ApplicationID, p.BatchID
		schools[i], programs[i], terms[i] = p.SchoolCode, p.ProgramCode, p.Term
		amounts[i], orders[i] = p.AmountFen, p.Attempt
		parents[i], states[i] = p.TraceParent, p.TraceState
	}
	err = tx.QueryRow(ctx, `WITH r AS MATERIALIZED (
  SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::int[], $9::text[], $10::text[])
      AS r(payment_id, application_id, batch_id, school_code, program_code, term, amount_fen, order_attempt, traceparent, tracestate)
), proven AS MATERIALIZED (
  SELECT r.*, EXISTS (SELECT 1 FROM manifests_verified v WHERE v.batch_id = r.batch_id)
              AND h.program_code = r.program_code AND h.term = r.term
              AND m.amount_fen = r.amount_fen
              AND (r.order_attempt > 1 OR m.payment_id IS NULL OR m.payment_id = r.payment_id) AS ok
    FROM r LEFT JOIN manifests h ON h.batch_id = r.batch_id
           LEFT JOIN manifest_items m ON m.batch_id = r.batch_id AND m.application_id = r.application_id
), ins AS (
  INSERT INTO payments (payment_id, application_id, batch_id, school_code, program_code, term, amount_fen, order_attempt,
                        bank_card_sealed, account_name_sealed, bank_card_masked, traceparent, tracestate)
  SELECT r.payment_id, r.application_id, r.batch_id, r.school_code, r.program_code, r.term, r.amount_fen, r.order_attempt,
         p.bank_card_sealed, p.account_name_sealed, p.bank_card_masked, r.traceparent, r.tracestate
    FROM proven r JOIN payees p ON p.application_id = r.application_id
   WHERE r.ok
  ON CONFLICT (payment_id) DO NOTHING
)
SELECT count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM payees p WHERE p.application_id = r.application_id)),
       count(*) FILTER (WHERE r.ok IS NOT TRUE)
  FROM proven r`,
		ids, apps, batches, schools, programs, terms, amounts, orders, parents, states).Scan(&missing, &unproven)
	if err != nil {
		return 0, 0, fmt.Errorf("add %d payments: %w", n, err)
	}
	return missing, unproven, nil
}

// Claimed is a payment a worker took up: its state before the claim, what it
// needs for the bank call, and the trace it continues.
type Claimed struct {
	domain.Payment
	ClaimID     string
	CardSealed  []byte
	NameSealed  []byte
	TraceParent string
	TraceState  string
}

// Claim takes up to limit due payments (PENDING, or UNKNOWN whose wait is
// over), skipping rows other workers hold, and commits them as UNKNOWN with
// one more attempt and a lease (and their batch's funding source, which makes
// a payment a loan): until the lease ends no other worker takes
// them, and if this one dies they are looked up at the bank, never paid
// blind. The returned payments carry their state from before the claim.
// This is domain.Payment.Claim applied to every due payment at once; the
// test of Claim runs both over the same payments.
func Claim(ctx context.Context, q db.Querier, limit int, lease time.Duration) ([]Claimed, error) {
	claimID := uuid.NewString()
	rows, err := q.Query(ctx, `WITH c AS (
  SELECT payment_id, status AS was FROM payments
   WHERE status IN ('PENDING', 'UNKNOWN') AND next_attempt_at <= now()
   ORDER BY next_attempt_at
   LIMIT $1
   FOR UPDATE SKIP LOCKED
)
UPDATE payments p
   SET status = 'UNKNOWN', attempts = p.attempts + 1, claim_id = $2,
       next_attempt_at = now() + $3 * interval '1 millisecond', updated_at = now()
  FROM c
 WHERE p.payment_id = c.payment_id
RETURNING p.payment_id::text, c.was, p.attempts - 1, p.application_id::text, p.batch_id::text, p.school_code,
          p.program_code, p.term, p.amount_fen, p.order_attempt, p.bank_card_masked,
          p.bank_card_sealed, p.account_name_sealed, p.traceparent, p.tracestate,
          coalesce((SELECT m.funding_source FROM manifests m WHERE m.batch_id = p.batch_id), '')`,
		limit, claimID, lease.Milliseconds())
	if err != nil {
		return nil, fmt.Errorf("claim payments: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Claimed, error) {
		c := Claimed{ClaimID: claimID}
		var was string
		err := r.Scan(&c.PaymentID, &was, &c.Attempts, &c.ApplicationID, &c.BatchID, &c.SchoolCode,
			&c.ProgramCode, &c.Term, &c.AmountFen, &c.Attempt, &c.CardMasked,
			&c.CardSealed, &c.NameSealed, &c.TraceParent, &c.TraceState, &c.FundingSource)
		c.Status = domain.Status(was)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("claim payments: %w", err)
	}
	return out, nil
}

// Settlement is the bank's verdict on one payment.
type Settlement struct {
	PaymentID string
	Status    domain.Status
	BankRef   string
	Reason    string
}

// Settle records verdicts on UNKNOWN payments in one statement and returns
// the IDs it changed; a payment another worker already settled is skipped,
// so its outcome event is written once.
func Settle(ctx context.Context, tx db.Tx, ss []Settlement) (map[string]bool, error) {
	if len(ss) == 0 {
		return map[string]bool{}, nil
	}
	ids := make([]string, len(ss))
	statuses := make([]string, len(ss))
	refs := make([]string, len(ss))
	reasons := make([]string, len(ss))
	for i, s := range ss {
		ids[i], statuses[i], refs[i], reasons[i] = s.PaymentID, string(s.Status), s.BankRef, s.Reason
	}
	rows, err := tx.Query(ctx, `UPDATE payments p
   SET status = r.status, bank_ref = r.bank_ref, reason = r.reason, last_error = '', updated_at = now()
  FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS r(payment_id, status, bank_ref, reason)
 WHERE p.payment_id = r.payment_id AND p.status = 'UNKNOWN'
RETURNING p.payment_id::text`, ids, statuses, refs, reasons)
	if err != nil {
		return nil, fmt.Errorf("settle %d payments: %w", len(ss), err)
	}
	applied := make(map[string]bool, len(ss))
	var id string
	if _, err := pgx.ForEachRow(rows, []any{&id}, func() error { applied[id] = true; return nil }); err != nil {
		return nil, fmt.Errorf("settle %d payments: %w", len(ss), err)
	}
	return applied, nil
}

// Postponement puts an UNKNOWN payment back in the queue after Delay.
type Postponement struct {
	PaymentID string
	ClaimID   string
	Delay     time.Duration
	// Error says why, for operators; it never holds a card number or name.
	Error string
}

// Postpone reschedules UNKNOWN payments still held by the claims that took
// them up, in one statement.
func Postpone(ctx context.Context, tx db.Tx, ps []Postponement) error {
	if len(ps) == 0 {
		return nil
	}
	ids := make([]string, len(ps))
	claims := make([]string, len(ps))
	delays := make([]int64, len(ps))
	errs := make([]string, len(ps))
	for i, p := range ps {
		ids[i], claims[i], delays[i], errs[i] = p.PaymentID, p.ClaimID, p.Delay.Milliseconds(), truncate(p.Error, 500)
	}
	_, err := tx.Exec(ctx, `UPDATE payments p
   SET next_attempt_at = now() + r.delay_ms * interval '1 millisecond', last_error = r.err, updated_at = now()
  FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::text[]) AS r(payment_id, claim_id, delay_ms, err)
 WHERE p.payment_id = r.payment_id AND p.claim_id = r.claim_id AND p.status = 'UNKNOWN'`, ids, claims, delays, errs)
	if err != nil {
		return fmt.Errorf("postpone %d payments: %w", len(ps), err)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

const paymentColumns = `payment_id::text, application_id::text, batch_id::text, school_code, program_code, term, amount_fen,
	order_attempt, bank_card_masked, status, reason, bank_ref, attempts, created_at, updated_at,
	coalesce((SELECT m.funding_source FROM manifests m WHERE m.batch_id = payments.batch_id), ''),
	coalesce((SELECT l.contract_number FROM loan_contracts l WHERE l.payment_id = payments.payment_id), '')`

func scanPayment(row pgx.Row) (domain.Payment, error) {
	var p domain.Payment
	var status string
	err := row.Scan(&p.PaymentID, &p.ApplicationID, &p.BatchID, &p.SchoolCode, &p.ProgramCode, &p.Term, &p.AmountFen,
		&p.Attempt, &p.CardMasked, &status, &p.Reason, &p.BankRef, &p.Attempts, &p.CreatedAt, &p.UpdatedAt,
		&p.FundingSource, &p.LoanContractNumber)
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Payment{}, ErrNotFound
	}
	p.Status = domain.Status(status)
	p.CreatedAt, p.UpdatedAt = p.CreatedAt.UTC(), p.UpdatedAt.UTC()
	return p, err
}

// GetPayment reads a payment.
func GetPayment(ctx context.Context, q db.Querier, id string) (domain.Payment, error) {
	return scanPayment(q.QueryRow(ctx, `SELECT `+paymentColumns+` FROM payments WHERE payment_id = $1`, id))
}

// ListPayments returns up to limit payments matching f in order of creation
// after cursor (from the first when nil), and whether more follow.
func ListPayments(ctx context.Context, q db.Querier, f domain.PaymentFilter, after *domain.PaymentCursor, limit int) ([]domain.Payment, bool, error) {
	var at *time.Time
	var id, batch, app *string
	if after != nil {
		at, id = &after.CreatedAt, &after.PaymentID
	}
	if f.BatchID != "" {
		batch = &f.BatchID
	}
	if f.ApplicationID != "" {
		app = &f.ApplicationID
	}
	rows, err := q.Query(ctx, `SELECT `+paymentColumns+` FROM payments
WHERE ($1::uuid IS NULL OR batch_id = $1::uuid) AND ($2::uuid IS NULL OR application_id = $2::uuid)
  AND ($3 = '' OR status = $3)
  AND ($4::timestamptz IS NULL OR (created_at, payment_id) > ($4, $5::uuid))
ORDER BY created_at, payment_id
LIMIT $6`, batch, app, string(f.Status), at, id, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("list payments: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Payment, error) { return scanPayment(r) })
	if err != nil {
		return nil, false, fmt.Errorf("list payments: %w", err)
	}
	out, more := page.Trim(out, limit)
	return out, more, nil
}
