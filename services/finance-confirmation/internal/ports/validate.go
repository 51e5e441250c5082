package ports

import (
	"unicode/utf8"

	"github.com/edubureau/studentaid/pkg/apperr"
)

// Input limits.
const (
	maxFilterLen = 64
)

// checkText validates an optional short text field.
func checkText(v *apperr.Violations, field, s string, maxRunes int) {
	if !utf8.ValidString(s) {
		v.Addf(field, "must be valid UTF-8")
		return
	}
	if utf8.RuneCountInString(s) > maxRunes {
		v.Addf(field, "must be at most %d characters", maxRunes)
	}
}
