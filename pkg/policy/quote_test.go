package policy_test

import (
	"errors"
	"fmt"
	"maps"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edubureau/studentaid/pkg/catalog"
	"github.com/edubureau/studentaid/pkg/idnumber"
	"github.com/edubureau/studentaid/pkg/policy"
	"github.com/edubureau/studentaid/pkg/policy/seed"
)

// seedTerm is the term the quotes are asked for; it starts on 2017-09-01.
const seedTerm = "2017-autumn"

// seedPolicy returns the seed's policy and register in force for seedTerm.
func seedPolicy(t *testing.T) (*policy.Policy, *policy.Register, catalog.Term) {
	t.Helper()
	b, err := seed.Book()
	if err != nil {
		t.Fatalf("seed.Book: %v", err)
	}
	pv, ok := b.Policy(seedTerm)
	if !ok {
		t.Fatalf("no seed policy in force for %s", seedTerm)
	}
	rv, ok := b.Register(seedTerm)
	if !ok {
		t.Fatalf("no seed register in force for %s", seedTerm)
	}
	term, err := catalog.ParseTerm(seedTerm)
	if err != nil {
		t.Fatal(err)
	}
	return pv.Policy, rv.Register, term
}

// bornAged returns the birth date, read back from a generated ID number, of
// a student who is age years old on 2017-09-01 (born on 15 March).
func bornAged(t *testing.T, age int) time.Time {
	t.Helper()
	id, err := idnumber.Parse(idnumber.Generate("420281", time.Date(2017-age, time.March, 15, 0, 0, 0, 0, time.UTC), 17))
	if err != nil {
		t.Fatalf("idnumber: %v", err)
	}
	return id.BirthDate()
}

// typicalAge is a plausible age at the start of 2017-autumn for each stage.
var typicalAge = map[catalog.Stage]int{
	catalog.StagePreschool: 4, catalog.StagePrimary: 9, catalog.StageJunior: 13,
	catalog.StageHighSchool: 16, catalog.StageVocational: 17, catalog.StageUniversity: 19,
}

// mustProgram and mustSchool look up the seed or stop the test.
func mustProgram(t *testing.T, p *policy.Policy, code string) policy.Program {
	t.Helper()
	prog, ok := p.Program(code)
	if !ok {
		t.Fatalf("no program %s", code)
	}
	return prog
}

func mustSchool(t *testing.T, r *policy.Register, code string) policy.School {
	t.Helper()
	s, ok := r.School(code)
	if !ok {
		t.Fatalf("no school %s", code)
	}
	return s
}

// refusal is an expected refusal: the field, the sentinel and words of the
// message.
type refusal struct {
	field string
	err   error
	words []string
}

