package adapters

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/edubureau/studentaid/pkg/calendar"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/services/school-review/internal/domain"
)

// LockCalendarYear serializes the writers of one year's calendar (an edit
// and a replica seeding at start) until tx ends. An advisory lock, because
// the year may have no row yet and the role may not lock the rows of the
// append-only calendar_versions.
func LockCalendarYear(ctx context.Context, tx db.Tx, year int) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('school_review.calendar'), $1)`, year); err != nil {
		return fmt.Errorf("lock calendar %d: %w", year, err)
	}
	return nil
}

// LoadCalendar reads every year's current days, and the years that have a
// version (a year may have one and no days).
func LoadCalendar(ctx context.Context, q db.Querier) ([]calendar.Year, error) {
	rows, err := q.Query(ctx, `SELECT v.year, d.day, d.kind, d.name
		FROM (SELECT DISTINCT year FROM calendar_versions) v
		LEFT JOIN calendar_days d ON d.year = v.year
		ORDER BY v.year, d.day`)
	if err != nil {
		return nil, fmt.Errorf("load calendar: %w", err)
	}
	defer rows.Close()
	var years []calendar.Year
	for rows.Next() {
		var (
			year       int
			day        *time.Time
			kind, name *string
		)
		if err := rows.Scan(&year, &day, &kind, &name); err != nil {
			return nil, fmt.Errorf("load calendar: %w", err)
		}
		if len(years) == 0 || years[len(years)-1].Year != year {
			years = append(years, calendar.Year{Year: year})
		}
		if day == nil {
			continue
		}
		y := &years[len(years)-1]
		d := calendar.Day{Date: calendar.Date{Year: day.Year(), Month: day.Month(), Day: day.Day()}, Name: *name}
		if *kind == "holiday" {
			y.Holidays = append(y.Holidays, d)
		} else {
			y.WorkingDays = append(y.WorkingDays, d)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load calendar: %w", err)
	}
	return years, nil
}

// CalendarHistory returns every version of year, newest first; none when the
// year has no calendar.
func CalendarHistory(ctx context.Context, q db.Querier, year int) ([]domain.CalendarVersion, error) {
	rows, err := q.Query(ctx, `SELECT version, changed_by, changed_by_role, changed_by_org, changed_at, reason,
			holidays, working_days, holidays_added, holidays_removed, working_days_added, working_days_removed
		FROM calendar_versions WHERE year = $1 ORDER BY version DESC`, year)
	if err != nil {
		return nil, fmt.Errorf("calendar history %d: %w", year, err)
	}
	defer rows.Close()
	var out []domain.CalendarVersion
	for rows.Next() {
		v := domain.CalendarVersion{Year: calendar.Year{Year: year}}
		var hol, wd, ha, hr, wa, wr []byte
		if err := rows.Scan(&v.Version, &v.ChangedBy, &v.Role, &v.Org, &v.ChangedAt, &v.Reason, &hol, &wd, &ha, &hr, &wa, &wr); err != nil {
			return nil, fmt.Errorf("calendar history %d: %w", year, err)
		}
		v.ChangedAt = v.ChangedAt.UTC()
		for _, f := range []struct {
			raw []byte
			to  *[]calendar.Day
		}{{hol, &v.Year.Holidays}, {wd, &v.Year.WorkingDays}, {ha, &v.Changes.HolidaysAdded}, {hr, &v.Changes.HolidaysRemoved},
			{wa, &v.Changes.WorkingDaysAdded}, {wr, &v.Changes.WorkingDaysRemoved}} {
			days, err := decodeDays(f.raw)
			if err != nil {
				return nil, fmt.Errorf("calendar history %d version %d: %w", year, v.Version, err)
			}
			*f.to = days
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("calendar history %d: %w", year, err)
	}
	return out, nil
}

// SaveCalendarVersion records v and makes its days the year's current ones,
// in tx (held under LockCalendarYear).
func SaveCalendarVersion(ctx context.Context, tx db.Tx, v domain.CalendarVersion) error {
	y := v.Year
	args := []any{y.Year, v.Version, v.ChangedBy, v.Role, v.Org, v.ChangedAt, v.Reason}
	for _, days := range [][]calendar.Day{y.Holidays, y.WorkingDays, v.Changes.HolidaysAdded, v.Changes.HolidaysRemoved,
		v.Changes.WorkingDaysAdded, v.Changes.WorkingDaysRemoved} {
		raw, err := encodeDays(days)
		if err != nil {
			return err
		}
		args = append(args, raw)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO calendar_versions (year, version, changed_by, changed_by_role, changed_by_org, changed_at, reason,
			holidays, working_days, holidays_added, holidays_removed, working_days_added, working_days_removed)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10::jsonb, $11::jsonb, $12::jsonb, $13::jsonb)`, args...); err != nil {
		return fmt.Errorf("save calendar %d version %d: %w", y.Year, v.Version, err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM calendar_days WHERE year = $1`, y.Year); err != nil {
		return fmt.Errorf("save calendar %d: %w", y.Year, err)
	}
	n := len(y.Holidays) + len(y.WorkingDays)
	days, kinds, names := make([]time.Time, 0, n), make([]string, 0, n), make([]string, 0, n)
	for _, d := range y.Holidays {
		days, kinds, names = append(days, dateTime(d.Date)), append(kinds, "holiday"), append(names, d.Name)
	}
	for _, d := range y.WorkingDays {
		days, kinds, names = append(days, dateTime(d.Date)), append(kinds, "working_day"), append(names, d.Name)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO calendar_days (year, day, kind, name, version)
		SELECT $1, d, k, n, $2 FROM unnest($3::date[], $4::text[], $5::text[]) AS t(d, k, n)`,
		y.Year, v.Version, days, kinds, names); err != nil {
		return fmt.Errorf("save calendar %d days: %w", y.Year, err)
	}
	return nil
}

// dateTime is d as a time pgx writes as that date.
func dateTime(d calendar.Date) time.Time {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC)
}

type jsonDay struct {
	Date string `json:"date"`
	Name string `json:"name"`
}

func encodeDays(days []calendar.Day) (string, error) {
	out := make([]jsonDay, len(days))
	for i, d := range days {
		out[i] = jsonDay{d.Date.String(), d.Name}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return "", fmt.Errorf("encode calendar days: %w", err)
	}
	return string(b), nil
}

func decodeDays(raw []byte) ([]calendar.Day, error) {
	var in []jsonDay
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, fmt.Errorf("decode calendar days: %w", err)
	}
	out := make([]calendar.Day, 0, len(in))
	for _, j := range in {
		d, err := calendar.ParseDate(j.Date)
		if err != nil {
			return nil, err
		}
		out = append(out, calendar.Day{Date: d, Name: j.Name})
	}
	return out, nil
}
