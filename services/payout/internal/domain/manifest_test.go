package domain

import (
	"errors"
	"testing"
)

func TestOrderCheckAgainstItsManifest(t *testing.T) {
	first := Order{PaymentID: "p1", ApplicationID: "a1", BatchID: "b1", AmountFen: 62500, Attempt: 1}
	reissue := first
	reissue.PaymentID, reissue.Attempt = "p2", 2
	listed := ManifestEntry{Verified: true, Listed: true, PaymentID: "p1", AmountFen: 62500}
	tests := []struct {
		name   string
		order  Order
		entry  ManifestEntry
		reason string // "" proven; "not yet" waits
	}{
		{"first order as listed", first, listed, ""},
		{"reissue of a listed item under a new payment ID", reissue, listed, ""},
		{"manifest listing no payment ID", first, ManifestEntry{Verified: true, Listed: true, AmountFen: 62500}, ""},
		{"manifest not verified", first, ManifestEntry{Listed: true, PaymentID: "p1", AmountFen: 62500}, "not yet"},
		{"no manifest at all", first, ManifestEntry{}, "not yet"},
		{"not listed", first, ManifestEntry{Verified: true}, RefusedNotInManifest},
		{"one fen more", Order{PaymentID: "p1", ApplicationID: "a1", BatchID: "b1", AmountFen: 62501, Attempt: 1}, listed, RefusedAmount},
		{"one fen less", Order{PaymentID: "p1", ApplicationID: "a1", BatchID: "b1", AmountFen: 62499, Attempt: 1}, listed, RefusedAmount},
		{"reissue for more", Order{PaymentID: "p2", ApplicationID: "a1", BatchID: "b1", AmountFen: 99999, Attempt: 2}, listed, RefusedAmount},
		{"first order under another payment ID", Order{PaymentID: "p9", ApplicationID: "a1", BatchID: "b1", AmountFen: 62500, Attempt: 1}, listed, RefusedPaymentID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.order.CheckAgainst(tt.entry)
			switch tt.reason {
			case "":
				if err != nil {
					t.Fatalf("CheckAgainst() = %v, want proven", err)
				}
			case "not yet":
				if !errors.Is(err, ErrManifestNotYet) || errors.Is(err, ErrRefused) {
					t.Fatalf("CheckAgainst() = %v, want ErrManifestNotYet", err)
				}
			default:
				refused, ok := errors.AsType[*RefusedError](err)
				if !ok || refused.Reason != tt.reason || !errors.Is(err, ErrRefused) {
					t.Fatalf("CheckAgainst() = %v, want a refusal %q", err, tt.reason)
				}
			}
		})
	}
}
