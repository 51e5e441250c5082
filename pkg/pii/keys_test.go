package pii_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/edubureau/studentaid/pkg/pii"
)

func TestParseKeys(t *testing.T) {
	t.Parallel()

	k1 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	k2 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32))
	tests := []struct {
		name    string
		in      string
		wantIDs []string
		wantErr error
	}{
		{name: "one", in: "2025-01:" + k1, wantIDs: []string{"2025-01"}},
		{name: "current first", in: "new:" + k2 + ", old:" + k1 + "\n", wantIDs: []string{"new", "old"}},
		{name: "empty", in: " ", wantErr: pii.ErrKeySet},
		{name: "no ID", in: k1, wantErr: pii.ErrKeySet},
		{name: "empty ID", in: ":" + k1, wantErr: pii.ErrKeyID},
		{name: "ID with a space", in: "a b:" + k1, wantErr: pii.ErrKeyID},
		{name: "ID too long", in: strings.Repeat("a", 33) + ":" + k1, wantErr: pii.ErrKeyID},
		{name: "ID twice", in: "a:" + k1 + ",a:" + k2, wantErr: pii.ErrKeySet},
		{name: "short key", in: "a:" + base64.StdEncoding.EncodeToString([]byte("short")), wantErr: pii.ErrKeySize},
		{name: "passphrase", in: "a:correct horse battery staple", wantErr: pii.ErrKeyEncoding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			keys, err := pii.ParseKeys(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParseKeys() error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				for _, secret := range []string{k1, k2} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("error %q leaks a key", err)
					}
				}
				return
			}
			var ids []string
			for _, k := range keys {
				ids = append(ids, k.ID)
			}
			if strings.Join(ids, ",") != strings.Join(tt.wantIDs, ",") {
				t.Errorf("ParseKeys() IDs = %q, want %q", ids, tt.wantIDs)
			}
		})
	}
}

func TestNewSealerAndHasherRefuseBadKeySets(t *testing.T) {
	t.Parallel()

	for name, keys := range map[string][]pii.Key{
		"none":         nil,
		"ID twice":     {key(t, 1), {ID: "k1", Secret: testKey(t, 2)}},
		"bad ID":       {{ID: "k/1", Secret: testKey(t, 1)}},
		"short secret": {key(t, 1), {ID: "k2", Secret: make([]byte, 16)}},
	} {
		if s, err := pii.NewSealer(keys...); err == nil {
			t.Errorf("NewSealer(%s) = %v, want an error", name, s)
		}
		if h, err := pii.NewHasher(keys...); err == nil {
			t.Errorf("NewHasher(%s) = %v, want an error", name, h)
		}
	}
}

// TestSealerRotation walks a key change: a value sealed under the old key
// opens while both are configured, Reseal moves it to the new key, and
// after the old key is removed the re-sealed value opens and the one left
// behind does not.
func TestSealerRotation(t *testing.T) {
	t.Parallel()

	old := newSealer(t, 1)
	sealed, err := old.Seal("6228480402564890018", binding)
	if err != nil {
		t.Fatal(err)
	}
	both, err := pii.NewSealer(key(t, 2), key(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	if both.CurrentKeyID() != "k2" {
		t.Fatalf("CurrentKeyID() = %q, want the first key k2", both.CurrentKeyID())
	}
	if got, err := both.Open(sealed, binding); err != nil || got != "6228480402564890018" {
		t.Fatalf("Open(old value) with both keys = %q, %v", got, err)
	}
	resealed, changed, err := both.Reseal(sealed, binding)
	if err != nil || !changed {
		t.Fatalf("Reseal() changed %v, err %v; want true, nil", changed, err)
	}
	if id, err := pii.SealedKeyID(resealed); err != nil || id != "k2" {
		t.Fatalf("SealedKeyID(resealed) = %q, %v; want k2", id, err)
	}
	if !bytes.HasPrefix(resealed, both.CurrentHeader()) {
		t.Errorf("resealed value does not start with CurrentHeader()")
	}
	again, changed, err := both.Reseal(resealed, binding)
	if err != nil || changed || !bytes.Equal(again, resealed) {
		t.Errorf("Reseal(current value) changed %v, err %v; want it left as is", changed, err)
	}
	if _, _, err := both.Reseal(sealed, pii.Binding("other", "row")); !errors.Is(err, pii.ErrOpen) {
		t.Errorf("Reseal() under another binding error = %v, want ErrOpen", err)
	}

	newOnly := newSealer(t, 2)
	if got, err := newOnly.Open(resealed, binding); err != nil || got != "6228480402564890018" {
		t.Errorf("Open(resealed) after the old key was removed = %q, %v", got, err)
	}
	if _, err := newOnly.Open(sealed, binding); !errors.Is(err, pii.ErrUnknownKey) {
		t.Errorf("Open(value left under the removed key) error = %v, want ErrUnknownKey", err)
	}
}

func TestHasherKeys(t *testing.T) {
	t.Parallel()

	h1, err := pii.NewHasher(key(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	both, err := pii.NewHasher(key(t, 2), key(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	const id = "11010519491231002X"
	if both.CurrentKeyID() != "k2" || strings.Join(both.KeyIDs(), ",") != "k2,k1" || !both.Has("k1") || both.Has("k3") {
		t.Fatalf("current %q, IDs %q; want k2 and k2,k1", both.CurrentKeyID(), both.KeyIDs())
	}
	old, err := both.HashWith("k1", id)
	if err != nil || old != h1.Hash(id) {
		t.Errorf("HashWith(k1) = %q, %v; want the k1 Hasher's %q", old, err, h1.Hash(id))
	}
	if both.Hash(id) == old {
		t.Errorf("the current key k2 hashes like k1")
	}
	if _, err := both.HashWith("k3", id); !errors.Is(err, pii.ErrUnknownKey) {
		t.Errorf("HashWith(k3) error = %v, want ErrUnknownKey", err)
	}
}
