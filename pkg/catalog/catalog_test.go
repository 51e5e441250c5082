package catalog_test

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/edubureau/studentaid/pkg/catalog"
)

// mustLookup returns the program with code or stops the test.
func mustLookup(t *testing.T, code string) catalog.Program {
	t.Helper()
	p, ok := catalog.Lookup(code)
	if !ok {
		t.Fatalf("Lookup(%q) not found", code)
	}
	return p
}

func TestAllCodesSorted(t *testing.T) {
	t.Parallel()

	want := []string{
		"BOARDING_SUBSIDY", "FANHAI_FRESHMAN", "HS_NATIONAL_GRANT", "HS_TUITION_WAIVER",
		"POVERTY_EXTENSION", "PRESCHOOL_AID", "RCB_FRESHMAN", "STUDENT_LOAN",
		"VOC_NATIONAL_GRANT", "VOC_TUITION_WAIVER", "ZIHUI_AWARD",
	}
	all := catalog.All()
	got := make([]string, 0, len(all))
	for _, p := range all {
		got = append(got, p.Code)
	}
	if !slices.Equal(got, want) {
		t.Errorf("All() codes = %v, want %v", got, want)
	}
}

func TestCatalogInvariants(t *testing.T) {
	t.Parallel()

	for _, p := range catalog.All() {
		t.Run(p.Code, func(t *testing.T) {
			t.Parallel()
			if p.Name == "" || p.NameEN == "" || len(p.Stages) == 0 || p.Funding == "" {
				t.Errorf("incomplete program %+v", p)
			}
			if p.Tiered {
				if len(p.StandardFen) != 0 {
					t.Errorf("tiered program has StandardFen %v", p.StandardFen)
				}
				for _, l := range []catalog.HardshipLevel{catalog.LevelEspeciallyDifficult, catalog.LevelDifficult, catalog.LevelGenerallyDifficult} {
					if p.TierFen[l] <= 0 {
						t.Errorf("TierFen[%s] = %d, want > 0", l, p.TierFen[l])
					}
				}
				if len(p.TierFen) != 3 {
					t.Errorf("TierFen has %d levels, want 3", len(p.TierFen))
				}
				if p.TierFen[catalog.LevelEspeciallyDifficult] <= p.TierFen[catalog.LevelDifficult] ||
					p.TierFen[catalog.LevelDifficult] <= p.TierFen[catalog.LevelGenerallyDifficult] {
					t.Errorf("TierFen not decreasing with level: %v", p.TierFen)
				}
				return
			}
			if len(p.TierFen) != 0 {
				t.Errorf("non-tiered program has TierFen %v", p.TierFen)
			}
			if len(p.StandardFen) != len(p.Stages) {
				t.Errorf("StandardFen %v does not match stages %v", p.StandardFen, p.Stages)
			}
			for _, s := range p.Stages {
				if p.StandardFen[s] <= 0 {
					t.Errorf("StandardFen[%s] = %d, want > 0", s, p.StandardFen[s])
				}
			}
		})
	}
}

