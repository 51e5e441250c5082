package apperr

import "github.com/google/uuid"

// CheckUUID validates a required UUID field and returns its canonical form,
// or "" after recording a violation.
func (v *Violations) CheckUUID(field, s string) string {
	if s == "" {
		v.Add(field, "is required")
		return ""
	}
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		v.Add(field, "must be a UUID such as 0190a6e2-7f3c-7d2e-9b1a-2f4c5d6e7f80")
		return ""
	}
	return id.String()
}
