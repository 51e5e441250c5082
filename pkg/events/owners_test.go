package events_test

import (
	"slices"
	"testing"

	"github.com/edubureau/studentaid/pkg/events"
)

func TestOwner(t *testing.T) {
	tests := []struct {
		name, eventType, want string
	}{
		{"finance order", events.TypePaymentOrdered, "finance-confirmation"},
		{"submission", events.TypeApplicationSubmitted, "application"},
		{"school review", events.TypeSchoolReviewApproved, "school-review"},
		{"bureau review", events.TypeBureauApproved, "bureau-review"},
		{"payout result", events.TypePaymentSucceeded, "payout"},
		{"data office", events.TypeClueRaised, "data-comparison"},
		{"working calendar", events.TypeCalendarChanged, "school-review"},
		{"loan book", events.TypeLoanRepaymentRecorded, "payout"},
		{"unknown prefix", "bank.payment_ordered.v1", ""},
		{"no dot", "finance", ""},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := events.Owner(tt.eventType); got != tt.want {
				t.Errorf("Owner(%q) = %q, want %q", tt.eventType, got, tt.want)
			}
		})
	}
	if got := events.TypePrefixes("finance-confirmation"); !slices.Equal(got, []string{"finance"}) {
		t.Errorf("TypePrefixes(finance-confirmation) = %q, want [finance]", got)
	}
	if got := events.TypePrefixes("school-review"); !slices.Equal(got, []string{"calendar", "schoolreview"}) {
		t.Errorf("TypePrefixes(school-review) = %q, want [calendar schoolreview]", got)
	}
	if got := events.TypePrefixes("payout"); !slices.Equal(got, []string{"loan", "payout"}) {
		t.Errorf("TypePrefixes(payout) = %q, want [loan payout]", got)
	}
	if got := events.TypePrefixes("banksim"); got != nil {
		t.Errorf("TypePrefixes(banksim) = %q, want none", got)
	}
	if got := events.Owners(); !slices.Equal(got, []string{"application", "bureau-review", "data-comparison", "finance-confirmation", "payout", "school-review"}) {
		t.Errorf("Owners() = %q, each service once", got)
	}
}