func TestLookup(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name        string
		code        string
		wantOK      bool
		wantFunding catalog.FundingSource
		wantStages  []catalog.Stage
		wantTiered  bool
	}{
		{name: "preschool", code: "PRESCHOOL_AID", wantOK: true, wantFunding: catalog.FundingGovernment, wantStages: []catalog.Stage{catalog.StagePreschool}},
		{name: "boarding", code: "BOARDING_SUBSIDY", wantOK: true, wantFunding: catalog.FundingGovernment, wantStages: []catalog.Stage{catalog.StagePrimary, catalog.StageJunior}},
		{name: "high-school grant", code: "HS_NATIONAL_GRANT", wantOK: true, wantFunding: catalog.FundingGovernment, wantStages: []catalog.Stage{catalog.StageHighSchool}, wantTiered: true},
		{name: "high-school waiver", code: "HS_TUITION_WAIVER", wantOK: true, wantFunding: catalog.FundingGovernment, wantStages: []catalog.Stage{catalog.StageHighSchool}},
		{name: "vocational grant", code: "VOC_NATIONAL_GRANT", wantOK: true, wantFunding: catalog.FundingGovernment, wantStages: []catalog.Stage{catalog.StageVocational}},
		{name: "vocational waiver", code: "VOC_TUITION_WAIVER", wantOK: true, wantFunding: catalog.FundingGovernment, wantStages: []catalog.Stage{catalog.StageVocational}},
		{name: "loan", code: "STUDENT_LOAN", wantOK: true, wantFunding: catalog.FundingBankLoan, wantStages: []catalog.Stage{catalog.StageUniversity}},
		{
			name: "poverty extension", code: "POVERTY_EXTENSION", wantOK: true, wantFunding: catalog.FundingMunicipal,
			wantStages: []catalog.Stage{
				catalog.StagePreschool, catalog.StagePrimary, catalog.StageJunior,
				catalog.StageHighSchool, catalog.StageVocational, catalog.StageUniversity,
			},
		},
		{name: "Fanhai", code: "FANHAI_FRESHMAN", wantOK: true, wantFunding: catalog.FundingCharity, wantStages: []catalog.Stage{catalog.StageUniversity}},
		{name: "RCB", code: "RCB_FRESHMAN", wantOK: true, wantFunding: catalog.FundingCharity, wantStages: []catalog.Stage{catalog.StageUniversity}, wantTiered: true},
		{name: "Zihui", code: "ZIHUI_AWARD", wantOK: true, wantFunding: catalog.FundingCharity, wantStages: []catalog.Stage{catalog.StageHighSchool}},
		{name: "unknown", code: "NO_SUCH_PROGRAM"},
		{name: "lower case", code: "preschool_aid"},
		{name: "empty", code: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, ok := catalog.Lookup(tt.code)
			if ok != tt.wantOK {
				t.Fatalf("Lookup(%q) ok = %v, want %v", tt.code, ok, tt.wantOK)
			}
			if !ok {
				return
			}
			if p.Code != tt.code {
				t.Errorf("Code = %q, want %q", p.Code, tt.code)
			}
			if p.Funding != tt.wantFunding {
				t.Errorf("Funding = %q, want %q", p.Funding, tt.wantFunding)
			}
			if !slices.Equal(p.Stages, tt.wantStages) {
				t.Errorf("Stages = %v, want %v", p.Stages, tt.wantStages)
			}
			if p.Tiered != tt.wantTiered {
				t.Errorf("Tiered = %v, want %v", p.Tiered, tt.wantTiered)
			}
		})
	}
}

func TestCallersCannotMutateCatalog(t *testing.T) {
	t.Parallel()

	fromAll := func(code string) catalog.Program {
		for _, p := range catalog.All() {
			if p.Code == code {
				return p
			}
		}
		return catalog.Program{}
	}
	fromLookup := func(code string) catalog.Program {
		p, _ := catalog.Lookup(code)
		return p
	}
	tests := []struct {
		name   string
		code   string
		get    func(code string) catalog.Program
		mutate func(p catalog.Program)
	}{
		{name: "Lookup stages", code: "BOARDING_SUBSIDY", get: fromLookup, mutate: func(p catalog.Program) { p.Stages[0] = catalog.StageUniversity }},
		{name: "Lookup standard", code: "BOARDING_SUBSIDY", get: fromLookup, mutate: func(p catalog.Program) { p.StandardFen[catalog.StagePrimary] = 1 }},
		{name: "Lookup tiers", code: "RCB_FRESHMAN", get: fromLookup, mutate: func(p catalog.Program) { delete(p.TierFen, catalog.LevelDifficult) }},
		{name: "All tiers", code: "HS_NATIONAL_GRANT", get: fromAll, mutate: func(p catalog.Program) { p.TierFen[catalog.LevelDifficult] = 1 }},
		{name: "All stages of all-stage program", code: "POVERTY_EXTENSION", get: fromAll, mutate: func(p catalog.Program) { p.Stages[0] = "nursery" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			before := mustLookup(t, tt.code)
			tt.mutate(tt.get(tt.code))
			if after := mustLookup(t, tt.code); !reflect.DeepEqual(after, before) {
				t.Errorf("catalog changed: %+v, was %+v", after, before)
			}
		})
	}
}

