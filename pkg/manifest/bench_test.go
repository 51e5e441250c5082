package manifest_test

import (
	"testing"

	"github.com/edubureau/studentaid/pkg/manifest"
)

// BenchmarkBuild50000 is finance's cost of signing a 50,000-item batch at
// confirmation: sort, 50 part digests, one signature.
func BenchmarkBuild50000(b *testing.B) {
	its := items(50000, 62500)
	batch := batchOf(its)
	s := signer(b, entry("fin-1", seed1))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := manifest.Build(batch, its, s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify50000 is payout's cost of verifying a 50,000-item
// manifest: the header's signature and every part against its digest.
func BenchmarkVerify50000(b *testing.B) {
	its := items(50000, 62500)
	h, parts, err := manifest.Build(batchOf(its), its, signer(b, entry("fin-1", seed1)))
	if err != nil {
		b.Fatal(err)
	}
	v := verifier(b, pubEntry("fin-1", seed1))
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify(h); err != nil {
			b.Fatal(err)
		}
		for i, p := range parts {
			if err := h.CheckPart(i, p); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkVerifyReissue is the signature check a reissued order costs.
func BenchmarkVerifyReissue(b *testing.B) {
	s := signer(b, entry("fin-1", seed1))
	v := verifier(b, pubEntry("fin-1", seed1))
	its := items(1, 62500)
	r := manifest.Reissue{BatchID: its[0].PaymentID, ApplicationID: its[0].ApplicationID, PaymentID: its[0].PaymentID, AmountFen: 62500, Attempt: 2}
	keyID, sig, err := s.SignReissue(r)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := v.VerifyReissue(r, keyID, sig); err != nil {
			b.Fatal(err)
		}
	}
}