func TestCheckWithTheSeed(t *testing.T) {
	t.Parallel()

	p, r, term := seedPolicy(t)
	tests := []struct {
		name      string
		program   string
		school    string
		applicant policy.Applicant
		age       int // 0: typicalAge of the stage
		wantFen   int64
		wantTiers map[catalog.HardshipLevel]int64
		refusals  []refusal
	}{
		{name: "preschool aid", program: "PRESCHOOL_AID", school: "S006",
			applicant: policy.Applicant{Stage: catalog.StagePreschool}, wantFen: 50000},
		{name: "boarding subsidy, primary, rural boarding school", program: "BOARDING_SUBSIDY", school: "S004",
			applicant: policy.Applicant{Stage: catalog.StagePrimary, Boarding: true, Rural: true}, wantFen: 50000},
		{name: "boarding subsidy, junior, rural boarding school", program: "BOARDING_SUBSIDY", school: "S004",
			applicant: policy.Applicant{Stage: catalog.StageJunior, Boarding: true}, wantFen: 62500},
		{name: "high-school waiver at S001", program: "HS_TUITION_WAIVER", school: "S001",
			applicant: policy.Applicant{Stage: catalog.StageHighSchool}, wantFen: 85000},
		{name: "high-school waiver at S008", program: "HS_TUITION_WAIVER", school: "S008",
			applicant: policy.Applicant{Stage: catalog.StageHighSchool}, wantFen: 86500},
		{name: "vocational waiver at S001", program: "VOC_TUITION_WAIVER", school: "S001",
			applicant: policy.Applicant{Stage: catalog.StageVocational}, wantFen: 107500},
		{name: "vocational waiver at S005", program: "VOC_TUITION_WAIVER", school: "S005",
			applicant: policy.Applicant{Stage: catalog.StageVocational}, wantFen: 110000},
		{name: "vocational grant", program: "VOC_NATIONAL_GRANT", school: "S015",
			applicant: policy.Applicant{Stage: catalog.StageVocational}, wantFen: 100000},
		{name: "high-school grant tiers", program: "HS_NATIONAL_GRANT", school: "S001",
			applicant: policy.Applicant{Stage: catalog.StageHighSchool},
			wantTiers: map[catalog.HardshipLevel]int64{
				catalog.LevelEspeciallyDifficult: 125000, catalog.LevelDifficult: 100000, catalog.LevelGenerallyDifficult: 75000}},
		{name: "poverty extension, registered poor", program: "POVERTY_EXTENSION", school: "S010",
			applicant: policy.Applicant{Stage: catalog.StageJunior, RegisteredPoor: true}, wantFen: 50000},
		{name: "a loan within the limit", program: "STUDENT_LOAN", school: "S900",
			applicant: policy.Applicant{Stage: catalog.StageUniversity, RequestedFen: 800000}, wantFen: 800000},
		{name: "a loan at the limit", program: "STUDENT_LOAN", school: "S900",
			applicant: policy.Applicant{Stage: catalog.StageUniversity, RequestedFen: 1200000}, wantFen: 1200000},
		{name: "a loan above the limit", program: "STUDENT_LOAN", school: "S900",
			applicant: policy.Applicant{Stage: catalog.StageUniversity, RequestedFen: 1300000},
			refusals:  []refusal{{"requested_amount_fen", policy.ErrRequested, []string{"1300000", "1200000"}}}},
		{name: "a loan without an amount", program: "STUDENT_LOAN", school: "S900",
			applicant: policy.Applicant{Stage: catalog.StageUniversity},
			refusals:  []refusal{{"requested_amount_fen", policy.ErrRequested, []string{"give it in fen", "at most 1200000"}}}},
		{name: "an age that does not fit the stage", program: "HS_TUITION_WAIVER", school: "S001",
			applicant: policy.Applicant{Stage: catalog.StageHighSchool}, age: 9,
			refusals: []refusal{{"student_id_number", policy.ErrAge, []string{"age 9", "2017-autumn", "13 to 21", "check the ID number"}}}},
		{name: "an age too old for preschool", program: "PRESCHOOL_AID", school: "S006",
			applicant: policy.Applicant{Stage: catalog.StagePreschool}, age: 8,
			refusals: []refusal{{"student_id_number", policy.ErrAge, []string{"age 8", "2 to 7"}}}},
		{name: "boarding claimed at a school without boarders", program: "PRESCHOOL_AID", school: "S006",
			applicant: policy.Applicant{Stage: catalog.StagePreschool, Boarding: true},
			refusals:  []refusal{{"boarding", policy.ErrSchoolFacts, []string{"S006", "no boarders", "check the boarding status"}}}},
		{name: "rural claimed at an urban school", program: "HS_TUITION_WAIVER", school: "S008",
			applicant: policy.Applicant{Stage: catalog.StageHighSchool, Rural: true},
			refusals:  []refusal{{"rural", policy.ErrSchoolFacts, []string{"S008", "urban school"}}}},
		{name: "boarding subsidy at an urban school", program: "BOARDING_SUBSIDY", school: "S007",
			applicant: policy.Applicant{Stage: catalog.StagePrimary, Boarding: true},
			refusals: []refusal{
				{"boarding", policy.ErrSchoolFacts, []string{"S007", "no boarders"}},
				{"rural", catalog.ErrNotRural, []string{"BOARDING_SUBSIDY", "only for students at rural schools", "S007 is urban"}},
			}},
		{name: "boarding subsidy for a day student", program: "BOARDING_SUBSIDY", school: "S004",
			applicant: policy.Applicant{Stage: catalog.StageJunior},
			refusals:  []refusal{{"boarding", catalog.ErrNotBoarding, []string{"only for students who board", "record boarding status"}}}},
		{name: "a stage the school does not teach", program: "HS_TUITION_WAIVER", school: "S004",
			applicant: policy.Applicant{Stage: catalog.StageHighSchool},
			refusals:  []refusal{{"stage", policy.ErrSchoolStage, []string{"S004", "primary or junior", "not high_school", "correct the register"}}}},
		{name: "a stage the program does not cover", program: "PRESCHOOL_AID", school: "S001",
			applicant: policy.Applicant{Stage: catalog.StagePrimary},
			refusals:  []refusal{{"stage", catalog.ErrWrongStage, []string{"PRESCHOOL_AID", "preschool students, not primary"}}}},
		{name: "a requested amount for a fixed program", program: "PRESCHOOL_AID", school: "S006",
			applicant: policy.Applicant{Stage: catalog.StagePreschool, RequestedFen: 50000},
			refusals:  []refusal{{"requested_amount_fen", policy.ErrRequested, []string{"sets its own amount", "leave requested_amount_fen out"}}}},
		{name: "a requested amount for a tuition waiver", program: "VOC_TUITION_WAIVER", school: "S005",
			applicant: policy.Applicant{Stage: catalog.StageVocational, RequestedFen: 110000},
			refusals:  []refusal{{"requested_amount_fen", policy.ErrRequested, []string{"leave requested_amount_fen out"}}}},
		{name: "poverty extension without the poverty registry", program: "POVERTY_EXTENSION", school: "S010",
			applicant: policy.Applicant{Stage: catalog.StageJunior},
			refusals:  []refusal{{"registered_poor", catalog.ErrNotRegisteredPoor, []string{"registered poor households", "poverty registry"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := tt.applicant
			age := tt.age
			if age == 0 {
				age = typicalAge[a.Stage]
			}
			a.BirthDate = bornAged(t, age)
			q, refused := p.Check(mustProgram(t, p, tt.program), mustSchool(t, r, tt.school), term, a)

			got := make([]string, 0, len(refused))
			for _, rf := range refused {
				got = append(got, rf.Field)
			}
			want := make([]string, 0, len(tt.refusals))
			for _, rf := range tt.refusals {
				want = append(want, rf.field)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("refused on %v, want %v (%+v)", got, want, refused)
			}
			for i, w := range tt.refusals {
				if !errors.Is(refused[i].Err, w.err) {
					t.Errorf("refusal %d Err = %v, want %v", i, refused[i].Err, w.err)
				}
				for _, word := range w.words {
					if !strings.Contains(refused[i].Message, word) {
						t.Errorf("refusal %d = %q, want it to say %q", i, refused[i].Message, word)
					}
				}
			}
			if len(tt.refusals) > 0 {
				if q.AmountFen != 0 || q.TierFen != nil {
					t.Errorf("a refused application was quoted %+v", q)
				}
				return
			}
			if q.AmountFen != tt.wantFen {
				t.Errorf("AmountFen = %d, want %d", q.AmountFen, tt.wantFen)
			}
			if !maps.Equal(q.TierFen, tt.wantTiers) {
				t.Errorf("TierFen = %v, want %v", q.TierFen, tt.wantTiers)
			}
		})
	}
}

func TestCheckWithoutABirthDateSkipsTheAge(t *testing.T) {
	t.Parallel()

	p, r, term := seedPolicy(t)
	q, refused := p.Check(mustProgram(t, p, "PRESCHOOL_AID"), mustSchool(t, r, "S006"), term,
		policy.Applicant{Stage: catalog.StagePreschool})
	if len(refused) != 0 || q.AmountFen != 50000 {
		t.Errorf("Check = %+v, %+v; want 50000 fen", q, refused)
	}
}

func TestAgeAt(t *testing.T) {
	t.Parallel()

	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	shanghai := time.FixedZone("CST", 8*3600)
	tests := []struct {
		name      string
		birth, at time.Time
		want      int
	}{
		{"the day before the birthday", day(2010, time.September, 2), day(2017, time.September, 1), 6},
		{"on the birthday", day(2010, time.September, 1), day(2017, time.September, 1), 7},
		{"the month before", day(2010, time.October, 1), day(2017, time.September, 1), 6},
		{"29 February in a common year, on 28 February", day(2008, time.February, 29), day(2017, time.February, 28), 8},
		{"29 February in a common year, on 1 March", day(2008, time.February, 29), day(2017, time.March, 1), 9},
		{"29 February in a leap year", day(2008, time.February, 29), day(2016, time.February, 29), 8},
		{"a birth date in another location is its calendar date", time.Date(2010, time.September, 1, 0, 0, 0, 0, shanghai), day(2017, time.September, 1), 7},
		{"born after the day", day(2018, time.January, 1), day(2017, time.September, 1), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := policy.AgeAt(tt.birth, tt.at); got != tt.want {
				t.Errorf("AgeAt(%s, %s) = %d, want %d", tt.birth, tt.at, got, tt.want)
			}
		})
	}
}

func TestTermStart(t *testing.T) {
	t.Parallel()

	tests := []struct {
		term string
		want time.Time
	}{
		{"2017-spring", time.Date(2017, time.March, 1, 0, 0, 0, 0, time.UTC)},
		{"2017-autumn", time.Date(2017, time.September, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		term, err := catalog.ParseTerm(tt.term)
		if err != nil {
			t.Fatal(err)
		}
		if got := policy.TermStart(term); !got.Equal(tt.want) {
			t.Errorf("TermStart(%s) = %s, want %s", tt.term, got, tt.want)
		}
	}
}

func TestSplitFenExamples(t *testing.T) {
	t.Parallel()

	const cp, mu, bank = policy.SourceCentralProvincial, policy.SourceMunicipal, policy.SourceBankLoan
	tests := []struct {
		name   string
		shares map[policy.Source]int32
		amount int64
		want   map[policy.Source]int64
	}{
		{"whole fen", map[policy.Source]int32{cp: 8000, mu: 2000}, 85000, map[policy.Source]int64{cp: 68000, mu: 17000}},
		{"the remainder to the first source", map[policy.Source]int32{cp: 7300, mu: 2700}, 100001, map[policy.Source]int64{cp: 73001, mu: 27000}},
		{"the first source in report order, not map order", map[policy.Source]int32{mu: 5000, cp: 5000}, 1, map[policy.Source]int64{cp: 1, mu: 0}},
		{"one source", map[policy.Source]int32{bank: 10000}, 800000, map[policy.Source]int64{bank: 800000}},
		{"a refund", map[policy.Source]int32{cp: 6500, mu: 3500}, -100001, map[policy.Source]int64{cp: -65001, mu: -35000}},
		{"nothing", map[policy.Source]int32{cp: 6500, mu: 3500}, 0, map[policy.Source]int64{cp: 0, mu: 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := policy.Program{SharesBP: tt.shares}.SplitFen(tt.amount)
			if !maps.Equal(got, tt.want) {
				t.Errorf("SplitFen(%d) = %v, want %v", tt.amount, got, tt.want)
			}
		})
	}
}

// TestSplitFenAddsUp: whatever the amount and shares, the parts sum to the
// amount and each is within a fen per source of its exact share.
func TestSplitFenAddsUp(t *testing.T) {
	t.Parallel()

	rng := rand.New(rand.NewPCG(2017, 11284835))
	for i := range 20000 {
		// Random shares over a random subset of the sources, summing to 10000.
		sources := slices.Clone(policy.Sources)
		rng.Shuffle(len(sources), func(a, b int) { sources[a], sources[b] = sources[b], sources[a] })
		sources = sources[:1+rng.IntN(len(sources))]
		shares := map[policy.Source]int32{}
		left := int32(policy.FullShare)
		for j, src := range sources {
			bp := left
			if j < len(sources)-1 {
				bp = 1 + rng.Int32N(left-int32(len(sources)-1-j))
			}
			shares[src] = bp
			left -= bp
		}
		var amount int64
		switch i % 3 {
		case 0:
			amount = rng.Int64N(10_000_000) // one payment
		case 1:
			amount = rng.Int64N(1 << 62) // far beyond any budget
		default:
			amount = -rng.Int64N(1 << 62) // refunds
		}
		parts := policy.Program{SharesBP: shares}.SplitFen(amount)

		var sum int64
		for src, part := range parts {
			sum += part
			exact := new(big.Rat).SetFrac(new(big.Int).Mul(big.NewInt(amount), big.NewInt(int64(shares[src]))), big.NewInt(policy.FullShare))
			diff := new(big.Rat).Sub(new(big.Rat).SetInt64(part), exact)
			if diff.Abs(diff).Cmp(new(big.Rat).SetInt64(int64(len(shares)))) >= 0 {
				t.Fatalf("SplitFen(%d) with %v: %s gets %d, exact %s", amount, shares, src, part, exact.FloatString(2))
			}
		}
		if sum != amount || len(parts) != len(shares) {
			t.Fatalf("SplitFen(%d) with %v = %v, sum %d over %d sources", amount, shares, parts, sum, len(parts))
		}
	}
}

// Example of a quote split between the funding sources.
func ExampleProgram_SplitFen() {
	prog := policy.Program{SharesBP: map[policy.Source]int32{
		policy.SourceCentralProvincial: 7300, policy.SourceMunicipal: 2700}}
	parts := prog.SplitFen(107500)
	fmt.Println(parts[policy.SourceCentralProvincial], parts[policy.SourceMunicipal])
	// Output: 78475 29025
}
