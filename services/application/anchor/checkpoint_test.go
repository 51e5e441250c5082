package anchor_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/edubureau/studentaid/services/application/anchor"
)

func TestCheckpointSignature(t *testing.T) {
	t.Parallel()
	seed := bytes.Repeat([]byte{1}, 32)
	keys, err := anchor.ParseSigningKeys("k1:" + base64.StdEncoding.EncodeToString(seed) + ", k0:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32)))
	if err != nil || len(keys) != 2 || keys[0].ID != "k1" {
		t.Fatalf("keys %v: %v", keys, err)
	}
	root, _ := anchor.ParseHash("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")
	at := time.Date(2026, 12, 2, 13, 0, 0, 123456789, time.UTC)
	c := keys[0].Sign(8, root, at)
	// The signed text, written out by hand.
	text := "aid.application.trail.checkpoint.v1\n8\n5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328\n2026-12-02T13:00:00.123456Z\nk1\n"
	if string(c.SignedText()) != text {
		t.Fatalf("signed text %q", c.SignedText())
	}
	if !ed25519.Verify(ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey), []byte(text), c.Signature) {
		t.Fatal("the signature does not verify with the seed's public key")
	}
	vk, err := anchor.ParseVerifyKeys(anchor.VerifyKeysOf(keys).String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var back anchor.Checkpoint
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if err := vk.Verify(back); err != nil {
		t.Fatalf("round-tripped checkpoint: %v (%s)", err, b)
	}
	back.TreeSize = 9
	if err := vk.Verify(back); !errors.Is(err, anchor.ErrBadSignature) {
		t.Fatalf("a changed size verified: %v", err)
	}
	back.TreeSize, back.KeyID = 8, "k0"
	if err := vk.Verify(back); !errors.Is(err, anchor.ErrBadSignature) {
		t.Fatalf("another key's claim verified: %v", err)
	}
	for _, bad := range []string{"", "k1", "k1:short", ":" + base64.StdEncoding.EncodeToString(seed)} {
		if _, err := anchor.ParseSigningKeys(bad); err == nil {
			t.Errorf("signing keys %q accepted", bad)
		}
	}
}
