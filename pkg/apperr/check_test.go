package apperr_test

import (
	"strings"
	"testing"

	"github.com/edubureau/studentaid/pkg/apperr"
)

func TestCheckCode(t *testing.T) {
	for _, tc := range []struct {
		code, problem string
	}{
		{"", ""},
		{"S001", ""},
		{"中心校", ""},
		{strings.Repeat("S", apperr.MaxCodeLen), ""},
		{strings.Repeat("S", apperr.MaxCodeLen+1), "at most 64 bytes"},
		{"S\xff01", "valid UTF-8"},
		{"S0\n01", "control characters"},
	} {
		var v apperr.Violations
		v.CheckCode("school_code", tc.code)
		err := v.Err()
		if (err == nil) != (tc.problem == "") || (err != nil && !strings.Contains(err.Error(), tc.problem)) {
			t.Errorf("CheckCode(%q) = %v, want a problem %q", tc.code, err, tc.problem)
		}
	}
}
