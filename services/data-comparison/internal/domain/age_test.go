package domain_test

import (
	"testing"

	"github.com/edubureau/studentaid/pkg/policy"
	"github.com/edubureau/studentaid/services/data-comparison/internal/domain"
)

func TestAgeMismatch(t *testing.T) {
	t.Parallel()
	primary := policy.Ages{Min: 6, Max: 13}
	tests := []struct {
		name, born, term string
		want             string // "" when the age fits
	}{
		{"inside", "2008-05", "2017-spring", ""},
		{"oldest usual", "2003-04", "2017-spring", ""},
		{"one year too old", "2003-02", "2017-spring", "age 14 at the start of 2017-spring; primary students are usually 6 to 13"},
		{"born in the term's first month: 13 or 14, may fit", "2003-03", "2017-spring", ""},
		{"born in the term's first month: 14 or 15", "2002-03", "2017-spring", "age 14 or 15 at the start of 2017-spring; primary students are usually 6 to 13"},
		{"youngest usual", "2011-02", "2017-spring", ""},
		{"born in the term's first month: 5 or 6, may fit", "2011-03", "2017-spring", ""},
		{"too young", "2011-04", "2017-spring", "age 5 at the start of 2017-spring; primary students are usually 6 to 13"},
		{"autumn: 6 by 31 August", "2011-08", "2017-autumn", ""},
		{"autumn: 5 or 6 in September, may fit", "2011-09", "2017-autumn", ""},
		{"autumn: too young", "2011-10", "2017-autumn", "age 5 at the start of 2017-autumn; primary students are usually 6 to 13"},
		{"leap-year February: 13 on 1 March 2017, born any day", "2004-02", "2017-spring", ""},
		{"leap-year February: 14 on 1 March 2018, born 29 February too", "2004-02", "2018-spring", "age 14 at the start of 2018-spring; primary students are usually 6 to 13"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			born, ok := domain.ParseBirthMonth(tt.born)
			if !ok {
				t.Fatalf("ParseBirthMonth(%q) not ok", tt.born)
			}
			term, err := domain.ParseTerm(tt.term)
			if err != nil {
				t.Fatal(err)
			}
			got, mismatch := domain.AgeMismatch(born, term, "primary", primary)
			if got != tt.want || mismatch != (tt.want != "") {
				t.Errorf("AgeMismatch(%s, %s) = %q, %t; want %q", tt.born, tt.term, got, mismatch, tt.want)
			}
		})
	}
}

func TestParseBirthMonth(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "2008", "2008-13", "2008-5", "2008-05-01", "1899-12", "0000-01"} {
		if _, ok := domain.ParseBirthMonth(s); ok {
			t.Errorf("ParseBirthMonth(%q) ok, want not", s)
		}
	}
	if got, ok := domain.ParseBirthMonth("1990-12"); !ok || got.Format("2006-01-02") != "1990-12-01" {
		t.Errorf("ParseBirthMonth(1990-12) = %v, %t; want 1990-12-01", got, ok)
	}
}

func TestUsualAges(t *testing.T) {
	t.Parallel()
	got := domain.UsualAges()
	want := map[string]policy.Ages{
		"preschool": {Min: 3, Max: 6}, "primary": {Min: 6, Max: 13}, "junior": {Min: 12, Max: 16},
		"high_school": {Min: 15, Max: 19}, "vocational": {Min: 15, Max: 20}, "university": {Min: 17, Max: 24},
	}
	if len(got) != len(want) {
		t.Fatalf("UsualAges() = %v, want %v", got, want)
	}
	for st, w := range got {
		if want[string(st)] != w {
			t.Errorf("%s: %+v, want %+v", st, w, want[string(st)])
		}
	}
}
