package calendar

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits of one year's calendar.
const (
	MinYear = 2000
	MaxYear = 2100
	// MaxHolidays is more than any year's notice has given (about 30 days
	// with the weekends inside the breaks) with room for local additions.
	MaxHolidays = 60
	// MaxWorkingDays is more than any year's swapped working days (6–8).
	MaxWorkingDays = 20
	// MaxNameRunes caps a holiday's name.
	MaxNameRunes = 64
	// LeadInDays is how far a year's calendar may reach back into December
	// of the year before: the New Year break of one year's notice can begin
	// there (2017's began on Saturday 31 December 2016; 2019's made
	// Saturday 29 December 2018 a working day and the 30th and 31st
	// holidays). Nothing else may lie outside the year.
	LeadInDays = 3
)

// Problem is one thing wrong with a year's calendar: the field it is in
// (holidays[2].date, working_days[0].date, year) and what to do about it.
type Problem struct {
	Field   string
	Message string
}

// ValidationError lists everything wrong with a year's calendar.
type ValidationError struct {
	Year     int
	Problems []Problem
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Field + ": " + p.Message
	}
	return fmt.Sprintf("calendar of %d: %s", e.Year, strings.Join(parts, "; "))
}

// FirstDay is the earliest date a year's calendar may list (LeadInDays
// before 1 January), LastDay the latest (31 December).
func FirstDay(year int) Date { return Date{year, time.January, 1}.AddDays(-LeadInDays) }

// LastDay is 31 December of year.
func LastDay(year int) Date { return Date{year, time.December, 31} }

// Validate checks a year's calendar and returns a *ValidationError naming
// every problem: a year outside MinYear..MaxYear; too many days; a date
// outside the year (before FirstDay or after LastDay); a holiday without a
// name; a swapped working day on a Monday to Friday; a day listed twice, or
// as both a holiday and a working day.
func (y Year) Validate() error {
	var p []Problem
	add := func(field, format string, args ...any) {
		p = append(p, Problem{field, fmt.Sprintf(format, args...)})
	}
	if y.Year < MinYear || y.Year > MaxYear {
		add("year", "%d is out of range: give a year from %d to %d", y.Year, MinYear, MaxYear)
		return &ValidationError{y.Year, p}
	}
	if len(y.Holidays) > MaxHolidays {
		add("holidays", "%d days is too many: a year has at most %d holiday days (list each day of each break once)", len(y.Holidays), MaxHolidays)
	}
	if len(y.WorkingDays) > MaxWorkingDays {
		add("working_days", "%d days is too many: a year has at most %d swapped working days", len(y.WorkingDays), MaxWorkingDays)
	}
	if len(p) > 0 {
		return &ValidationError{y.Year, p}
	}
	first, last := FirstDay(y.Year), LastDay(y.Year)
	seen := make(map[Date]string, len(y.Holidays)+len(y.WorkingDays))
	check := func(field string, d Day) {
		if d.Date.Compare(first) < 0 || d.Date.Compare(last) > 0 {
			add(field+".date", "%s is not in %d: list only that year's days (a New Year break may begin on %s); put it in the calendar of %d",
				d.Date, y.Year, first, d.Date.Year)
			return
		}
		if other, dup := seen[d.Date]; dup {
			add(field+".date", "%s is listed twice (also %s): a day is either a holiday or a swapped working day, once", d.Date, other)
			return
		}
		seen[d.Date] = field
		if !utf8.ValidString(d.Name) || utf8.RuneCountInString(d.Name) > MaxNameRunes {
			add(field+".name", "the name must be valid text of at most %d characters", MaxNameRunes)
		}
	}
	for i, d := range y.Holidays {
		field := fmt.Sprintf("holidays[%d]", i)
		check(field, d)
		if strings.TrimSpace(d.Name) == "" {
			add(field+".name", "name the holiday of %s, e.g. 国庆节", d.Date)
		}
	}
	for i, d := range y.WorkingDays {
		field := fmt.Sprintf("working_days[%d]", i)
		check(field, d)
		if !d.Date.Weekend() {
			add(field+".date", "%s is a %s: a swapped working day (调休) must be a Saturday or Sunday; Monday to Friday are working days already",
				d.Date, d.Date.Weekday())
		}
	}
	if len(p) > 0 {
		return &ValidationError{y.Year, p}
	}
	return nil
}
