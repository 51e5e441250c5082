// Package review holds the rules the school's review and the bureau's review
// share: how long and how well-formed a reason must be, and the error a
// refused state transition carries. Each service keeps its own states and
// transitions in its domain package.
package review

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// MaxReasonRunes caps reasons (rejections, objections).
const MaxReasonRunes = 500

// Errors of the shared rules. Compare with errors.Is.
var (
	// ErrIllegalTransition means the item's state does not allow the action.
	ErrIllegalTransition = errors.New("illegal review transition")
	// ErrReasonRequired means a rejection or objection has no reason.
	ErrReasonRequired = errors.New("reason required")
	// ErrReasonInvalid means a reason is too long or not valid UTF-8.
	ErrReasonInvalid = errors.New("invalid reason")
)

// CheckReason validates a reason: at most MaxReasonRunes runes of valid
// UTF-8, and not blank (spaces, including the ideographic space) when
// required.
func CheckReason(reason string, required bool) error {
	if !utf8.ValidString(reason) {
		return fmt.Errorf("%w: not valid UTF-8", ErrReasonInvalid)
	}
	if n := utf8.RuneCountInString(reason); n > MaxReasonRunes {
		return fmt.Errorf("%w: %d characters, at most %d allowed", ErrReasonInvalid, n, MaxReasonRunes)
	}
	if required && blank(reason) {
		return ErrReasonRequired
	}
	return nil
}

func blank(s string) bool {
	for _, r := range s {
		if r != ' ' && r != '\t' && r != '\n' && r != '\r' && r != '\u3000' {
			return false
		}
	}
	return true
}

// TransitionError says which action an item's state refused; S is the
// service's state type.
type TransitionError[S ~string] struct {
	ApplicationID string
	From          S
	Action        string
}

// Error names the application, its state and the refused action.
func (e *TransitionError[S]) Error() string {
	return fmt.Sprintf("application %s is %s; cannot %s", e.ApplicationID, e.From, e.Action)
}

// Unwrap makes TransitionError match ErrIllegalTransition.
func (e *TransitionError[S]) Unwrap() error { return ErrIllegalTransition }
