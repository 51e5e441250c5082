package pii

import (
	"errors"
	"fmt"
	"strings"
)

// MaxKeyIDLength bounds a key ID, which travels in every sealed value.
const MaxKeyIDLength = 32

// Errors about key sets, returned possibly wrapped. Compare with errors.Is.
var (
	// ErrKeyID means a key ID is empty, too long, or not made of
	// A-Z, a-z, 0-9, '.', '_' and '-'.
	ErrKeyID = errors.New("pii: key ID must be 1-32 characters of A-Z, a-z, 0-9, '.', '_' or '-'")
	// ErrKeySet means a key list is empty, malformed, or names a key ID
	// twice.
	ErrKeySet = errors.New(`pii: keys must be "<id>:<key>[,<id>:<key>...]"`)
	// ErrUnknownKey means a sealed value or a hash names a key ID that is not
	// configured.
	ErrUnknownKey = errors.New("pii: key ID not configured")
)

// Key is one secret key and the ID stored beside everything it protects.
type Key struct {
	ID     string
	Secret []byte
}

// ParseKeys reads a key list as configuration gives it:
// "<id>:<key>,<id>:<key>", each key as [ParseKey] reads it. The first key
// is the current one; the others only open or look up what was protected
// under them. White space around entries is ignored. Errors never contain a
// key.
func ParseKeys(s string) ([]Key, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("%w: empty", ErrKeySet)
	}
	var keys []Key
	seen := map[string]bool{}
	for i, entry := range strings.Split(s, ",") {
		id, secret, ok := strings.Cut(strings.TrimSpace(entry), ":")
		if !ok {
			return nil, fmt.Errorf("%w: entry %d has no ':' after its key ID", ErrKeySet, i+1)
		}
		id = strings.TrimSpace(id)
		if err := checkKeyID(id); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i+1, err)
		}
		if seen[id] {
			return nil, fmt.Errorf("%w: key ID %q appears twice", ErrKeySet, id)
		}
		seen[id] = true
		key, err := ParseKey(secret)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", id, err)
		}
		keys = append(keys, Key{ID: id, Secret: key})
	}
	return keys, nil
}

// checkKeyID returns ErrKeyID unless id is a valid key ID.
func checkKeyID(id string) error {
	if id == "" || len(id) > MaxKeyIDLength {
		return ErrKeyID
	}
	for i := range len(id) {
		c := id[i]
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '.' && c != '_' && c != '-' {
			return ErrKeyID
		}
	}
	return nil
}

// checkKeySet validates keys for NewSealer and NewHasher: at least one,
// valid distinct IDs.
func checkKeySet(keys []Key) error {
	if len(keys) == 0 {
		return fmt.Errorf("%w: no key", ErrKeySet)
	}
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if err := checkKeyID(k.ID); err != nil {
			return err
		}
		if seen[k.ID] {
			return fmt.Errorf("%w: key ID %q appears twice", ErrKeySet, k.ID)
		}
		seen[k.ID] = true
	}
	return nil
}

// Binding is the associated data that ties a sealed value to where it
// belongs: "<table>.<column>|<row>", e.g.
// "application.applications.bank_card_sealed|<application id>". A value
// sealed for one row or column does not open for another.
func Binding(column, row string) []byte {
	return []byte(column + "|" + row)
}
