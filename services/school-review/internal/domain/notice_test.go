package domain_test

import (
	"errors"
	"testing"
	"time"

	"github.com/edubureau/studentaid/pkg/calendar"
	"github.com/edubureau/studentaid/services/school-review/internal/domain"
)

// weekdaysOnly adds n working days on no calendar: Monday to Friday.
func weekdaysOnly(t time.Time, n int) time.Time {
	end, _ := (*calendar.Calendar)(nil).AddWorkingDays(t, n)
	return end
}

// endsAt is p's end from start on no calendar.
func endsAt(p domain.NoticePeriod, start time.Time) time.Time {
	end, _ := p.EndsAt(start, nil)
	return end
}

// cst builds a time in China Standard Time.
func cst(day, hour, minute int) time.Time {
	return time.Date(2017, 9, day, hour, minute, 0, 0, domain.Shanghai)
}

func TestAddWorkingDays(t *testing.T) {
	t.Parallel()
	// September 2017: the 4th is a Monday, the 8th a Friday, 9th/10th the weekend.
	tests := []struct {
		name  string
		start time.Time
		n     int
		want  time.Time
	}{
		{"monday + 5 is next monday", cst(4, 10, 0), 5, cst(11, 10, 0)},
		{"monday + 1 is tuesday", cst(4, 10, 0), 1, cst(5, 10, 0)},
		{"thursday + 1 is friday", cst(7, 9, 30), 1, cst(8, 9, 30)},
		{"friday + 1 skips the weekend", cst(8, 15, 0), 1, cst(11, 15, 0)},
		{"friday + 5 is next friday", cst(8, 15, 0), 5, cst(15, 15, 0)},
		{"wednesday + 5 spans a weekend", cst(6, 8, 0), 5, cst(13, 8, 0)},
		{"saturday counts from monday 00:00", cst(9, 10, 0), 5, cst(18, 0, 0)},
		{"sunday counts from monday 00:00", cst(10, 23, 59), 1, cst(12, 0, 0)},
		{"ten working days span two weekends", cst(4, 10, 0), 10, cst(18, 10, 0)},
		// 23:30 UTC on Sunday the 3rd is already Monday 07:30 in Shanghai.
		{"day boundary is Shanghai's", time.Date(2017, 9, 3, 23, 30, 0, 0, time.UTC), 1, cst(5, 7, 30)},
		// 17:00 UTC on Friday the 8th is Saturday 01:00 in Shanghai.
		{"friday UTC evening is saturday in Shanghai", time.Date(2017, 9, 8, 17, 0, 0, 0, time.UTC), 1, cst(12, 0, 0)},
		{"zero days on a weekday is now", cst(5, 10, 0), 0, cst(5, 10, 0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := weekdaysOnly(tc.start, tc.n)
			if !got.Equal(tc.want) {
				t.Fatalf("weekdaysOnly(%s, %d) = %s, want %s", tc.start, tc.n, got.In(domain.Shanghai), tc.want)
			}
			if got.Location() != time.UTC {
				t.Fatalf("result in %s, want UTC", got.Location())
			}
			if wd := got.In(domain.Shanghai).Weekday(); tc.n > 0 && (wd == time.Saturday || wd == time.Sunday) {
				t.Fatalf("notice ends on a %s", wd)
			}
		})
	}
}

