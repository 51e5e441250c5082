package testenv

import (
	"testing"

	"github.com/edubureau/studentaid/pkg/config"
	"github.com/edubureau/studentaid/pkg/pii"
)

// Sealer returns a Sealer of the key set keys ("<id>:<base64>,...", as
// AID_SEAL_KEYS); "" means the development set, which the services run on
// in tests.
func Sealer(t testing.TB, keys string) *pii.Sealer {
	t.Helper()
	if keys == "" {
		keys = config.DevSealKeys
	}
	set, err := pii.ParseKeys(keys)
	if err != nil {
		t.Fatal(err)
	}
	s, err := pii.NewSealer(set...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Hasher is Sealer for a hashing key set (AID_HASH_KEYS).
func Hasher(t testing.TB, keys string) *pii.Hasher {
	t.Helper()
	if keys == "" {
		keys = config.DevHashKeys
	}
	set, err := pii.ParseKeys(keys)
	if err != nil {
		t.Fatal(err)
	}
	h, err := pii.NewHasher(set...)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
