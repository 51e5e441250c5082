package apperr

import (
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
)

// MaxCodeLen bounds codes given as filters (school and program codes).
const MaxCodeLen = 64

// CheckUUID validates a required UUID field and returns its canonical form,
// or "" after recording a violation.
func (v *Violations) CheckUUID(field, s string) string {
	if s == "" {
		v.Addf(field, "is required")
		return ""
	}
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		v.Addf(field, "must be a UUID such as 0190a6e2-7f3c-7d2e-9b1a-2f4c5d6e7f80")
		return ""
	}
	return id.String()
}

// CheckCode validates an optional code filter (a school or program code):
// UTF-8 of at most MaxCodeLen bytes, without control characters.
func (v *Violations) CheckCode(field, s string) {
	if s == "" {
		return
	}
	if !utf8.ValidString(s) || len(s) > MaxCodeLen {
		v.Addf(field, "must be valid UTF-8 of at most %d bytes", MaxCodeLen)
		return
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		v.Addf(field, "must not contain control characters")
	}
}
