package pii_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/edubureau/studentaid/pkg/pii"
)

// testKey returns a deterministic 32-byte key that differs by seed.
func testKey(t *testing.T, seed byte) []byte {
	t.Helper()
	key := make([]byte, pii.KeySize)
	for i := range key {
		key[i] = seed + byte(i)
	}
	return key
}

// key returns testKey(seed) under the ID "k<seed>".
func key(t *testing.T, seed byte) pii.Key {
	t.Helper()
	return pii.Key{ID: fmt.Sprintf("k%d", seed), Secret: testKey(t, seed)}
}

// newSealer returns a Sealer for key(seed) or stops the test.
func newSealer(t *testing.T, seed byte) *pii.Sealer {
	t.Helper()
	s, err := pii.NewSealer(key(t, seed))
	if err != nil {
		t.Fatalf("NewSealer() error = %v", err)
	}
	return s
}

func TestSealerRoundTrip(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name      string
		plaintext string
	}{
		{name: "empty", plaintext: ""},
		{name: "identity number", plaintext: "11010519491231002X"},
		{name: "card number", plaintext: "6228480402564890018"},
		{name: "Chinese name", plaintext: "张小明"},
		{name: "long", plaintext: strings.Repeat("湖北省武汉市", 1000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newSealer(t, 1)
			sealed, err := s.Seal(tt.plaintext, binding)
			if err != nil {
				t.Fatalf("Seal() error = %v", err)
			}
			if len(tt.plaintext) > 0 && bytes.Contains(sealed, []byte(tt.plaintext)) {
				t.Errorf("sealed value contains the plaintext")
			}
			// Version 1, the ID's length, "k1", nonce, ciphertext, tag.
			if want := 2 + 2 + 12 + len(tt.plaintext) + 16; len(sealed) != want {
				t.Errorf("len(sealed) = %d, want %d", len(sealed), want)
			}
			if !bytes.HasPrefix(sealed, []byte{1, 2, 'k', '1'}) {
				t.Errorf("sealed value starts % x, want the header 01 02 'k' '1'", sealed[:4])
			}
			got, err := s.Open(sealed, binding)
			if err != nil {
				t.Fatalf("Open() error = %v", err)
			}
			if got != tt.plaintext {
				t.Errorf("Open() = %q, want %q", got, tt.plaintext)
			}
			again, err := s.Seal(tt.plaintext, binding)
			if err != nil {
				t.Fatalf("Seal() error = %v", err)
			}
			if bytes.Equal(again, sealed) {
				t.Errorf("sealing twice gave identical bytes; nonce not random")
			}
		})
	}
}

// binding is the associated data the round-trip tests seal under.
var binding = pii.Binding("application.applications.bank_card_sealed", "0190a5d2-0000-7000-8000-000000000001")

