package domain

import (
	"strings"
	"unicode/utf8"

	"github.com/edubureau/studentaid/pkg/auth"
)

// MaskName keeps the first character of a name and hides the rest behind
// one asterisk each: 张三丰 → 张**. A one-character name is hidden entirely.
func MaskName(name string) string {
	n := utf8.RuneCountInString(name)
	if n <= 1 {
		return strings.Repeat("*", max(n, 1))
	}
	first, _ := utf8.DecodeRuneInString(name)
	return string(first) + strings.Repeat("*", n-1)
}

// SeesFullIdentity reports whether a caller in role sees full ID numbers and
// names. Data officers and auditors read everything. A school's own aid
// officer, who submitted the number and answers queries about it, sees it
// when looking at one application (single), never in listings. Everyone
// else sees masked values.
func SeesFullIdentity(role auth.Role, single bool) bool {
	switch role {
	case auth.RoleDataOfficer, auth.RoleAuditor:
		return true
	case auth.RoleSchoolOfficer:
		return single
	default:
		return false
	}
}
