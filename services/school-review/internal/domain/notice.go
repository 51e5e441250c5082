package domain

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/edubureau/studentaid/pkg/calendar"
)

// Shanghai is China Standard Time, in which working days are counted
// (calendar.Shanghai).
var Shanghai = calendar.Shanghai

// Limits of a configured notice period.
const (
	MaxNoticeWorkingDays = 60
	MaxNoticeDuration    = 90 * 24 * time.Hour
)

// ErrInvalidNoticePeriod means a notice period could not be parsed or is out of range.
var ErrInvalidNoticePeriod = errors.New("invalid notice period")

// NoticePeriod is how long the public notice (公示) runs: a number of working
// days, or a fixed duration (for tests and drills). The zero value is not
// valid; use ParseNoticePeriod, WorkingDays or FixedNotice.
type NoticePeriod struct {
	workingDays int
	fixed       time.Duration
}

// DefaultNoticePeriod is five working days.
var DefaultNoticePeriod = WorkingDays(5)

// WorkingDays returns a notice of n working days.
func WorkingDays(n int) NoticePeriod { return NoticePeriod{workingDays: n} }

// FixedNotice returns a notice of exactly d.
func FixedNotice(d time.Duration) NoticePeriod { return NoticePeriod{fixed: d} }

// ParseNoticePeriod reads "<n>wd" (n working days, 1..60) or a positive Go
// duration such as "72h" or "1s" (at most 90 days).
func ParseNoticePeriod(s string) (NoticePeriod, error) {
	s = strings.TrimSpace(s)
	if n, ok := strings.CutSuffix(s, "wd"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 1 || days > MaxNoticeWorkingDays {
			return NoticePeriod{}, fmt.Errorf("%w: %q (want 1wd..%dwd)", ErrInvalidNoticePeriod, s, MaxNoticeWorkingDays)
		}
		return WorkingDays(days), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return NoticePeriod{}, fmt.Errorf("%w: %q (want e.g. 5wd or 72h)", ErrInvalidNoticePeriod, s)
	}
	if d <= 0 || d > MaxNoticeDuration {
		return NoticePeriod{}, fmt.Errorf("%w: %q (must be positive and at most %s)", ErrInvalidNoticePeriod, s, MaxNoticeDuration)
	}
	return FixedNotice(d), nil
}

// MinFixedNoticeSpansAWorkingDay is the shortest fixed notice that covers a
// whole working day whatever its start: one started on a Saturday must
// still run through Monday.
const MinFixedNoticeSpansAWorkingDay = 72 * time.Hour

// AtLeastOneWorkingDay reports whether every notice of this length spans at
// least one whole working day: n ≥ 1 working days, or a fixed duration of
// at least MinFixedNoticeSpansAWorkingDay. Production refuses shorter ones.
func (p NoticePeriod) AtLeastOneWorkingDay() bool {
	return p.workingDays >= 1 || p.fixed >= MinFixedNoticeSpansAWorkingDay
}

// EndsAt returns when a notice started at start ends, in UTC: n working
// days on cal (calendar.Calendar.AddWorkingDays: a start on a day off counts
// from the next working day's 00:00), or the fixed duration. missing lists
// the years the count passed through that cal has no data for, where it
// counted Monday to Friday; the caller reports them.
func (p NoticePeriod) EndsAt(start time.Time, cal *calendar.Calendar) (end time.Time, missing []int) {
	if p.workingDays > 0 {
		return cal.AddWorkingDays(start, p.workingDays)
	}
	return start.Add(p.fixed).UTC(), nil
}

// String returns the period as ParseNoticePeriod reads it.
func (p NoticePeriod) String() string {
	if p.workingDays > 0 {
		return strconv.Itoa(p.workingDays) + "wd"
	}
	return p.fixed.String()
}
