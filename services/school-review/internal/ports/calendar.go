package ports

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/calendar"
	"github.com/edubureau/studentaid/pkg/grpcx"
	schoolreviewv1 "github.com/edubureau/studentaid/proto/gen/aid/schoolreview/v1"
	"github.com/edubureau/studentaid/services/school-review/internal/app"
	"github.com/edubureau/studentaid/services/school-review/internal/domain"
)

// GetWorkingCalendar returns a year's working calendar and its history.
func (s *Server) GetWorkingCalendar(ctx context.Context, req *schoolreviewv1.GetWorkingCalendarRequest) (*schoolreviewv1.WorkingCalendar, error) {
	var v apperr.Violations
	year := int(req.GetYear())
	if year < calendar.MinYear || year > calendar.MaxYear {
		v.Addf("year", "%d is out of range: give a year from %d to %d", year, calendar.MinYear, calendar.MaxYear)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	c, err := s.app.GetWorkingCalendar(ctx, year)
	if err != nil {
		return nil, err
	}
	return calendarToProto(c), nil
}

// SetWorkingCalendar replaces a year's working calendar as a new version.
func (s *Server) SetWorkingCalendar(ctx context.Context, req *schoolreviewv1.SetWorkingCalendarRequest) (*schoolreviewv1.WorkingCalendar, error) {
	id, err := grpcx.Caller(ctx)
	if err != nil {
		return nil, err
	}
	var v apperr.Violations
	if n := len(req.GetHolidays()); n > calendar.MaxHolidays {
		v.Addf("holidays", "%d days is too many: a year has at most %d holiday days", n, calendar.MaxHolidays)
	}
	if n := len(req.GetWorkingDays()); n > calendar.MaxWorkingDays {
		v.Addf("working_days", "%d days is too many: a year has at most %d swapped working days", n, calendar.MaxWorkingDays)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	y := calendar.Year{Year: int(req.GetYear())}
	y.Holidays = daysFromProto(&v, "holidays", req.GetHolidays())
	y.WorkingDays = daysFromProto(&v, "working_days", req.GetWorkingDays())
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := app.CheckCalendarEdit(y, req.GetReason()); err != nil {
		return nil, err
	}
	c, err := s.app.SetWorkingCalendar(ctx, id, y, req.GetReason())
	if err != nil {
		return nil, err
	}
	return calendarToProto(c), nil
}

func daysFromProto(v *apperr.Violations, field string, in []*schoolreviewv1.CalendarDay) []calendar.Day {
	out := make([]calendar.Day, 0, len(in))
	for i, d := range in {
		date, err := calendar.ParseDate(d.GetDate())
		if err != nil {
			v.Addf(fmt.Sprintf("%s[%d].date", field, i), "%v", err)
			continue
		}
		out = append(out, calendar.Day{Date: date, Name: d.GetName()})
	}
	return out
}

func calendarToProto(c *app.CalendarYear) *schoolreviewv1.WorkingCalendar {
	out := &schoolreviewv1.WorkingCalendar{
		Year:        int32(c.Year.Year), //nolint:gosec // years are 2000..2100
		Version:     c.Version,
		Holidays:    daysToProto(c.Year.Holidays),
		WorkingDays: daysToProto(c.Year.WorkingDays),
		History:     make([]*schoolreviewv1.CalendarChange, 0, len(c.History)),
	}
	for _, h := range c.History {
		out.History = append(out.History, changeToProto(h))
	}
	return out
}

func changeToProto(h domain.CalendarVersion) *schoolreviewv1.CalendarChange {
	return &schoolreviewv1.CalendarChange{
		Version:            h.Version,
		ChangedBy:          h.ChangedBy,
		ChangedByRole:      h.Role,
		ChangedAt:          timestamppb.New(h.ChangedAt),
		Reason:             h.Reason,
		HolidaysAdded:      daysToProto(h.Changes.HolidaysAdded),
		HolidaysRemoved:    daysToProto(h.Changes.HolidaysRemoved),
		WorkingDaysAdded:   daysToProto(h.Changes.WorkingDaysAdded),
		WorkingDaysRemoved: daysToProto(h.Changes.WorkingDaysRemoved),
	}
}

func daysToProto(days []calendar.Day) []*schoolreviewv1.CalendarDay {
	out := make([]*schoolreviewv1.CalendarDay, len(days))
	for i, d := range days {
		out[i] = &schoolreviewv1.CalendarDay{Date: d.Date.String(), Name: d.Name}
	}
	return out
}
