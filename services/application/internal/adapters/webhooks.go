package adapters

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/db"
)

// Webhook is a row of webhooks (migration 011).
type Webhook struct {
	ID, SchoolCode, URL string
	SecretSealed        []byte
	CreatedBy           string
	CreatedAt           time.Time
	DeletedAt           *time.Time
	// After is the feed position delivered (or dead-lettered) up to.
	After           FeedPosition
	LastDeliveredAt *time.Time
	Attempts        int
	NextAttemptAt   time.Time
	LastError       string
}

// DeadLetter is a row of webhook_dead_letters.
type DeadLetter struct {
	ID, WebhookID string
	// The changes after After up to and including Last.
	After, Last   FeedPosition
	Changes       int
	Attempts      int
	LastError     string
	FailedAt      time.Time
	RedeliveredAt *time.Time
}

const webhookColumns = `webhook_id::text, school_code, url, secret_sealed, created_by, created_at, deleted_at,
	after_xid::text, after_seq, last_delivered_at, attempts, next_attempt_at, last_error`

func scanWebhook(r pgx.CollectableRow) (Webhook, error) {
	var w Webhook
	var xid string
	if err := r.Scan(&w.ID, &w.SchoolCode, &w.URL, &w.SecretSealed, &w.CreatedBy, &w.CreatedAt, &w.DeletedAt,
		&xid, &w.After.Seq, &w.LastDeliveredAt, &w.Attempts, &w.NextAttemptAt, &w.LastError); err != nil {
		return w, err
	}
	n, err := strconv.ParseUint(xid, 10, 64)
	if err != nil {
		return w, fmt.Errorf("xid %q: %w", xid, err)
	}
	w.After.XID = n
	w.CreatedAt, w.NextAttemptAt = w.CreatedAt.UTC(), w.NextAttemptAt.UTC()
	w.DeletedAt, w.LastDeliveredAt = utcPtr(w.DeletedAt), utcPtr(w.LastDeliveredAt)
	return w, nil
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func xidText(p FeedPosition) string { return strconv.FormatUint(p.XID, 10) }

// InsertWebhook records a new webhook.
func (Store) InsertWebhook(ctx context.Context, q db.Querier, w Webhook) error {
	if _, err := q.Exec(ctx, `INSERT INTO webhooks (webhook_id, school_code, url, secret_sealed, created_by, created_at, after_xid, after_seq)
		VALUES ($1, $2, $3, $4, $5, $6, $7::text::xid8, $8)`,
		w.ID, w.SchoolCode, w.URL, w.SecretSealed, w.CreatedBy, w.CreatedAt, xidText(w.After), w.After.Seq); err != nil {
		return fmt.Errorf("insert webhook: %w", err)
	}
	return nil
}

// Webhooks returns a school's webhooks, newest first.
func (Store) Webhooks(ctx context.Context, q db.Querier, school string) ([]Webhook, error) {
	rows, err := q.Query(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE school_code = $1
		ORDER BY created_at DESC, webhook_id`, school)
	if err != nil {
		return nil, fmt.Errorf("webhooks of %s: %w", school, err)
	}
	out, err := pgx.CollectRows(rows, scanWebhook)
	if err != nil {
		return nil, fmt.Errorf("webhooks of %s: %w", school, err)
	}
	return out, nil
}

// WebhookOf returns a school's webhook, locked FOR UPDATE when lock is set;
// ok is false when the school has no such webhook.
func (Store) WebhookOf(ctx context.Context, q db.Querier, school, id string, lock bool) (Webhook, bool, error) {
	sql := `SELECT ` + webhookColumns + ` FROM webhooks WHERE school_code = $1 AND webhook_id = $2`
	if lock {
		sql += ` FOR UPDATE`
	}
	rows, err := q.Query(ctx, sql, school, id)
	if err != nil {
		return Webhook{}, false, fmt.Errorf("webhook %s: %w", id, err)
	}
	w, err := pgx.CollectExactlyOneRow(rows, scanWebhook)
	if errors.Is(err, pgx.ErrNoRows) {
		return Webhook{}, false, nil
	}
	if err != nil {
		return Webhook{}, false, fmt.Errorf("webhook %s: %w", id, err)
	}
	return w, true, nil
}

// DeleteWebhook marks a webhook deleted (once: the first time is kept).
func (Store) DeleteWebhook(ctx context.Context, q db.Querier, id string, at time.Time) error {
	if _, err := q.Exec(ctx, `UPDATE webhooks SET deleted_at = coalesce(deleted_at, $2) WHERE webhook_id = $1`, id, at); err != nil {
		return fmt.Errorf("delete webhook %s: %w", id, err)
	}
	return nil
}

// DueWebhooks returns up to limit live webhooks whose next attempt is due
// and that have a readable change to deliver (one probe of the feed's
// primary key each).
func (Store) DueWebhooks(ctx context.Context, q db.Querier, now time.Time, limit int) ([]Webhook, error) {
	rows, err := q.Query(ctx, `SELECT `+webhookColumns+` FROM webhooks w
		WHERE deleted_at IS NULL AND next_attempt_at <= $1
		  AND EXISTS (SELECT 1 FROM changes c WHERE c.school_code = w.school_code
		                AND (c.xid, c.seq) > (w.after_xid, w.after_seq)
		                AND c.xid < pg_snapshot_xmin(pg_current_snapshot()))
		ORDER BY next_attempt_at, webhook_id LIMIT $2`, now, limit)
	if err != nil {
		return nil, fmt.Errorf("due webhooks: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanWebhook)
	if err != nil {
		return nil, fmt.Errorf("due webhooks: %w", err)
	}
	return out, nil
}

// WebhookDelivered moves a webhook past a position, delivered or (not
// delivered) dead-lettered, and clears its failures, unless it has already
// moved (a stale owner's delivery changes nothing; the caller's lease fence
// refuses it anyway).
func (Store) WebhookDelivered(ctx context.Context, q db.Querier, id string, from, to FeedPosition, at time.Time, delivered bool) error {
	if _, err := q.Exec(ctx, `UPDATE webhooks SET after_xid = $4::text::xid8, after_seq = $5,
		  last_delivered_at = CASE WHEN $7 THEN $6 ELSE last_delivered_at END,
		  attempts = 0, next_attempt_at = $6, last_error = CASE WHEN $7 THEN '' ELSE 'dead-lettered after: ' || last_error END
		WHERE webhook_id = $1 AND after_xid = $2::text::xid8 AND after_seq = $3`,
		id, xidText(from), from.Seq, xidText(to), to.Seq, at, delivered); err != nil {
		return fmt.Errorf("webhook %s delivered: %w", id, err)
	}
	return nil
}

// WebhookFailed records a failed attempt and when to try again.
func (Store) WebhookFailed(ctx context.Context, q db.Querier, id string, from FeedPosition, attempts int, next time.Time, reason string) error {
	if _, err := q.Exec(ctx, `UPDATE webhooks SET attempts = $4, next_attempt_at = $5, last_error = $6
		WHERE webhook_id = $1 AND after_xid = $2::text::xid8 AND after_seq = $3`,
		id, xidText(from), from.Seq, attempts, next, reason); err != nil {
		return fmt.Errorf("webhook %s failed: %w", id, err)
	}
	return nil
}

// InsertDeadLetter records a delivery given up on.
func (Store) InsertDeadLetter(ctx context.Context, q db.Querier, d DeadLetter) error {
	if _, err := q.Exec(ctx, `INSERT INTO webhook_dead_letters (dead_letter_id, webhook_id, after_xid, after_seq, last_xid, last_seq,
		  changes, attempts, last_error, failed_at)
		VALUES ($1, $2, $3::text::xid8, $4, $5::text::xid8, $6, $7, $8, $9, $10)`,
		d.ID, d.WebhookID, xidText(d.After), d.After.Seq, xidText(d.Last), d.Last.Seq, d.Changes, d.Attempts, d.LastError, d.FailedAt); err != nil {
		return fmt.Errorf("insert dead letter: %w", err)
	}
	return nil
}

const deadLetterColumns = `dead_letter_id::text, webhook_id::text, after_xid::text, after_seq, last_xid::text, last_seq,
	changes, attempts, last_error, failed_at, redelivered_at`

func scanDeadLetter(r pgx.CollectableRow) (DeadLetter, error) {
	var d DeadLetter
	var ax, lx string
	if err := r.Scan(&d.ID, &d.WebhookID, &ax, &d.After.Seq, &lx, &d.Last.Seq, &d.Changes, &d.Attempts, &d.LastError,
		&d.FailedAt, &d.RedeliveredAt); err != nil {
		return d, err
	}
	var err error
	if d.After.XID, err = strconv.ParseUint(ax, 10, 64); err != nil {
		return d, fmt.Errorf("xid %q: %w", ax, err)
	}
	if d.Last.XID, err = strconv.ParseUint(lx, 10, 64); err != nil {
		return d, fmt.Errorf("xid %q: %w", lx, err)
	}
	d.FailedAt, d.RedeliveredAt = d.FailedAt.UTC(), utcPtr(d.RedeliveredAt)
	return d, nil
}

// DeadLetters returns a webhook's dead letters, newest first.
func (Store) DeadLetters(ctx context.Context, q db.Querier, webhookID string) ([]DeadLetter, error) {
	rows, err := q.Query(ctx, `SELECT `+deadLetterColumns+` FROM webhook_dead_letters WHERE webhook_id = $1
		ORDER BY failed_at DESC, dead_letter_id`, webhookID)
	if err != nil {
		return nil, fmt.Errorf("dead letters of %s: %w", webhookID, err)
	}
	out, err := pgx.CollectRows(rows, scanDeadLetter)
	if err != nil {
		return nil, fmt.Errorf("dead letters of %s: %w", webhookID, err)
	}
	return out, nil
}

// DeadLetterOf returns one of a webhook's dead letters; ok is false when
// it has no such one.
func (Store) DeadLetterOf(ctx context.Context, q db.Querier, webhookID, id string) (DeadLetter, bool, error) {
	rows, err := q.Query(ctx, `SELECT `+deadLetterColumns+` FROM webhook_dead_letters WHERE webhook_id = $1 AND dead_letter_id = $2`,
		webhookID, id)
	if err != nil {
		return DeadLetter{}, false, fmt.Errorf("dead letter %s: %w", id, err)
	}
	d, err := pgx.CollectExactlyOneRow(rows, scanDeadLetter)
	if errors.Is(err, pgx.ErrNoRows) {
		return DeadLetter{}, false, nil
	}
	if err != nil {
		return DeadLetter{}, false, fmt.Errorf("dead letter %s: %w", id, err)
	}
	return d, true, nil
}

// DeadLetterRedelivered records a successful redelivery.
func (Store) DeadLetterRedelivered(ctx context.Context, q db.Querier, id string, at time.Time) error {
	if _, err := q.Exec(ctx, `UPDATE webhook_dead_letters SET redelivered_at = $2 WHERE dead_letter_id = $1`, id, at); err != nil {
		return fmt.Errorf("dead letter %s redelivered: %w", id, err)
	}
	return nil
}

// ChangesBetween returns the school's changes after from up to and
// including to, in feed order, at most limit.
func (s Store) ChangesBetween(ctx context.Context, q db.Querier, school string, from, to FeedPosition, limit int) ([]FeedChange, error) {
	got, err := s.Changes(ctx, q, school, from, limit)
	if err != nil {
		return nil, err
	}
	for i, c := range got {
		if c.Position.After(to) {
			return got[:i], nil
		}
	}
	return got, nil
}
