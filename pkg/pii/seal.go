package pii

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
)

// SealVersion is the first byte of every sealed value: the format below.
//
//	byte 0       SealVersion (1)
//	byte 1       n, the length of the key ID (1..32)
//	bytes 2..2+n the key ID, ASCII
//	then         the 12-byte GCM nonce, the ciphertext and the 16-byte tag
//
// The header (bytes 0..2+n) and the caller's binding (see [Binding]) are
// the GCM associated data, so neither can be changed without Open failing.
const SealVersion = 1

// Sealing errors, returned possibly wrapped. Compare with errors.Is.
var (
	// ErrOpen means a ciphertext is truncated, was tampered with, was sealed
	// with another key, or belongs to another row or column (its binding
	// differs).
	ErrOpen = errors.New("pii: cannot open sealed value")
	// ErrSealFormat means a value does not start with a sealed-value header
	// this package reads.
	ErrSealFormat = errors.New("pii: not a sealed value of a known version")
)

// Sealer encrypts and decrypts values with AES-256-GCM under a set of keys:
// the first seals, every one opens what names it. Each Seal uses a fresh
// random 96-bit nonce, so sealing the same value twice gives different
// bytes; use a [Hasher] to find equal values. A key must not seal more than
// 2^32 values. A Sealer is safe for concurrent use.
type Sealer struct {
	current string
	aeads   map[string]cipher.AEAD
}

// NewSealer returns a Sealer whose first key is current. Each secret must
// be 32 bytes; IDs must be valid (see [ParseKeys]) and distinct.
func NewSealer(keys ...Key) (*Sealer, error) {
	if err := checkKeySet(keys); err != nil {
		return nil, err
	}
	s := &Sealer{current: keys[0].ID, aeads: make(map[string]cipher.AEAD, len(keys))}
	for _, k := range keys {
		if len(k.Secret) != KeySize {
			return nil, fmt.Errorf("key %q: %w: got %d", k.ID, ErrKeySize, len(k.Secret))
		}
		block, err := aes.NewCipher(k.Secret) // copies the key schedule; the secret may be reused by the caller
		if err != nil {
			return nil, fmt.Errorf("pii: new cipher: %w", err)
		}
		aead, err := cipher.NewGCMWithRandomNonce(block)
		if err != nil {
			return nil, fmt.Errorf("pii: new GCM: %w", err)
		}
		s.aeads[k.ID] = aead
	}
	return s, nil
}

// CurrentKeyID is the ID of the key Seal uses.
func (s *Sealer) CurrentKeyID() string { return s.current }

// Seal encrypts plaintext under the current key, bound to binding, and
// returns header || nonce || ciphertext || tag (see [SealVersion]). The
// error is always nil today; it is kept so that callers handle a failing
// random source or a future key service.
func (s *Sealer) Seal(plaintext string, binding []byte) ([]byte, error) {
	hdr := header(s.current)
	aad := append(bytes.Clone(hdr), binding...)
	return s.aeads[s.current].Seal(hdr, nil, []byte(plaintext), aad), nil //nolint:gosec // G407: the AEAD draws a random nonce itself (cipher.NewGCMWithRandomNonce)
}

// Open decrypts a value produced by Seal with the same binding, under the
// key its header names. It returns an error wrapping [ErrSealFormat] for a
// value without a known header, [ErrUnknownKey] when the key is not
// configured, and [ErrOpen] when the value was truncated or altered, or was
// sealed for another binding.
func (s *Sealer) Open(sealed, binding []byte) (string, error) {
	id, body, err := split(sealed)
	if err != nil {
		return "", err
	}
	aead, ok := s.aeads[id]
	if !ok {
		return "", fmt.Errorf("%w: sealed under key %q", ErrUnknownKey, id)
	}
	if len(body) < aead.Overhead() {
		return "", fmt.Errorf("%w: %d bytes is too short", ErrOpen, len(sealed))
	}
	aad := append(bytes.Clone(sealed[:len(sealed)-len(body)]), binding...)
	plaintext, err := aead.Open(nil, nil, body, aad)
	if err != nil {
		return "", fmt.Errorf("%w: authentication failed (tampered, wrong key, or sealed for another row or column)", ErrOpen)
	}
	return string(plaintext), nil
}

// Reseal returns sealed re-sealed under the current key, or sealed itself
// and false when it already is. It fails as Open does.
func (s *Sealer) Reseal(sealed, binding []byte) ([]byte, bool, error) {
	if id, err := SealedKeyID(sealed); err == nil && id == s.current {
		return sealed, false, nil
	}
	plaintext, err := s.Open(sealed, binding)
	if err != nil {
		return nil, false, err
	}
	out, err := s.Seal(plaintext, binding)
	return out, err == nil, err
}

// CurrentHeader is the header every value sealed under the current key
// starts with, for finding values that are not (SQL: substring(col for n)).
func (s *Sealer) CurrentHeader() []byte { return header(s.current) }

// SealedKeyID returns the ID of the key a sealed value names, or an error
// wrapping [ErrSealFormat].
func SealedKeyID(sealed []byte) (string, error) {
	id, _, err := split(sealed)
	return id, err
}

func header(keyID string) []byte {
	return append([]byte{SealVersion, byte(len(keyID))}, keyID...) //nolint:gosec // G115: key IDs are at most MaxKeyIDLength (checkKeySet)
}

// split returns the key ID a sealed value names and what follows the header.
func split(sealed []byte) (keyID string, body []byte, err error) {
	if len(sealed) < 2 || sealed[0] != SealVersion {
		return "", nil, fmt.Errorf("%w (%d bytes)", ErrSealFormat, len(sealed))
	}
	n := int(sealed[1])
	if n == 0 || n > MaxKeyIDLength || len(sealed) < 2+n {
		return "", nil, fmt.Errorf("%w: key ID length %d", ErrSealFormat, n)
	}
	id := string(sealed[2 : 2+n])
	if checkKeyID(id) != nil {
		return "", nil, fmt.Errorf("%w: key ID not printable", ErrSealFormat)
	}
	return id, sealed[2+n:], nil
}
