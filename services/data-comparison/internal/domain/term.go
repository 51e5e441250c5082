// Package domain holds the data office's rules: terms and their order, the
// reference files' rows and how each is validated, the clue kinds and how a
// clue is worked, the clue's hash-chained trail, and refunds. No I/O, no
// clock.
package domain

import (
	"fmt"
	"time"

	"github.com/edubureau/studentaid/pkg/catalog"
)

// Term is a school term with its place in term order and its first day.
type Term struct {
	Name string
	// Ord orders terms: year*2 for spring, year*2+1 for autumn.
	Ord int
	// Start is the first day of the term (1 March, 1 September), UTC.
	Start time.Time
}

// ParseTerm reads a term such as 2017-autumn.
func ParseTerm(s string) (Term, error) {
	t, err := catalog.ParseTerm(s)
	if err != nil {
		return Term{}, err
	}
	ord, month := t.Year*2, time.March
	if t.Season == catalog.SeasonAutumn {
		ord, month = ord+1, time.September
	}
	return Term{Name: t.String(), Ord: ord, Start: time.Date(t.Year, month, 1, 0, 0, 0, 0, time.UTC)}, nil
}

// TermRange is an inclusive range of terms.
type TermRange struct {
	From, To Term
}

// ParseTermRange reads and checks a range: From must not come after To.
func ParseTermRange(from, to string) (TermRange, error) {
	f, err := ParseTerm(from)
	if err != nil {
		return TermRange{}, fmt.Errorf("from_term: %w", err)
	}
	t, err := ParseTerm(to)
	if err != nil {
		return TermRange{}, fmt.Errorf("to_term: %w", err)
	}
	if f.Ord > t.Ord {
		return TermRange{}, fmt.Errorf("from_term %s comes after to_term %s", f.Name, t.Name)
	}
	return TermRange{From: f, To: t}, nil
}