func TestSealerOpenRejects(t *testing.T) {
	t.Parallel()

	const plaintext = "11010519491231002X"
	sealed, err := newSealer(t, 1).Seal(plaintext, binding)
	if err != nil {
		t.Fatalf("Seal() error = %v", err)
	}
	flip := func(i int) []byte {
		c := bytes.Clone(sealed)
		c[i] ^= 0x01
		return c
	}
	const hdr = 4 // 01 02 'k' '1'
	sameIDOtherSecret, err := pii.NewSealer(pii.Key{ID: "k1", Secret: testKey(t, 2)})
	if err != nil {
		t.Fatal(err)
	}
	// "k1" renamed "k3" in the header: k3 exists and holds k1's secret,
	// but the header is authenticated too.
	renamed := bytes.Clone(sealed)
	renamed[3] = '3'
	k1AsK3, err := pii.NewSealer(pii.Key{ID: "k3", Secret: testKey(t, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		sealer     *pii.Sealer
		ciphertext []byte
		binding    []byte
		wantErr    error
	}{
		{name: "flipped nonce byte", sealer: newSealer(t, 1), ciphertext: flip(hdr), wantErr: pii.ErrOpen},
		{name: "flipped ciphertext byte", sealer: newSealer(t, 1), ciphertext: flip(hdr + 12), wantErr: pii.ErrOpen},
		{name: "flipped tag byte", sealer: newSealer(t, 1), ciphertext: flip(len(sealed) - 1), wantErr: pii.ErrOpen},
		{name: "truncated", sealer: newSealer(t, 1), ciphertext: sealed[:len(sealed)-1], wantErr: pii.ErrOpen},
		{name: "extended", sealer: newSealer(t, 1), ciphertext: append(bytes.Clone(sealed), 0), wantErr: pii.ErrOpen},
		{name: "too short for nonce and tag", sealer: newSealer(t, 1), ciphertext: sealed[:hdr+27], wantErr: pii.ErrOpen},
		{name: "another row", sealer: newSealer(t, 1), ciphertext: sealed, binding: pii.Binding("application.applications.bank_card_sealed", "0190a5d2-0000-7000-8000-000000000002"), wantErr: pii.ErrOpen},
		{name: "another column", sealer: newSealer(t, 1), ciphertext: sealed, binding: pii.Binding("application.applications.account_name_sealed", "0190a5d2-0000-7000-8000-000000000001"), wantErr: pii.ErrOpen},
		{name: "no binding", sealer: newSealer(t, 1), ciphertext: sealed, binding: []byte{}, wantErr: pii.ErrOpen},
		{name: "same key ID, another secret", sealer: sameIDOtherSecret, ciphertext: sealed, wantErr: pii.ErrOpen},
		{name: "key ID in the header changed", sealer: k1AsK3, ciphertext: renamed, wantErr: pii.ErrOpen},
		{name: "unknown key ID", sealer: newSealer(t, 2), ciphertext: sealed, wantErr: pii.ErrUnknownKey},
		{name: "empty", sealer: newSealer(t, 1), ciphertext: nil, wantErr: pii.ErrSealFormat},
		{name: "unknown version", sealer: newSealer(t, 1), ciphertext: flip(0), wantErr: pii.ErrSealFormat},
		{name: "key ID longer than the value", sealer: newSealer(t, 1), ciphertext: []byte{1, 30, 'k'}, wantErr: pii.ErrSealFormat},
		{name: "empty key ID", sealer: newSealer(t, 1), ciphertext: append([]byte{1, 0}, sealed[hdr:]...), wantErr: pii.ErrSealFormat},
		{name: "headerless value of the old format", sealer: newSealer(t, 1), ciphertext: sealed[hdr:], wantErr: pii.ErrSealFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := binding
			if tt.binding != nil {
				b = tt.binding
			}
			got, err := tt.sealer.Open(tt.ciphertext, b)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Open() = %q, %v; want %v", got, err, tt.wantErr)
			}
			if got != "" || strings.Contains(err.Error(), plaintext) {
				t.Errorf("Open() leaked plaintext: %q, %v", got, err)
			}
		})
	}
}

func TestNewSealerKeySize(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		size    int
		wantErr error
	}{
		{name: "32 bytes", size: 32},
		{name: "empty", size: 0, wantErr: pii.ErrKeySize},
		{name: "AES-128 size", size: 16, wantErr: pii.ErrKeySize},
		{name: "AES-192 size", size: 24, wantErr: pii.ErrKeySize},
		{name: "33 bytes", size: 33, wantErr: pii.ErrKeySize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := pii.NewSealer(pii.Key{ID: "k", Secret: make([]byte, tt.size)})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("NewSealer(%d bytes) error = %v, want %v", tt.size, err, tt.wantErr)
			}
			if (s == nil) != (tt.wantErr != nil) {
				t.Errorf("NewSealer() = %v with error %v", s, err)
			}
		})
	}
}

func TestParseKey(t *testing.T) {
	t.Parallel()

	key := make([]byte, pii.KeySize)
	for i := range key {
		key[i] = byte(0xA0 + i)
	}
	hexKey := hex.EncodeToString(key)
	b64Key := base64.StdEncoding.EncodeToString(key)
	tests := []struct {
		name    string
		in      string
		wantErr error
	}{
		{name: "hex lower", in: hexKey},
		{name: "hex upper", in: strings.ToUpper(hexKey)},
		{name: "base64", in: b64Key},
		{name: "trailing newline", in: b64Key + "\n"},
		{name: "surrounding spaces", in: "  " + hexKey + " "},
		{name: "empty", in: "", wantErr: pii.ErrKeySize},
		{name: "short hex", in: hexKey[:62], wantErr: pii.ErrKeyEncoding},
		{name: "hex with bad character", in: "!!" + hexKey[2:], wantErr: pii.ErrKeyEncoding},
		{name: "64 non-hex characters read as base64", in: "zz" + hexKey[2:], wantErr: pii.ErrKeySize},
		{name: "base64 of 16 bytes", in: base64.StdEncoding.EncodeToString(key[:16]), wantErr: pii.ErrKeySize},
		{name: "base64 URL alphabet", in: base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xFB}, 32)), wantErr: pii.ErrKeyEncoding},
		{name: "base64 unpadded", in: base64.RawStdEncoding.EncodeToString(key), wantErr: pii.ErrKeyEncoding},
		{name: "passphrase", in: "correct horse battery staple", wantErr: pii.ErrKeyEncoding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := pii.ParseKey(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParseKey() error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if trimmed := strings.TrimSpace(tt.in); trimmed != "" && strings.Contains(err.Error(), trimmed) {
					t.Errorf("error %q leaks the key", err)
				}
				return
			}
			if !bytes.Equal(got, key) {
				t.Errorf("ParseKey() = %x, want %x", got, key)
			}
		})
	}
}