func TestAmountFen(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		code    string
		stage   catalog.Stage
		level   catalog.HardshipLevel
		want    int64
		wantErr error
	}{
		{name: "preschool", code: "PRESCHOOL_AID", stage: catalog.StagePreschool, want: 50000},
		{name: "boarding primary", code: "BOARDING_SUBSIDY", stage: catalog.StagePrimary, want: 50000},
		{name: "boarding junior", code: "BOARDING_SUBSIDY", stage: catalog.StageJunior, want: 62500},
		{name: "non-tiered ignores level", code: "BOARDING_SUBSIDY", stage: catalog.StageJunior, level: catalog.LevelEspeciallyDifficult, want: 62500},
		{name: "non-tiered ignores unknown level", code: "PRESCHOOL_AID", stage: catalog.StagePreschool, level: "bogus", want: 50000},
		{name: "HS grant especially difficult", code: "HS_NATIONAL_GRANT", stage: catalog.StageHighSchool, level: catalog.LevelEspeciallyDifficult, want: 150000},
		{name: "HS grant difficult", code: "HS_NATIONAL_GRANT", stage: catalog.StageHighSchool, level: catalog.LevelDifficult, want: 100000},
		{name: "HS grant generally difficult", code: "HS_NATIONAL_GRANT", stage: catalog.StageHighSchool, level: catalog.LevelGenerallyDifficult, want: 50000},
		{name: "HS waiver", code: "HS_TUITION_WAIVER", stage: catalog.StageHighSchool, want: 85000},
		{name: "vocational grant", code: "VOC_NATIONAL_GRANT", stage: catalog.StageVocational, want: 100000},
		{name: "vocational waiver", code: "VOC_TUITION_WAIVER", stage: catalog.StageVocational, want: 107500},
		{name: "loan", code: "STUDENT_LOAN", stage: catalog.StageUniversity, want: 400000},
		{name: "poverty extension preschool", code: "POVERTY_EXTENSION", stage: catalog.StagePreschool, want: 50000},
		{name: "poverty extension university", code: "POVERTY_EXTENSION", stage: catalog.StageUniversity, want: 50000},
		{name: "Fanhai", code: "FANHAI_FRESHMAN", stage: catalog.StageUniversity, want: 500000},
		{name: "RCB especially difficult", code: "RCB_FRESHMAN", stage: catalog.StageUniversity, level: catalog.LevelEspeciallyDifficult, want: 300000},
		{name: "RCB difficult", code: "RCB_FRESHMAN", stage: catalog.StageUniversity, level: catalog.LevelDifficult, want: 250000},
		{name: "RCB generally difficult", code: "RCB_FRESHMAN", stage: catalog.StageUniversity, level: catalog.LevelGenerallyDifficult, want: 200000},
		{name: "Zihui", code: "ZIHUI_AWARD", stage: catalog.StageHighSchool, want: 200000},

		{name: "tiered without level", code: "HS_NATIONAL_GRANT", stage: catalog.StageHighSchool, wantErr: catalog.ErrLevelRequired},
		{name: "tiered unknown level", code: "RCB_FRESHMAN", stage: catalog.StageUniversity, level: "very_difficult", wantErr: catalog.ErrUnknownLevel},
		{name: "stage not covered", code: "BOARDING_SUBSIDY", stage: catalog.StageHighSchool, wantErr: catalog.ErrWrongStage},
		{name: "tiered stage not covered", code: "HS_NATIONAL_GRANT", stage: catalog.StageVocational, level: catalog.LevelDifficult, wantErr: catalog.ErrWrongStage},
		{name: "empty stage", code: "PRESCHOOL_AID", wantErr: catalog.ErrWrongStage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := mustLookup(t, tt.code).AmountFen(tt.stage, tt.level)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("AmountFen(%q, %q) error = %v, want %v", tt.stage, tt.level, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("AmountFen(%q, %q) = %d, want %d", tt.stage, tt.level, got, tt.want)
			}
		})
	}
}

