package calendar_test

import (
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/edubureau/studentaid/pkg/calendar"
)

// at is a moment in China Standard Time.
func at(y int, m time.Month, d, hour int) time.Time {
	return time.Date(y, m, d, hour, 0, 0, 0, calendar.Shanghai)
}

func date(y int, m time.Month, d int) calendar.Date { return calendar.Date{Year: y, Month: m, Day: d} }

// The expected ends below were worked out by hand from the State Council's
// notices, day by day, not by the code.
func TestAddWorkingDaysAcrossHolidays(t *testing.T) {
	t.Parallel()
	cal := calendar.Seeded()
	tests := []struct {
		name  string
		start time.Time
		n     int
		want  time.Time
	}{
		// Sat 30 Sep is worked; 1–8 Oct are the holidays; 9, 10, 11, 12 Oct.
		{"national day 2017: friday + 5 ends thursday 12 october", at(2017, 9, 29, 10), 5, at(2017, 10, 12, 10)},
		{"national day 2017: friday + 1 is the swapped saturday", at(2017, 9, 29, 10), 1, at(2017, 9, 30, 10)},
		{"national day 2017: friday + 2 jumps the holiday", at(2017, 9, 29, 10), 2, at(2017, 10, 9, 10)},
		// A start on a holiday counts from Monday 9 Oct 00:00.
		{"start on a holiday counts from the next working day", at(2017, 10, 3, 11), 1, at(2017, 10, 10, 0)},
		{"start on a holiday + 5", at(2017, 10, 3, 11), 5, at(2017, 10, 16, 0)},
		{"zero days from a holiday is the next working day's start", at(2018, 2, 16, 9), 0, at(2018, 2, 22, 0)},
		// A swapped working day is a working day: it keeps its time of day.
		{"start on a swapped saturday", at(2017, 9, 30, 14), 1, at(2017, 10, 9, 14)},
		{"start on a swapped saturday + 5", at(2017, 9, 30, 14), 5, at(2017, 10, 13, 14)},
		{"zero days on a swapped sunday is now", at(2018, 2, 11, 8), 0, at(2018, 2, 11, 8)},
		// Spring Festival 2018: 15–21 Feb off, Sun 11 and Sat 24 Feb worked.
		{"spring festival 2018: friday + 5", at(2018, 2, 9, 15), 5, at(2018, 2, 22, 15)},
		{"spring festival 2018: ends on the swapped saturday", at(2018, 2, 14, 9), 3, at(2018, 2, 24, 9)},
		{"plain saturday counts from the swapped sunday", at(2018, 2, 10, 10), 1, at(2018, 2, 12, 0)},
		// 2017's New Year break begins on 31 Dec 2016.
		{"new year 2017 from december 2016", at(2016, 12, 30, 10), 1, at(2017, 1, 3, 10)},
		// 2026: work Sun 20 Sep and Sat 10 Oct; 1–7 Oct off.
		{"national day 2026: the swapped sunday counts", at(2026, 9, 18, 10), 5, at(2026, 9, 24, 10)},
		{"national day 2026: ends on the swapped saturday", at(2026, 9, 30, 10), 3, at(2026, 10, 10, 10)},
		{"spring festival 2026: 15–23 feb off", at(2026, 2, 13, 16), 2, at(2026, 2, 24, 16)},
		// 17:00 UTC on Fri 29 Sep is Sat 30 Sep 01:00 in Shanghai, a working day.
		{"day boundary is Shanghai's", time.Date(2017, 9, 29, 17, 0, 0, 0, time.UTC), 1, at(2017, 10, 9, 1)},
		// Ordinary weeks keep the old rule.
		{"friday + 1 skips the weekend", at(2017, 9, 8, 15), 1, at(2017, 9, 11, 15)},
		{"saturday counts from monday 00:00", at(2017, 9, 9, 10), 5, at(2017, 9, 18, 0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, missing := cal.AddWorkingDays(tc.start, tc.n)
			if !got.Equal(tc.want) {
				t.Fatalf("AddWorkingDays(%s, %d) = %s, want %s", tc.start, tc.n, got.In(calendar.Shanghai), tc.want)
			}
			if got.Location() != time.UTC {
				t.Fatalf("result in %s, want UTC", got.Location())
			}
			if len(missing) != 0 {
				t.Fatalf("missing years %v, want none", missing)
			}
		})
	}
}

