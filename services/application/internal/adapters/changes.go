package adapters

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/services/application/internal/domain"
)

// FeedPosition is a place in a school's change feed: the writing
// transaction's ID and the row's identity within the table (migration 007).
// The zero value is before the first change.
type FeedPosition struct {
	XID uint64
	Seq int64
}

// After reports whether p comes after q in the feed.
func (p FeedPosition) After(q FeedPosition) bool {
	return p.XID > q.XID || (p.XID == q.XID && p.Seq > q.Seq)
}

// FeedChange is one entry of a school's change feed.
type FeedChange struct {
	Position       FeedPosition
	ApplicationID  string
	TrailPosition  int64
	Type           string
	Status         domain.Status
	PreviousStatus domain.Status
	OccurredAt     time.Time
	RecordedAt     time.Time
}

// Changes returns up to limit changes of school's applications after the
// position, in feed order. It returns only changes of transactions older
// than every transaction still in flight, so that a change it has not
// returned can never appear before one it has: a transaction that took a
// smaller seq but commits later is waited for, not skipped.
//
// The xid is selected as text under another name: ORDER BY xid would sort by
// the output column, as text ("1005" before "958").
func (Store) Changes(ctx context.Context, q db.Querier, school string, after FeedPosition, limit int) ([]FeedChange, error) {
	rows, err := q.Query(ctx, `SELECT xid::text AS xid_text, seq, application_id::text, position, type, status, previous_status,
		  occurred_at, recorded_at
		FROM changes
		WHERE school_code = $1 AND (xid, seq) > ($2::text::xid8, $3::bigint)
		  AND xid < pg_snapshot_xmin(pg_current_snapshot())
		ORDER BY changes.xid, changes.seq
		LIMIT $4`, school, strconv.FormatUint(after.XID, 10), after.Seq, limit)
	if err != nil {
		return nil, fmt.Errorf("changes of %s: %w", school, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (FeedChange, error) {
		var c FeedChange
		var xid, status, previous string
		if err := r.Scan(&xid, &c.Position.Seq, &c.ApplicationID, &c.TrailPosition, &c.Type, &status, &previous,
			&c.OccurredAt, &c.RecordedAt); err != nil {
			return c, err
		}
		n, err := strconv.ParseUint(xid, 10, 64)
		if err != nil {
			return c, fmt.Errorf("xid %q: %w", xid, err)
		}
		c.Position.XID = n
		c.Status, c.PreviousStatus = domain.Status(status), domain.Status(previous)
		c.OccurredAt, c.RecordedAt = c.OccurredAt.UTC(), c.RecordedAt.UTC()
		return c, nil
	})
	if err != nil {
		return nil, fmt.Errorf("changes of %s: %w", school, err)
	}
	return out, nil
}

// ChangesHeld reports whether school has committed changes after the
// position that Changes does not return yet, because an older transaction
// is still in flight.
func (Store) ChangesHeld(ctx context.Context, q db.Querier, school string, after FeedPosition) (bool, error) {
	var held bool
	if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM changes
		WHERE school_code = $1 AND (xid, seq) > ($2::text::xid8, $3::bigint)
		  AND xid >= pg_snapshot_xmin(pg_current_snapshot()))`,
		school, strconv.FormatUint(after.XID, 10), after.Seq).Scan(&held); err != nil {
		return false, fmt.Errorf("held changes of %s: %w", school, err)
	}
	return held, nil
}

// LastChangeSeq returns the last identity taken for a change by any
// transaction, committed or not: a cheap sign that the feed may have grown.
func (Store) LastChangeSeq(ctx context.Context, q db.Querier) (int64, error) {
	var n int64
	if err := q.QueryRow(ctx, `SELECT last_value FROM changes_seq_seq`).Scan(&n); err != nil {
		return 0, fmt.Errorf("last change seq: %w", err)
	}
	return n, nil
}