// TestReportFigures reproduces amounts in the bureau's 2017 report from the
// catalog's standards.
func TestReportFigures(t *testing.T) {
	t.Parallel()

	type line struct {
		code  string
		stage catalog.Stage
		level catalog.HardshipLevel
		count int64
	}
	tests := []struct {
		name    string
		lines   []line
		wantFen int64
	}{
		{
			name: "boarding subsidy 1,589 primary + 2,914 junior = 2,615,750 yuan",
			lines: []line{
				{code: "BOARDING_SUBSIDY", stage: catalog.StagePrimary, count: 1589},
				{code: "BOARDING_SUBSIDY", stage: catalog.StageJunior, count: 2914},
			},
			wantFen: 261_575_000,
		},
		{
			name:    "vocational grant 235 students = 235,000 yuan",
			lines:   []line{{code: "VOC_NATIONAL_GRANT", stage: catalog.StageVocational, count: 235}},
			wantFen: 23_500_000,
		},
		{
			name:    "Fanhai 127 freshmen = 635,000 yuan",
			lines:   []line{{code: "FANHAI_FRESHMAN", stage: catalog.StageUniversity, count: 127}},
			wantFen: 63_500_000,
		},
		{
			name:    "Zihui 152 students = 304,000 yuan",
			lines:   []line{{code: "ZIHUI_AWARD", stage: catalog.StageHighSchool, count: 152}},
			wantFen: 30_400_000,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var total int64
			for _, l := range tt.lines {
				amount, err := mustLookup(t, l.code).AmountFen(l.stage, l.level)
				if err != nil {
					t.Fatalf("AmountFen(%s, %s) error = %v", l.code, l.stage, err)
				}
				total += l.count * amount
			}
			if total != tt.wantFen {
				t.Errorf("total = %d fen, want %d fen", total, tt.wantFen)
			}
		})
	}
}

func TestCheckEligibility(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		code    string
		a       catalog.Applicant
		wantErr error
		wantMsg string // substring of the message when wantErr is set
	}{
		{name: "boarding rural primary", code: "BOARDING_SUBSIDY", a: catalog.Applicant{Stage: catalog.StagePrimary, Boarding: true, Rural: true}},
		{name: "boarding rural junior", code: "BOARDING_SUBSIDY", a: catalog.Applicant{Stage: catalog.StageJunior, Boarding: true, Rural: true}},
		{
			name: "boarding wrong stage", code: "BOARDING_SUBSIDY",
			a:       catalog.Applicant{Stage: catalog.StageHighSchool, Boarding: true, Rural: true},
			wantErr: catalog.ErrWrongStage, wantMsg: "program BOARDING_SUBSIDY is for primary or junior students, not high_school",
		},
		{
			name: "boarding day student", code: "BOARDING_SUBSIDY",
			a:       catalog.Applicant{Stage: catalog.StagePrimary, Rural: true},
			wantErr: catalog.ErrNotBoarding, wantMsg: "only for students who board at school",
		},
		{
			name: "boarding urban school", code: "BOARDING_SUBSIDY",
			a:       catalog.Applicant{Stage: catalog.StageJunior, Boarding: true},
			wantErr: catalog.ErrNotRural, wantMsg: "only for students at rural schools",
		},
		{
			name: "stage checked first", code: "BOARDING_SUBSIDY",
			a:       catalog.Applicant{Stage: catalog.StagePreschool},
			wantErr: catalog.ErrWrongStage, wantMsg: "not preschool",
		},
		{
			name: "empty stage", code: "PRESCHOOL_AID",
			a:       catalog.Applicant{},
			wantErr: catalog.ErrWrongStage, wantMsg: "program PRESCHOOL_AID is for preschool students, not an unspecified stage",
		},
		{name: "poverty extension registered", code: "POVERTY_EXTENSION", a: catalog.Applicant{Stage: catalog.StageVocational, RegisteredPoor: true}},
		{
			name: "poverty extension not registered", code: "POVERTY_EXTENSION",
			a:       catalog.Applicant{Stage: catalog.StagePrimary, Boarding: true, Rural: true},
			wantErr: catalog.ErrNotRegisteredPoor, wantMsg: "check the poverty registry",
		},
		{name: "high-school grant", code: "HS_NATIONAL_GRANT", a: catalog.Applicant{Stage: catalog.StageHighSchool}},
		{
			name: "high-school grant vocational student", code: "HS_NATIONAL_GRANT",
			a:       catalog.Applicant{Stage: catalog.StageVocational},
			wantErr: catalog.ErrWrongStage, wantMsg: "program HS_NATIONAL_GRANT is for high_school students, not vocational",
		},
		{name: "loan", code: "STUDENT_LOAN", a: catalog.Applicant{Stage: catalog.StageUniversity}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := mustLookup(t, tt.code).CheckEligibility(tt.a)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("CheckEligibility(%+v) error = %v, want %v", tt.a, err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("message %q does not contain %q", err, tt.wantMsg)
			}
		})
	}
}

