package app

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/audit"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/calendar"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/outbox"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	"github.com/edubureau/studentaid/services/school-review/internal/adapters"
	"github.com/edubureau/studentaid/services/school-review/internal/domain"
)

// DefaultCalendarRefresh is how often each replica reloads the working
// calendar, so that an edit made through another replica counts here too.
// The replica that takes the edit reloads at once.
const DefaultCalendarRefresh = 30 * time.Second

// CalendarEditor is the only role that may set a year's working calendar.
const CalendarEditor = auth.RolePolicyAdmin

// missingLogEvery limits the warning about a year without calendar data to
// one per year and interval per replica; the metric counts every notice.
const missingLogEvery = time.Minute

// calendarMetrics count the notices counted on a guessed year.
type calendarMetrics struct {
	missing *prometheus.CounterVec
}

func newCalendarMetrics(reg prometheus.Registerer) *calendarMetrics {
	m := &calendarMetrics{missing: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "aid_calendar_year_missing_total",
		Help: "Public notices whose end was counted through a year the working calendar has no data for (Monday to Friday assumed), by year. Set the year's calendar (SetWorkingCalendar).",
	}, []string{"year"})}
	if reg != nil {
		reg.MustRegister(m.missing)
	}
	return m
}

// missingYears remembers when each missing year was last logged.
type missingYears struct {
	mu     sync.Mutex
	logged map[int]time.Time
}

// due reports whether year's warning should be logged at now.
func (m *missingYears) due(year int, now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.logged == nil {
		m.logged = make(map[int]time.Time)
	}
	if last, ok := m.logged[year]; ok && now.Sub(last) < missingLogEvery {
		return false
	}
	m.logged[year] = now
	return true
}

// WorkingCalendar returns the calendar the notice counts on now (held in
// memory; RefreshCalendar reloads it).
func (s *Service) WorkingCalendar() *calendar.Calendar { return s.cal.Load() }

// noticeEndsAt is when a notice started at start ends, on the calendar in
// memory. Through a year without data it counts Monday to Friday, counts
// the notice in aid_calendar_year_missing_total and logs a warning, in
// production too: a notice must still end, and the bureau sets the year.
func (s *Service) noticeEndsAt(start time.Time) time.Time {
	end, missing := s.cfg.NoticePeriod.EndsAt(start, s.cal.Load())
	for _, y := range missing {
		s.calMetrics.missing.WithLabelValues(strconv.Itoa(y)).Inc()
		if s.missing.due(y, s.now()) {
			s.log.Warn("working calendar has no data for the year: public notices count Monday to Friday; the bureau's policy administrator should set it (SetWorkingCalendar)",
				"year", y, "notice_start", start.UTC(), "notice_ends_at", end)
		}
	}
	return end
}

// RefreshCalendar reloads the working calendar from the database.
func (s *Service) RefreshCalendar(ctx context.Context) error {
	years, err := adapters.LoadCalendar(ctx, s.pool)
	if err != nil {
		return err
	}
	cal, err := calendar.New(years...)
	if err != nil {
		return fmt.Errorf("working calendar in the database: %w", err)
	}
	s.cal.Store(cal)
	return nil
}

// RunCalendarRefresh reloads the working calendar every CalendarRefresh
// until ctx is done; a failed reload keeps the calendar it had.
func (s *Service) RunCalendarRefresh(ctx context.Context) error {
	ticker := time.NewTicker(s.cfg.CalendarRefresh)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
		if err := s.RefreshCalendar(quietContext(ctx)); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "working calendar: reload failed; keeping the one in memory", "err", err)
		}
	}
}

// SeedCalendar stores each year of pkg/calendar's files that has no
// version yet as its version 1 (by the service, with its calendar.changed
// event), then loads the calendar. A year already there is left as it is,
// even when the bureau changed it or the file is newer: the database is the
// calendar, the files only its start. Safe on every start of every replica.
func (s *Service) SeedCalendar(ctx context.Context) error {
	years, err := calendar.Seed()
	if err != nil {
		return err
	}
	for _, y := range years {
		seeded := false
		err := db.InTx(ctx, s.pool, func(tx pgx.Tx) error {
			seeded = false
			if err := adapters.LockCalendarYear(ctx, tx, y.Year); err != nil {
				return err
			}
			history, err := adapters.CalendarHistory(ctx, tx, y.Year)
			if err != nil || len(history) > 0 {
				return err
			}
			v := domain.CalendarVersion{
				Year: y, Version: 1, ChangedBy: SystemActor, Role: string(auth.RoleService), Org: auth.OrgIT,
				ChangedAt: s.now(), Reason: "seeded from " + y.Source, Changes: domain.DiffCalendar(calendar.Year{}, y),
			}
			seeded = true
			return saveCalendar(ctx, tx, v)
		})
		if err != nil {
			return fmt.Errorf("seed working calendar %d: %w", y.Year, err)
		}
		if seeded {
			s.log.Info("working calendar seeded", "year", y.Year, "source", y.Source)
			s.notify()
		}
	}
	return s.RefreshCalendar(ctx)
}

// CalendarYear is a year's working calendar with its history, newest first;
// Version 0 and no history when the system has none for the year.
type CalendarYear struct {
	Year    calendar.Year
	Version int64
	History []domain.CalendarVersion
}

// GetWorkingCalendar returns year's calendar as stored.
func (s *Service) GetWorkingCalendar(ctx context.Context, year int) (*CalendarYear, error) {
	history, err := adapters.CalendarHistory(ctx, s.pool, year)
	if err != nil {
		return nil, err
	}
	return calendarYearOf(year, history), nil
}

