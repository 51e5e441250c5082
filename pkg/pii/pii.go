// Package pii protects personal data the platform must keep: it seals values
// (identity and bank card numbers, names) with AES-256-GCM for storage, hashes
// them with a keyed HMAC for duplicate checks without plaintext, and validates
// bank card numbers.
//
// Use separate keys for the Sealer and the Hasher: a leaked hash key must not
// help decrypt anything. No error in this package contains key material or a
// plaintext value.
package pii

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the key length in bytes for [NewSealer], [NewHasher] and [ParseKey].
const KeySize = 32

// Errors returned, possibly wrapped, by this package. Compare with errors.Is.
var (
	// ErrKeySize means a key is not 32 bytes long.
	ErrKeySize = errors.New("pii: key must be 32 bytes")
	// ErrKeyEncoding means a key string is neither base64 nor hex.
	ErrKeyEncoding = errors.New("pii: key must be standard base64 or 64 hex characters")
	// ErrOpen means a ciphertext is truncated, was tampered with or was sealed
	// with another key.
	ErrOpen = errors.New("pii: cannot open sealed value")
	// ErrCardFormat means a card number is not 16-19 ASCII digits.
	ErrCardFormat = errors.New("pii: card number must be 16-19 digits")
	// ErrCardChecksum means a card number fails the Luhn check.
	ErrCardChecksum = errors.New("pii: card number check digit does not match")
)

// ParseKey decodes a 32-byte key given as 64 hex characters or as standard
// base64 (with padding), as it would appear in configuration. Surrounding
// white space is ignored. Errors never contain the key.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) == 2*KeySize {
		if key, err := hex.DecodeString(s); err == nil {
			return key, nil
		}
	}
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, ErrKeyEncoding
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("%w: decoded %d bytes", ErrKeySize, len(key))
	}
	return key, nil
}

// Sealer encrypts and decrypts values with AES-256-GCM. Each Seal uses a fresh
// random 96-bit nonce, prepended to the ciphertext, so sealing the same value
// twice gives different bytes; use a [Hasher] to find equal values. A key must
// not seal more than 2^32 values. A Sealer is safe for concurrent use.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer returns a Sealer using a 32-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("%w: got %d", ErrKeySize, len(key))
	}
	block, err := aes.NewCipher(key) // copies the key schedule; key may be reused by the caller
	if err != nil {
		return nil, fmt.Errorf("pii: new cipher: %w", err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("pii: new GCM: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plaintext and returns nonce || ciphertext || tag (28 bytes
// longer than plaintext). The error is always nil today; it is kept so that
// callers handle a failing random source or a future key service.
func (s *Sealer) Seal(plaintext string) ([]byte, error) {
	return s.aead.Seal(nil, nil, []byte(plaintext), nil), nil //nolint:gosec // G407: the AEAD draws a random nonce itself (cipher.NewGCMWithRandomNonce)
}

// Open decrypts a value produced by Seal with the same key. It returns an
// error wrapping [ErrOpen] if ciphertext was truncated or altered or sealed
// with another key.
func (s *Sealer) Open(ciphertext []byte) (string, error) {
	if len(ciphertext) < s.aead.Overhead() {
		return "", fmt.Errorf("%w: %d bytes is too short", ErrOpen, len(ciphertext))
	}
	plaintext, err := s.aead.Open(nil, nil, ciphertext, nil)
	if err != nil {
		return "", fmt.Errorf("%w: authentication failed (tampered or wrong key)", ErrOpen)
	}
	return string(plaintext), nil
}

// Hasher computes keyed, deterministic fingerprints of values, so duplicates
// (the same student at two schools, the same card twice) can be found without
// storing plaintext. A Hasher is safe for concurrent use.
type Hasher struct {
	key []byte
}

// NewHasher returns a Hasher using a secret key of at least 32 bytes. The key
// is copied.
func NewHasher(key []byte) (*Hasher, error) {
	if len(key) < KeySize {
		return nil, fmt.Errorf("%w: got %d, want at least %d", ErrKeySize, len(key), KeySize)
	}
	return &Hasher{key: append([]byte(nil), key...)}, nil
}

// Hash returns the lower-case hex HMAC-SHA256 (64 characters) of s after
// trimming surrounding white space and upper-casing, so "11010519491231002x "
// and "11010519491231002X" hash alike.
func (h *Hasher) Hash(s string) string {
	mac := hmac.New(sha256.New, h.key)
	mac.Write([]byte(normalize(s)))
	return hex.EncodeToString(mac.Sum(nil))
}

// normalize returns s as Hash sees it: trimmed and upper-cased.
func normalize(s string) string {
	return strings.ToUpper(strings.TrimSpace(s))
}

// ValidateCardNumber checks that s is a bank card number: 16-19 ASCII digits
// with a valid Luhn check digit. Errors wrap [ErrCardFormat] or
// [ErrCardChecksum] and never contain the number.
func ValidateCardNumber(s string) error {
	if len(s) < 16 || len(s) > 19 {
		return fmt.Errorf("%w: got %d characters", ErrCardFormat, len(s))
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return fmt.Errorf("%w: character %d is not a digit", ErrCardFormat, i+1)
		}
	}
	if luhnCheckDigit(s[:len(s)-1]) != s[len(s)-1] {
		return fmt.Errorf("%w: a digit is probably mistyped", ErrCardChecksum)
	}
	return nil
}

// GenerateCardNumber builds a Luhn-valid number of the given total length:
// prefix (e.g. a bank's BIN such as "622848"), then body zero-padded, then the
// check digit. It is meant for test data and load generation and panics if
// prefix is not digits, body is negative or the parts do not fit. Lengths
// outside 16-19 are allowed so tests can build numbers ValidateCardNumber
// rejects by length alone.
func GenerateCardNumber(prefix string, body int64, length int) string {
	for i := range len(prefix) {
		if prefix[i] < '0' || prefix[i] > '9' {
			panic("pii.GenerateCardNumber: prefix must be digits")
		}
	}
	if body < 0 {
		panic("pii.GenerateCardNumber: body must not be negative")
	}
	width := length - len(prefix) - 1
	digits := ""
	if body > 0 || width > 0 {
		digits = fmt.Sprintf("%0*d", max(width, 0), body)
	}
	if width < 0 || len(digits) > width {
		panic(fmt.Sprintf("pii.GenerateCardNumber: prefix %d digits and body %d do not fit in length %d", len(prefix), body, length))
	}
	payload := prefix + digits
	return payload + string(luhnCheckDigit(payload))
}

// luhnCheckDigit returns the Luhn check digit to append to payload, which
// must be ASCII digits.
func luhnCheckDigit(payload string) byte {
	sum := 0
	double := true // the digit next to the check digit is doubled
	for i := len(payload) - 1; i >= 0; i-- {
		d := int(payload[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return byte('0' + (10-sum%10)%10)
}
