package app

import (
	"testing"

	"github.com/edubureau/studentaid/services/data-comparison/internal/domain"
)

// TestRuleReasons checks that every rule error of the domain is refused
// under the catalog reason of its own name (the name the audit log and
// earlier answers used).
func TestRuleReasons(t *testing.T) {
	t.Parallel()
	if len(ruleReasons) != len(domain.Rules) {
		t.Fatalf("%d rule reasons for %d domain rules", len(ruleReasons), len(domain.Rules))
	}
	for _, rule := range domain.Rules {
		found := false
		for _, r := range ruleReasons {
			if r.err == rule { //nolint:errorlint // comparing the sentinels themselves
				found = true
				if string(r.reason) != rule.Error() {
					t.Errorf("rule %q refused as %q", rule.Error(), r.reason)
				}
			}
		}
		if !found {
			t.Errorf("rule %q has no catalog reason", rule.Error())
		}
	}
}
