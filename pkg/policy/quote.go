package policy

import (
	"fmt"
	"strings"
	"time"

	"github.com/edubureau/studentaid/pkg/catalog"
)

// Applicant is what eligibility and the amount depend on, as the school
// reports it.
type Applicant struct {
	Stage          catalog.Stage
	Boarding       bool // boards at school (寄宿生)
	Rural          bool // attends a rural school, as the school says
	RegisteredPoor bool // household is in the poverty registry (建档立卡)
	// BirthDate comes from the ID number.
	BirthDate time.Time
	// RequestedFen is the amount asked for, for RuleRequested programs.
	RequestedFen int64
}

// Quote is what an application is computed to: its amount, or for tiered
// programs the amount per level the school's review chooses from.
type Quote struct {
	// AmountFen is 0 for tiered programs until the level is determined.
	AmountFen int64
	TierFen   map[catalog.HardshipLevel]int64
}

// Refusal is one reason an application cannot be accepted: the input
// field to fix and what to do.
type Refusal struct {
	// Field is the application's field: stage, boarding, rural,
	// registered_poor, student_id_number or requested_amount_fen.
	Field   string
	Message string
	// Err is one of this package's or catalog's sentinel errors.
	Err error
}

// TermStart is the first day of a term, from which ages are counted:
// 1 March for spring, 1 September for autumn.
func TermStart(t catalog.Term) time.Time {
	if t.Season == catalog.SeasonAutumn {
		return time.Date(t.Year, time.September, 1, 0, 0, 0, 0, time.UTC)
	}
	return time.Date(t.Year, time.March, 1, 0, 0, 0, 0, time.UTC)
}

// AgeAt returns the age in completed years (周岁) on day at of someone born
// on birth (both dates, any location). Someone born on 29 February completes
// a year on 1 March in common years.
func AgeAt(birth, at time.Time) int {
	y, m, d := at.Date()
	age := y - birth.Year()
	if m < birth.Month() || (m == birth.Month() && d < birth.Day()) {
		age--
	}
	return max(age, 0)
}

// Check decides an application for prog at school in term under the
// policy: every refusal, or the quote. It does not look at other
// applications (frequency and yearly limits need the store).
func (p *Policy) Check(prog Program, school School, term catalog.Term, a Applicant) (Quote, []Refusal) {
	var refusals []Refusal
	refuse := func(field string, err error, format string, args ...any) {
		refusals = append(refusals, Refusal{Field: field, Err: err, Message: fmt.Sprintf(format, args...)})
	}
	if !prog.Covers(a.Stage) {
		refuse("stage", catalog.ErrWrongStage, "program %s is for %s students, not %s", prog.Code, joinStages(prog.Stages), a.Stage)
	} else if !school.Teaches(a.Stage) {
		refuse("stage", ErrSchoolStage, "school %s teaches %s in the school register, not %s; check the stage or ask the bureau to correct the register",
			school.Code, joinStages(school.Stages), a.Stage)
	}
	if r, ok := p.AgeRanges[a.Stage]; ok && !a.BirthDate.IsZero() {
		if age := AgeAt(a.BirthDate, TermStart(term)); age < r.Min || age > r.Max {
			refuse("student_id_number", ErrAge, "the ID number's birth date gives age %d at the start of %s, outside %d to %d for %s students; check the ID number and the stage",
				age, term, r.Min, r.Max, a.Stage)
		}
	}
	if a.Rural && !school.Rural {
		refuse("rural", ErrSchoolFacts, "school %s is an urban school in the school register; a student there is not at a rural school", school.Code)
	}
	if a.Boarding && !school.Boarding {
		refuse("boarding", ErrSchoolFacts, "school %s has no boarders in the school register; check the boarding status", school.Code)
	}
	if prog.RequiresBoarding && !a.Boarding {
		refuse("boarding", catalog.ErrNotBoarding, "program %s is only for students who board at school; record boarding status first", prog.Code)
	}
	if prog.RequiresRural && !school.Rural {
		refuse("rural", catalog.ErrNotRural, "program %s is only for students at rural schools, and school %s is urban in the school register", prog.Code, school.Code)
	}
	if prog.RequiresRegisteredPoor && !a.RegisteredPoor {
		refuse("registered_poor", catalog.ErrNotRegisteredPoor, "program %s is only for students from registered poor households (建档立卡贫困户); check the poverty registry", prog.Code)
	}
	var q Quote
	switch prog.Rule {
	case RuleFixed:
		q.AmountFen = prog.StandardFen[a.Stage]
	case RuleTiered:
		q.TierFen = prog.clone().TierFen
	case RuleTuition:
		fen, ok := school.TuitionFen[a.Stage]
		if !ok && prog.Covers(a.Stage) && school.Teaches(a.Stage) {
			refuse("stage", ErrNoTuition, "the school register has no tuition of school %s for %s; ask the bureau to record it", school.Code, a.Stage)
		}
		q.AmountFen = fen
	case RuleRequested:
		switch {
		case a.RequestedFen <= 0:
			refuse("requested_amount_fen", ErrRequested, "program %s pays the amount the student asks for: give it in fen, at most %d", prog.Code, prog.MaxFen)
		case a.RequestedFen > prog.MaxFen:
			refuse("requested_amount_fen", ErrRequested, "%d fen is above the most program %s lends per application (%d fen)", a.RequestedFen, prog.Code, prog.MaxFen)
		}
		q.AmountFen = a.RequestedFen
	}
	if prog.Rule != RuleRequested && a.RequestedFen != 0 {
		refuse("requested_amount_fen", ErrRequested, "program %s sets its own amount; leave requested_amount_fen out", prog.Code)
	}
	if len(refusals) > 0 {
		return Quote{}, refusals
	}
	return q, nil
}

// SplitFen divides amount between the program's funding sources by its
// shares. Every share is rounded down to the fen and the remainder goes to
// the first source in [Sources] order the program draws on, so the parts
// always add up to amount.
func (prog Program) SplitFen(amount int64) map[Source]int64 {
	out := make(map[Source]int64, len(prog.SharesBP))
	var sum int64
	var first Source
	for _, src := range Sources {
		bp, ok := prog.SharesBP[src]
		if !ok {
			continue
		}
		if first == "" {
			first = src
		}
		// amount*bp could overflow for huge amounts; split the amount into
		// whole 10000s and the rest, which rounds the same way.
		part := amount/FullShare*int64(bp) + amount%FullShare*int64(bp)/FullShare
		out[src] = part
		sum += part
	}
	if first != "" {
		out[first] += amount - sum
	}
	return out
}

func joinStages(stages []catalog.Stage) string {
	if len(stages) == 0 {
		return "no"
	}
	names := make([]string, len(stages))
	for i, st := range stages {
		names[i] = string(st)
	}
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}
