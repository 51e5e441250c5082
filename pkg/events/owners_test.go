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
	if got := events.TypePrefixes("banksim"); got != nil {
		t.Errorf("TypePrefixes(banksim) = %q, want none", got)
	}
	if got := events.Owners(); len(got) != 6 || slices.Index(got, "school-review") < 0 {
		t.Errorf("Owners() = %q, want the six services once each", got)
	}
}
