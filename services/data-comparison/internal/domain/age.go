package domain

import (
	"fmt"
	"strconv"
	"time"

	"github.com/edubureau/studentaid/pkg/policy"
)

// ParseBirthMonth reads a birth year and month, YYYY-MM, as the chain's
// submission event carries it (birth_month), as the first of the month,
// UTC. It is false for an empty or malformed value: such a record has no
// birth month, and its age is not checked.
func ParseBirthMonth(s string) (time.Time, bool) {
	t, err := time.Parse("2006-01", s)
	if err != nil || t.Year() < 1900 {
		return time.Time{}, false
	}
	return t, true
}

// AgesAt returns the youngest and oldest age in completed years (周岁) on
// day at of someone born in the month of birthMonth: born on its last day
// and born on its first. They differ only when at falls in the birth month
// (a term starting on 1 March or 1 September, for someone born in March or
// September).
func AgesAt(birthMonth, at time.Time) (youngest, oldest int) {
	first := time.Date(birthMonth.Year(), birthMonth.Month(), 1, 0, 0, 0, 0, time.UTC)
	last := first.AddDate(0, 1, -1)
	return policy.AgeAt(last, at), policy.AgeAt(first, at)
}

// AgeMismatch says whether a student born in birthMonth is outside the
// stage's usual ages at the start of term, with the flag's detail. Only
// the month is known, so it is a mismatch only when every day of the month
// gives an age outside: the unknown day never raises a flag.
func AgeMismatch(birthMonth time.Time, term Term, stage string, usual policy.Ages) (string, bool) {
	youngest, oldest := AgesAt(birthMonth, term.Start)
	if youngest <= usual.Max && oldest >= usual.Min {
		return "", false
	}
	age := strconv.Itoa(oldest)
	if youngest != oldest {
		age = fmt.Sprintf("%d or %d", youngest, oldest)
	}
	return fmt.Sprintf("age %s at the start of %s; %s students are usually %d to %d", age, term.Name, stage, usual.Min, usual.Max), true
}
