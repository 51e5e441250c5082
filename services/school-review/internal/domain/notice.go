package domain

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Shanghai is China Standard Time, in which working days are counted. China
// has kept UTC+8 all year since 1991, so a fixed zone equals Asia/Shanghai
// for every date the system handles and needs no tzdata on the host.
var Shanghai = time.FixedZone("CST", 8*60*60)

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

// EndsAt returns when a notice started at start ends, in UTC.
func (p NoticePeriod) EndsAt(start time.Time) time.Time {
	if p.workingDays > 0 {
		return AddWorkingDays(start, p.workingDays)
	}
	return start.Add(p.fixed).UTC()
}

// String returns the period as ParseNoticePeriod reads it.
func (p NoticePeriod) String() string {
	if p.workingDays > 0 {
		return strconv.Itoa(p.workingDays) + "wd"
	}
	return p.fixed.String()
}

// AddWorkingDays returns the moment n working days (Monday to Friday, in
// China Standard Time) after t, in UTC. A start on a Saturday or Sunday
// counts from the following Monday 00:00, so the notice always covers n whole
// working days: Friday 15:00 + 1 is Monday 15:00, Saturday 10:00 + 5 is the
// Monday after next, 00:00. Public holidays are not known to the system and
// count as working days.
func AddWorkingDays(t time.Time, n int) time.Time {
	local := t.In(Shanghai)
	if weekend(local) {
		y, m, d := local.Date()
		local = time.Date(y, m, d, 0, 0, 0, 0, Shanghai)
		for weekend(local) {
			local = local.AddDate(0, 0, 1)
		}
	}
	for added := 0; added < n; {
		local = local.AddDate(0, 0, 1)
		if !weekend(local) {
			added++
		}
	}
	return local.UTC()
}

func weekend(t time.Time) bool {
	wd := t.Weekday()
	return wd == time.Saturday || wd == time.Sunday
}
