package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/natsx"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	"github.com/edubureau/studentaid/services/application/anchor"
	"github.com/edubureau/studentaid/services/application/internal/adapters"
	"github.com/edubureau/studentaid/services/application/internal/domain"
)

// PublishedCheckpoint is a checkpoint as read from the stream, with its
// stream sequence.
type PublishedCheckpoint struct {
	anchor.Checkpoint
	Sequence uint64
}

// CheckpointSource reads the latest published checkpoint from outside the
// service's database (the JetStream stream AID_CHECKPOINTS). found is false
// when none was published yet.
type CheckpointSource interface {
	Latest(ctx context.Context) (c PublishedCheckpoint, found bool, err error)
}

// anchoring is the service's part in the trail anchor: the key it signs
// checkpoints with, the keys it verifies them with, where it reads them
// back, and the largest checkpoint it has verified so far.
type anchoring struct {
	signer *anchor.SigningKey
	verify anchor.VerifyKeys
	source CheckpointSource

	mu   sync.Mutex
	seen *anchor.Checkpoint
}

// Checkpoint reasons.
const (
	ReasonInterval = "interval"
)

// ReasonBatchConfirmed is the reason of the checkpoint signed when a batch
// is confirmed.
func ReasonBatchConfirmed(batch string) string { return "batch " + batch + " confirmed" }

// Checkpoint extends the tree inside tx with the trail entries of every
// transaction that has ended since the last checkpoint, signs the new head
// and writes it to trail_checkpoints and, as an event for the stream
// AID_CHECKPOINTS, to the outbox. Without new entries it signs nothing
// unless force is set (a confirmed batch always gets one). signed is false
// when nothing was signed.
func (s *Service) Checkpoint(ctx context.Context, tx db.Tx, reason string, force bool) (c anchor.Checkpoint, signed bool, err error) {
	if s.anchor.signer == nil {
		return c, false, errors.New("checkpoint: no trail signing key")
	}
	if err := s.store.LockAnchor(ctx, tx); err != nil {
		return c, false, err
	}
	last, found, err := s.store.LastCheckpoint(ctx, tx)
	if err != nil {
		return c, false, err
	}
	frontier, err := anchor.NewFrontier(last.TreeSize, last.Frontier)
	if err != nil {
		return c, false, fmt.Errorf("checkpoint: the last checkpoint's frontier: %w", err)
	}
	horizon, err := s.store.TxHorizon(ctx, tx)
	if err != nil {
		return c, false, err
	}
	if found && horizon < last.TxBound {
		horizon = last.TxBound
	}
	// A later statement's snapshot sees every transaction below horizon
	// that committed.
	entries, err := s.store.EntriesWritten(ctx, tx, last.TxBound, horizon)
	if err != nil {
		return c, false, err
	}
	if len(entries) == 0 && found && !force {
		return last.Checkpoint, false, nil
	}
	leaves := make([]anchor.Hash, len(entries))
	for i, e := range entries {
		if leaves[i], err = anchor.EntryLeaf(e.Hash); err != nil {
			return c, false, fmt.Errorf("checkpoint: entry %s/%d: %w", e.ApplicationID, e.Position, err)
		}
		frontier.Append(leaves[i])
	}
	if err := s.store.InsertLeaves(ctx, tx, last.TreeSize, entries, leaves); err != nil {
		return c, false, err
	}
	c = s.anchor.signer.Sign(frontier.Size(), frontier.Root(), s.clock())
	id, err := uuid.NewV7()
	if err != nil {
		return c, false, fmt.Errorf("checkpoint event id: %w", err)
	}
	ev := &eventsv1.Event{
		EventId: id.String(), Type: events.TypeTrailCheckpointed, OccurredAt: timestamppb.New(c.Time),
		Actor: events.Actor("application", "service", "application"),
		Body: &eventsv1.Event_TrailCheckpointed{TrailCheckpointed: &eventsv1.TrailCheckpointed{
			TreeSize: c.TreeSize, RootHash: c.Root[:], SignedAt: timestamppb.New(c.Time), KeyId: c.KeyID,
			Signature: c.Signature, Reason: reason,
		}},
	}
	row := adapters.CheckpointRow{Checkpoint: c, TxBound: horizon, Frontier: frontier.Nodes(), Reason: reason, EventID: id.String()}
	if err := s.store.InsertCheckpoint(ctx, tx, row, natsx.CheckpointSubject, ev); err != nil {
		return c, false, err
	}
	return c, true, nil
}

