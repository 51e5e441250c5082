package manifest

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Signer signs manifests and reissues with finance's current key.
type Signer struct {
	id   string
	priv ed25519.PrivateKey
}

// KeyID is the ID of the key s signs with.
func (s *Signer) KeyID() string { return s.id }

// Public is the verifying key set entry, "<id>:<base64 public key>", that
// payout needs for s's key.
func (s *Signer) Public() string {
	pub, _ := s.priv.Public().(ed25519.PublicKey)
	return s.id + ":" + base64.StdEncoding.EncodeToString(pub)
}

func (s *Signer) sign(msg []byte) []byte { return ed25519.Sign(s.priv, msg) }

// Verifier checks finance's signatures under any of the keys it knows.
type Verifier struct {
	keys map[string]ed25519.PublicKey
}

// ParseSigningKeys reads finance's signing key set (AID_FINANCE_SIGNING_KEYS):
// "<id>:<base64 of a 32-byte Ed25519 seed>[,...]", current first. Only the
// current key signs; the others are accepted so that a set carried over a
// rotation still parses. Errors never contain key material.
func ParseSigningKeys(set string) (*Signer, error) {
	entries, err := parseSet(set, ed25519.SeedSize, "seed")
	if err != nil {
		return nil, fmt.Errorf("AID_FINANCE_SIGNING_KEYS: %w", err)
	}
	return &Signer{id: entries[0].id, priv: ed25519.NewKeyFromSeed(entries[0].key)}, nil
}

// ParseVerifyKeys reads payout's verifying key set (AID_FINANCE_VERIFY_KEYS):
// "<id>:<base64 of a 32-byte Ed25519 public key>[,...]". During a rotation
// it holds the new key and the old one until every batch signed by the old
// one is paid.
func ParseVerifyKeys(set string) (*Verifier, error) {
	entries, err := parseSet(set, ed25519.PublicKeySize, "public key")
	if err != nil {
		return nil, fmt.Errorf("AID_FINANCE_VERIFY_KEYS: %w", err)
	}
	v := &Verifier{keys: make(map[string]ed25519.PublicKey, len(entries))}
	for _, e := range entries {
		v.keys[e.id] = ed25519.PublicKey(e.key)
	}
	return v, nil
}

type keyEntry struct {
	id  string
	key []byte
}

func parseSet(set string, size int, what string) ([]keyEntry, error) {
	if strings.TrimSpace(set) == "" {
		return nil, errors.New("no key given: want \"<id>:<base64>\", current first")
	}
	var out []keyEntry
	seen := map[string]bool{}
	for i, entry := range strings.Split(set, ",") {
		id, secret, ok := strings.Cut(strings.TrimSpace(entry), ":")
		if !ok || id == "" || strings.ContainsAny(id, " \t:") {
			return nil, fmt.Errorf("entry %d: want \"<id>:<base64>\"", i+1)
		}
		if seen[id] {
			return nil, fmt.Errorf("key ID %q given twice", id)
		}
		seen[id] = true
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(secret))
		if err != nil || len(key) != size {
			return nil, fmt.Errorf("key %q: want the base64 of a %d-byte Ed25519 %s", id, size, what)
		}
		out = append(out, keyEntry{id: id, key: key})
	}
	return out, nil
}
