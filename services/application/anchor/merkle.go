// Package anchor anchors the application trails outside the service's
// database: a Merkle tree in the manner of RFC 6962 (Certificate
// Transparency; RFC 9162 section 2.1) over the hashes of all trail entries,
// and signed checkpoints of its head. It holds the tree's hashing and
// proofs, the checkpoint format, the export formats an auditor keeps, and
// the trail entry hash (EntryHash), so that tools and tests outside the
// service compute them as the service does.
package anchor

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
)

// Hash is a SHA-256 node or leaf hash of the tree.
type Hash [sha256.Size]byte

// String is the hash in lower-case hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// ParseHash reads a hash in hex.
func ParseHash(s string) (Hash, error) {
	var h Hash
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("hash %q is not %d bytes of hex", s, len(h))
	}
	copy(h[:], b)
	return h, nil
}

// EmptyRoot is the root of the empty tree, SHA-256 of nothing.
var EmptyRoot = Hash(sha256.Sum256(nil))

// LeafHash is RFC 6962's leaf hash, SHA-256(0x00 || data).
func LeafHash(data []byte) Hash {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(data)
	return Hash(h.Sum(nil))
}

// NodeHash is RFC 6962's interior node hash, SHA-256(0x01 || left || right).
func NodeHash(left, right Hash) Hash {
	var buf [1 + 2*sha256.Size]byte
	buf[0] = 1
	copy(buf[1:], left[:])
	copy(buf[1+sha256.Size:], right[:])
	return Hash(sha256.Sum256(buf[:]))
}

// split is the size of the left subtree of a tree of n > 1 leaves: the
// largest power of two smaller than n.
func split(n int) int { return 1 << (bits.Len(uint(n-1)) - 1) }

// Root is the Merkle tree hash MTH(D[n]) of the leaves given by their leaf
// hashes.
func Root(leaves []Hash) Hash {
	switch len(leaves) {
	case 0:
		return EmptyRoot
	case 1:
		return leaves[0]
	}
	k := split(len(leaves))
	return NodeHash(Root(leaves[:k]), Root(leaves[k:]))
}

// InclusionProof is the audit path PATH(index, D[n]) of the leaf at index
// in the tree of the given leaves, lowest level first.
func InclusionProof(leaves []Hash, index int) ([]Hash, error) {
	if index < 0 || index >= len(leaves) {
		return nil, fmt.Errorf("leaf %d is not in a tree of %d leaves", index, len(leaves))
	}
	return path(leaves, index), nil
}

func path(leaves []Hash, m int) []Hash {
	n := len(leaves)
	if n == 1 {
		return nil
	}
	k := split(n)
	if m < k {
		return append(path(leaves[:k], m), Root(leaves[k:]))
	}
	return append(path(leaves[k:], m-k), Root(leaves[:k]))
}

// ConsistencyProof is PROOF(m, D[n]): the proof that the tree of the first m
// of the given leaves is a prefix of the tree of all of them. It is empty
// when m is 0 or all of them.
func ConsistencyProof(leaves []Hash, m int) ([]Hash, error) {
	if m < 0 || m > len(leaves) {
		return nil, fmt.Errorf("size %d is not within a tree of %d leaves", m, len(leaves))
	}
	if m == 0 || m == len(leaves) {
		return nil, nil
	}
	return subproof(leaves, m, true), nil
}

func subproof(leaves []Hash, m int, complete bool) []Hash {
	n := len(leaves)
	if m == n {
		if complete {
			return nil
		}
		return []Hash{Root(leaves)}
	}
	k := split(n)
	if m <= k {
		return append(subproof(leaves[:k], m, complete), Root(leaves[k:]))
	}
	return append(subproof(leaves[k:], m-k, false), Root(leaves[:k]))
}

// Errors of the proof checks.
var (
	ErrProofInvalid = errors.New("proof does not verify")
	ErrRootMismatch = errors.New("computed root does not match")
)

