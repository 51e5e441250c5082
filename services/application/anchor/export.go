package anchor

import (
	"errors"
	"fmt"
)

// GenesisHash is the prev_hash of a trail's first entry.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// Leaf is one leaf of the tree as exported: its index and the trail entry
// it anchors, with the entry's stored hashes.
type Leaf struct {
	Index     uint64 `json:"index"`
	Entry     Entry  `json:"entry"`
	PrevHash  string `json:"prev_hash"`
	EntryHash string `json:"entry_hash"`
	LeafHash  string `json:"leaf_hash"`
}

// RangeExport is the leaves [Start, Start+len(Leaves)) of the tree a
// checkpoint signs, with what it takes to recompute the checkpoint's root
// from them offline: Left, the frontier (subtree roots, largest first) of
// the leaves before Start, and Consistency, the proof that the tree ending
// after the last exported leaf is a prefix of the checkpoint's tree.
type RangeExport struct {
	Checkpoint  Checkpoint `json:"checkpoint"`
	Start       uint64     `json:"start"`
	Left        []string   `json:"left"`
	Leaves      []Leaf     `json:"leaves"`
	Consistency []string   `json:"consistency"`
}

// RangeReport is what VerifyRange checked.
type RangeReport struct {
	Start, End uint64
	TreeSize   uint64
	// Entries is the number of entries whose content was rehashed.
	Entries int
	// Linked is the number of entries whose link to the previous entry of
	// their trail was checked (the previous one was in the range too).
	Linked int
}

// ErrTampered means an export does not match its checkpoint.
var ErrTampered = errors.New("export does not match the checkpoint")

func parseHashes(hexes []string) ([]Hash, error) {
	out := make([]Hash, len(hexes))
	for i, s := range hexes {
		h, err := ParseHash(s)
		if err != nil {
			return nil, err
		}
		out[i] = h
	}
	return out, nil
}

func hexes(hs []Hash) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.String()
	}
	return out
}

// NewRangeExport builds the export of leaves[start:end] of the tree of
// cp.TreeSize leaves given by all, with their leaves' entries in entries
// (entries[i] is leaf start+i). It checks that all gives cp's root.
func NewRangeExport(cp Checkpoint, all []Hash, start, end uint64, leaves []Leaf) (RangeExport, error) {
	if uint64(len(all)) != cp.TreeSize || start > end || end > cp.TreeSize || uint64(len(leaves)) != end-start {
		return RangeExport{}, fmt.Errorf("range [%d, %d) of a tree of %d leaves with %d given", start, end, cp.TreeSize, len(all))
	}
	tree := NewTree(all)
	if got := tree.Root(); got != cp.Root {
		return RangeExport{}, fmt.Errorf("%w: the stored leaves give root %s, the checkpoint of size %d says %s", ErrTampered, got, cp.TreeSize, cp.Root)
	}
	left, _ := NewFrontier(0, nil)
	for _, l := range all[:start] {
		left.Append(l)
	}
	cons, err := tree.ConsistencyProof(int(end)) //nolint:gosec // G115: end <= len(all), an int
	if err != nil {
		return RangeExport{}, err
	}
	return RangeExport{Checkpoint: cp, Start: start, Left: hexes(left.Nodes()), Leaves: leaves, Consistency: hexes(cons)}, nil
}

