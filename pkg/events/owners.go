package events

import (
	"slices"
	"strings"
)

// owners maps the first part of an event type ("finance" in
// "finance.payment_ordered.v1") to the one service that owns the types under
// it: only that service may publish them (NATS permissions,
// natsx.Identities) and a consumer accepts them only on their own subject
// (natsx.Consumer). This is the one declaration of who owns which event.
var owners = map[string]string{
	"application":  "application",
	"schoolreview": "school-review",
	"bureaureview": "bureau-review",
	"finance":      "finance-confirmation",
	"payout":       "payout",
	// The loan book: repayments and recoveries recorded against the loan
	// contracts payout opened with the bank.
	"loan":           "payout",
	"datacomparison": "data-comparison",
	// The working calendar the public notice counts on lives in
	// school-review; its events have a prefix of their own so that
	// the followers of "schoolreview.>" do not receive them.
	"calendar": "school-review",
}

// Owner returns the service that owns eventType, or "" when no service does.
func Owner(eventType string) string {
	prefix, rest, ok := strings.Cut(eventType, ".")
	if !ok || rest == "" {
		return ""
	}
	return owners[prefix]
}

// TypePrefixes returns the first parts of the types service owns, sorted
// (["finance"] for finance-confirmation, ["calendar", "schoolreview"] for
// school-review, ["loan", "payout"] for payout), or nil when it owns none.
func TypePrefixes(service string) []string {
	var out []string
	for prefix, owner := range owners {
		if owner == service {
			out = append(out, prefix)
		}
	}
	slices.Sort(out)
	return out
}

// Owners lists the services that own event types, each once, sorted.
func Owners() []string {
	out := make([]string, 0, len(owners))
	for _, s := range owners {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}