func calendarYearOf(year int, history []domain.CalendarVersion) *CalendarYear {
	out := &CalendarYear{Year: calendar.Year{Year: year}, History: history}
	if len(history) > 0 {
		out.Year, out.Version = history[0].Year, history[0].Version
	}
	return out
}

// CheckCalendarEdit validates an edit of a year's calendar, returning
// InvalidArgument with a field violation for every problem
// (calendar.Year.Validate), for a year without holidays and for a missing
// reason.
func CheckCalendarEdit(y calendar.Year, reason string) error {
	var v apperr.Violations
	var ve *calendar.ValidationError
	if err := y.Validate(); errors.As(err, &ve) {
		for _, p := range ve.Problems {
			v.Addf(p.Field, "%s", p.Message)
		}
	} else if err != nil {
		return err
	}
	if len(y.Holidays) == 0 && y.Year >= calendar.MinYear && y.Year <= calendar.MaxYear {
		v.Addf("holidays", "list the public holidays of %d: without any, every weekday would count as a working day", y.Year)
	}
	if err := domain.CheckReason(reason, true); err != nil {
		v.Addf("reason", "%v; say why the calendar changes, e.g. the State Council notice it follows", err)
	}
	return v.Err()
}

// SetWorkingCalendar replaces year y's days as a new version, set by id
// for reason: the version row (who, when, why, what changed), the days and
// a calendar.changed event in one transaction, then the calendar in memory.
// PermissionDenied for any role but CalendarEditor; InvalidArgument, with
// nothing written, for a bad calendar (CheckCalendarEdit). Notices already
// running keep their end; later approvals count on the new days.
func (s *Service) SetWorkingCalendar(ctx context.Context, id auth.Identity, y calendar.Year, reason string) (*CalendarYear, error) {
	if id.Role != CalendarEditor {
		return nil, apperr.Denied(apperr.ReasonRoleNotPermitted, "only the bureau's policy administrator may set the working calendar")
	}
	if err := CheckCalendarEdit(y, reason); err != nil {
		return nil, err
	}
	domain.SortDays(y.Holidays)
	domain.SortDays(y.WorkingDays)
	var history []domain.CalendarVersion
	err := db.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if err := adapters.LockCalendarYear(ctx, tx, y.Year); err != nil {
			return err
		}
		var err error
		history, err = adapters.CalendarHistory(ctx, tx, y.Year)
		if err != nil {
			return err
		}
		before := calendarYearOf(y.Year, history)
		v := domain.CalendarVersion{
			Year: y, Version: before.Version + 1, ChangedBy: id.UserID, Role: string(id.Role), Org: id.Org,
			ChangedAt: s.now(), Reason: reason, Changes: domain.DiffCalendar(before.Year, y),
		}
		if err := saveCalendar(ctx, tx, v); err != nil {
			return err
		}
		if err := audit.Record(ctx, tx, audit.Entry{Method: "SetWorkingCalendar", Outcome: "done",
			Detail: fmt.Sprintf("working calendar %d version %d: %s", y.Year, v.Version, describeChanges(v.Changes))}); err != nil {
			return fmt.Errorf("audit calendar edit: %w", err)
		}
		history = append([]domain.CalendarVersion{v}, history...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.notify()
	if err := s.RefreshCalendar(ctx); err != nil {
		// Committed; the periodic reload picks it up.
		s.log.WarnContext(ctx, "working calendar: reload after an edit failed", "year", y.Year, "err", err)
	}
	return calendarYearOf(y.Year, history), nil
}

// saveCalendar stores v and its calendar.changed event in tx.
func saveCalendar(ctx context.Context, tx pgx.Tx, v domain.CalendarVersion) error {
	if err := adapters.SaveCalendarVersion(ctx, tx, v); err != nil {
		return err
	}
	ev, err := events.New(v.ChangedAt, events.Actor(v.ChangedBy, v.Role, v.Org), events.Keys{}, &eventsv1.CalendarChanged{
		Year:        int32(v.Year.Year), //nolint:gosec // Validate keeps the year within 2000..2100
		Version:     v.Version,
		Holidays:    eventDays(v.Year.Holidays),
		WorkingDays: eventDays(v.Year.WorkingDays),
		Reason:      v.Reason,
	})
	if err != nil {
		return err
	}
	return outbox.Append(ctx, tx, ev)
}

func eventDays(days []calendar.Day) []*eventsv1.CalendarDay {
	out := make([]*eventsv1.CalendarDay, len(days))
	for i, d := range days {
		out[i] = &eventsv1.CalendarDay{Date: d.Date.String(), Name: d.Name}
	}
	return out
}

// describeChanges says what a version changed, for the audit log.
func describeChanges(c domain.CalendarChanges) string {
	if c.Empty() {
		return "no day changed"
	}
	var parts []string
	for _, g := range []struct {
		what string
		days []calendar.Day
	}{{"holidays added", c.HolidaysAdded}, {"holidays removed", c.HolidaysRemoved},
		{"working days added", c.WorkingDaysAdded}, {"working days removed", c.WorkingDaysRemoved}} {
		if len(g.days) == 0 {
			continue
		}
		dates := make([]string, len(g.days))
		for i, d := range g.days {
			dates[i] = d.Date.String()
		}
		parts = append(parts, g.what+" "+strings.Join(dates, ","))
	}
	return strings.Join(parts, "; ")
}
