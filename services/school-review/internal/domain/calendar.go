package domain

import (
	"slices"
	"time"

	"github.com/edubureau/studentaid/pkg/calendar"
)

// CalendarVersion is one version of a year's working calendar: the year as
// it then stood, who set it, when and why, and what changed from the
// version before.
type CalendarVersion struct {
	Year      calendar.Year
	Version   int64
	ChangedBy string
	Role      string
	Org       string
	ChangedAt time.Time
	Reason    string
	Changes   CalendarChanges
}

// CalendarChanges are the days a version added and removed, per kind. A day
// whose name changed is removed under its old name and added under the new.
type CalendarChanges struct {
	HolidaysAdded, HolidaysRemoved       []calendar.Day
	WorkingDaysAdded, WorkingDaysRemoved []calendar.Day
}

// Empty reports whether nothing changed.
func (c CalendarChanges) Empty() bool {
	return len(c.HolidaysAdded)+len(c.HolidaysRemoved)+len(c.WorkingDaysAdded)+len(c.WorkingDaysRemoved) == 0
}

// DiffCalendar returns what changes from before to after (before may be
// the zero Year: everything is added).
func DiffCalendar(before, after calendar.Year) CalendarChanges {
	var c CalendarChanges
	c.HolidaysAdded, c.HolidaysRemoved = diffDays(before.Holidays, after.Holidays)
	c.WorkingDaysAdded, c.WorkingDaysRemoved = diffDays(before.WorkingDays, after.WorkingDays)
	return c
}

func diffDays(before, after []calendar.Day) (added, removed []calendar.Day) {
	for _, d := range after {
		if !slices.Contains(before, d) {
			added = append(added, d)
		}
	}
	for _, d := range before {
		if !slices.Contains(after, d) {
			removed = append(removed, d)
		}
	}
	SortDays(added)
	SortDays(removed)
	return added, removed
}

// SortDays orders days by date.
func SortDays(days []calendar.Day) {
	slices.SortFunc(days, func(a, b calendar.Day) int { return a.Date.Compare(b.Date) })
}
