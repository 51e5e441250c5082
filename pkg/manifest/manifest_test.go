package manifest_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/edubureau/studentaid/pkg/manifest"
)

// seed1 and seed2 are test signing keys (32 bytes each).
var (
	seed1 = []byte("test-finance-signing-key-one-001")
	seed2 = []byte("test-finance-signing-key-two-002")
)

func entry(id string, seed []byte) string { return id + ":" + base64.StdEncoding.EncodeToString(seed) }

func pubEntry(id string, seed []byte) string {
	pub, _ := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	return id + ":" + base64.StdEncoding.EncodeToString(pub)
}

func signer(t testing.TB, set string) *manifest.Signer {
	t.Helper()
	s, err := manifest.ParseSigningKeys(set)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func verifier(t testing.TB, set string) *manifest.Verifier {
	t.Helper()
	v, err := manifest.ParseVerifyKeys(set)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func items(n int, amount int64) []manifest.Item {
	out := make([]manifest.Item, n)
	for i := range out {
		out[i] = manifest.Item{ApplicationID: uuid.NewString(), PaymentID: uuid.NewString(), AmountFen: amount}
	}
	return out
}

func batchOf(its []manifest.Item) manifest.Batch {
	b := manifest.Batch{ID: uuid.NewString(), ProgramCode: "BOARDING_SUBSIDY", Term: "2017-autumn", FundingSource: "government", ControlCount: int64(len(its))}
	for _, it := range its {
		b.ControlSumFen += it.AmountFen
	}
	return b
}

// TestPartDigestIsTheDocumentedEncoding builds the canonical encoding of a
// part by hand, as docs/architecture.md describes it, and compares digests.
func TestPartDigestIsTheDocumentedEncoding(t *testing.T) {
	batch := "6f1c1b52-7d5e-4c1a-9a3e-0c2f4b9d8e71"
	a := manifest.Item{ApplicationID: "0a000000-0000-4000-8000-000000000001", PaymentID: "0b000000-0000-4000-8000-000000000002", AmountFen: 62500}
	b := manifest.Item{ApplicationID: "0c000000-0000-4000-8000-000000000003", AmountFen: 50000}
	var want bytes.Buffer
	want.WriteString("studentaid/finance/batch-manifest-part/v1\x00")
	u := uuid.MustParse(batch)
	want.Write(u[:])
	_ = binary.Write(&want, binary.BigEndian, uint32(3)) // part index
	_ = binary.Write(&want, binary.BigEndian, uint32(2)) // items
	u = uuid.MustParse(a.ApplicationID)
	want.Write(u[:])
	want.WriteByte(1)
	u = uuid.MustParse(a.PaymentID)
	want.Write(u[:])
	_ = binary.Write(&want, binary.BigEndian, int64(62500))
	u = uuid.MustParse(b.ApplicationID)
	want.Write(u[:])
	want.WriteByte(0)
	_ = binary.Write(&want, binary.BigEndian, int64(50000))
	sum := sha256.Sum256(want.Bytes())

	got, err := manifest.PartDigest(batch, 3, []manifest.Item{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, sum[:]) {
		t.Fatalf("digest %x, want %x", got, sum)
	}
	if _, err := manifest.PartDigest(batch, 3, []manifest.Item{b, a}); !errors.Is(err, manifest.ErrMalformed) {
		t.Errorf("items out of order: err %v, want ErrMalformed", err)
	}
	upper := a
	upper.ApplicationID = strings.ToUpper(a.ApplicationID)
	if _, err := manifest.PartDigest(batch, 3, []manifest.Item{upper}); !errors.Is(err, manifest.ErrMalformed) {
		t.Errorf("a UUID not in canonical form: err %v, want ErrMalformed", err)
	}
}

func TestBuildSignsAHeaderThatVerifiesAndPartsThatMatch(t *testing.T) {
	its := items(2500, 62500)
	b := batchOf(its)
	h, parts, err := manifest.Build(b, its, signer(t, entry("fin-2", seed2)+","+entry("fin-1", seed1)))
	if err != nil {
		t.Fatal(err)
	}
	if h.KeyID != "fin-2" || len(parts) != 3 || len(parts[2]) != 500 || len(h.PartDigests) != 3 {
		t.Fatalf("key %q, %d parts (last %d), %d digests; want fin-2, 3 parts of 1000, 1000, 500", h.KeyID, len(parts), len(parts[2]), len(h.PartDigests))
	}
	var all []manifest.Item
	for _, p := range parts {
		all = append(all, p...)
	}
	if !slices.IsSortedFunc(all, func(x, y manifest.Item) int { return strings.Compare(x.ApplicationID, y.ApplicationID) }) || len(all) != len(its) {
		t.Error("parts are not the items in ascending application ID order")
	}
	// During a rotation payout knows both keys.
	v := verifier(t, pubEntry("fin-1", seed1)+","+pubEntry("fin-2", seed2))
	if err := v.Verify(h); err != nil {
		t.Fatalf("Verify() = %v", err)
	}
	for i, p := range parts {
		if err := h.CheckPart(i, p); err != nil {
			t.Errorf("CheckPart(%d) = %v", i, err)
		}
	}
	if err := verifier(t, pubEntry("fin-1", seed1)).Verify(h); !errors.Is(err, manifest.ErrUnknownKey) {
		t.Errorf("a verifier without fin-2: err %v, want ErrUnknownKey", err)
	}
	if err := verifier(t, pubEntry("fin-2", seed1)).Verify(h); !errors.Is(err, manifest.ErrBadSignature) {
		t.Errorf("fin-2 naming another key: err %v, want ErrBadSignature", err)
	}

	if _, _, err := manifest.Build(manifest.Batch{ID: b.ID, ControlCount: b.ControlCount, ControlSumFen: b.ControlSumFen + 1}, its, signer(t, entry("fin-1", seed1))); !errors.Is(err, manifest.ErrMalformed) {
		t.Errorf("items that do not add up to the totals: err %v, want ErrMalformed", err)
	}
}

func TestEveryAlterationIsDetected(t *testing.T) {
	its := items(1500, 50000)
	b := batchOf(its)
	s := signer(t, entry("fin-1", seed1))
	v := verifier(t, pubEntry("fin-1", seed1))
	h, parts, err := manifest.Build(b, its, s)
	if err != nil {
		t.Fatal(err)
	}
	headers := []struct {
		name  string
		alter func(h *manifest.Header)
	}{
		{"batch", func(h *manifest.Header) { h.ID = uuid.NewString() }},
		{"program", func(h *manifest.Header) { h.ProgramCode = "OTHER" }},
		{"term", func(h *manifest.Header) { h.Term = "2018-spring" }},
		{"funding source", func(h *manifest.Header) { h.FundingSource = "local" }},
		{"control sum", func(h *manifest.Header) { h.ControlSumFen++ }},
		{"part digest", func(h *manifest.Header) { h.PartDigests[1] = bytes.Repeat([]byte{1}, 32) }},
		{"signature", func(h *manifest.Header) { h.Signature[0] ^= 1 }},
		{"key ID", func(h *manifest.Header) { h.KeyID = "fin-2" }},
	}
	for _, tt := range headers {
		t.Run("header "+tt.name, func(t *testing.T) {
			c := h
			c.PartDigests = slices.Clone(h.PartDigests)
			c.Signature = slices.Clone(h.Signature)
			tt.alter(&c)
			if err := v.Verify(c); err == nil {
				t.Fatal("an altered header verified")
			}
		})
	}
	// Changing the count changes the number of parts it implies.
	c := h
	c.ControlCount--
	if err := v.Verify(c); err == nil {
		t.Error("a header with another count verified")
	}

	partCases := []struct {
		name  string
		index int
		alter func(p []manifest.Item) []manifest.Item
	}{
		{"amount", 0, func(p []manifest.Item) []manifest.Item { p[7].AmountFen++; return p }},
		{"application", 0, func(p []manifest.Item) []manifest.Item {
			p[0].ApplicationID = "00000000-0000-4000-8000-000000000000"
			return p
		}},
		{"payment ID", 1, func(p []manifest.Item) []manifest.Item { p[3].PaymentID = uuid.NewString(); return p }},
		{"an item dropped", 1, func(p []manifest.Item) []manifest.Item { return p[1:] }},
		{"under another index", 1, func(p []manifest.Item) []manifest.Item { return slices.Clone(parts[0][:500]) }},
	}
	for _, tt := range partCases {
		t.Run("part "+tt.name, func(t *testing.T) {
			p := tt.alter(slices.Clone(parts[tt.index]))
			if err := h.CheckPart(tt.index, p); err == nil {
				t.Fatal("an altered part matched")
			}
		})
	}
	if err := h.CheckPart(2, parts[0][:500]); !errors.Is(err, manifest.ErrPartMismatch) {
		t.Errorf("a part beyond the last: err %v", err)
	}
}

func TestReissueSignatureBindsEveryField(t *testing.T) {
	s := signer(t, entry("fin-1", seed1))
	v := verifier(t, pubEntry("fin-1", seed1))
	r := manifest.Reissue{BatchID: uuid.NewString(), ApplicationID: uuid.NewString(), PaymentID: uuid.NewString(), AmountFen: 62500, Attempt: 2}
	keyID, sig, err := s.SignReissue(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.VerifyReissue(r, keyID, sig); err != nil {
		t.Fatalf("VerifyReissue() = %v", err)
	}
	for name, alter := range map[string]func(r *manifest.Reissue){
		"batch":       func(r *manifest.Reissue) { r.BatchID = uuid.NewString() },
		"application": func(r *manifest.Reissue) { r.ApplicationID = uuid.NewString() },
		"payment":     func(r *manifest.Reissue) { r.PaymentID = uuid.NewString() },
		"amount":      func(r *manifest.Reissue) { r.AmountFen++ },
		"attempt":     func(r *manifest.Reissue) { r.Attempt++ },
	} {
		c := r
		alter(&c)
		if err := v.VerifyReissue(c, keyID, sig); !errors.Is(err, manifest.ErrBadSignature) {
			t.Errorf("%s altered: err %v, want ErrBadSignature", name, err)
		}
	}
	if err := v.VerifyReissue(r, "", nil); !errors.Is(err, manifest.ErrUnknownKey) {
		t.Errorf("unsigned: err %v, want ErrUnknownKey", err)
	}
}

func TestKeySetsRefuseMalformedEntriesWithoutEchoingThem(t *testing.T) {
	secret := base64.StdEncoding.EncodeToString([]byte("too-short-secret"))
	for _, set := range []string{"", "nokey", "k:" + secret, "k:" + base64.StdEncoding.EncodeToString(seed1) + ",k:" + base64.StdEncoding.EncodeToString(seed2), ":" + secret} {
		_, err := manifest.ParseSigningKeys(set)
		if err == nil {
			t.Errorf("ParseSigningKeys(%q) accepted", set)
			continue
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), base64.StdEncoding.EncodeToString(seed1)) {
			t.Errorf("error %q contains key material", err)
		}
	}
	if got := signer(t, entry("fin-1", seed1)).Public(); got != pubEntry("fin-1", seed1) {
		t.Errorf("Public() = %q, want %q", got, pubEntry("fin-1", seed1))
	}
}

func TestANilVerifierKnowsNoKey(t *testing.T) {
	its := items(3, 100)
	h, _, err := manifest.Build(batchOf(its), its, signer(t, entry("fin-1", seed1)))
	if err != nil {
		t.Fatal(err)
	}
	var v *manifest.Verifier
	if err := v.Verify(h); !errors.Is(err, manifest.ErrUnknownKey) {
		t.Errorf("nil Verifier: err %v, want ErrUnknownKey", err)
	}
}
