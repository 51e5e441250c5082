package service_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/edubureau/studentaid/pkg/idnumber"
)

// province is the generated province of the at-scale tests
// (TestImportAtScale, TestComparisonAtScale; docs/performance.md, "Data
// comparison at scale"): students paid in two terms by schools, a poverty
// registry, rosters, key persons and deaths, with one planted problem of
// each kind per thousand students whose counts the tests know.
//
// Student p (0 ≤ p < students, a multiple of 1,000) studies at primary
// school S<p % schools>; an even p is paid POVERTY_EXTENSION, an odd one
// BOARDING_SUBSIDY, 500 yuan (the standard of both) in 2016-autumn and
// 2017-spring. By p % 1000:
//
//	1  also paid in 2017-spring by the next school      → duplicate_payment
//	2  not in the registry (and paid POVERTY_EXTENSION) → ineligible, twice
//	4  on the key-persons list                          → key_person, twice
//	5  not on the 2017-spring roster                    → not_enrolled
//	6  died 2016-12-01, before 2017-spring              → deceased
//	7  died 2017-06-01, after both terms began          → nothing
//	8  paid 600 yuan in 2017-spring                     → above_standard
//
// Persons students ≤ q < students + students/1000 are registry children on
// the 2017-spring roster of S<q % schools> who were paid nothing → missed.
// The registry is every person from 0 up, but the p % 1000 = 2 students,
// until it has registry rows. The key-persons list also holds 1,000
// officials above the registry, paid nothing.
type province struct {
	students, registry, schools int
}

const (
	autumn, spring       = "2016-autumn", "2017-spring"
	autumnOrd, springOrd = 4033, 4034
)

var (
	autumnStart = time.Date(2016, time.September, 1, 0, 0, 0, 0, time.UTC)
	springStart = time.Date(2017, time.March, 1, 0, 0, 0, 0, time.UTC)
)

// wantClues are the clues a first comparison run over both terms adds.
func (pv province) wantClues() map[string]int64 {
	k := int64(pv.students / 1000)
	return map[string]int64{"duplicate_payment": k, "ineligible": 2 * k, "key_person": 2 * k, "not_enrolled": k,
		"deceased": k, "above_standard": k, "missed": k}
}

// records is how many payment records the province has.
func (pv province) records() int { return 2*pv.students + pv.students/1000 }

var regions = func() []string {
	out := make([]string, 20)
	for i := range out {
		out[i] = fmt.Sprintf("4210%02d", 81+i%19)
	}
	out[19] = "420106"
	return out
}()

// provincePerson is the 18-character ID number of person i (i < 20
// million): twenty regions, a thousand sequence numbers per day of birth
// from 2008-01-01.
func provincePerson(i int) string {
	r := i % len(regions)
	n := i / len(regions)
	return idnumber.Generate(regions[r], time.Date(2008, time.January, 1+n/1000, 0, 0, 0, 0, time.UTC), n%1000)
}

func provinceName(i int) string { return fmt.Sprintf("学生%d", i) }

// inRegistry says whether person i is in the registry.
func (pv province) inRegistry(i int) bool {
	return (i >= pv.students || i%1000 != 2) && i < pv.registry+pv.students/1000
}

// writeCSV writes a file of header and the lines rows yields.
func writeCSV(path, header string, rows func(w io.Writer)) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintln(w, header)
	rows(w)
	if err := w.Flush(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// writeRegistry writes the registry CSV: four persons a household.
func (pv province) writeRegistry(path string) error {
	return writeCSV(path, "household_id,id_number,name,township", func(w io.Writer) {
		for i, n := 0, 0; n < pv.registry; i++ {
			if !pv.inRegistry(i) {
				continue
			}
			fmt.Fprintf(w, "H%d,%s,%s,城关镇\n", i/4, provincePerson(i), provinceName(i))
			n++
		}
	})
}

// writeKeyPersons writes the key-persons CSV.
func (pv province) writeKeyPersons(path string) error {
	return writeCSV(path, "id_number,name,relation,unit", func(w io.Writer) {
		for p := 4; p < pv.students; p += 1000 {
			fmt.Fprintf(w, "%s,%s,子女,某局\n", provincePerson(p), provinceName(p))
		}
		base := pv.registry + pv.students/1000
		for q := base; q < base+1000; q++ {
			fmt.Fprintf(w, "%s,%s,本人,某局\n", provincePerson(q), provinceName(q))
		}
	})
}

// writeDeaths writes the deaths CSV.
func (pv province) writeDeaths(path string) error {
	return writeCSV(path, "id_number,name,date,kind", func(w io.Writer) {
		for p := 0; p < pv.students; p += 1000 {
			fmt.Fprintf(w, "%s,%s,2016-12-01,death\n", provincePerson(p+6), provinceName(p+6))
			fmt.Fprintf(w, "%s,%s,2017-06-01,deregistration\n", provincePerson(p+7), provinceName(p+7))
		}
	})
}

// payment is one paid record of the province.
type provincePayment struct {
	person                       int
	school, program, term, stage string
	ord                          int
	start                        time.Time
	fen                          int64
}

// payments yields every payment record.
func (pv province) payments(yield func(provincePayment) bool) {
	for p := range pv.students {
		prog := "BOARDING_SUBSIDY"
		if p%2 == 0 {
			prog = "POVERTY_EXTENSION"
		}
		school := fmt.Sprintf("S%d", p%pv.schools)
		a := provincePayment{person: p, school: school, program: prog, term: autumn, stage: "primary", ord: autumnOrd, start: autumnStart, fen: 50000}
		s := a
		s.term, s.ord, s.start = spring, springOrd, springStart
		if p%1000 == 8 {
			s.fen = 60000
		}
		if !yield(a) || !yield(s) {
			return
		}
		if p%1000 == 1 {
			s.school = fmt.Sprintf("S%d", (p+1)%pv.schools)
			if !yield(s) {
				return
			}
		}
	}
}

// rosterRow is one roster line: person, school and term.
type rosterRow struct {
	person       int
	school, term string
	ord          int
}

// rosters yields every roster row: a school's paid students each term but
// the p % 1000 = 5 ones in spring, the duplicates at both their spring
// schools, and the missed children.
func (pv province) rosters(yield func(rosterRow) bool) {
	for p := range pv.students {
		school := fmt.Sprintf("S%d", p%pv.schools)
		if !yield(rosterRow{p, school, autumn, autumnOrd}) {
			return
		}
		if p%1000 != 5 && !yield(rosterRow{p, school, spring, springOrd}) {
			return
		}
		if p%1000 == 1 && !yield(rosterRow{p, fmt.Sprintf("S%d", (p+1)%pv.schools), spring, springOrd}) {
			return
		}
	}
	for q := pv.students; q < pv.students+pv.students/1000; q++ {
		if !yield(rosterRow{q, fmt.Sprintf("S%d", q%pv.schools), spring, springOrd}) {
			return
		}
	}
}
