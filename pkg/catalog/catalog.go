// Package catalog is the catalog of student aid programs (资助项目) the bureau
// administers, with their stages, standards and eligibility rules, as read off
// the bureau's 2017 work report (see shared/domain.md).
//
// Amounts are integer fen (分) per student per term.
package catalog

import (
	"errors"
	"fmt"
	"maps"
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

// Program is one aid program and its standard. Values returned by [Lookup]
// and [All] are copies; changing them does not change the catalog.
type Program struct {
	Code   string // stable identifier, e.g. BOARDING_SUBSIDY
	Name   string // Chinese name as used in reports
	NameEN string // English name
	Stages []Stage
	// Funding says who pays.
	Funding FundingSource
	// Tiered programs pay by hardship level (TierFen); the others pay a
	// standard by stage (StandardFen).
	Tiered bool
	// StandardFen is the amount per student per term by stage, for non-tiered programs.
	StandardFen map[Stage]int64
	// TierFen is the amount per student per term by level, for tiered programs.
	TierFen map[HardshipLevel]int64
	// RequiresBoarding: the student must board at school.
	RequiresBoarding bool
	// RequiresRural: the student must attend a rural school.
	RequiresRural bool
	// RequiresRegisteredPoor: the student's household must be in the poverty
	// alleviation office's registry (建档立卡贫困户).
	RequiresRegisteredPoor bool
}

// programs is the catalog, keyed by code. Never hand out its maps or slices.
var programs = map[string]Program{
	"PRESCHOOL_AID": {
		Code: "PRESCHOOL_AID", Name: "学前教育政府资助", NameEN: "Preschool government aid",
		Stages: []Stage{StagePreschool}, Funding: FundingGovernment,
		StandardFen: map[Stage]int64{StagePreschool: 50000},
	},
	"BOARDING_SUBSIDY": {
		Code: "BOARDING_SUBSIDY", Name: "农村义务教育寄宿生生活补助", NameEN: "Rural boarding-student living subsidy",
		Stages: []Stage{StagePrimary, StageJunior}, Funding: FundingGovernment,
		StandardFen:      map[Stage]int64{StagePrimary: 50000, StageJunior: 62500},
		RequiresBoarding: true, RequiresRural: true,
	},
	"HS_NATIONAL_GRANT": {
		Code: "HS_NATIONAL_GRANT", Name: "普通高中国家助学金", NameEN: "High-school national grant",
		Stages: []Stage{StageHighSchool}, Funding: FundingGovernment, Tiered: true,
		TierFen: map[HardshipLevel]int64{
			LevelEspeciallyDifficult: 150000,
			LevelDifficult:           100000,
			LevelGenerallyDifficult:  50000,
		},
	},
	"HS_TUITION_WAIVER": {
		Code: "HS_TUITION_WAIVER", Name: "普通高中免学费", NameEN: "High-school tuition waiver",
		Stages: []Stage{StageHighSchool}, Funding: FundingGovernment,
		StandardFen: map[Stage]int64{StageHighSchool: 85000},
	},
	"VOC_NATIONAL_GRANT": {
		Code: "VOC_NATIONAL_GRANT", Name: "中等职业教育国家助学金", NameEN: "Vocational national grant",
		Stages: []Stage{StageVocational}, Funding: FundingGovernment,
		StandardFen: map[Stage]int64{StageVocational: 100000},
	},
	"VOC_TUITION_WAIVER": {
		Code: "VOC_TUITION_WAIVER", Name: "中职免学费", NameEN: "Vocational tuition waiver",
		Stages: []Stage{StageVocational}, Funding: FundingGovernment,
		StandardFen: map[Stage]int64{StageVocational: 107500},
	},
	"STUDENT_LOAN": {
		Code: "STUDENT_LOAN", Name: "生源地信用助学贷款", NameEN: "Home-county credit student loan",
		Stages: []Stage{StageUniversity}, Funding: FundingBankLoan,
		StandardFen: map[Stage]int64{StageUniversity: 400000},
	},
	"POVERTY_EXTENSION": {
		Code: "POVERTY_EXTENSION", Name: "建档立卡扩面资助", NameEN: "Extended aid for registered poor households",
		Stages: allStages, Funding: FundingMunicipal,
		StandardFen: map[Stage]int64{
			StagePreschool: 50000, StagePrimary: 50000, StageJunior: 50000,
			StageHighSchool: 50000, StageVocational: 50000, StageUniversity: 50000,
		},
		RequiresRegisteredPoor: true,
	},
	"FANHAI_FRESHMAN": {
		Code: "FANHAI_FRESHMAN", Name: "泛海助学行动", NameEN: "Fanhai grant for poor university freshmen",
		Stages: []Stage{StageUniversity}, Funding: FundingCharity,
		StandardFen: map[Stage]int64{StageUniversity: 500000},
	},
	"RCB_FRESHMAN": {
		Code: "RCB_FRESHMAN", Name: "农商行助学行动", NameEN: "Rural commercial bank grant for freshmen",
		Stages: []Stage{StageUniversity}, Funding: FundingCharity, Tiered: true,
		TierFen: map[HardshipLevel]int64{
			LevelEspeciallyDifficult: 300000,
			LevelDifficult:           250000,
			LevelGenerallyDifficult:  200000,
		},
	},
	"ZIHUI_AWARD": {
		Code: "ZIHUI_AWARD", Name: "滋蕙计划", NameEN: "Zihui award for excellent poor students",
		Stages: []Stage{StageHighSchool}, Funding: FundingCharity,
		StandardFen: map[Stage]int64{StageHighSchool: 200000},
	},
}

// Lookup returns the program with the given code.
func Lookup(code string) (Program, bool) {
	p, ok := programs[code]
	if !ok {
		return Program{}, false
	}
	return p.clone(), true
}

// All returns every program, sorted by code.
func All() []Program {
	out := make([]Program, 0, len(programs))
	for _, code := range slices.Sorted(maps.Keys(programs)) {
		out = append(out, programs[code].clone())
	}
	return out
}

// clone copies p deeply so callers cannot reach the catalog's slices and maps.
func (p Program) clone() Program {
	p.Stages = slices.Clone(p.Stages)
	p.StandardFen = maps.Clone(p.StandardFen)
	p.TierFen = maps.Clone(p.TierFen)
	return p
}

// Covers reports whether the program is open to students at stage s.
func (p Program) Covers(s Stage) bool { return slices.Contains(p.Stages, s) }

// Applicant is what eligibility depends on, as the school reports it.
type Applicant struct {
	Stage          Stage
	Boarding       bool // boards at school (寄宿生)
	Rural          bool // attends a rural school
	RegisteredPoor bool // household is in the poverty registry (建档立卡)
}

// CheckEligibility returns nil if a may receive the program, or the first
// unmet condition as an error wrapping [ErrWrongStage], [ErrNotBoarding],
// [ErrNotRural] or [ErrNotRegisteredPoor]. The message says what to fix.
func (p Program) CheckEligibility(a Applicant) error {
	if !p.Covers(a.Stage) {
		return fmt.Errorf("%w: program %s is for %s students, not %s", ErrWrongStage, p.Code, joinStages(p.Stages), stageName(a.Stage))
	}
	if p.RequiresBoarding && !a.Boarding {
		return fmt.Errorf("%w: program %s is only for students who board at school; record boarding status first", ErrNotBoarding, p.Code)
	}
	if p.RequiresRural && !a.Rural {
		return fmt.Errorf("%w: program %s is only for students at rural schools", ErrNotRural, p.Code)
	}
	if p.RequiresRegisteredPoor && !a.RegisteredPoor {
		return fmt.Errorf("%w: program %s is only for students from registered poor households (建档立卡贫困户); check the poverty registry", ErrNotRegisteredPoor, p.Code)
	}
	return nil
}

// AmountFen returns the amount per term for a student at stage with hardship
// level. Non-tiered programs ignore level. Errors wrap [ErrWrongStage],
// [ErrLevelRequired] or [ErrUnknownLevel].
func (p Program) AmountFen(stage Stage, level HardshipLevel) (int64, error) {
	if !p.Covers(stage) {
		return 0, fmt.Errorf("%w: program %s is for %s students, not %s", ErrWrongStage, p.Code, joinStages(p.Stages), stageName(stage))
	}
	if !p.Tiered {
		amount, ok := p.StandardFen[stage]
		if !ok {
			return 0, fmt.Errorf("program %s has no standard for %s", p.Code, stage)
		}
		return amount, nil
	}
	if level == LevelUnspecified {
		return 0, fmt.Errorf("%w: program %s pays by hardship level; determine the level first", ErrLevelRequired, p.Code)
	}
	amount, ok := p.TierFen[level]
	if !ok {
		return 0, fmt.Errorf("%w: program %s has no level %q", ErrUnknownLevel, p.Code, level)
	}
	return amount, nil
}

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

// stageName renders a possibly empty stage for a message.
func stageName(s Stage) string {
	if s == "" {
		return "an unspecified stage"
	}
	return string(s)
}
