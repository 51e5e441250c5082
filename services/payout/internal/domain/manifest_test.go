package domain

import (
	"errors"
	"testing"
)

func TestOrderCheckAgainstItsManifest(t *testing.T) {
	first := Order{PaymentID: "p1", ApplicationID: "a1", BatchID: "b1", AmountFen: 62500, Attempt: 1}
	reissue := first
	reissue.PaymentID, reissue.Attempt = "p2", 2
	first.ProgramCode, first.Term = "BOARDING_SUBSIDY", "2017-autumn"
	reissue.ProgramCode, reissue.Term = first.ProgramCode, first.Term
	listed := ManifestEntry{Verified: true, Listed: true, PaymentID: "p1", AmountFen: 62500, ProgramCode: "BOARDING_SUBSIDY", Term: "2017-autumn"}
	with := func(o Order, f func(o *Order)) Order { f(&o); return o }
	tests := []struct {
		name   string
		order  Order
		entry  ManifestEntry
		reason string // "" proven; "not yet" waits
	}{
		{"first order as listed", first, listed, ""},
		{"reissue of a listed item under a new payment ID", reissue, listed, ""},
		{"manifest listing no payment ID", first, ManifestEntry{Verified: true, Listed: true, AmountFen: 62500, ProgramCode: "BOARDING_SUBSIDY", Term: "2017-autumn"}, ""},
		{"another program", with(first, func(o *Order) { o.ProgramCode = "PRESCHOOL_AID" }), listed, RefusedBatchKeys},
		{"another term", with(first, func(o *Order) { o.Term = "2018-spring" }), listed, RefusedBatchKeys},
		{"manifest not verified", first, ManifestEntry{Listed: true, PaymentID: "p1", AmountFen: 62500}, "not yet"},
		{"no manifest at all", first, ManifestEntry{}, "not yet"},
		{"not listed", first, ManifestEntry{Verified: true}, RefusedNotInManifest},
		{"one fen more", with(first, func(o *Order) { o.AmountFen = 62501 }), listed, RefusedAmount},
		{"one fen less", with(first, func(o *Order) { o.AmountFen = 62499 }), listed, RefusedAmount},
		{"reissue for more", with(reissue, func(o *Order) { o.AmountFen = 99999 }), listed, RefusedAmount},
		{"first order under another payment ID", with(first, func(o *Order) { o.PaymentID = "p9" }), listed, RefusedPaymentID},
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