func TestYearWithoutDataCountsMondayToFriday(t *testing.T) {
	t.Parallel()
	cal := calendar.Seeded()
	// 2019 has no data: 1–4 Oct (Tue–Fri) count, then Monday 7 Oct.
	got, missing := cal.AddWorkingDays(at(2019, 9, 30, 10), 5)
	if want := at(2019, 10, 7, 10); !got.Equal(want) || !slices.Equal(missing, []int{2019}) {
		t.Fatalf("got %s missing %v, want %s missing [2019]", got.In(calendar.Shanghai), missing, want)
	}
	// The nil calendar knows nothing.
	var none *calendar.Calendar
	got, missing = none.AddWorkingDays(at(2017, 9, 29, 10), 5)
	if want := at(2017, 10, 6, 10); !got.Equal(want) || !slices.Equal(missing, []int{2017}) {
		t.Fatalf("nil calendar: got %s missing %v, want %s missing [2017]", got.In(calendar.Shanghai), missing, want)
	}
	// A count into a missing year from a known one names only the missing one.
	got, missing = cal.AddWorkingDays(at(2018, 12, 28, 10), 3)
	if want := at(2019, 1, 2, 10); !got.Equal(want) || !slices.Equal(missing, []int{2019}) {
		t.Fatalf("into 2019: got %s missing %v, want %s missing [2019]", got.In(calendar.Shanghai), missing, want)
	}
}

func TestCountWorkingDays(t *testing.T) {
	t.Parallel()
	cal := calendar.Seeded()
	// Worked out by hand: weekdays of the year, less the holidays on
	// weekdays, plus the swapped working days.
	tests := []struct {
		name     string
		from, to calendar.Date
		want     int
	}{
		{"2015", date(2015, 1, 1), date(2016, 1, 1), 261 - 17 + 5},
		{"2016", date(2016, 1, 1), date(2017, 1, 1), 261 - 17 + 6},
		{"2017", date(2017, 1, 1), date(2018, 1, 1), 260 - 16 + 5},
		{"2018", date(2018, 1, 1), date(2019, 1, 1), 261 - 17 + 6},
		{"2025", date(2025, 1, 1), date(2026, 1, 1), 261 - 18 + 5},
		{"2026", date(2026, 1, 1), date(2027, 1, 1), 261 - 19 + 6},
		{"september 2017 with its swapped saturday", date(2017, 9, 1), date(2017, 10, 1), 22},
		{"october 2017", date(2017, 10, 1), date(2017, 11, 1), 17},
		{"february 2018", date(2018, 2, 1), date(2018, 3, 1), 17},
		{"empty range", date(2017, 10, 9), date(2017, 10, 9), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, missing := cal.CountWorkingDays(tc.from, tc.to)
			if got != tc.want || len(missing) != 0 {
				t.Fatalf("CountWorkingDays(%s, %s) = %d (missing %v), want %d", tc.from, tc.to, got, missing, tc.want)
			}
		})
	}
}

