package policy_test

import (
	"testing"

	"github.com/edubureau/studentaid/pkg/catalog"
	"github.com/edubureau/studentaid/pkg/policy"
)

// yuan converts whole yuan to fen.
func yuan(y int64) int64 { return y * 100 }

// report2017 is the bureau's 2017 report as shared/domain.md reads it: per
// program the person-times and yuan.
var report2017 = map[string]struct{ persons, fen int64 }{
	"PRESCHOOL_AID":      {504, yuan(504 * 500)},
	"BOARDING_SUBSIDY":   {1589 + 2914, yuan(2_615_750)},
	"HS_NATIONAL_GRANT":  {3235, yuan(3_249_750)},
	"HS_TUITION_WAIVER":  {708, yuan(603_435)},
	"VOC_NATIONAL_GRANT": {235, yuan(235_000)},
	"VOC_TUITION_WAIVER": {2237, yuan(2_407_400)},
	"POVERTY_EXTENSION":  {1_921_500 / 500, yuan(1_921_500)},
}

// The report's totals.
var (
	sixGovernmentPrograms2017 = yuan(9_363_335)
	centralProvincial2017     = yuan(7_936_850)
	municipal2017             = yuan(3_347_985)
	total2017                 = yuan(11_284_835)
)

// students2017 is a mix of students per program, school, stage and level
// that reaches the report's figures with the seed's standards, tuition and
// tiers: e.g. the high-school waiver is 599 students at 850 yuan (S001) and
// 109 at 865 yuan (S008); the grant's a − c = 59 for a + b + c = 3,235.
var students2017 = []struct {
	program string
	school  string
	stage   catalog.Stage
	level   catalog.HardshipLevel // tiered programs
	count   int64
}{
	{"PRESCHOOL_AID", "S006", catalog.StagePreschool, "", 504},
	{"BOARDING_SUBSIDY", "S004", catalog.StagePrimary, "", 1589},
	{"BOARDING_SUBSIDY", "S004", catalog.StageJunior, "", 2914},
	{"HS_NATIONAL_GRANT", "S001", catalog.StageHighSchool, catalog.LevelEspeciallyDifficult, 600},
	{"HS_NATIONAL_GRANT", "S008", catalog.StageHighSchool, catalog.LevelDifficult, 2094},
	{"HS_NATIONAL_GRANT", "S013", catalog.StageHighSchool, catalog.LevelGenerallyDifficult, 541},
	{"HS_TUITION_WAIVER", "S001", catalog.StageHighSchool, "", 599},
	{"HS_TUITION_WAIVER", "S008", catalog.StageHighSchool, "", 109},
	{"VOC_NATIONAL_GRANT", "S015", catalog.StageVocational, "", 235},
	{"VOC_TUITION_WAIVER", "S001", catalog.StageVocational, "", 2132},
	{"VOC_TUITION_WAIVER", "S005", catalog.StageVocational, "", 105},
	{"POVERTY_EXTENSION", "S016", catalog.StagePreschool, "", 843},
	{"POVERTY_EXTENSION", "S007", catalog.StagePrimary, "", 2000},
	{"POVERTY_EXTENSION", "S010", catalog.StageJunior, "", 1000},
}

// TestSeedReproducesThe2017Report quotes every student of students2017
// under the seed policy, splits the quotes by the programs' shares and
// compares the sums with the report's lines.
func TestSeedReproducesThe2017Report(t *testing.T) {
	t.Parallel()

	p, r, term := seedPolicy(t)
	persons := map[string]int64{}
	fen := map[string]int64{}
	bySource := map[policy.Source]int64{}
	var sixGovernment, governmentTotal int64
	for _, s := range students2017 {
		prog := mustProgram(t, p, s.program)
		school := mustSchool(t, r, s.school)
		a := policy.Applicant{Stage: s.stage, BirthDate: bornAged(t, typicalAge[s.stage]),
			Boarding: prog.RequiresBoarding, RegisteredPoor: prog.RequiresRegisteredPoor}
		q, refused := p.Check(prog, school, term, a)
		if len(refused) > 0 {
			t.Fatalf("%s at %s refused: %+v", s.program, s.school, refused)
		}
		amount := q.AmountFen
		if prog.Tiered() {
			amount = q.TierFen[s.level]
		}
		parts := prog.SplitFen(amount)
		for src, part := range parts {
			// Every share of every quote is a whole fen, so splitting each
			// payment adds up to splitting the report's lines.
			if part*policy.FullShare != amount*int64(prog.SharesBP[src]) {
				t.Errorf("%s at %s: %d fen × %d bp is not a whole fen (got %d)", s.program, s.school, amount, prog.SharesBP[src], part)
			}
			bySource[src] += part * s.count
		}
		persons[s.program] += s.count
		fen[s.program] += amount * s.count
		if prog.Funding == catalog.FundingGovernment {
			sixGovernment += amount * s.count
		}
		if prog.GovernmentTotal {
			governmentTotal += amount * s.count
		}
	}

	for code, want := range report2017 {
		if persons[code] != want.persons || fen[code] != want.fen {
			t.Errorf("%s: %d person-times, %d fen; the report has %d, %d", code, persons[code], fen[code], want.persons, want.fen)
		}
	}
	if len(fen) != len(report2017) {
		t.Errorf("quoted %d programs, the report lists %d", len(fen), len(report2017))
	}
	checks := []struct {
		name      string
		got, want int64
	}{
		{"the six government programs", sixGovernment, sixGovernmentPrograms2017},
		{"the government total", governmentTotal, total2017},
		{"central and provincial funds", bySource[policy.SourceCentralProvincial], centralProvincial2017},
		{"municipal matching funds", bySource[policy.SourceMunicipal], municipal2017},
		{"municipal beside the poverty extension", bySource[policy.SourceMunicipal] - fen["POVERTY_EXTENSION"], municipal2017 - yuan(1_921_500)},
		{"central, provincial and municipal", bySource[policy.SourceCentralProvincial] + bySource[policy.SourceMunicipal], total2017},
		{"charity", bySource[policy.SourceCharity], 0},
		{"bank loans", bySource[policy.SourceBankLoan], 0},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d fen, the report has %d", c.name, c.got, c.want)
		}
	}
}
