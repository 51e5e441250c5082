// Package page validates page sizes and makes opaque, validated page tokens
// for keyset pagination.
package page

import (
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/edubureau/studentaid/pkg/apperr"
)

// Limits of every listing.
const (
	DefaultSize = 50
	MaxSize     = 500
	maxTokenLen = 512
)

// Size validates a requested page size; 0 means DefaultSize.
func Size(v *apperr.Violations, n int32) int {
	switch {
	case n == 0:
		return DefaultSize
	case n < 1 || n > MaxSize:
		v.Addf("page_size", "must be between 1 and %d", MaxSize)
		return 0
	}
	return int(n)
}

// Encode makes an opaque page token of a keyset cursor.
func Encode(cursor any) string {
	b, err := json.Marshal(cursor)
	if err != nil {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// Decode reads token into cursor. It reports false for an empty token, and
// false with a violation for one this service did not make.
func Decode(v *apperr.Violations, token string, cursor any) bool {
	if token == "" {
		return false
	}
	bad := func() bool { v.Addf("page_token", "is not a page token returned by this method"); return false }
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

// Trim takes the rows of a query that asked for limit+1 (one more than the
// page, to learn whether another page follows) and returns the page and
// whether there are more.
func Trim[T any](rows []T, limit int) ([]T, bool) {
	if len(rows) > limit {
		return rows[:limit], true
	}
	return rows, false
}
