package anchor_test

import (
	"encoding/hex"
	"errors"
	"testing"

	"github.com/edubureau/studentaid/services/application/anchor"
)

// The leaf inputs and expected hashes are RFC 6962's test vectors as
// published with Certificate Transparency's reference code, computed by
// hand from the RFC's definitions (MTH, PATH, PROOF), not by this package.
var vectorLeaves = []string{"", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"}

var vectorRoots = []string{
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}

func vectorLeafHashes(t *testing.T) []anchor.Hash {
	t.Helper()
	out := make([]anchor.Hash, len(vectorLeaves))
	for i, l := range vectorLeaves {
		b, err := hex.DecodeString(l)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = anchor.LeafHash(b)
	}
	return out
}

func hashes(t *testing.T, hexes ...string) []anchor.Hash {
	t.Helper()
	out := make([]anchor.Hash, len(hexes))
	for i, s := range hexes {
		h, err := anchor.ParseHash(s)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = h
	}
	return out
}

func TestRootKnownVectors(t *testing.T) {
	leaves := vectorLeafHashes(t)
	for n, want := range vectorRoots {
		if got := anchor.Root(leaves[:n]).String(); got != want {
			t.Errorf("MTH of %d leaves = %s, want %s", n, got, want)
		}
		f, err := anchor.NewFrontier(0, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range leaves[:n] {
			f.Append(l)
		}
		if got := f.Root().String(); got != want {
			t.Errorf("frontier root of %d leaves = %s, want %s", n, got, want)
		}
		g, err := anchor.NewFrontier(f.Size(), f.Nodes())
		if err != nil {
			t.Fatalf("frontier of %d from its nodes: %v", n, err)
		}
		if g.Root() != f.Root() {
			t.Errorf("a frontier rebuilt from its nodes has another root")
		}
	}
}

func TestInclusionKnownVectors(t *testing.T) {
	leaves := vectorLeafHashes(t)
	tests := []struct {
		index, size int
		path        []string
	}{
		{0, 8, []string{"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7", "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
		{5, 8, []string{"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b", "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0", "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
		{2, 3, []string{"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
		{6, 7, []string{"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a", "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
		{3, 5, []string{"0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7", "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125", "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
		{0, 1, nil},
	}
	for _, tt := range tests {
		got, err := anchor.InclusionProof(leaves[:tt.size], tt.index)
		if err != nil {
			t.Fatal(err)
		}
		want := hashes(t, tt.path...)
		if len(got) != len(want) {
			t.Fatalf("PATH(%d, D[%d]) has %d hashes, want %d", tt.index, tt.size, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("PATH(%d, D[%d])[%d] = %s, want %s", tt.index, tt.size, i, got[i], want[i])
			}
		}
		root := hashes(t, vectorRoots[tt.size])[0]
		if err := anchor.VerifyInclusion(uint64(tt.index), uint64(tt.size), leaves[tt.index], want, root); err != nil {
			t.Errorf("the published path for %d in %d does not verify: %v", tt.index, tt.size, err)
		}
		// Another leaf, another index or a shortened path must not verify.
		other := leaves[(tt.index+1)%len(leaves)]
		if err := anchor.VerifyInclusion(uint64(tt.index), uint64(tt.size), other, want, root); !errors.Is(err, anchor.ErrRootMismatch) && !errors.Is(err, anchor.ErrProofInvalid) {
			t.Errorf("a wrong leaf verified at %d in %d: %v", tt.index, tt.size, err)
		}
		if len(want) > 0 {
			if err := anchor.VerifyInclusion(uint64(tt.index), uint64(tt.size), leaves[tt.index], want[:len(want)-1], root); err == nil {
				t.Errorf("a short path verified at %d in %d", tt.index, tt.size)
			}
		}
	}
	if _, err := anchor.InclusionProof(leaves[:3], 3); err == nil {
		t.Error("a proof for a leaf past the end was given")
	}
}

func TestConsistencyKnownVectors(t *testing.T) {
	leaves := vectorLeafHashes(t)
	tests := []struct {
		size1, size2 int
		proof        []string
	}{
		{1, 8, []string{"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7", "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
		{6, 8, []string{"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a", "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0", "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
		{2, 5, []string{"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
		{3, 7, []string{"0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7", "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7", "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125", "837dbb152e9b079010717e84e865da4ebc0fa198a806d59d31bf15accef22d0e"}},
		{4, 8, []string{"6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
		{8, 8, nil},
		{0, 8, nil},
	}
	for _, tt := range tests {
		got, err := anchor.ConsistencyProof(leaves[:tt.size2], tt.size1)
		if err != nil {
			t.Fatal(err)
		}
		want := hashes(t, tt.proof...)
		if len(got) != len(want) {
			t.Fatalf("PROOF(%d, D[%d]) has %d hashes, want %d", tt.size1, tt.size2, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("PROOF(%d, D[%d])[%d] = %s, want %s", tt.size1, tt.size2, i, got[i], want[i])
			}
		}
		r1, r2 := hashes(t, vectorRoots[tt.size1])[0], hashes(t, vectorRoots[tt.size2])[0]
		if err := anchor.VerifyConsistency(uint64(tt.size1), uint64(tt.size2), r1, r2, want); err != nil {
			t.Errorf("the published proof %d→%d does not verify: %v", tt.size1, tt.size2, err)
		}
		if tt.size1 > 0 && tt.size1 < tt.size2 {
			// A root of another size in place of the old one must fail.
			wrong := hashes(t, vectorRoots[tt.size1-1])[0]
			if err := anchor.VerifyConsistency(uint64(tt.size1), uint64(tt.size2), wrong, r2, want); err == nil {
				t.Errorf("a wrong old root verified for %d→%d", tt.size1, tt.size2)
			}
		}
	}
}

// Proofs of every leaf and size up to 40 verify against the frontier's
// root, which is computed another way.
func TestProofsAgreeWithFrontier(t *testing.T) {
	var leaves []anchor.Hash
	f, _ := anchor.NewFrontier(0, nil)
	var roots []anchor.Hash
	roots = append(roots, f.Root())
	for i := range 40 {
		l := anchor.LeafHash([]byte{byte(i), byte(i >> 8)})
		leaves = append(leaves, l)
		f.Append(l)
		roots = append(roots, f.Root())
	}
	for n := 1; n <= len(leaves); n++ {
		for m := range n {
			p, err := anchor.InclusionProof(leaves[:n], m)
			if err != nil {
				t.Fatal(err)
			}
			if err := anchor.VerifyInclusion(uint64(m), uint64(n), leaves[m], p, roots[n]); err != nil {
				t.Fatalf("inclusion %d in %d: %v", m, n, err)
			}
			c, err := anchor.ConsistencyProof(leaves[:n], m)
			if err != nil {
				t.Fatal(err)
			}
			if err := anchor.VerifyConsistency(uint64(m), uint64(n), roots[m], roots[n], c); err != nil {
				t.Fatalf("consistency %d→%d: %v", m, n, err)
			}
		}
	}
}