func TestSeed(t *testing.T) {
	t.Parallel()
	years, err := calendar.Seed()
	if err != nil {
		t.Fatal(err)
	}
	// The swapped working days of each notice, from the notices.
	want := map[int][]string{
		2015: {"2015-01-04", "2015-02-15", "2015-02-28", "2015-09-06", "2015-10-10"},
		2016: {"2016-02-06", "2016-02-14", "2016-06-12", "2016-09-18", "2016-10-08", "2016-10-09"},
		2017: {"2017-01-22", "2017-02-04", "2017-04-01", "2017-05-27", "2017-09-30"},
		2018: {"2018-02-11", "2018-02-24", "2018-04-08", "2018-04-28", "2018-09-29", "2018-09-30"},
		2025: {"2025-01-26", "2025-02-08", "2025-04-27", "2025-09-28", "2025-10-11"},
		2026: {"2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09", "2026-09-20", "2026-10-10"},
	}
	got := map[int][]string{}
	for _, y := range years {
		for _, d := range y.WorkingDays {
			got[y.Year] = append(got[y.Year], d.Date.String())
		}
		slices.Sort(got[y.Year])
	}
	if len(got) != len(want) {
		t.Fatalf("seeded years %v, want %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
	for y, w := range want {
		if !slices.Equal(got[y], w) {
			t.Errorf("%d: swapped working days %v, want %v", y, got[y], w)
		}
	}
	cal := calendar.Seeded()
	for _, tc := range []struct {
		day     calendar.Date
		working bool
	}{
		{date(2016, 12, 31), false}, // 2017's New Year break
		{date(2017, 10, 4), false},  // 中秋节 inside National Day
		{date(2017, 10, 9), true},
		{date(2026, 2, 23), false}, // Monday, the ninth day of the 2026 Spring Festival
		{date(2026, 10, 8), true},
	} {
		if w, known := cal.IsWorkingDay(tc.day); w != tc.working || !known {
			t.Errorf("IsWorkingDay(%s) = %v (known %v), want %v", tc.day, w, known, tc.working)
		}
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	holiday := func(d calendar.Date) calendar.Day { return calendar.Day{Date: d, Name: "国庆节"} }
	many := make([]calendar.Day, calendar.MaxHolidays+1)
	for i := range many {
		many[i] = holiday(date(2017, 1, 1).AddDays(i))
	}
	tests := []struct {
		name   string
		year   calendar.Year
		fields []string
	}{
		{"valid", calendar.Year{Year: 2017, Holidays: []calendar.Day{holiday(date(2016, 12, 31)), holiday(date(2017, 10, 1))},
			WorkingDays: []calendar.Day{{Date: date(2017, 9, 30)}}}, nil},
		{"a new year break may begin on 29 december", calendar.Year{Year: 2019, WorkingDays: []calendar.Day{{Date: date(2018, 12, 29)}}}, nil},
		{"swapped working day on a weekday", calendar.Year{Year: 2017, WorkingDays: []calendar.Day{{Date: date(2017, 10, 9)}}},
			[]string{"working_days[0].date"}},
		{"a holiday on a swapped day", calendar.Year{Year: 2017, Holidays: []calendar.Day{holiday(date(2017, 10, 1))},
			WorkingDays: []calendar.Day{{Date: date(2017, 10, 1)}}}, []string{"working_days[0].date"}},
		{"a date after the year", calendar.Year{Year: 2017, Holidays: []calendar.Day{holiday(date(2018, 1, 2))}}, []string{"holidays[0].date"}},
		{"a date too early in december before", calendar.Year{Year: 2017, Holidays: []calendar.Day{holiday(date(2016, 12, 28))}}, []string{"holidays[0].date"}},
		{"a holiday listed twice", calendar.Year{Year: 2017, Holidays: []calendar.Day{holiday(date(2017, 10, 2)), holiday(date(2017, 10, 2))}},
			[]string{"holidays[1].date"}},
		{"a holiday without a name", calendar.Year{Year: 2017, Holidays: []calendar.Day{{Date: date(2017, 10, 2)}}}, []string{"holidays[0].name"}},
		{"too many holidays", calendar.Year{Year: 2017, Holidays: many}, []string{"holidays"}},
		{"year out of range", calendar.Year{Year: 1999}, []string{"year"}},
		{"every problem at once", calendar.Year{Year: 2017, Holidays: []calendar.Day{holiday(date(2018, 1, 2)), {Date: date(2017, 5, 1)}},
			WorkingDays: []calendar.Day{{Date: date(2017, 6, 1)}}}, []string{"holidays[0].date", "holidays[1].name", "working_days[0].date"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.year.Validate()
			if tc.fields == nil {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var ve *calendar.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate = %v, want a *ValidationError", err)
			}
			var fields []string
			for _, p := range ve.Problems {
				fields = append(fields, p.Field)
				if p.Message == "" {
					t.Errorf("%s: empty message", p.Field)
				}
			}
			if !slices.Equal(fields, tc.fields) {
				t.Fatalf("problems %v, want fields %v", ve.Problems, tc.fields)
			}
		})
	}
}

func TestParseDate(t *testing.T) {
	t.Parallel()
	if d, err := calendar.ParseDate("2017-10-01"); err != nil || d != date(2017, 10, 1) {
		t.Fatalf("ParseDate = %v, %v", d, err)
	}
	for _, bad := range []string{"2017-9-30", "2017-02-30", "30.09.2017", ""} {
		if _, err := calendar.ParseDate(bad); err == nil {
			t.Errorf("ParseDate(%q) accepted", bad)
		}
	}
}

func TestParseFileRefusesBadBreaks(t *testing.T) {
	t.Parallel()
	for name, file := range map[string]string{
		"unknown field":      `{"year": 2017, "breaks": [], "extra": 1}`,
		"break backwards":    `{"year": 2017, "breaks": [{"name": "国庆节", "from": "2017-10-08", "to": "2017-10-01"}]}`,
		"weekday swapped in": `{"year": 2017, "breaks": [{"name": "国庆节", "from": "2017-10-01", "to": "2017-10-08", "working_days": ["2017-09-29"]}]}`,
		"bad date":           `{"year": 2017, "breaks": [{"name": "国庆节", "from": "2017-10-1", "to": "2017-10-08"}]}`,
	} {
		if _, err := calendar.ParseFile([]byte(file)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// BenchmarkAddWorkingDays is the cost a school approval adds: five working
// days across the National Day break.
func BenchmarkAddWorkingDays(b *testing.B) {
	cal := calendar.Seeded()
	start := at(2017, 9, 29, 10)
	for b.Loop() {
		cal.AddWorkingDays(start, 5)
	}
}
