package anchor_test

import (
	"slices"
	"testing"

	"github.com/edubureau/studentaid/services/application/anchor"
)

// TestTreeAgreesWithDefinitions: the cached tree gives the roots and proofs
// of the package's direct implementations of RFC 6962's definitions (which
// the known vectors pin), across sizes where the cache is used.
func TestTreeAgreesWithDefinitions(t *testing.T) {
	t.Parallel()
	all := benchLeaves(700)
	for _, n := range []int{0, 1, 2, 63, 64, 65, 128, 129, 300, 511, 512, 700} {
		leaves := all[:n]
		tr := anchor.NewTree(leaves)
		if tr.Root() != anchor.Root(leaves) {
			t.Fatalf("root of %d", n)
		}
		for _, m := range []int{0, 1, n / 3, n / 2, n - 1, n} {
			if m < 0 || m > n {
				continue
			}
			if m < n {
				got, _ := tr.InclusionProof(m)
				want, _ := anchor.InclusionProof(leaves, m)
				if !slices.Equal(got, want) {
					t.Fatalf("path %d in %d", m, n)
				}
			}
			got, _ := tr.ConsistencyProof(m)
			want, _ := anchor.ConsistencyProof(leaves, m)
			if !slices.Equal(got, want) {
				t.Fatalf("consistency %d of %d", m, n)
			}
		}
	}
}

// BenchmarkTreeProofs100k is VerifyTrail's work for one application of
// seven entries in a tree of 100,000 leaves: the root, a consistency proof
// and seven audit paths.
func BenchmarkTreeProofs100k(b *testing.B) {
	leaves := benchLeaves(100_000)
	b.ResetTimer()
	for range b.N {
		tr := anchor.NewTree(leaves)
		_ = tr.Root()
		if _, err := tr.ConsistencyProof(60_000); err != nil {
			b.Fatal(err)
		}
		for i := range 7 {
			if _, err := tr.InclusionProof(i * 13_000); err != nil {
				b.Fatal(err)
			}
		}
	}
}
