package manifest

import (
	"fmt"

	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
)

// HeaderProto is h as it travels in finance.batch_confirmed.
func HeaderProto(h Header) *eventsv1.BatchManifestHeader {
	return &eventsv1.BatchManifestHeader{
		Version: Version, KeyId: h.KeyID, PartSize: int32(h.PartSize), //nolint:gosec // G115: PartSize is this package's constant
		PartDigests: h.PartDigests, Signature: h.Signature,
	}
}

// HeaderOf reads the manifest header of a finance.batch_confirmed event. It
// does not verify it (Verifier.Verify does).
func HeaderOf(ev *eventsv1.Event) (Header, error) {
	b := ev.GetBatchConfirmed()
	m := b.GetManifest()
	if b == nil || m == nil {
		return Header{}, fmt.Errorf("%w: batch %s confirmed without a manifest", ErrMalformed, ev.GetBatchId())
	}
	if m.GetVersion() != Version {
		return Header{}, fmt.Errorf("%w: manifest version %d of batch %s, want %d", ErrMalformed, m.GetVersion(), ev.GetBatchId(), Version)
	}
	return Header{
		Batch: Batch{
			ID: ev.GetBatchId(), ProgramCode: ev.GetProgramCode(), Term: ev.GetTerm(),
			FundingSource: b.GetFundingSource(), ControlCount: b.GetControlCount(), ControlSumFen: b.GetControlSumFen(),
		},
		KeyID: m.GetKeyId(), PartSize: int(m.GetPartSize()), PartDigests: m.GetPartDigests(), Signature: m.GetSignature(),
	}, nil
}

// PartProto is part index of a manifest as it travels in
// finance.batch_manifest_part.
func PartProto(index int, items []Item) *eventsv1.BatchManifestPart {
	p := &eventsv1.BatchManifestPart{PartIndex: int32(index), Items: make([]*eventsv1.ManifestItem, len(items))} //nolint:gosec // G115: at most PartCount parts
	for i, it := range items {
		p.Items[i] = &eventsv1.ManifestItem{ApplicationId: it.ApplicationID, PaymentId: it.PaymentID, AmountFen: it.AmountFen}
	}
	return p
}

// PartOf reads a finance.batch_manifest_part event's part index and items.
func PartOf(ev *eventsv1.Event) (int, []Item, error) {
	p := ev.GetBatchManifestPart()
	if p == nil {
		return 0, nil, fmt.Errorf("%w: %s is not a manifest part", ErrMalformed, ev.GetType())
	}
	items := make([]Item, len(p.GetItems()))
	for i, it := range p.GetItems() {
		items[i] = Item{ApplicationID: it.GetApplicationId(), PaymentID: it.GetPaymentId(), AmountFen: it.GetAmountFen()}
	}
	return int(p.GetPartIndex()), items, nil
}
