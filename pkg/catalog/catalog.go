// Package catalog is the vocabulary of student aid (资助): stages of
// schooling, hardship levels, kinds of funding and terms, with their
// parsers and the errors of eligibility. The programs themselves, their
// standards and rules, are data: the aid policy of package policy
// (docs/policy.md).
package catalog

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Stage is a stage of schooling (学段).
type Stage string

// Stages of schooling.
const (
	StagePreschool  Stage = "preschool"   // 学前教育
	StagePrimary    Stage = "primary"     // 小学
	StageJunior     Stage = "junior"      // 初中
	StageHighSchool Stage = "high_school" // 普通高中
	StageVocational Stage = "vocational"  // 中等职业教育
	StageUniversity Stage = "university"  // 高等教育
)

// allStages lists every stage in schooling order.
var allStages = []Stage{StagePreschool, StagePrimary, StageJunior, StageHighSchool, StageVocational, StageUniversity}

// HardshipLevel is the level a school review committee determines in its
// hardship determination (困难认定). Tiered programs pay by level.
type HardshipLevel string

// Hardship levels.
const (
	LevelUnspecified         HardshipLevel = ""                     // not determined; enough for non-tiered programs
	LevelEspeciallyDifficult HardshipLevel = "especially_difficult" // 特别困难
	LevelDifficult           HardshipLevel = "difficult"            // 困难
	LevelGenerallyDifficult  HardshipLevel = "generally_difficult"  // 一般困难
)

// FundingSource says where a program's money comes from. Only government and
// municipal programs count towards the bureau's aid total.
type FundingSource string

// Funding sources.
const (
	FundingGovernment FundingSource = "government" // central/provincial funds with municipal matching
	FundingMunicipal  FundingSource = "municipal"  // municipal funds only
	FundingBankLoan   FundingSource = "bank_loan"  // a loan to be repaid, not a grant
	FundingCharity    FundingSource = "charity"    // social donors (foundation, bank, lottery fund)
)

// Errors returned, wrapped with detail, by this package. Compare with errors.Is.
var (
	// ErrUnknownStage means a string does not name a Stage.
	ErrUnknownStage = errors.New("unknown stage")
	// ErrUnknownLevel means a string or value does not name a hardship level of the program.
	ErrUnknownLevel = errors.New("unknown hardship level")
	// ErrLevelRequired means a tiered program was asked for an amount without a hardship level.
	ErrLevelRequired = errors.New("hardship level required")
	// ErrInvalidTerm means a string is not a term such as 2017-autumn.
	ErrInvalidTerm = errors.New("invalid term")
	// ErrWrongStage means the program does not cover the student's stage.
	ErrWrongStage = errors.New("wrong stage")
	// ErrNotBoarding means the program is for boarding students only.
	ErrNotBoarding = errors.New("not a boarding student")
	// ErrNotRural means the program is for students at rural schools only.
	ErrNotRural = errors.New("not at a rural school")
	// ErrNotRegisteredPoor means the program is for registered poor households only.
	ErrNotRegisteredPoor = errors.New("not a registered poor household")
)

// ParseStage returns the Stage named s, e.g. "high_school".
func ParseStage(s string) (Stage, error) {
	if st := Stage(s); slices.Contains(allStages, st) {
		return st, nil
	}
	return "", fmt.Errorf("%w: %q (want one of %s)", ErrUnknownStage, s, joinStages(allStages))
}

// ParseLevel returns the HardshipLevel named s, e.g. "difficult". The empty
// string is [LevelUnspecified], which non-tiered programs accept.
func ParseLevel(s string) (HardshipLevel, error) {
	switch l := HardshipLevel(s); l {
	case LevelUnspecified, LevelEspeciallyDifficult, LevelDifficult, LevelGenerallyDifficult:
		return l, nil
	}
	return "", fmt.Errorf("%w: %q (want especially_difficult, difficult or generally_difficult)", ErrUnknownLevel, s)
}

// Seasons of a Term.
const (
	SeasonSpring = "spring" // 春季学期
	SeasonAutumn = "autumn" // 秋季学期
)

// Term is a school term (学期), e.g. 2017-autumn. Aid is paid per term.
type Term struct {
	Year   int
	Season string // SeasonSpring or SeasonAutumn
}

// ParseTerm parses "YYYY-spring" or "YYYY-autumn" with YYYY in 2000..2100.
func ParseTerm(s string) (Term, error) {
	year, season, ok := strings.Cut(s, "-")
	if !ok || len(year) != 4 || (season != SeasonSpring && season != SeasonAutumn) {
		return Term{}, fmt.Errorf("%w: %q (want e.g. 2017-spring or 2017-autumn)", ErrInvalidTerm, s)
	}
	y := 0
	for _, c := range year {
		if c < '0' || c > '9' {
			return Term{}, fmt.Errorf("%w: %q (year must be 4 digits)", ErrInvalidTerm, s)
		}
		y = y*10 + int(c-'0')
	}
	if y < 2000 || y > 2100 {
		return Term{}, fmt.Errorf("%w: %q (year must be 2000..2100)", ErrInvalidTerm, s)
	}
	return Term{Year: y, Season: season}, nil
}

// String returns the term as ParseTerm accepts it, e.g. 2017-autumn.
func (t Term) String() string { return fmt.Sprintf("%d-%s", t.Year, t.Season) }

// joinStages renders stages for a message: "primary or junior".
func joinStages(stages []Stage) string {
	names := make([]string, len(stages))
	for i, s := range stages {
		names[i] = string(s)
	}
	if len(names) <= 1 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}
