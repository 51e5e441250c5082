package adapters

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/trace"

	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/services/application/internal/domain"
)

// OnePendingPayeeCorrection is the unique index that keeps at most one
// pending payee correction per application.
const OnePendingPayeeCorrection = "payee_corrections_one_pending"

// InsertPayeeCorrection stores a new pending correction.
func (Store) InsertPayeeCorrection(ctx context.Context, tx db.Tx, c domain.PayeeCorrection) error {
	if _, err := tx.Exec(ctx, `INSERT INTO payee_corrections (id, application_id, state,
		  bank_card_masked, bank_card_fingerprint, previous_bank_card_masked, previous_bank_card_fingerprint,
		  bank_card_sealed, account_name_sealed, entered_by, entered_role, entered_org, entered_at)
		VALUES ($1, $2, 'PENDING', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		c.ID, c.ApplicationID, c.CardMasked, c.CardFingerprint, c.PreviousCardMasked, c.PreviousCardFingerprint,
		c.CardSealed, c.AccountNameSealed, c.EnteredBy.UserID, string(c.EnteredBy.Role), c.EnteredBy.Org, c.EnteredAt); err != nil {
		return fmt.Errorf("insert payee correction of %s: %w", c.ApplicationID, err)
	}
	return nil
}

// PendingPayeeCorrection returns the application's pending correction;
// found is false when there is none.
func (Store) PendingPayeeCorrection(ctx context.Context, q db.Querier, applicationID string) (c domain.PayeeCorrection, found bool, err error) {
	var role string
	err = q.QueryRow(ctx, `SELECT id::text, application_id::text, bank_card_masked, bank_card_fingerprint,
		  previous_bank_card_masked, previous_bank_card_fingerprint, bank_card_sealed, account_name_sealed,
		  entered_by, entered_role, entered_org, entered_at
		FROM payee_corrections WHERE application_id = $1 AND state = 'PENDING'`, applicationID).Scan(
		&c.ID, &c.ApplicationID, &c.CardMasked, &c.CardFingerprint, &c.PreviousCardMasked, &c.PreviousCardFingerprint,
		&c.CardSealed, &c.AccountNameSealed, &c.EnteredBy.UserID, &role, &c.EnteredBy.Org, &c.EnteredAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("pending payee correction of %s: %w", applicationID, err)
	}
	c.EnteredBy.Role = auth.Role(role)
	c.EnteredAt = c.EnteredAt.UTC()
	return c, true, nil
}

// PendingPayeeCorrections returns the pending corrections of the given
// applications, by application ID, in one statement (the unique partial
// index payee_corrections_one_pending).
func (Store) PendingPayeeCorrections(ctx context.Context, q db.Querier, applicationIDs []string) (map[string]domain.PayeeCorrection, error) {
	out := make(map[string]domain.PayeeCorrection, len(applicationIDs))
	if len(applicationIDs) == 0 {
		return out, nil
	}
	rows, err := q.Query(ctx, `SELECT id::text, application_id::text, bank_card_masked, bank_card_fingerprint,
		  previous_bank_card_masked, previous_bank_card_fingerprint, bank_card_sealed, account_name_sealed,
		  entered_by, entered_role, entered_org, entered_at
		FROM payee_corrections WHERE application_id = ANY($1::uuid[]) AND state = 'PENDING'`, applicationIDs)
	if err != nil {
		return nil, fmt.Errorf("pending payee corrections: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c domain.PayeeCorrection
		var role string
		if err := rows.Scan(&c.ID, &c.ApplicationID, &c.CardMasked, &c.CardFingerprint, &c.PreviousCardMasked, &c.PreviousCardFingerprint,
			&c.CardSealed, &c.AccountNameSealed, &c.EnteredBy.UserID, &role, &c.EnteredBy.Org, &c.EnteredAt); err != nil {
			return nil, fmt.Errorf("pending payee corrections: %w", err)
		}
		c.EnteredBy.Role = auth.Role(role)
		c.EnteredAt = c.EnteredAt.UTC()
		out[c.ApplicationID] = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pending payee corrections: %w", err)
	}
	return out, nil
}

// DecidePayeeCorrection marks the pending correction id approved or
// rejected by who at at, with reason, and erases the sealed payee it held
// (an approval has copied it to the application). It fails unless the
// correction was pending.
func (Store) DecidePayeeCorrection(ctx context.Context, tx db.Tx, id string, approved bool, who auth.Identity, at time.Time, reason string) error {
	state := "REJECTED"
	if approved {
		state = "APPROVED"
	}
	tag, err := tx.Exec(ctx, `UPDATE payee_corrections SET state = $2, decided_by = $3, decided_role = $4, decided_org = $5,
		  decided_at = $6, reason = $7, bank_card_sealed = '', account_name_sealed = ''
		WHERE id = $1 AND state = 'PENDING'`, id, state, who.UserID, string(who.Role), who.Org, at, reason)
	if err != nil {
		return fmt.Errorf("decide payee correction %s: %w", id, err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("decide payee correction %s: it is no longer pending", id)
	}
	return nil
}

// Read is one call's read of unmasked personal data.
type Read struct {
	At             time.Time
	Reader         auth.Identity
	UseCase        string
	Purpose        string
	ApplicationIDs []string
}

// RecordRead appends r to the insert-only record of personal data reads, in
// one statement whatever the number of applications.
func (Store) RecordRead(ctx context.Context, q db.Querier, r Read) error {
	traceID := ""
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		traceID = sc.TraceID().String()
	}
	if _, err := q.Exec(ctx, `INSERT INTO pii_reads (at, user_id, role, org, use_case, purpose, application_ids, trace_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7::uuid[], $8)`,
		r.At, r.Reader.UserID, string(r.Reader.Role), r.Reader.Org, r.UseCase, r.Purpose, r.ApplicationIDs, traceID); err != nil {
		return fmt.Errorf("record read of %d applications: %w", len(r.ApplicationIDs), err)
	}
	return nil
}
