package anchor

import "fmt"

// cachedSubtree is the smallest subtree whose root Tree keeps.
const cachedSubtree = 64

// Tree is the tree over a list of leaves that keeps the roots of its
// subtrees of cachedSubtree leaves or more once computed, so that the root
// and any number of proofs over it cost about one pass over the leaves
// (the package functions Root, InclusionProof and ConsistencyProof each make
// a pass of their own).
type Tree struct {
	leaves []Hash
	cache  map[[2]int]Hash
}

// NewTree returns the tree over leaves.
func NewTree(leaves []Hash) *Tree {
	return &Tree{leaves: leaves, cache: make(map[[2]int]Hash, 2*len(leaves)/cachedSubtree+1)}
}

// Size is the number of leaves.
func (t *Tree) Size() int { return len(t.leaves) }

// Leaf is the leaf at index i.
func (t *Tree) Leaf(i int) Hash { return t.leaves[i] }

// Root is MTH over the leaves.
func (t *Tree) Root() Hash { return t.root(0, len(t.leaves)) }

func (t *Tree) root(lo, hi int) Hash {
	switch n := hi - lo; {
	case n == 0:
		return EmptyRoot
	case n == 1:
		return t.leaves[lo]
	case n < cachedSubtree:
		return Root(t.leaves[lo:hi])
	}
	if h, ok := t.cache[[2]int{lo, hi}]; ok {
		return h
	}
	k := split(hi - lo)
	h := NodeHash(t.root(lo, lo+k), t.root(lo+k, hi))
	t.cache[[2]int{lo, hi}] = h
	return h
}

// InclusionProof is PATH(index, D[n]) as the package function gives it.
func (t *Tree) InclusionProof(index int) ([]Hash, error) {
	if index < 0 || index >= len(t.leaves) {
		return nil, fmt.Errorf("leaf %d is not in a tree of %d leaves", index, len(t.leaves))
	}
	return t.path(0, len(t.leaves), index), nil
}

func (t *Tree) path(lo, hi, m int) []Hash {
	if hi-lo <= 1 {
		return nil
	}
	k := split(hi - lo)
	if m < k {
		return append(t.path(lo, lo+k, m), t.root(lo+k, hi))
	}
	return append(t.path(lo+k, hi, m-k), t.root(lo, lo+k))
}

// ConsistencyProof is PROOF(m, D[n]) as the package function gives it.
func (t *Tree) ConsistencyProof(m int) ([]Hash, error) {
	if m < 0 || m > len(t.leaves) {
		return nil, fmt.Errorf("size %d is not within a tree of %d leaves", m, len(t.leaves))
	}
	if m == 0 || m == len(t.leaves) {
		return nil, nil
	}
	return t.subproof(0, len(t.leaves), m, true), nil
}

func (t *Tree) subproof(lo, hi, m int, complete bool) []Hash {
	if m == hi-lo {
		if complete {
			return nil
		}
		return []Hash{t.root(lo, hi)}
	}
	k := split(hi - lo)
	if m <= k {
		return append(t.subproof(lo, lo+k, m, complete), t.root(lo+k, hi))
	}
	return append(t.subproof(lo+k, hi, m-k, false), t.root(lo, lo+k))
}