// RootFromInclusion computes the root of a tree of size leaves from the
// leaf hash at index and its audit path (RFC 9162 section 2.1.3.2).
func RootFromInclusion(index, size uint64, leaf Hash, proof []Hash) (Hash, error) {
	if index >= size {
		return Hash{}, fmt.Errorf("%w: leaf %d is not in a tree of %d leaves", ErrProofInvalid, index, size)
	}
	fn, sn, r := index, size-1, leaf
	for _, p := range proof {
		if sn == 0 {
			return Hash{}, fmt.Errorf("%w: the audit path is too long", ErrProofInvalid)
		}
		if fn&1 == 1 || fn == sn {
			r = NodeHash(p, r)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			r = NodeHash(r, p)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 {
		return Hash{}, fmt.Errorf("%w: the audit path is too short", ErrProofInvalid)
	}
	return r, nil
}

// VerifyInclusion checks that leaf is at index in the tree of size leaves
// with root.
func VerifyInclusion(index, size uint64, leaf Hash, proof []Hash, root Hash) error {
	got, err := RootFromInclusion(index, size, leaf, proof)
	if err != nil {
		return err
	}
	if got != root {
		return fmt.Errorf("%w: leaf %d of %d gives root %s, want %s", ErrRootMismatch, index, size, got, root)
	}
	return nil
}

// VerifyConsistency checks that the tree of size1 leaves with root1 is a
// prefix of the tree of size2 leaves with root2 (RFC 9162 section 2.1.4.2).
// A tree of size 0 is a prefix of every tree.
func VerifyConsistency(size1, size2 uint64, root1, root2 Hash, proof []Hash) error {
	switch {
	case size1 > size2:
		return fmt.Errorf("%w: size %d is larger than %d", ErrProofInvalid, size1, size2)
	case size1 == size2:
		if len(proof) != 0 {
			return fmt.Errorf("%w: equal sizes need an empty proof", ErrProofInvalid)
		}
		if root1 != root2 {
			return fmt.Errorf("%w: two different roots for size %d", ErrRootMismatch, size1)
		}
		return nil
	case size1 == 0:
		if len(proof) != 0 {
			return fmt.Errorf("%w: the empty tree needs an empty proof", ErrProofInvalid)
		}
		return nil
	case len(proof) == 0:
		return fmt.Errorf("%w: the proof is empty", ErrProofInvalid)
	}
	p := proof
	if size1&(size1-1) == 0 {
		p = append([]Hash{root1}, proof...)
	}
	fn, sn := size1-1, size2-1
	for fn&1 == 1 {
		fn >>= 1
		sn >>= 1
	}
	fr, sr := p[0], p[0]
	for _, c := range p[1:] {
		if sn == 0 {
			return fmt.Errorf("%w: the proof is too long", ErrProofInvalid)
		}
		if fn&1 == 1 || fn == sn {
			fr, sr = NodeHash(c, fr), NodeHash(c, sr)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			sr = NodeHash(sr, c)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 {
		return fmt.Errorf("%w: the proof is too short", ErrProofInvalid)
	}
	if fr != root1 || sr != root2 {
		return fmt.Errorf("%w: sizes %d and %d are not consistent", ErrRootMismatch, size1, size2)
	}
	return nil
}

// Frontier is a compact range [0, Size) of the tree: the roots of the
// perfect subtrees its size decomposes into, largest first. It grows by
// appending leaves and gives the root of the tree so far without the
// leaves themselves, so that a checkpoint costs only the new leaves.
type Frontier struct {
	size  uint64
	nodes []Hash
}

// NewFrontier returns the frontier of size leaves whose subtree roots are
// nodes (as Nodes returns them).
func NewFrontier(size uint64, nodes []Hash) (*Frontier, error) {
	if bits.OnesCount64(size) != len(nodes) {
		return nil, fmt.Errorf("a frontier of %d leaves has %d nodes, not %d", size, bits.OnesCount64(size), len(nodes))
	}
	return &Frontier{size: size, nodes: append([]Hash(nil), nodes...)}, nil
}

// Size is the number of leaves appended.
func (f *Frontier) Size() uint64 { return f.size }

// Nodes are the subtree roots, largest first.
func (f *Frontier) Nodes() []Hash { return append([]Hash(nil), f.nodes...) }

// Append adds a leaf hash.
func (f *Frontier) Append(leaf Hash) {
	f.nodes = append(f.nodes, leaf)
	for s := f.size; s&1 == 1; s >>= 1 {
		n := len(f.nodes)
		f.nodes = append(f.nodes[:n-2], NodeHash(f.nodes[n-2], f.nodes[n-1]))
	}
	f.size++
}

// Root is the tree hash of the leaves appended.
func (f *Frontier) Root() Hash {
	if len(f.nodes) == 0 {
		return EmptyRoot
	}
	r := f.nodes[len(f.nodes)-1]
	for i := len(f.nodes) - 2; i >= 0; i-- {
		r = NodeHash(f.nodes[i], r)
	}
	return r
}
