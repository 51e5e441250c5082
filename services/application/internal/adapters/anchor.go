package adapters

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/telemetry"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	"github.com/edubureau/studentaid/services/application/anchor"
)

// anchorLock is the advisory lock key that makes one sequencer at a time
// extend the tree (any number of replicas may try).
const anchorLock = 0x616e63686f72 // "anchor"

// CheckpointRow is a checkpoint as this service recorded it.
type CheckpointRow struct {
	anchor.Checkpoint
	// TxBound: every trail entry of a transaction below it is in the tree.
	TxBound uint64
	// Frontier is the tree's compact range at TreeSize.
	Frontier []anchor.Hash
	Reason   string
	EventID  string
}

// LockAnchor takes the sequencer's lock until the end of tx.
func (Store) LockAnchor(ctx context.Context, tx db.Tx) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(anchorLock)); err != nil {
		return fmt.Errorf("lock the trail anchor: %w", err)
	}
	return nil
}

// LastCheckpoint is the latest checkpoint this service recorded; found is
// false before the first.
func (Store) LastCheckpoint(ctx context.Context, q db.Querier) (c CheckpointRow, found bool, err error) {
	var root []byte
	var frontier [][]byte
	var bound string
	err = q.QueryRow(ctx, `SELECT tree_size, root_hash, signed_at, key_id, signature, tx_bound::text, frontier, reason, event_id::text
		FROM trail_checkpoints ORDER BY id DESC LIMIT 1`).Scan(&c.TreeSize, &root, &c.Time, &c.KeyID, &c.Signature, &bound, &frontier, &c.Reason, &c.EventID)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("last checkpoint: %w", err)
	}
	copy(c.Root[:], root)
	c.Time = c.Time.UTC()
	if c.TxBound, err = strconv.ParseUint(bound, 10, 64); err != nil {
		return c, false, fmt.Errorf("last checkpoint: tx bound %q: %w", bound, err)
	}
	c.Frontier = make([]anchor.Hash, len(frontier))
	for i, f := range frontier {
		copy(c.Frontier[i][:], f)
	}
	return c, true, nil
}

