package pii

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"strings"
	"sync"
	"unicode/utf8"
)

// Hasher computes keyed, deterministic fingerprints of values, so duplicates
// (the same student at two schools, the same card twice) can be found
// without storing plaintext. It holds a set of keys: the first is current,
// the others let a lookup find what was hashed before a key change (see
// [Hasher.HashWith]). Store each hash with its key ID. A Hasher is safe for
// concurrent use.
type Hasher struct {
	ids  []string
	keys map[string][]byte
	// macs pool one keyed HMAC per key: Reset returns it to its keyed
	// state, so a hash costs no key set-up and no allocation of its own
	// (an import hashes millions of ID numbers).
	macs map[string]*sync.Pool
}

// NewHasher returns a Hasher whose first key is current. Each secret must be
// at least 32 bytes and is copied; IDs must be valid and distinct.
func NewHasher(keys ...Key) (*Hasher, error) {
	if err := checkKeySet(keys); err != nil {
		return nil, err
	}
	h := &Hasher{keys: make(map[string][]byte, len(keys)), macs: make(map[string]*sync.Pool, len(keys))}
	for _, k := range keys {
		if len(k.Secret) < KeySize {
			return nil, fmt.Errorf("key %q: %w: got %d, want at least %d", k.ID, ErrKeySize, len(k.Secret), KeySize)
		}
		h.ids = append(h.ids, k.ID)
		key := append([]byte(nil), k.Secret...)
		h.keys[k.ID] = key
		h.macs[k.ID] = &sync.Pool{New: func() any { return &pooledMAC{mac: hmac.New(sha256.New, key)} }}
	}
	return h, nil
}

// CurrentKeyID is the ID of the key Hash uses.
func (h *Hasher) CurrentKeyID() string { return h.ids[0] }

// KeyIDs are the configured key IDs, current first.
func (h *Hasher) KeyIDs() []string { return append([]string(nil), h.ids...) }

// Has reports whether the key keyID is configured.
func (h *Hasher) Has(keyID string) bool { _, ok := h.keys[keyID]; return ok }

// Hash returns the lower-case hex HMAC-SHA256 (64 characters) of s under
// the current key, after trimming surrounding white space and
// upper-casing, so "11010519491231002x " and "11010519491231002X" hash
// alike.
func (h *Hasher) Hash(s string) string { return h.mac(h.ids[0], s) }

// HashWith is Hash under the key keyID, or an error wrapping
// [ErrUnknownKey].
func (h *Hasher) HashWith(keyID, s string) (string, error) {
	if _, ok := h.keys[keyID]; !ok {
		return "", fmt.Errorf("%w: hash key %q", ErrUnknownKey, keyID)
	}
	return h.mac(keyID, s), nil
}

func (h *Hasher) mac(keyID, s string) string {
	pool := h.macs[keyID]
	m := pool.Get().(*pooledMAC) //nolint:forcetypeassert // the pool holds only keyed HMACs
	m.mac.Reset()
	m.in = append(m.in[:0], normalize(s)...)
	m.mac.Write(m.in)
	hex.Encode(m.hex[:], m.mac.Sum(m.sum[:0]))
	out := string(m.hex[:])
	pool.Put(m)
	return out
}

// pooledMAC is one keyed HMAC with the buffers a hash needs, so that
// hashing allocates only the returned string.
type pooledMAC struct {
	mac hash.Hash
	in  []byte
	sum [sha256.Size]byte
	hex [2 * sha256.Size]byte
}

// upper is strings.ToUpper, returning s as it is without looking runes up
// in the case tables when it holds only ASCII other than a-z and Han
// characters (ID numbers, Chinese names), which have no case.
func upper(s string) string {
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z':
			return strings.ToUpper(s)
		case c < utf8.RuneSelf, c >= 0x4e00 && c <= 0x9fff:
		default:
			return strings.ToUpper(s)
		}
	}
	return s
}
