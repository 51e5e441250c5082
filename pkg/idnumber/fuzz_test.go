package idnumber_test

import (
	"strings"
	"testing"
	"time"

	"github.com/edubureau/studentaid/pkg/idnumber"
)

func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"11010519491231002X",
		"11010519491231002x",
		"420102200503011230",
		"11010519491231002",
		"99010519491231002X",
		"11010519491331002X",
		"１１０１０５１９４９１２３１００２Ｘ",
		"",
	} {
		f.Add(seed)
	}
	for i, region := range []string{"420102", "810000", "650102", "110105"} {
		f.Add(idnumber.Generate(region, time.Date(1900+37*i, time.Month(1+i), 28+i, 0, 0, 0, 0, time.UTC), i*333))
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := idnumber.Parse(s)
		if err != nil {
			if len(s) >= 10 && strings.Contains(err.Error(), s) {
				t.Fatalf("error %q leaks the input", err)
			}
			return
		}
		norm := id.String()
		if !strings.EqualFold(norm, s) || len(norm) != idnumber.Length {
			t.Fatalf("String() = %q, not a normalisation of the input", norm)
		}
		again, err := idnumber.Parse(norm)
		if err != nil {
			t.Fatalf("Parse(String()) error = %v", err)
		}
		if again != id {
			t.Fatalf("Parse(String()) = %q, want %q", again.String(), norm)
		}
		if got := idnumber.CheckChar(norm[:17]); got != norm[17] {
			t.Fatalf("check char %q, want %q", norm[17], got)
		}
		masked := id.Masked()
		if want := norm[:4] + "**********" + norm[14:]; masked != want {
			t.Fatalf("Masked() = %q, want %q", masked, want)
		}
		if strings.Contains(masked, norm[4:14]) {
			t.Fatalf("Masked() %q contains the middle digits", masked)
		}
		if id.BirthDate().Year() < 1900 || id.AgeOn(id.BirthDate()) != 0 {
			t.Fatalf("BirthDate() = %v out of range", id.BirthDate())
		}
	})
}