// TxHorizon is the oldest transaction still running as tx sees it: every
// transaction below it has ended, so the trail entries they wrote are final.
func (Store) TxHorizon(ctx context.Context, tx db.Tx) (uint64, error) {
	var s string
	if err := tx.QueryRow(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot())::text`).Scan(&s); err != nil {
		return 0, fmt.Errorf("transaction horizon: %w", err)
	}
	return strconv.ParseUint(s, 10, 64)
}

// EntryRef names a trail entry and its stored hash.
type EntryRef struct {
	ApplicationID string
	Position      int64
	Hash          string
}

// EntriesWritten returns the trail entries written by transactions in
// [from, to), in the tree's order: by transaction, then application and
// position.
func (Store) EntriesWritten(ctx context.Context, q db.Querier, from, to uint64) ([]EntryRef, error) {
	rows, err := q.Query(ctx, `SELECT application_id::text, position, hash FROM trail
		WHERE tx >= $1::text::xid8 AND tx < $2::text::xid8 ORDER BY tx, application_id, position`,
		strconv.FormatUint(from, 10), strconv.FormatUint(to, 10))
	if err != nil {
		return nil, fmt.Errorf("trail entries to anchor: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (EntryRef, error) {
		var e EntryRef
		err := r.Scan(&e.ApplicationID, &e.Position, &e.Hash)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("trail entries to anchor: %w", err)
	}
	return out, nil
}

// InsertLeaves appends leaves for entries at indexes first, first+1, ...
func (Store) InsertLeaves(ctx context.Context, tx db.Tx, first uint64, entries []EntryRef, leaves []anchor.Hash) error {
	rows := make([][]any, len(entries))
	for i, e := range entries {
		rows[i] = []any{int64(first) + int64(i), e.ApplicationID, e.Position, leaves[i][:]} //nolint:gosec // G115: tree sizes stay far below 2^63
	}
	return db.InsertRows(ctx, tx, "trail_leaves", []string{"leaf_index", "application_id", "position", "leaf_hash"}, rows)
}

// InsertCheckpoint records c and writes its event to the outbox, to be
// published on subject (outside the service's "aid.>" events).
func (Store) InsertCheckpoint(ctx context.Context, tx db.Tx, c CheckpointRow, subject string, ev *eventsv1.Event) error {
	frontier := make([][]byte, len(c.Frontier))
	for i := range c.Frontier {
		frontier[i] = c.Frontier[i][:]
	}
	if _, err := tx.Exec(ctx, `INSERT INTO trail_checkpoints (tree_size, root_hash, signed_at, key_id, signature, tx_bound, frontier, reason, event_id)
		VALUES ($1, $2, $3, $4, $5, $6::text::xid8, $7, $8, $9)`,
		int64(c.TreeSize), c.Root[:], c.Time, c.KeyID, c.Signature, strconv.FormatUint(c.TxBound, 10), frontier, c.Reason, c.EventID); err != nil { //nolint:gosec // G115: tree sizes stay far below 2^63
		return fmt.Errorf("record checkpoint %d: %w", c.TreeSize, err)
	}
	payload, err := events.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode checkpoint event: %w", err)
	}
	traceparent, tracestate := telemetry.TraceContextOf(ctx)
	if _, err := tx.Exec(ctx, `INSERT INTO outbox (event_id, subject, payload, traceparent, tracestate) VALUES ($1, $2, $3, $4, $5)`,
		ev.GetEventId(), subject, payload, traceparent, tracestate); err != nil {
		return fmt.Errorf("outbox checkpoint %d: %w", c.TreeSize, err)
	}
	return nil
}

// LeafHashes returns the first n leaves of the tree.
func (Store) LeafHashes(ctx context.Context, q db.Querier, n uint64) ([]anchor.Hash, error) {
	rows, err := q.Query(ctx, `SELECT leaf_index, leaf_hash FROM trail_leaves WHERE leaf_index < $1 ORDER BY leaf_index`, int64(n)) //nolint:gosec // G115: tree sizes stay far below 2^63
	if err != nil {
		return nil, fmt.Errorf("tree leaves: %w", err)
	}
	defer rows.Close()
	out := make([]anchor.Hash, 0, n)
	for rows.Next() {
		var i int64
		var h []byte
		if err := rows.Scan(&i, &h); err != nil {
			return nil, fmt.Errorf("tree leaves: %w", err)
		}
		if i != int64(len(out)) {
			return nil, fmt.Errorf("tree leaves: leaf %d is missing", len(out))
		}
		var lh anchor.Hash
		copy(lh[:], h)
		out = append(out, lh)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tree leaves: %w", err)
	}
	if uint64(len(out)) != n {
		return nil, fmt.Errorf("tree leaves: %d stored, the tree has %d", len(out), n)
	}
	return out, nil
}

// AppLeaf is one of an application's leaves.
type AppLeaf struct {
	Index    uint64
	Position int64
	Leaf     anchor.Hash
}

// LeavesOf returns an application's leaves by position.
func (Store) LeavesOf(ctx context.Context, q db.Querier, application string) ([]AppLeaf, error) {
	rows, err := q.Query(ctx, `SELECT leaf_index, position, leaf_hash FROM trail_leaves WHERE application_id = $1 ORDER BY position`, application)
	if err != nil {
		return nil, fmt.Errorf("leaves of %s: %w", application, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AppLeaf, error) {
		var l AppLeaf
		var h []byte
		err := r.Scan(&l.Index, &l.Position, &h)
		copy(l.Leaf[:], h)
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("leaves of %s: %w", application, err)
	}
	return out, nil
}

// LeafRange returns the leaves [from, to) with their trail entries.
func (Store) LeafRange(ctx context.Context, q db.Querier, from, to uint64) ([]anchor.Leaf, error) {
	rows, err := q.Query(ctx, `SELECT l.leaf_index, l.leaf_hash, t.application_id::text, t.position, t.event_id::text, t.type, t.occurred_at,
		  t.actor_user_id, t.actor_role, t.actor_org, t.status, t.reason, t.amount_fen, t.batch_id, t.prev_hash, t.hash
		FROM trail_leaves l JOIN trail t USING (application_id, position)
		WHERE l.leaf_index >= $1 AND l.leaf_index < $2 ORDER BY l.leaf_index`, int64(from), int64(to)) //nolint:gosec // G115: tree sizes stay far below 2^63
	if err != nil {
		return nil, fmt.Errorf("leaves %d..%d: %w", from, to, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (anchor.Leaf, error) {
		var l anchor.Leaf
		var h []byte
		e := &l.Entry
		err := r.Scan(&l.Index, &h, &e.ApplicationID, &e.Position, &e.EventID, &e.Type, &e.OccurredAt,
			&e.ActorUser, &e.ActorRole, &e.ActorOrg, &e.Status, &e.Reason, &e.AmountFen, &e.BatchID, &l.PrevHash, &l.EntryHash)
		e.OccurredAt = e.OccurredAt.UTC()
		var lh anchor.Hash
		copy(lh[:], h)
		l.LeafHash = lh.String()
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("leaves %d..%d: %w", from, to, err)
	}
	return out, nil
}
