package driver

import (
	"slices"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/edubureau/studentaid/pkg/catalog"
	"github.com/edubureau/studentaid/pkg/idnumber"
	"github.com/edubureau/studentaid/pkg/pii"
	"github.com/edubureau/studentaid/pkg/policy"
	"github.com/edubureau/studentaid/pkg/policy/seed"
)

func TestGeneratorProducesValidEligibleUniqueApplications(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     GeneratorConfig
		perSch  int
		program string
	}{
		{name: "report mix autumn", cfg: GeneratorConfig{Schools: 20, Term: "2017-autumn", Seed: 1}, perSch: 500},
		{name: "report mix spring, odd school count", cfg: GeneratorConfig{Schools: 7, Term: "2018-spring", Seed: 99}, perSch: 300},
		{name: "one program for every school", cfg: GeneratorConfig{Schools: 12, Term: "2017-autumn", Program: "POVERTY_EXTENSION", Seed: 5}, perSch: 200, program: "POVERTY_EXTENSION"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			book, err := seed.Book()
			if err != nil {
				t.Fatal(err)
			}
			rv, _ := book.Register(tt.cfg.Term)
			register := rv.Register
			g, err := NewGenerator(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			term, _ := catalog.ParseTerm(tt.cfg.Term)
			termStart := time.Date(term.Year, time.September, 1, 0, 0, 0, 0, time.UTC)
			if term.Season == catalog.SeasonSpring {
				termStart = time.Date(term.Year, time.March, 1, 0, 0, 0, 0, time.UTC)
			}
			ids, cards := map[string]bool{}, map[string]bool{}
			programs := map[string]int{}
			for i, s := range g.Schools() {
				for _, a := range g.Applications(i, tt.perSch) {
					id, err := idnumber.Parse(a.GetStudentIdNumber())
					if err != nil {
						t.Fatalf("%s: invalid ID number: %v", s.Code, err)
					}
					if ids[id.String()] {
						t.Fatalf("%s: duplicate ID number %s", s.Code, id.Masked())
					}
					ids[id.String()] = true
					if err := pii.ValidateCardNumber(a.GetBankCardNumber()); err != nil {
						t.Fatalf("%s: invalid card: %v", s.Code, err)
					}
					if cards[a.GetBankCardNumber()] {
						t.Fatalf("%s: duplicate card", s.Code)
					}
					cards[a.GetBankCardNumber()] = true
					stage, err := catalog.ParseStage(a.GetStage())
					if err != nil {
						t.Fatal(err)
					}
					p, ok := g.policy.Program(a.GetProgramCode())
					if !ok {
						t.Fatalf("unknown program %s", a.GetProgramCode())
					}
					if tt.program != "" && p.Code != tt.program {
						t.Fatalf("program %s, want only %s", p.Code, tt.program)
					}
					pid, _ := idnumber.Parse(a.GetStudentIdNumber())
					school, _ := register.School(s.Code)
					if _, refusals := g.policy.Check(p, school, term, policy.Applicant{Stage: stage, Boarding: a.GetBoarding(), Rural: a.GetRural(),
						RegisteredPoor: a.GetRegisteredPoor(), BirthDate: pid.BirthDate()}); len(refusals) > 0 {
						t.Fatalf("%s: not eligible: %v", s.Code, refusals)
					}
					if !containsStage(s.Stages, stage) {
						t.Fatalf("%s teaches %v, got a %s student", s.Code, s.Stages, stage)
					}
					age := id.AgeOn(termStart)
					if r := ageRange[stage]; age < r[0] || age > r[1] {
						t.Fatalf("%s student aged %d at term start, want %d..%d", stage, age, r[0], r[1])
					}
					if id.Region() != s.Region {
						t.Fatalf("region %s, want the school's %s", id.Region(), s.Region)
					}
					for _, name := range []string{a.GetStudentName(), a.GetAccountName()} {
						if n := utf8.RuneCountInString(name); n < 2 || n > 4 {
							t.Fatalf("name of %d characters", n)
						}
					}
					programs[p.Code]++
				}
			}
			if tt.program == "" && len(programs) < 6 {
				t.Fatalf("only %d programs generated: %v", len(programs), programs)
			}
		})
	}
}

func TestGeneratorSeedsDoNotCollide(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, seed := range []uint64{1, 2} {
		g, err := NewGenerator(GeneratorConfig{Schools: 3, Term: "2017-autumn", Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range g.Applications(0, 1000) {
			if seen[a.GetStudentIdNumber()] {
				t.Fatalf("seed %d repeats an ID number of an earlier seed", seed)
			}
			seen[a.GetStudentIdNumber()] = true
		}
	}
}

func TestGeneratorRefusesBadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  GeneratorConfig
	}{
		{name: "bad term", cfg: GeneratorConfig{Term: "2017-summer"}},
		{name: "unknown program", cfg: GeneratorConfig{Term: "2017-autumn", Program: "NOPE"}},
		{name: "program no school can submit", cfg: GeneratorConfig{Term: "2017-autumn", Program: "BOARDING_SUBSIDY"}},
		{name: "too many schools", cfg: GeneratorConfig{Term: "2017-autumn", Schools: 1000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := NewGenerator(tt.cfg); err == nil {
				t.Fatal("want an error")
			}
		})
	}
}

func containsStage(stages []catalog.Stage, s catalog.Stage) bool {
	return slices.Contains(stages, s)
}