func TestHasher(t *testing.T) {
	t.Parallel()

	h1, err := pii.NewHasher(key(t, 1))
	if err != nil {
		t.Fatalf("NewHasher() error = %v", err)
	}
	h1Again, err := pii.NewHasher(pii.Key{ID: "another-id", Secret: testKey(t, 1)})
	if err != nil {
		t.Fatalf("NewHasher() error = %v", err)
	}
	h2, err := pii.NewHasher(key(t, 2))
	if err != nil {
		t.Fatalf("NewHasher() error = %v", err)
	}
	tests := []struct {
		name      string
		a, b      string
		hasherB   *pii.Hasher
		wantEqual bool
	}{
		{name: "same value", a: "11010519491231002X", b: "11010519491231002X", hasherB: h1, wantEqual: true},
		{name: "same key, new Hasher", a: "11010519491231002X", b: "11010519491231002X", hasherB: h1Again, wantEqual: true},
		{name: "lower-case x", a: "11010519491231002X", b: "11010519491231002x", hasherB: h1, wantEqual: true},
		{name: "surrounding white space", a: "11010519491231002X", b: " 11010519491231002X\t\n", hasherB: h1, wantEqual: true},
		{name: "different value", a: "11010519491231002X", b: "110105194912310029", hasherB: h1},
		{name: "inner space not removed", a: "6228 4804", b: "62284804", hasherB: h1},
		{name: "different key", a: "11010519491231002X", b: "11010519491231002X", hasherB: h2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ha, hb := h1.Hash(tt.a), tt.hasherB.Hash(tt.b)
			if (ha == hb) != tt.wantEqual {
				t.Errorf("Hash(%q) == Hash(%q) is %v, want %v", tt.a, tt.b, ha == hb, tt.wantEqual)
			}
			for _, h := range []string{ha, hb} {
				if _, err := hex.DecodeString(h); err != nil || len(h) != 64 || h != strings.ToLower(h) {
					t.Errorf("Hash() = %q, want 64 lower-case hex characters", h)
				}
			}
		})
	}
}

func TestHasherKnownAnswer(t *testing.T) {
	t.Parallel()

	// Computed independently: Python hmac.new(bytes(32), b"11010519491231002X", hashlib.sha256).
	h, err := pii.NewHasher(pii.Key{ID: "zero", Secret: make([]byte, 32)})
	if err != nil {
		t.Fatalf("NewHasher() error = %v", err)
	}
	const want = "51252b5b149fa5e29dae30a60a411d3675cf25f2b7e5d1ad65797b86094b63b7"
	if got := h.Hash("11010519491231002x"); got != want {
		t.Errorf("Hash() = %s, want %s", got, want)
	}
}

// Values beyond ASCII hash as their trimmed, upper-cased UTF-8 bytes, Han
// characters as they are.
func TestHasherKnownAnswerUnicode(t *testing.T) {
	t.Parallel()

	// Computed independently: Python hmac.new(bytes(32), v.strip().upper().encode(), hashlib.sha256).
	h, err := pii.NewHasher(pii.Key{ID: "zero", Secret: make([]byte, 32)})
	if err != nil {
		t.Fatalf("NewHasher() error = %v", err)
	}
	for _, c := range []struct{ in, want string }{
		{"name:学生12", "9c6e665737a035efbcd2fb213625cf2bcbf7c6f3dcc8e4a18698019d1b1bb676"},
		{"name:ｚｈａｎｇ李", "e1cf9723e48a69be4d83de06738c2fb7dfb40aa69badc3ba0216d56cf0068b26"},
		{"  abc中 ", "bf216403774950f0cceb0251a218fd72ca255ddf73a01d0a544ae8b9d63238bc"},
	} {
		if got := h.Hash(c.in); got != c.want {
			t.Errorf("Hash(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestHasherCopiesKey(t *testing.T) {
	t.Parallel()

	k := key(t, 1)
	h, err := pii.NewHasher(k)
	if err != nil {
		t.Fatalf("NewHasher() error = %v", err)
	}
	before := h.Hash("x")
	k.Secret[0] ^= 0xFF
	if after := h.Hash("x"); after != before {
		t.Errorf("changing the caller's key slice changed the hash")
	}
}

func TestNewHasherKeySize(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		size    int
		wantErr error
	}{
		{name: "32 bytes", size: 32},
		{name: "64 bytes", size: 64},
		{name: "empty", size: 0, wantErr: pii.ErrKeySize},
		{name: "31 bytes", size: 31, wantErr: pii.ErrKeySize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, err := pii.NewHasher(pii.Key{ID: "k", Secret: make([]byte, tt.size)})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("NewHasher(%d bytes) error = %v, want %v", tt.size, err, tt.wantErr)
			}
			if (h == nil) != (tt.wantErr != nil) {
				t.Errorf("NewHasher() = %v with error %v", h, err)
			}
		})
	}
}