func TestParseStage(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		in      string
		want    catalog.Stage
		wantErr error
	}{
		{name: "preschool", in: "preschool", want: catalog.StagePreschool},
		{name: "primary", in: "primary", want: catalog.StagePrimary},
		{name: "junior", in: "junior", want: catalog.StageJunior},
		{name: "high school", in: "high_school", want: catalog.StageHighSchool},
		{name: "vocational", in: "vocational", want: catalog.StageVocational},
		{name: "university", in: "university", want: catalog.StageUniversity},
		{name: "empty", in: "", wantErr: catalog.ErrUnknownStage},
		{name: "upper case", in: "PRIMARY", wantErr: catalog.ErrUnknownStage},
		{name: "space", in: "high school", wantErr: catalog.ErrUnknownStage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := catalog.ParseStage(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParseStage(%q) error = %v, want %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ParseStage(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseLevel(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		in      string
		want    catalog.HardshipLevel
		wantErr error
	}{
		{name: "unspecified", in: "", want: catalog.LevelUnspecified},
		{name: "especially difficult", in: "especially_difficult", want: catalog.LevelEspeciallyDifficult},
		{name: "difficult", in: "difficult", want: catalog.LevelDifficult},
		{name: "generally difficult", in: "generally_difficult", want: catalog.LevelGenerallyDifficult},
		{name: "unknown", in: "very_difficult", wantErr: catalog.ErrUnknownLevel},
		{name: "upper case", in: "DIFFICULT", wantErr: catalog.ErrUnknownLevel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := catalog.ParseLevel(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParseLevel(%q) error = %v, want %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ParseLevel(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseTerm(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		in      string
		want    catalog.Term
		wantErr bool
	}{
		{name: "spring", in: "2017-spring", want: catalog.Term{Year: 2017, Season: catalog.SeasonSpring}},
		{name: "autumn", in: "2017-autumn", want: catalog.Term{Year: 2017, Season: catalog.SeasonAutumn}},
		{name: "first year", in: "2000-spring", want: catalog.Term{Year: 2000, Season: catalog.SeasonSpring}},
		{name: "last year", in: "2100-autumn", want: catalog.Term{Year: 2100, Season: catalog.SeasonAutumn}},
		{name: "year too early", in: "1999-autumn", wantErr: true},
		{name: "year too late", in: "2101-spring", wantErr: true},
		{name: "fall", in: "2017-fall", wantErr: true},
		{name: "summer", in: "2017-summer", wantErr: true},
		{name: "upper case season", in: "2017-Spring", wantErr: true},
		{name: "two-digit year", in: "17-spring", wantErr: true},
		{name: "signed year", in: "+017-spring", wantErr: true},
		{name: "five-digit year", in: "02017-spring", wantErr: true},
		{name: "no dash", in: "2017spring", wantErr: true},
		{name: "season first", in: "spring-2017", wantErr: true},
		{name: "trailing space", in: "2017-spring ", wantErr: true},
		{name: "Chinese season", in: "2017-秋季", wantErr: true},
		{name: "empty", in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := catalog.ParseTerm(tt.in)
			if tt.wantErr {
				if !errors.Is(err, catalog.ErrInvalidTerm) {
					t.Fatalf("ParseTerm(%q) error = %v, want ErrInvalidTerm", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseTerm(%q) error = %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseTerm(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			if got.String() != tt.in {
				t.Errorf("String() = %q, want %q", got.String(), tt.in)
			}
		})
	}
}
