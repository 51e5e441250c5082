// Package calendar is China's working calendar: per year, the public
// holidays (法定节假日) and the weekend days that are working days instead
// (调休), as the State Council's annual notice (国务院办公厅关于…部分节假日
// 安排的通知) sets them, in China Standard Time. A day is a working day when
// it is a swapped working day, or a Monday to Friday that is not a holiday.
//
// The years the system starts with are embedded (data/<year>.json, Seed);
// the school-review service keeps the calendar in its schema, where the
// bureau edits it. A year without data counts Monday to Friday, and every
// count says which years it had to guess (Calendar.AddWorkingDays).
package calendar

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// Shanghai is China Standard Time, in which working days are counted. China
// has kept UTC+8 all year since 1991, so a fixed zone equals Asia/Shanghai
// for every date the system handles and needs no tzdata on the host.
var Shanghai = time.FixedZone("CST", 8*60*60)

// Date is a calendar day, without time or zone.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// DateLayout is how dates are written: YYYY-MM-DD.
const DateLayout = "2006-01-02"

// DateOf returns the day t falls on in China Standard Time.
func DateOf(t time.Time) Date {
	y, m, d := t.In(Shanghai).Date()
	return Date{y, m, d}
}

// ParseDate reads a YYYY-MM-DD date; anything else (2017-9-30, 2017-02-30)
// is an error.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(DateLayout, s)
	if err != nil {
		return Date{}, fmt.Errorf("%q is not a date: write it as YYYY-MM-DD, e.g. 2017-10-01", s)
	}
	y, m, d := t.Date()
	return Date{y, m, d}, nil
}

// String writes d as YYYY-MM-DD.
func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day) }

// Start is the first moment of d in China Standard Time.
func (d Date) Start() time.Time { return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, Shanghai) }

// AddDays returns the day n days after d.
func (d Date) AddDays(n int) Date { return DateOf(d.Start().AddDate(0, 0, n)) }

// Weekday is d's day of the week.
func (d Date) Weekday() time.Weekday { return d.Start().Weekday() }

// Weekend reports whether d is a Saturday or Sunday.
func (d Date) Weekend() bool {
	wd := d.Weekday()
	return wd == time.Saturday || wd == time.Sunday
}

// Compare orders dates: -1 when d is before o, 0 when equal, +1 after.
func (d Date) Compare(o Date) int {
	if c := cmp.Compare(d.Year, o.Year); c != 0 {
		return c
	}
	if c := cmp.Compare(d.Month, o.Month); c != 0 {
		return c
	}
	return cmp.Compare(d.Day, o.Day)
}

// Day is one listed day of a year: a holiday, or a swapped working day, with
// the holiday it belongs to.
type Day struct {
	Date Date
	Name string
}

// Year is one year's calendar: its holidays and swapped working days.
type Year struct {
	Year int
	// Source names where it comes from (the State Council's notice).
	Source      string
	Holidays    []Day
	WorkingDays []Day
}

type kind uint8

const (
	holiday kind = iota + 1
	workingDay
)

// Calendar answers whether a day is a working day. It is immutable; the
// nil *Calendar knows no year and counts Monday to Friday.
type Calendar struct {
	years map[int]bool
	days  map[Date]kind
}

// New returns the calendar of years, each of which must be valid
// (Year.Validate). A New Year holiday listed by a year's file in the last
// days of the year before counts as listed, whatever that earlier year
// says: the later notice is the one about that break.
func New(years ...Year) (*Calendar, error) {
	sorted := slices.Clone(years)
	slices.SortFunc(sorted, func(a, b Year) int { return cmp.Compare(a.Year, b.Year) })
	c := &Calendar{years: make(map[int]bool, len(years)), days: make(map[Date]kind)}
	for _, y := range sorted {
		if c.years[y.Year] {
			return nil, fmt.Errorf("calendar: year %d given twice", y.Year)
		}
		if err := y.Validate(); err != nil {
			return nil, err
		}
		c.years[y.Year] = true
		for _, d := range y.Holidays {
			c.days[d.Date] = holiday
		}
		for _, d := range y.WorkingDays {
			c.days[d.Date] = workingDay
		}
	}
	return c, nil
}

// Has reports whether the calendar has data for year.
func (c *Calendar) Has(year int) bool { return c != nil && c.years[year] }

// Years lists the years the calendar has data for, in order.
func (c *Calendar) Years() []int {
	if c == nil {
		return nil
	}
	out := make([]int, 0, len(c.years))
	for y := range c.years {
		out = append(out, y)
	}
	slices.Sort(out)
	return out
}

// IsWorkingDay reports whether d is a working day, and whether the calendar
// knew: known is false when d is not listed and its year has no data, and
// the answer is then Monday to Friday.
func (c *Calendar) IsWorkingDay(d Date) (working, known bool) {
	if c != nil {
		switch c.days[d] {
		case holiday:
			return false, true
		case workingDay:
			return true, true
		}
		if c.years[d.Year] {
			return !d.Weekend(), true
		}
	}
	return !d.Weekend(), false
}

// AddWorkingDays returns the moment n working days after t, in UTC, and
// the years (in order) the count passed through without data, counted
// Monday to Friday. A start on a day that is not a working day counts from
// the next working day's 00:00, so the result always covers n whole working
// days: a working day at 15:00 + 1 is the next working day at 15:00; a
// Saturday at 10:00 + 5 is the fifth working day after the next working
// day, at 00:00.
func (c *Calendar) AddWorkingDays(t time.Time, n int) (time.Time, []int) {
	var missing []int
	working := func(d Date) bool {
		w, known := c.IsWorkingDay(d)
		if !known && !slices.Contains(missing, d.Year) {
			missing = append(missing, d.Year)
		}
		return w
	}
	local := t.In(Shanghai)
	day := DateOf(local)
	if !working(day) {
		for !working(day) {
			day = day.AddDays(1)
		}
		local = day.Start()
	}
	for added := 0; added < n; {
		local = local.AddDate(0, 0, 1)
		if working(DateOf(local)) {
			added++
		}
	}
	slices.Sort(missing)
	return local.UTC(), missing
}

// CountWorkingDays returns how many working days there are from from up to
// but not including to (0 when to is not after from), and the years without
// data it counted Monday to Friday.
func (c *Calendar) CountWorkingDays(from, to Date) (int, []int) {
	var missing []int
	n := 0
	for d := from; d.Compare(to) < 0; d = d.AddDays(1) {
		w, known := c.IsWorkingDay(d)
		if !known && !slices.Contains(missing, d.Year) {
			missing = append(missing, d.Year)
		}
		if w {
			n++
		}
	}
	slices.Sort(missing)
	return n, missing
}
