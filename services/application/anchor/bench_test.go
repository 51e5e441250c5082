package anchor_test

import (
	"encoding/binary"
	"testing"

	"github.com/edubureau/studentaid/services/application/anchor"
)

func benchLeaves(n int) []anchor.Hash {
	out := make([]anchor.Hash, n)
	for i := range out {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(i))
		out[i] = anchor.LeafHash(b[:])
	}
	return out
}

// BenchmarkFrontierAppend is the sequencer's hashing cost per new entry.
func BenchmarkFrontierAppend(b *testing.B) {
	leaves := benchLeaves(1 << 16)
	f, _ := anchor.NewFrontier(0, nil)
	b.ResetTimer()
	for i := range b.N {
		f.Append(leaves[i&(1<<16-1)])
	}
}

// BenchmarkInclusionProof100k is one audit path in a tree of 100,000 leaves
// computed from the leaves (VerifyTrail's and the export's cost per call).
func BenchmarkInclusionProof100k(b *testing.B) {
	leaves := benchLeaves(100_000)
	b.ResetTimer()
	for i := range b.N {
		if _, err := anchor.InclusionProof(leaves, i%len(leaves)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyInclusion is checking one audit path offline.
func BenchmarkVerifyInclusion(b *testing.B) {
	leaves := benchLeaves(100_000)
	root := anchor.Root(leaves)
	p, _ := anchor.InclusionProof(leaves, 4321)
	b.ResetTimer()
	for range b.N {
		if err := anchor.VerifyInclusion(4321, uint64(len(leaves)), leaves[4321], p, root); err != nil {
			b.Fatal(err)
		}
	}
}
