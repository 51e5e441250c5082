package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edubureau/studentaid/services/application/anchor"
)

// tree builds a signed tree over two applications' trails (3 and 2
// entries, interleaved as the service sequences them) and returns its
// checkpoint, leaf hashes and exported leaves, and the verify key set.
func tree(t *testing.T) (anchor.Checkpoint, []anchor.Hash, []anchor.Leaf, string) {
	t.Helper()
	seed := bytes.Repeat([]byte{7}, ed25519.SeedSize)
	keys, err := anchor.ParseSigningKeys("audit-test:" + base64.StdEncoding.EncodeToString(seed))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 9, 1, 8, 0, 0, 0, time.UTC)
	apps := []string{"0190f3a4-5b6c-7d8e-9f00-000000000001", "0190f3a4-5b6c-7d8e-9f00-000000000002"}
	order := []int{0, 1, 0, 1, 0}
	prev := map[string]string{}
	pos := map[string]int64{}
	var leaves []anchor.Leaf
	var hashes []anchor.Hash
	for i, a := range order {
		app := apps[a]
		pos[app]++
		p, ok := prev[app]
		if !ok {
			p = anchor.GenesisHash
		}
		e := anchor.Entry{ApplicationID: app, Position: pos[app], EventID: "0190f3a4-0000-7000-8000-00000000000" + string(rune('a'+i)),
			Type: "application.submitted.v1", OccurredAt: at.Add(time.Duration(i) * time.Minute), ActorUser: "u1", ActorRole: "school_officer",
			ActorOrg: "S001", Status: "SUBMITTED", AmountFen: 100000}
		h := anchor.EntryHash(p, e)
		leaf, err := anchor.EntryLeaf(h)
		if err != nil {
			t.Fatal(err)
		}
		prev[app] = h
		hashes = append(hashes, leaf)
		leaves = append(leaves, anchor.Leaf{Index: uint64(i), Entry: e, PrevHash: p, EntryHash: h, LeafHash: leaf.String()})
	}
	cp := keys[0].Sign(uint64(len(hashes)), anchor.Root(hashes), at.Add(time.Hour))
	return cp, hashes, leaves, anchor.VerifyKeysOf(keys).String()
}

func writeJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "x.json")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestVerifyOfflineAcceptsGoodExports(t *testing.T) {
	t.Parallel()
	cp, hashes, leaves, keys := tree(t)
	cpFile := writeJSON(t, cp)
	for _, r := range [][2]uint64{{0, 5}, {1, 3}, {0, 1}, {4, 5}, {2, 2}} {
		x, err := anchor.NewRangeExport(cp, hashes, r[0], r[1], leaves[r[0]:r[1]])
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		if err := verifyOffline(&out, []string{"-leaves", writeJSON(t, x), "-checkpoint", cpFile, "-keys", keys}); err != nil {
			t.Fatalf("range %v: %v", r, err)
		}
		if !strings.Contains(out.String(), "root recomputed: ok") {
			t.Errorf("range %v: %s", r, out.String())
		}
	}
	x, _ := anchor.NewRangeExport(cp, hashes, 0, 5, leaves)
	var out strings.Builder
	if err := verifyOffline(&out, []string{"-leaves", writeJSON(t, x), "-keys", keys, "-application", leaves[1].Entry.ApplicationID}); err != nil {
		t.Fatal(err)
	}
	// The second application has leaves 1 and 3; a tree of 5 gives paths of
	// 3 hashes for both.
	if got := strings.Count(out.String(), "path["); got != 6 || !strings.Contains(out.String(), "inclusion proof ok: 2 entries") {
		t.Errorf("inclusion proof output:\n%s", out.String())
	}
}

func TestVerifyOfflineDetectsTampering(t *testing.T) {
	t.Parallel()
	cp, hashes, leaves, keys := tree(t)
	good, err := anchor.NewRangeExport(cp, hashes, 0, 5, leaves)
	if err != nil {
		t.Fatal(err)
	}
	otherKey := anchor.VerifyKeys{"audit-test": ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, 32)).Public().(ed25519.PublicKey)}.String()
	cases := []struct {
		name   string
		change func(x *anchor.RangeExport)
		keys   string
		want   error
	}{
		{"amount changed, entry rehashed consistently", func(x *anchor.RangeExport) {
			l := &x.Leaves[2]
			l.Entry.AmountFen = 9_900_000
			l.EntryHash = anchor.EntryHash(l.PrevHash, l.Entry)
			leaf, _ := anchor.EntryLeaf(l.EntryHash)
			l.LeafHash = leaf.String()
		}, keys, anchor.ErrTampered},
		{"amount changed only", func(x *anchor.RangeExport) { x.Leaves[0].Entry.AmountFen = 1 }, keys, anchor.ErrTampered},
		{"leaf dropped", func(x *anchor.RangeExport) { x.Leaves = x.Leaves[:4] }, keys, anchor.ErrTampered},
		{"root replaced", func(x *anchor.RangeExport) { x.Checkpoint.Root = hashes[0] }, keys, anchor.ErrBadSignature},
		{"size replaced", func(x *anchor.RangeExport) { x.Checkpoint.TreeSize = 4 }, keys, anchor.ErrBadSignature},
		{"another key", func(*anchor.RangeExport) {}, otherKey, anchor.ErrBadSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var x anchor.RangeExport
			b, _ := json.Marshal(good)
			if err := json.Unmarshal(b, &x); err != nil {
				t.Fatal(err)
			}
			tc.change(&x)
			var out strings.Builder
			err := verifyOffline(&out, []string{"-leaves", writeJSON(t, x), "-keys", tc.keys})
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	// A good export of another tree than the kept checkpoint's is refused.
	smaller := keysSign(t, cp, hashes[:4])
	x, err := anchor.NewRangeExport(smaller, hashes[:4], 0, 4, leaves[:4])
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := verifyOffline(&out, []string{"-leaves", writeJSON(t, x), "-checkpoint", writeJSON(t, cp), "-keys", keys}); !errors.Is(err, anchor.ErrTampered) {
		t.Fatalf("an export of another checkpoint: %v", err)
	}
}

func keysSign(t *testing.T, like anchor.Checkpoint, hashes []anchor.Hash) anchor.Checkpoint {
	t.Helper()
	keys, err := anchor.ParseSigningKeys("audit-test:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return keys[0].Sign(uint64(len(hashes)), anchor.Root(hashes), like.Time)
}