func TestValidateCardNumber(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		in      string
		wantErr error
	}{
		{name: "Visa test number", in: "4111111111111111"},
		{name: "Mastercard test number", in: "5555555555554444"},
		{name: "UnionPay test number", in: "6212345678901232"},
		{name: "19 digits", in: "6228480402564890018"},
		{name: "check digit 0", in: pii.GenerateCardNumber("622848", 0, 16)},
		{name: "generated 17", in: pii.GenerateCardNumber("621700", 12345, 17)},
		{name: "generated 18", in: pii.GenerateCardNumber("621700", 12345, 18)},

		{name: "empty", in: "", wantErr: pii.ErrCardFormat},
		{name: "15 digits Luhn-valid", in: "378282246310005", wantErr: pii.ErrCardFormat},
		{name: "20 digits Luhn-valid", in: pii.GenerateCardNumber("6228", 1, 20), wantErr: pii.ErrCardFormat},
		{name: "spaces", in: "4111 1111 1111 1111", wantErr: pii.ErrCardFormat},
		{name: "dashes", in: "4111-1111-1111-11", wantErr: pii.ErrCardFormat},
		{name: "letter", in: "411111111111111A", wantErr: pii.ErrCardFormat},
		{name: "full-width digits", in: "４１１１１１１１１１１１１１１１", wantErr: pii.ErrCardFormat},
		{name: "last digit wrong", in: "4111111111111112", wantErr: pii.ErrCardChecksum},
		{name: "adjacent transposition", in: "4111111111111121", wantErr: pii.ErrCardChecksum},
		{name: "single digit changed", in: "6228480402564890028", wantErr: pii.ErrCardChecksum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := pii.ValidateCardNumber(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ValidateCardNumber(%q) error = %v, want %v", tt.in, err, tt.wantErr)
			}
			if err != nil && len(tt.in) >= 8 && strings.Contains(err.Error(), tt.in) {
				t.Errorf("error %q leaks the number", err)
			}
		})
	}
}

func TestGenerateCardNumber(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name   string
		prefix string
		body   int64
		length int
		want   string
	}{
		{name: "Visa test number", prefix: "411111", body: 111111111, length: 16, want: "4111111111111111"},
		{name: "zero-padded body", prefix: "622848", body: 7, length: 19, want: "6228480000000000075"},
		{name: "no prefix", prefix: "", body: 7992739871, length: 11, want: "79927398713"},
		{name: "body fills exactly", prefix: "6", body: 999999999999999, length: 17, want: "69999999999999999"},
		{name: "empty body", prefix: "411111111111111", body: 0, length: 16, want: "4111111111111111"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := pii.GenerateCardNumber(tt.prefix, tt.body, tt.length)
			if got != tt.want {
				t.Errorf("GenerateCardNumber() = %q, want %q", got, tt.want)
			}
			if tt.length >= 16 && tt.length <= 19 {
				if err := pii.ValidateCardNumber(got); err != nil {
					t.Errorf("ValidateCardNumber(GenerateCardNumber()) error = %v", err)
				}
			}
		})
	}
}

func TestGenerateCardNumberPanics(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name   string
		prefix string
		body   int64
		length int
	}{
		{name: "non-digit prefix", prefix: "62A8", body: 1, length: 16},
		{name: "negative body", prefix: "6228", body: -1, length: 16},
		{name: "body too long", prefix: "6228", body: 1_000_000_000_000, length: 16},
		{name: "prefix too long", prefix: "62284804025648900", body: 0, length: 16},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			defer func() {
				if recover() == nil {
					t.Errorf("GenerateCardNumber(%q, %d, %d) did not panic", tt.prefix, tt.body, tt.length)
				}
			}()
			pii.GenerateCardNumber(tt.prefix, tt.body, tt.length)
		})
	}
}
