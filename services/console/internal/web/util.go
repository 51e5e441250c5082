package web

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	commonv1 "github.com/edubureau/studentaid/proto/gen/aid/common/v1"
)

func urlEscape(s string) string { return url.QueryEscape(s) }

// yuan renders fen as yuan with two decimals and thousands separators.
func yuan(fen int64) string {
	sign := ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	whole := strconv.FormatInt(fen/100, 10)
	var b strings.Builder
	for i, c := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return fmt.Sprintf("%s%s.%02d", sign, b.String(), fen%100)
}

// wanYuan renders fen as 万元 with four decimals (exact to the yuan).
func wanYuan(fen int64) string {
	sign := ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	y := fen / 100
	return fmt.Sprintf("%s%d.%04d", sign, y/10000, y%10000)
}

func statusLabel(s commonv1.ApplicationStatus) string {
	return strings.TrimPrefix(s.String(), "APPLICATION_STATUS_")
}

// stateKey is the words key of a batch, item, clue or refund status
// (BATCH_STATUS_CLOSED → state.CLOSED).
func stateKey(s fmt.Stringer) string {
	v := s.String()
	if i := strings.Index(v, "_STATUS_"); i >= 0 {
		v = v[i+len("_STATUS_"):]
	}
	return "state." + v
}