// CheckpointObserver hears of the checkpoint worker's outcomes.
type CheckpointObserver interface {
	Signed(size uint64, at time.Time)
	Failed()
}

// RunCheckpoints signs a checkpoint every interval when the tree grew,
// until ctx ends; the first at once (of the empty tree on a new database).
func (s *Service) RunCheckpoints(ctx context.Context, interval time.Duration, obs CheckpointObserver, log func(err error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		var (
			signed bool
			c      anchor.Checkpoint
		)
		err := db.InTx(ctx, s.pool, func(tx pgx.Tx) error {
			var err error
			c, signed, err = s.Checkpoint(ctx, tx, ReasonInterval, false)
			return err
		})
		switch {
		case err != nil && ctx.Err() == nil:
			obs.Failed()
			log(err)
		case signed:
			obs.Signed(c.TreeSize, c.Time)
			s.notify()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// CheckpointCheck is one check VerifyTrail made.
type CheckpointCheck struct {
	Name   string
	OK     bool
	Detail string
}

// Verified is VerifyTrail's answer: the chain's verification, every check
// made, and the checkpoint the entries were checked against.
type Verified struct {
	domain.Verification
	Checks     []CheckpointCheck
	Checkpoint *PublishedCheckpoint
	// Anchored entries were proved to be in the checkpoint's tree;
	// Unanchored ones were written after it.
	Anchored, Unanchored int64
}

func (v *Verified) check(name string, ok bool, format string, args ...any) bool {
	v.Checks = append(v.Checks, CheckpointCheck{Name: name, OK: ok, Detail: fmt.Sprintf(format, args...)})
	if !ok && v.OK {
		v.OK = false
		if v.Problem == "" {
			v.Problem = fmt.Sprintf(format, args...)
		}
	}
	return ok
}

// latestCheckpoint reads the latest checkpoint from the stream and checks
// its signature. found is false when none was published yet.
func (s *Service) latestCheckpoint(ctx context.Context) (PublishedCheckpoint, bool, error) {
	if s.anchor.source == nil {
		return PublishedCheckpoint{}, false, apperr.New(apperr.Unavailable, "the checkpoint stream is not configured")
	}
	cp, found, err := s.anchor.source.Latest(ctx)
	if err != nil {
		return cp, false, fmt.Errorf("read the latest checkpoint: %w", err)
	}
	return cp, found, nil
}

// anchorCheck checks v's application against the latest checkpoint on the
// stream: its signature, its consistency with the largest checkpoint
// verified before, that the stored tree gives its root, and that each of
// the application's entries in its tree is there as the leaf of its hash.
func (s *Service) anchorCheck(ctx context.Context, q db.Querier, v *Verified, entries []domain.TrailEntry) error {
	cp, found, err := s.latestCheckpoint(ctx)
	if err != nil {
		return err
	}
	if !found {
		v.Unanchored = int64(len(entries))
		v.check("checkpoint", true, "no checkpoint was published yet: the trail is not anchored")
		return nil
	}
	v.Checkpoint = &cp
	if !v.check("checkpoint-signature", s.anchor.verify.Verify(cp.Checkpoint) == nil,
		"checkpoint of size %d (stream sequence %d) signed by key %q", cp.TreeSize, cp.Sequence, cp.KeyID) {
		return nil
	}
	leaves, err := s.store.LeafHashes(ctx, q, cp.TreeSize)
	if err != nil {
		v.check("tree-root", false, "the stored tree does not hold the checkpoint's %d leaves: %v", cp.TreeSize, err)
		return nil
	}
	tree := anchor.NewTree(leaves)
	root := tree.Root()
	v.check("tree-root", root == cp.Root, "the stored tree of %d leaves gives root %s, the checkpoint says %s", cp.TreeSize, root, cp.Root)
	s.anchor.mu.Lock()
	seen := s.anchor.seen
	s.anchor.mu.Unlock()
	switch {
	case seen == nil:
		v.check("checkpoint-consistency", true, "first checkpoint this process has seen")
	case cp.TreeSize < seen.TreeSize:
		v.check("checkpoint-consistency", false, "the stream's latest checkpoint (size %d) is older than one seen before (size %d)", cp.TreeSize, seen.TreeSize)
	default:
		proof, err := tree.ConsistencyProof(int(seen.TreeSize)) //nolint:gosec // G115: seen.TreeSize <= cp.TreeSize = len(leaves), an int
		ok := err == nil && anchor.VerifyConsistency(seen.TreeSize, cp.TreeSize, seen.Root, cp.Root, proof) == nil
		v.check("checkpoint-consistency", ok, "checkpoint of size %d extends the one of size %d seen before", cp.TreeSize, seen.TreeSize)
	}
	if v.OK {
		s.anchor.mu.Lock()
		if s.anchor.seen == nil || s.anchor.seen.TreeSize <= cp.TreeSize {
			c := cp.Checkpoint
			s.anchor.seen = &c
		}
		s.anchor.mu.Unlock()
	}
	appLeaves, err := s.store.LeavesOf(ctx, q, entries[0].ApplicationID)
	if err != nil {
		return err
	}
	byPosition := make(map[int64]adapters.AppLeaf, len(appLeaves))
	for _, l := range appLeaves {
		if l.Index < cp.TreeSize {
			byPosition[l.Position] = l
		}
	}
	for _, e := range entries {
		l, ok := byPosition[e.Position]
		if !ok {
			v.Unanchored++
			continue
		}
		want, err := anchor.EntryLeaf(e.Hash)
		if err != nil || want != l.Leaf {
			v.check("inclusion", false, "entry at position %d does not match its leaf %d in the checkpoint's tree (rewritten after it was anchored)", e.Position, l.Index)
			return nil //nolint:nilerr // a hash that does not parse is a failed check, reported in v
		}
		proof, err := tree.InclusionProof(int(l.Index)) //nolint:gosec // G115: l.Index < cp.TreeSize = len(leaves), an int
		if err != nil || anchor.VerifyInclusion(l.Index, cp.TreeSize, want, proof, cp.Root) != nil {
			v.check("inclusion", false, "entry at position %d (leaf %d) is not in the tree of the checkpoint of size %d", e.Position, l.Index, cp.TreeSize)
			return nil //nolint:nilerr // no proof is a failed check, reported in v
		}
		v.Anchored++
	}
	// Every entry the tree holds must still be in the trail.
	if n := countBelow(appLeaves, cp.TreeSize); n > v.Anchored {
		v.check("inclusion", false, "the checkpoint's tree holds %d entries of this application, the trail %d", n, v.Anchored)
		return nil
	}
	v.check("inclusion", true, "%d entries proved in the tree of the checkpoint of size %d, %d written after it", v.Anchored, cp.TreeSize, v.Unanchored)
	return nil
}

func countBelow(ls []adapters.AppLeaf, size uint64) int64 {
	var n int64
	for _, l := range ls {
		if l.Index < size {
			n++
		}
	}
	return n
}

// ExportCheckpoint returns the latest checkpoint on the stream, its
// signature checked.
func (s *Service) ExportCheckpoint(ctx context.Context, _ auth.Identity) (PublishedCheckpoint, error) {
	cp, found, err := s.latestCheckpoint(ctx)
	if err != nil {
		return cp, err
	}
	if !found {
		return cp, apperr.New(apperr.FailedPrecondition, "no checkpoint was published yet: the first is signed within AID_CHECKPOINT_INTERVAL of the first trail entry")
	}
	if err := s.anchor.verify.Verify(cp.Checkpoint); err != nil {
		return cp, fmt.Errorf("the stream's latest checkpoint: %w", err)
	}
	return cp, nil
}

// MaxExportLeaves bounds one range export.
const MaxExportLeaves = 100_000

// errTreeDiverged is the answer when the stored tree no longer gives the
// checkpoint's root: the database was changed after the checkpoint.
func errTreeDiverged(cp anchor.Checkpoint) error {
	return apperr.New(apperr.FailedPrecondition, "the stored trail tree no longer matches the checkpoint of size %d: the trail was changed after it was anchored; run VerifyTrail on the applications concerned and raise a security incident", cp.TreeSize)
}

// ExportLeaves returns the range [start, end) of the tree of the latest
// checkpoint (end 0: its size) as a RangeExport.
func (s *Service) ExportLeaves(ctx context.Context, caller auth.Identity, start, end uint64) (anchor.RangeExport, error) {
	if end != 0 && (start > end || end-start > MaxExportLeaves) {
		var v apperr.Violations
		v.Addf("end", "the range [%d, %d) must not be reversed and must hold at most %d leaves", start, end, MaxExportLeaves)
		return anchor.RangeExport{}, v.Err()
	}
	cp, err := s.ExportCheckpoint(ctx, caller)
	if err != nil {
		return anchor.RangeExport{}, err
	}
	if end == 0 {
		end = cp.TreeSize
	}
	if start > end || end > cp.TreeSize || end-start > MaxExportLeaves {
		var v apperr.Violations
		v.Addf("end", "the range [%d, %d) must lie within the checkpoint's tree of %d leaves and hold at most %d", start, end, cp.TreeSize, MaxExportLeaves)
		return anchor.RangeExport{}, v.Err()
	}
	var x anchor.RangeExport
	err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		all, err := s.store.LeafHashes(ctx, tx, cp.TreeSize)
		if err != nil {
			return err
		}
		leaves, err := s.store.LeafRange(ctx, tx, start, end)
		if err != nil {
			return err
		}
		x, err = anchor.NewRangeExport(cp.Checkpoint, all, start, end, leaves)
		if errors.Is(err, anchor.ErrTampered) {
			return errTreeDiverged(cp.Checkpoint)
		}
		return err
	})
	return x, err
}

// InclusionProof returns the proof that id's anchored entries are in the
// latest checkpoint's tree. Errors as Get.
func (s *Service) InclusionProof(ctx context.Context, caller auth.Identity, id string) (anchor.InclusionExport, error) {
	if _, err := s.get(ctx, caller, id); err != nil {
		return anchor.InclusionExport{}, err
	}
	cp, err := s.ExportCheckpoint(ctx, caller)
	if err != nil {
		return anchor.InclusionExport{}, err
	}
	var x anchor.InclusionExport
	err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		all, err := s.store.LeafHashes(ctx, tx, cp.TreeSize)
		if err != nil {
			return err
		}
		mine, err := s.store.LeavesOf(ctx, tx, id)
		if err != nil {
			return err
		}
		entries, err := s.store.Trail(ctx, tx, id)
		if err != nil {
			return err
		}
		hashOf := make(map[int64]string, len(entries))
		for _, e := range entries {
			hashOf[e.Position] = e.Hash
		}
		var proofs []anchor.LeafProof
		for _, l := range mine {
			if l.Index < cp.TreeSize {
				proofs = append(proofs, anchor.LeafProof{Index: l.Index, Position: l.Position, EntryHash: hashOf[l.Position]})
			}
		}
		x, err = anchor.NewInclusionExport(cp.Checkpoint, all, id, proofs)
		if errors.Is(err, anchor.ErrTampered) {
			return errTreeDiverged(cp.Checkpoint)
		}
		return err
	})
	return x, err
}
