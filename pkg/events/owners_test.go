package events_test

import (
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
	if got := events.TypePrefix("finance-confirmation"); got != "finance" {
		t.Errorf("TypePrefix(finance-confirmation) = %q, want finance", got)
	}
	if got := events.TypePrefix("banksim"); got != "" {
		t.Errorf("TypePrefix(banksim) = %q, want empty", got)
	}
}
