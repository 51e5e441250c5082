package adapters

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/manifest"
	"github.com/edubureau/studentaid/services/payout/internal/domain"
)

// ManifestItemKey is the primary key of manifest_items: an application is
// listed once per batch.
const ManifestItemKey = "manifest_items_pkey"

// ErrManifestConflict: a batch already has a different manifest header.
var ErrManifestConflict = errors.New("the batch already has a different manifest")

// lockManifest serialises the parts of one batch's manifest, so that the
// part that completes it sees all the others. An advisory lock, because the
// service's role may not lock rows of its append-only tables.
func lockManifest(ctx context.Context, tx db.Tx, batchID string) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('manifest:' || $1, 0))`, batchID)
	return err
}

// SaveManifestHeader stores a verified header, once. The same header again
// changes nothing; a different one for the batch is ErrManifestConflict.
func SaveManifestHeader(ctx context.Context, tx db.Tx, h manifest.Header, eventID string) error {
	if err := lockManifest(ctx, tx, h.ID); err != nil {
		return fmt.Errorf("save manifest of batch %s: %w", h.ID, err)
	}
	tag, err := tx.Exec(ctx, `INSERT INTO manifests (batch_id, key_id, program_code, term, funding_source, control_count, control_sum_fen,
                       part_size, part_digests, signature, source_event_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (batch_id) DO NOTHING`,
		h.ID, h.KeyID, h.ProgramCode, h.Term, h.FundingSource, h.ControlCount, h.ControlSumFen, h.PartSize, h.PartDigests, h.Signature, eventID)
	if err != nil {
		return fmt.Errorf("save manifest of batch %s: %w", h.ID, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	stored, err := ManifestHeader(ctx, tx, h.ID)
	if err != nil {
		return err
	}
	if !bytes.Equal(stored.Signature, h.Signature) || stored.KeyID != h.KeyID {
		return fmt.Errorf("batch %s: %w", h.ID, ErrManifestConflict)
	}
	return nil
}

// ManifestHeader reads a batch's stored header. Returns ErrNotFound if there is none.
func ManifestHeader(ctx context.Context, q db.Querier, batchID string) (manifest.Header, error) {
	h := manifest.Header{}
	err := q.QueryRow(ctx, `SELECT batch_id::text, key_id, program_code, term, funding_source, control_count, control_sum_fen,
       part_size, part_digests, signature FROM manifests WHERE batch_id = $1`, batchID).Scan(
		&h.ID, &h.KeyID, &h.ProgramCode, &h.Term, &h.FundingSource, &h.ControlCount, &h.ControlSumFen, &h.PartSize, &h.PartDigests, &h.Signature)
	if errors.Is(err, pgx.ErrNoRows) {
		return h, ErrNotFound
	}
	if err != nil {
		return h, fmt.Errorf("read manifest of batch %s: %w", batchID, err)
	}
	return h, nil
}

// LockedManifestHeader is ManifestHeader with the batch's manifest lock
// held to the end of tx.
func LockedManifestHeader(ctx context.Context, tx db.Tx, batchID string) (manifest.Header, error) {
	if err := lockManifest(ctx, tx, batchID); err != nil {
		return manifest.Header{}, fmt.Errorf("lock manifest of batch %s: %w", batchID, err)
	}
	return ManifestHeader(ctx, tx, batchID)
}

// PartTotals are what the stored parts of a manifest add up to.
type PartTotals struct {
	Parts  int
	Count  int64
	SumFen int64
}

// SaveManifestPart stores a checked part and its items; inserted is false
// when the part was stored before. It returns the totals of all the batch's
// parts stored so far. The caller holds the manifest lock
// (LockedManifestHeader). A second listing of one application fails with a
// unique violation of ManifestItemKey.
func SaveManifestPart(ctx context.Context, tx db.Tx, batchID string, index int, items []manifest.Item, eventID string) (inserted bool, t PartTotals, err error) {
	var sum int64
	apps, payments, amounts := make([]string, len(items)), make([]*string, len(items)), make([]int64, len(items))
	for i, it := range items {
		apps[i], amounts[i] = it.ApplicationID, it.AmountFen
		if it.PaymentID != "" {
			payments[i] = &items[i].PaymentID
		}
		sum += it.AmountFen
	}
	tag, err := tx.Exec(ctx, `INSERT INTO manifest_parts (batch_id, part_index, item_count, sum_fen, source_event_id)
VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, batchID, index, len(items), sum, eventID)
	if err != nil {
		return false, t, fmt.Errorf("save part %d of batch %s: %w", index, batchID, err)
	}
	if inserted = tag.RowsAffected() == 1; inserted {
		if _, err := tx.Exec(ctx, `INSERT INTO manifest_items (batch_id, application_id, payment_id, amount_fen, part_index)
SELECT $1, * , $5 FROM unnest($2::uuid[], $3::uuid[], $4::bigint[])`, batchID, apps, payments, amounts, index); err != nil {
			return false, t, fmt.Errorf("save items of part %d of batch %s: %w", index, batchID, err)
		}
	}
	err = tx.QueryRow(ctx, `SELECT count(*), coalesce(sum(item_count), 0), coalesce(sum(sum_fen), 0)::bigint
FROM manifest_parts WHERE batch_id = $1`, batchID).Scan(&t.Parts, &t.Count, &t.SumFen)
	if err != nil {
		return false, t, fmt.Errorf("total the parts of batch %s: %w", batchID, err)
	}
	return inserted, t, nil
}

// MarkManifestVerified records that a batch's manifest is complete and
// verified; its orders may be paid from then on.
func MarkManifestVerified(ctx context.Context, tx db.Tx, batchID string) error {
	if _, err := tx.Exec(ctx, `INSERT INTO manifests_verified (batch_id) VALUES ($1) ON CONFLICT DO NOTHING`, batchID); err != nil {
		return fmt.Errorf("mark manifest of batch %s verified: %w", batchID, err)
	}
	return nil
}

// ManifestEntry is what batchID's manifest says about applicationID:
// primary-key lookups.
func ManifestEntry(ctx context.Context, q db.Querier, batchID, applicationID string) (domain.ManifestEntry, error) {
	var e domain.ManifestEntry
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM manifests_verified WHERE batch_id = $1),
       m.application_id IS NOT NULL, coalesce(m.payment_id::text, ''), coalesce(m.amount_fen, 0),
       coalesce(h.program_code, ''), coalesce(h.term, '')
  FROM (SELECT 1) one
  LEFT JOIN manifests h ON h.batch_id = $1
  LEFT JOIN manifest_items m ON m.batch_id = $1 AND m.application_id = $2`, batchID, applicationID).Scan(
		&e.Verified, &e.Listed, &e.PaymentID, &e.AmountFen, &e.ProgramCode, &e.Term)
	if err != nil {
		return e, fmt.Errorf("manifest entry of %s in batch %s: %w", applicationID, batchID, err)
	}
	return e, nil
}
