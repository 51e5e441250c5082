// Package pii protects personal data the platform must keep: it seals values
// (identity and bank card numbers, names) with AES-256-GCM for storage, hashes
// them with a keyed HMAC for duplicate checks without plaintext, and validates
// bank card numbers.
//
// Sealing and hashing use separate keys (a leaked hash key must not help
// decrypt anything), and each key has an ID stored beside what it protects:
// a sealed value names its key in a small header ([Sealer.Seal]), a hash is
// stored with its key ID in a column of its own. So keys rotate: the first
// key of a [Sealer] or [Hasher] is the current one, older ones stay
// configured until everything under them was re-sealed or re-hashed. No
// error in this package contains key material or a plaintext value.
package pii

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the key length in bytes for [NewSealer] (exactly), [NewHasher]
// (at least) and [ParseKey].
const KeySize = 32

// Errors returned, possibly wrapped, by this package. Compare with errors.Is.
var (
	// ErrKeySize means a key is not 32 bytes long.
	ErrKeySize = errors.New("pii: key must be 32 bytes")
	// ErrKeyEncoding means a key string is neither base64 nor hex.
	ErrKeyEncoding = errors.New("pii: key must be standard base64 or 64 hex characters")
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

// normalize returns s as Hash sees it: trimmed and upper-cased.
func normalize(s string) string {
	return upper(strings.TrimSpace(s))
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