func TestParseNoticePeriod(t *testing.T) {
	t.Parallel()
	start := cst(8, 15, 0) // Friday
	tests := []struct {
		in      string
		wantErr bool
		wantEnd time.Time
		str     string
	}{
		{"5wd", false, cst(15, 15, 0), "5wd"},
		{" 1wd ", false, cst(11, 15, 0), "1wd"},
		{"60wd", false, weekdaysOnly(start, 60), "60wd"},
		{"1s", false, start.Add(time.Second), "1s"},
		{"72h", false, start.Add(72 * time.Hour), "72h0m0s"},
		{"1500ms", false, start.Add(1500 * time.Millisecond), "1.5s"},
		{"0wd", true, time.Time{}, ""},
		{"61wd", true, time.Time{}, ""},
		{"-1wd", true, time.Time{}, ""},
		{"wd", true, time.Time{}, ""},
		{"5 wd", true, time.Time{}, ""},
		{"0s", true, time.Time{}, ""},
		{"-1h", true, time.Time{}, ""},
		{"2200h", true, time.Time{}, ""},
		{"five days", true, time.Time{}, ""},
		{"", true, time.Time{}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			p, err := domain.ParseNoticePeriod(tc.in)
			if tc.wantErr {
				if !errors.Is(err, domain.ErrInvalidNoticePeriod) {
					t.Fatalf("ParseNoticePeriod(%q) err = %v, want ErrInvalidNoticePeriod", tc.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseNoticePeriod(%q): %v", tc.in, err)
			}
			if got := endsAt(p, start); !got.Equal(tc.wantEnd) {
				t.Fatalf("EndsAt = %s, want %s", got, tc.wantEnd)
			}
			if p.String() != tc.str {
				t.Fatalf("String() = %q, want %q", p.String(), tc.str)
			}
			if again, err := domain.ParseNoticePeriod(p.String()); err != nil || again != p {
				t.Fatalf("round trip of %q: %v, %v", p.String(), again, err)
			}
		})
	}
}

func TestDefaultNoticePeriodIsFiveWorkingDays(t *testing.T) {
	t.Parallel()
	if got, want := endsAt(domain.DefaultNoticePeriod, cst(8, 15, 0)), cst(15, 15, 0); !got.Equal(want) {
		t.Fatalf("default notice from Friday ends %s, want %s", got, want)
	}
}

func TestAtLeastOneWorkingDay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		period domain.NoticePeriod
		want   bool
	}{
		{domain.WorkingDays(1), true},
		{domain.WorkingDays(5), true},
		{domain.FixedNotice(time.Second), false},
		{domain.FixedNotice(48 * time.Hour), false},
		{domain.FixedNotice(72*time.Hour - time.Nanosecond), false},
		{domain.FixedNotice(72 * time.Hour), true},
		{domain.NoticePeriod{}, false},
	}
	for _, tc := range tests {
		if got := tc.period.AtLeastOneWorkingDay(); got != tc.want {
			t.Errorf("%v.AtLeastOneWorkingDay() = %v, want %v", tc.period, got, tc.want)
		}
	}
	// The bound is right: a 72h notice started on a Saturday at midnight
	// (China time) ends on Tuesday at midnight, so it spans all of Monday;
	// one second less does not.
	sat := time.Date(2025, 3, 1, 0, 0, 0, 0, domain.Shanghai)
	if sat.Weekday() != time.Saturday {
		t.Fatal("2025-03-01 is not a Saturday")
	}
	end := endsAt(domain.FixedNotice(domain.MinFixedNoticeSpansAWorkingDay), sat)
	if want := time.Date(2025, 3, 4, 0, 0, 0, 0, domain.Shanghai); !end.Equal(want) {
		t.Errorf("72h from Saturday ends %v, want %v", end, want)
	}
}

func TestNoticeCountsOnTheCalendar(t *testing.T) {
	t.Parallel()
	// Friday 29 Sep 2017 10:00: Sat 30 Sep is worked, 1–8 Oct are the
	// holidays, so five working days end on Thursday 12 Oct at 10:00.
	start := time.Date(2017, 9, 29, 10, 0, 0, 0, domain.Shanghai)
	end, missing := domain.DefaultNoticePeriod.EndsAt(start, calendar.Seeded())
	if want := time.Date(2017, 10, 12, 10, 0, 0, 0, domain.Shanghai); !end.Equal(want) || len(missing) != 0 {
		t.Fatalf("ends %s (missing %v), want %s", end.In(domain.Shanghai), missing, want)
	}
	// Without the year, Monday to Friday, and the year is named.
	end, missing = domain.DefaultNoticePeriod.EndsAt(start, nil)
	if want := time.Date(2017, 10, 6, 10, 0, 0, 0, domain.Shanghai); !end.Equal(want) || len(missing) != 1 || missing[0] != 2017 {
		t.Fatalf("without a calendar: ends %s (missing %v), want %s and [2017]", end.In(domain.Shanghai), missing, want)
	}
	// A fixed notice is not counted on any calendar.
	if _, missing := domain.FixedNotice(time.Hour).EndsAt(start, nil); missing != nil {
		t.Fatalf("fixed notice reports missing years %v", missing)
	}
}
