package review_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/edubureau/studentaid/pkg/review"
)

type state string

func TestTransitionError(t *testing.T) {
	var err error = &review.TransitionError[state]{ApplicationID: "a1", From: "PENDING", Action: "object"}
	if !errors.Is(err, review.ErrIllegalTransition) || err.Error() != "application a1 is PENDING; cannot object" {
		t.Fatalf("%v", err)
	}
}

func TestCheckReason(t *testing.T) {
	for _, tc := range []struct {
		reason   string
		required bool
		want     error
	}{
		{"", false, nil},
		{"学籍信息有误", true, nil},
		{" \t\u3000", true, review.ErrReasonRequired},
		{strings.Repeat("理", review.MaxReasonRunes), true, nil},
		{strings.Repeat("理", review.MaxReasonRunes+1), false, review.ErrReasonInvalid},
		{"bad\xff", false, review.ErrReasonInvalid},
	} {
		if err := review.CheckReason(tc.reason, tc.required); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("CheckReason(%q, %v) = %v, want %v", tc.reason, tc.required, err, tc.want)
		}
	}
}
