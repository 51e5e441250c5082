package policy

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/edubureau/studentaid/pkg/catalog"
)

// School is one school of the register.
type School struct {
	Code string `json:"code"`
	Name string `json:"name"`
	// Region is the 6-digit code of the county the school is in.
	Region string          `json:"region"`
	Stages []catalog.Stage `json:"stages"`
	// Rural: a rural school (农村学校); Boarding: it has boarders (寄宿制).
	Rural    bool `json:"rural"`
	Boarding bool `json:"boarding"`
	// SubmittingOrg is the organisation whose aid officers may submit for
	// the school: the school itself, or e.g. the county's student-aid
	// centre for university students' loans.
	SubmittingOrg string `json:"submitting_org"`
	// TuitionFen is the school's tuition per term by stage, which tuition
	// waivers pay.
	TuitionFen map[catalog.Stage]int64 `json:"tuition_fen,omitempty"`
}

// Teaches reports whether the school has students at stage s.
func (s School) Teaches(st catalog.Stage) bool { return slices.Contains(s.Stages, st) }

func (s School) clone() School {
	s.Stages = slices.Clone(s.Stages)
	s.TuitionFen = maps.Clone(s.TuitionFen)
	return s
}

// Register is one version of the school register.
type Register struct {
	Header
	Schools []School `json:"schools"`

	byCode map[string]int
}

// School returns the school with code.
func (r *Register) School(code string) (School, bool) {
	i, ok := r.byCode[code]
	if !ok {
		return School{}, false
	}
	return r.Schools[i].clone(), true
}

// AllSchools returns every school, sorted by code, as copies.
func (r *Register) AllSchools() []School {
	out := make([]School, 0, len(r.Schools))
	for _, code := range slices.Sorted(maps.Keys(r.byCode)) {
		out = append(out, r.Schools[r.byCode[code]].clone())
	}
	return out
}

// ParseRegister reads and validates a school-register document.
func ParseRegister(doc []byte) (*Register, error) {
	var r Register
	if err := decodeStrict(doc, &r); err != nil {
		return nil, err
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// maxSchools bounds a register; a province has tens of thousands of schools.
const maxSchools = 100_000

func (r *Register) validate() error {
	var ps Problems
	r.Header.validate(&ps)
	switch n := len(r.Schools); {
	case n == 0:
		ps.Addf("schools", "at least one school is required")
	case n > maxSchools:
		ps.Addf("schools", "%d schools, at most %d", n, maxSchools)
	}
	r.byCode = make(map[string]int, len(r.Schools))
	for i, s := range r.Schools {
		if len(ps) >= 100 {
			ps.Addf("schools", "more problems not listed; fix the ones above first")
			break
		}
		place := fmt.Sprintf("schools[%d]", i)
		if s.Code != "" {
			place = fmt.Sprintf("schools[%d] (%s)", i, s.Code)
		}
		s.validate(place, &ps)
		if j, dup := r.byCode[s.Code]; dup && s.Code != "" {
			ps.Addf(place+".code", "code %s is already schools[%d]'s; give each school its own code, or merge the two entries", s.Code, j)
		}
		r.byCode[s.Code] = i
	}
	return ps.Err()
}

func (s School) validate(place string, ps *Problems) {
	if !validOrg(s.Code) {
		ps.Addf(place+".code", "must be 1 to 32 characters of A-Z, a-z, 0-9, '_' or '-'")
	}
	if strings.TrimSpace(s.Name) == "" || utf8.RuneCountInString(s.Name) > 64 {
		ps.Addf(place+".name", "the school's name is required (at most 64 characters)")
	}
	if len(s.Region) != 6 || strings.Trim(s.Region, "0123456789") != "" {
		ps.Addf(place+".region", "must be the county's 6-digit region code, got %q", s.Region)
	}
	if len(s.Stages) == 0 {
		ps.Addf(place+".stages", "at least one stage is required")
	}
	for _, st := range s.Stages {
		if !slices.Contains(Stages, st) {
			ps.Addf(place+".stages", "%q is not a stage (want one of %s)", st, stageList())
		}
	}
	if !validOrg(s.SubmittingOrg) {
		ps.Addf(place+".submitting_org", "name the organisation whose officers submit for the school (usually the school's code)")
	}
	for _, st := range slices.Sorted(maps.Keys(s.TuitionFen)) {
		fen := s.TuitionFen[st]
		if !s.Teaches(st) {
			ps.Addf(place+".tuition_fen", "tuition for %s, which the school does not teach; add the stage to stages or remove the tuition", st)
		}
		if fen <= 0 || fen > 10_000_000 {
			ps.Addf(place+".tuition_fen."+string(st), "must be a positive amount in fen up to 100,000 yuan, got %d", fen)
		}
	}
}

// validOrg matches the organisation and school codes tokens carry.
func validOrg(s string) bool {
	if len(s) < 1 || len(s) > 32 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '_' && c != '-' {
			return false
		}
	}
	return true
}
