package catalog_test

import (
	"testing"

	"github.com/edubureau/studentaid/pkg/catalog"
)

func TestParseFlagKind(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want catalog.FlagKind
		ok   bool
	}{
		{"not_in_registry", catalog.FlagNotInRegistry, true},
		{"other_school_same_term", catalog.FlagOtherSchoolSameTerm, true},
		{"key_person_relative", catalog.FlagKeyPersonRelative, true},
		{"not_on_roster", catalog.FlagNotOnRoster, true},
		{"deceased", catalog.FlagDeceased, true},
		{"above_standard", catalog.FlagAboveStandard, true},
		{"age_stage_mismatch", catalog.FlagAgeStageMismatch, true},
		{"", "", false},
		{"DECEASED", "", false},
		{"key_person", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, ok := catalog.ParseFlagKind(tc.in)
			if ok != tc.ok || (ok && got != tc.want) {
				t.Fatalf("ParseFlagKind(%q) = %q, %t; want %q, %t", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
	if n := len(catalog.FlagKinds()); n != 7 {
		t.Errorf("%d flag kinds, want 7", n)
	}
}