// VerifyRange checks an export offline: the checkpoint's signature against
// keys; each entry's content against its hash, its link to the previous
// entry of its trail where that is in the range too, and its leaf; and that
// the leaves, at their indexes, recompute the checkpoint's root.
func VerifyRange(x RangeExport, keys VerifyKeys) (RangeReport, error) {
	cp := x.Checkpoint
	rep := RangeReport{Start: x.Start, End: x.Start + uint64(len(x.Leaves)), TreeSize: cp.TreeSize}
	if err := keys.Verify(cp); err != nil {
		return rep, err
	}
	if rep.End > cp.TreeSize {
		return rep, fmt.Errorf("%w: leaves up to %d in a tree of %d", ErrTampered, rep.End, cp.TreeSize)
	}
	left, err := parseHashes(x.Left)
	if err != nil {
		return rep, fmt.Errorf("left frontier: %w", err)
	}
	f, err := NewFrontier(x.Start, left)
	if err != nil {
		return rep, fmt.Errorf("%w: %w", ErrTampered, err)
	}
	type pos struct {
		app string
		at  int64
	}
	hashAt := make(map[pos]string, len(x.Leaves))
	for i, l := range x.Leaves {
		if l.Index != x.Start+uint64(i) {
			return rep, fmt.Errorf("%w: leaf %d of the range has index %d, want %d", ErrTampered, i, l.Index, x.Start+uint64(i))
		}
		if got := EntryHash(l.PrevHash, l.Entry); got != l.EntryHash {
			return rep, fmt.Errorf("%w: leaf %d: entry %s/%d does not match its hash", ErrTampered, l.Index, l.Entry.ApplicationID, l.Entry.Position)
		}
		rep.Entries++
		if l.Entry.Position == 1 && l.PrevHash != GenesisHash {
			return rep, fmt.Errorf("%w: leaf %d: the first entry of %s does not start its chain", ErrTampered, l.Index, l.Entry.ApplicationID)
		}
		if prev, ok := hashAt[pos{l.Entry.ApplicationID, l.Entry.Position - 1}]; ok {
			if prev != l.PrevHash {
				return rep, fmt.Errorf("%w: leaf %d: entry %s/%d does not follow the entry before it", ErrTampered, l.Index, l.Entry.ApplicationID, l.Entry.Position)
			}
			rep.Linked++
		}
		hashAt[pos{l.Entry.ApplicationID, l.Entry.Position}] = l.EntryHash
		leaf, err := EntryLeaf(l.EntryHash)
		if err != nil {
			return rep, fmt.Errorf("%w: leaf %d: %w", ErrTampered, l.Index, err)
		}
		if l.LeafHash != "" && l.LeafHash != leaf.String() {
			return rep, fmt.Errorf("%w: leaf %d: leaf hash is not the leaf hash of the entry hash", ErrTampered, l.Index)
		}
		f.Append(leaf)
	}
	cons, err := parseHashes(x.Consistency)
	if err != nil {
		return rep, fmt.Errorf("consistency proof: %w", err)
	}
	if err := VerifyConsistency(rep.End, cp.TreeSize, f.Root(), cp.Root, cons); err != nil {
		return rep, fmt.Errorf("%w: the leaves [%d, %d) do not recompute the checkpoint's root: %w", ErrTampered, rep.Start, rep.End, err)
	}
	return rep, nil
}

// LeafProof is one entry's leaf in the tree and its audit path.
type LeafProof struct {
	Index     uint64   `json:"index"`
	Position  int64    `json:"position"`
	EntryHash string   `json:"entry_hash"`
	LeafHash  string   `json:"leaf_hash"`
	Path      []string `json:"path"`
}

// InclusionExport proves that an application's entries are in the tree a
// checkpoint signs.
type InclusionExport struct {
	Checkpoint    Checkpoint  `json:"checkpoint"`
	ApplicationID string      `json:"application_id"`
	Leaves        []LeafProof `json:"leaves"`
}

// NewInclusionExport builds the proof for the leaves at indexes (with their
// positions and entry hashes) in the tree given by all, which must give cp's
// root.
func NewInclusionExport(cp Checkpoint, all []Hash, application string, proofs []LeafProof) (InclusionExport, error) {
	if uint64(len(all)) != cp.TreeSize {
		return InclusionExport{}, fmt.Errorf("%d leaves for a checkpoint of %d", len(all), cp.TreeSize)
	}
	tree := NewTree(all)
	if got := tree.Root(); got != cp.Root {
		return InclusionExport{}, fmt.Errorf("%w: the stored leaves give root %s, the checkpoint of size %d says %s", ErrTampered, got, cp.TreeSize, cp.Root)
	}
	out := InclusionExport{Checkpoint: cp, ApplicationID: application, Leaves: make([]LeafProof, len(proofs))}
	for i, p := range proofs {
		path, err := tree.InclusionProof(int(p.Index)) //nolint:gosec // G115: an index into all is an int; out of range is refused
		if err != nil {
			return InclusionExport{}, err
		}
		p.LeafHash, p.Path = all[p.Index].String(), hexes(path)
		out.Leaves[i] = p
	}
	return out, nil
}

// VerifyInclusionExport checks the checkpoint's signature and each leaf's
// path to its root, and that each leaf is the leaf of its entry hash.
func VerifyInclusionExport(x InclusionExport, keys VerifyKeys) error {
	if err := keys.Verify(x.Checkpoint); err != nil {
		return err
	}
	for _, l := range x.Leaves {
		leaf, err := EntryLeaf(l.EntryHash)
		if err != nil {
			return err
		}
		if leaf.String() != l.LeafHash {
			return fmt.Errorf("%w: position %d: leaf hash is not the leaf hash of the entry hash", ErrTampered, l.Position)
		}
		path, err := parseHashes(l.Path)
		if err != nil {
			return err
		}
		if err := VerifyInclusion(l.Index, x.Checkpoint.TreeSize, leaf, path, x.Checkpoint.Root); err != nil {
			return fmt.Errorf("%w: position %d (leaf %d): %w", ErrTampered, l.Position, l.Index, err)
		}
	}
	return nil
}
