package ports

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/edubureau/studentaid/pkg/apperr"
)

// Page sizes.
const (
	defaultPageSize = 50
	maxPageSize     = 500
	maxTokenLen     = 512
	maxFilterLen    = 64
)

// checkUUID validates a UUID field and returns its canonical form.
func checkUUID(v *apperr.Violations, field, s string) string {
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

// checkText validates an optional short text field.
func checkText(v *apperr.Violations, field, s string, maxRunes int) {
	if !utf8.ValidString(s) {
		v.Add(field, "must be valid UTF-8")
		return
	}
	if utf8.RuneCountInString(s) > maxRunes {
		v.Add(field, "must be at most %d characters", maxRunes)
	}
}

// pageSize validates a requested page size; 0 means the default.
func pageSize(v *apperr.Violations, n int32) int {
	switch {
	case n == 0:
		return defaultPageSize
	case n < 1 || n > maxPageSize:
		v.Add("page_size", "must be between 1 and %d", maxPageSize)
		return 0
	}
	return int(n)
}

// encodeToken makes an opaque page token of a cursor.
func encodeToken(cursor any) string {
	b, err := json.Marshal(cursor)
	if err != nil {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeToken reads a page token into cursor; false (with a violation) when it is not one of ours.
func decodeToken(v *apperr.Violations, token string, cursor any) bool {
	if token == "" {
		return false
	}
	bad := func() bool { v.Add("page_token", "is not a page token returned by this method"); return false }
	if len(token) > maxTokenLen {
		return bad()
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return bad()
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(cursor); err != nil {
		return bad()
	}
	return true
}
