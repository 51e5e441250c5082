package anchor

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CheckpointFormat names the signed text of a checkpoint; it is its first
// line.
const CheckpointFormat = "aid.application.trail.checkpoint.v1"

// Checkpoint is a signed statement of the tree's head: its size and root
// at a time, signed with Ed25519 by the key KeyID.
type Checkpoint struct {
	TreeSize  uint64
	Root      Hash
	Time      time.Time
	KeyID     string
	Signature []byte
}

// SignedText is what the signature covers: the format line, then the tree
// size, the root in hex, the time (UTC, microseconds) and the key ID, one a
// line.
func (c Checkpoint) SignedText() []byte {
	return []byte(CheckpointFormat + "\n" +
		strconv.FormatUint(c.TreeSize, 10) + "\n" +
		c.Root.String() + "\n" +
		c.Time.UTC().Truncate(time.Microsecond).Format("2006-01-02T15:04:05.000000Z") + "\n" +
		c.KeyID + "\n")
}

// SigningKey is one Ed25519 checkpoint signing key and its ID.
type SigningKey struct {
	ID  string
	Key ed25519.PrivateKey
}

// Public is the key's public half.
func (k SigningKey) Public() ed25519.PublicKey { return k.Key.Public().(ed25519.PublicKey) } //nolint:forcetypeassert // an ed25519.PrivateKey's public key is an ed25519.PublicKey

// Sign returns a checkpoint of the tree of size leaves with root at t,
// signed with k.
func (k SigningKey) Sign(size uint64, root Hash, t time.Time) Checkpoint {
	c := Checkpoint{TreeSize: size, Root: root, Time: t.UTC().Truncate(time.Microsecond), KeyID: k.ID}
	c.Signature = ed25519.Sign(k.Key, c.SignedText())
	return c
}

// ParseSigningKeys reads "<id>:<base64 of a 32-byte Ed25519 seed>" entries,
// comma-separated, current first (AID_TRAIL_SIGNING_KEYS).
func ParseSigningKeys(set string) ([]SigningKey, error) {
	var out []SigningKey
	for entry := range strings.SplitSeq(set, ",") {
		id, secret, ok := strings.Cut(strings.TrimSpace(entry), ":")
		if !ok || id == "" {
			return nil, errors.New(`a trail signing key is "<id>:<base64 of a 32-byte Ed25519 seed>"`)
		}
		seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(secret))
		if err != nil || len(seed) != ed25519.SeedSize {
			return nil, fmt.Errorf("trail signing key %q: want base64 of a %d-byte Ed25519 seed", id, ed25519.SeedSize)
		}
		out = append(out, SigningKey{ID: id, Key: ed25519.NewKeyFromSeed(seed)})
	}
	if len(out) == 0 {
		return nil, errors.New("no trail signing key")
	}
	return out, nil
}

// VerifyKeys are the public keys checkpoints may be signed with, by key ID.
type VerifyKeys map[string]ed25519.PublicKey

// ParseVerifyKeys reads "<id>:<base64 of a 32-byte Ed25519 public key>"
// entries, comma-separated (AID_TRAIL_VERIFY_KEYS).
func ParseVerifyKeys(set string) (VerifyKeys, error) {
	out := VerifyKeys{}
	for entry := range strings.SplitSeq(set, ",") {
		if strings.TrimSpace(entry) == "" {
			continue
		}
		id, pub, ok := strings.Cut(strings.TrimSpace(entry), ":")
		if !ok || id == "" {
			return nil, errors.New(`a trail verify key is "<id>:<base64 of a 32-byte Ed25519 public key>"`)
		}
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(pub))
		if err != nil || len(b) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("trail verify key %q: want base64 of a %d-byte Ed25519 public key", id, ed25519.PublicKeySize)
		}
		out[id] = ed25519.PublicKey(b)
	}
	if len(out) == 0 {
		return nil, errors.New("no trail verify key")
	}
	return out, nil
}

// VerifyKeysOf are the public halves of keys.
func VerifyKeysOf(keys []SigningKey) VerifyKeys {
	out := VerifyKeys{}
	for _, k := range keys {
		out[k.ID] = k.Public()
	}
	return out
}

// String is the set in the form ParseVerifyKeys reads, ordered by ID.
func (v VerifyKeys) String() string {
	parts := make([]string, 0, len(v))
	for id, k := range v {
		parts = append(parts, id+":"+base64.StdEncoding.EncodeToString(k))
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// ErrBadSignature means a checkpoint's signature does not verify, or its
// key is not one the verifier knows.
var ErrBadSignature = errors.New("checkpoint signature does not verify")

// Verify checks c's signature against keys.
func (v VerifyKeys) Verify(c Checkpoint) error {
	pub, ok := v[c.KeyID]
	if !ok {
		return fmt.Errorf("%w: key %q is not a trail verify key", ErrBadSignature, c.KeyID)
	}
	if !ed25519.Verify(pub, c.SignedText(), c.Signature) {
		return fmt.Errorf("%w: checkpoint of size %d by key %q", ErrBadSignature, c.TreeSize, c.KeyID)
	}
	return nil
}

// CheckpointJSON is a checkpoint as an auditor keeps it: the signed text's
// fields and the signature, in JSON.
type CheckpointJSON struct {
	Format    string `json:"format"`
	TreeSize  uint64 `json:"tree_size"`
	RootHash  string `json:"root_hash"`
	Time      string `json:"time"`
	KeyID     string `json:"key_id"`
	Signature string `json:"signature"`
}

// MarshalJSON writes c as CheckpointJSON.
func (c Checkpoint) MarshalJSON() ([]byte, error) {
	return json.Marshal(CheckpointJSON{
		Format: CheckpointFormat, TreeSize: c.TreeSize, RootHash: c.Root.String(),
		Time: c.Time.UTC().Format("2006-01-02T15:04:05.000000Z"), KeyID: c.KeyID,
		Signature: base64.StdEncoding.EncodeToString(c.Signature),
	})
}

// UnmarshalJSON reads c from CheckpointJSON.
func (c *Checkpoint) UnmarshalJSON(b []byte) error {
	var j CheckpointJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	if j.Format != CheckpointFormat {
		return fmt.Errorf("checkpoint format %q, want %q", j.Format, CheckpointFormat)
	}
	root, err := ParseHash(j.RootHash)
	if err != nil {
		return fmt.Errorf("checkpoint root: %w", err)
	}
	t, err := time.Parse(time.RFC3339Nano, j.Time)
	if err != nil {
		return fmt.Errorf("checkpoint time: %w", err)
	}
	sig, err := base64.StdEncoding.DecodeString(j.Signature)
	if err != nil {
		return fmt.Errorf("checkpoint signature: %w", err)
	}
	*c = Checkpoint{TreeSize: j.TreeSize, Root: root, Time: t.UTC(), KeyID: j.KeyID, Signature: sig}
	return nil
}
