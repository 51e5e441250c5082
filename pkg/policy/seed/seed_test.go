package seed_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/edubureau/studentaid/pkg/catalog"
	"github.com/edubureau/studentaid/pkg/policy"
	"github.com/edubureau/studentaid/pkg/policy/seed"
)

// seedBook returns the seed's version 1 of both documents.
func seedBook(t *testing.T) (*policy.Policy, *policy.Register) {
	t.Helper()
	b, err := seed.Book()
	if err != nil {
		t.Fatalf("seed.Book: %v", err)
	}
	pv, ok := b.Policy("2015-spring")
	if !ok || pv.Number != 1 {
		t.Fatalf("Policy(2015-spring) = version %d, %v; want 1", pv.Number, ok)
	}
	rv, ok := b.Register("2015-spring")
	if !ok || rv.Number != 1 {
		t.Fatalf("Register(2015-spring) = version %d, %v; want 1", rv.Number, ok)
	}
	return pv.Policy, rv.Register
}

func TestDocumentsParse(t *testing.T) {
	t.Parallel()

	docs, err := seed.Documents()
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		kind policy.Kind
		name string
	}{
		{policy.KindPrograms, "programs-2015-spring.json"},
		{policy.KindSchools, "schools-2015-spring.json"},
	}
	if len(docs) != len(want) {
		t.Fatalf("Documents() = %d documents, want %d", len(docs), len(want))
	}
	for i, w := range want {
		d := docs[i]
		if d.Kind != w.kind || d.Name != w.name {
			t.Errorf("document %d = %s %s, want %s %s", i, d.Kind, d.Name, w.kind, w.name)
		}
		var h policy.Header
		switch d.Kind {
		case policy.KindPrograms:
			p, err := policy.ParsePolicy(d.Data)
			if err != nil {
				t.Fatalf("%s: %v", d.Name, err)
			}
			h = p.Header
		case policy.KindSchools:
			r, err := policy.ParseRegister(d.Data)
			if err != nil {
				t.Fatalf("%s: %v", d.Name, err)
			}
			h = r.Header
		}
		if h.EffectiveFrom != "2015-spring" || h.Corrects != 0 || h.Summary == "" {
			t.Errorf("%s header = %+v", d.Name, h)
		}
	}
}

func TestEveryProgramIsThere(t *testing.T) {
	t.Parallel()

	p, _ := seedBook(t)
	want := []string{
		"BOARDING_SUBSIDY", "FANHAI_FRESHMAN", "HS_NATIONAL_GRANT", "HS_TUITION_WAIVER",
		"POVERTY_EXTENSION", "PRESCHOOL_AID", "RCB_FRESHMAN", "STUDENT_LOAN",
		"VOC_NATIONAL_GRANT", "VOC_TUITION_WAIVER", "ZIHUI_AWARD",
	}
	var got []string
	for _, prog := range p.All() {
		got = append(got, prog.Code)
	}
	if !slices.Equal(got, want) {
		t.Errorf("programs = %v, want %v", got, want)
	}
}

func TestEverySchoolIsThere(t *testing.T) {
	t.Parallel()

	_, r := seedBook(t)
	var want []string
	for i := 1; i <= 20; i++ {
		want = append(want, fmt.Sprintf("S%03d", i))
	}
	want = append(want, "S900")
	var got []string
	for _, s := range r.AllSchools() {
		got = append(got, s.Code)
		if s.SubmittingOrg != s.Code {
			t.Errorf("school %s submits as %s, want itself", s.Code, s.SubmittingOrg)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("schools = %v, want %v", got, want)
	}
}

// TestEveryShareIsAWholeFen: every amount the seed can pay splits into whole
// fen by its program's shares, so no payment leaves a rounding remainder.
func TestEveryShareIsAWholeFen(t *testing.T) {
	t.Parallel()

	p, r := seedBook(t)
	for _, prog := range p.All() {
		var amounts []int64
		switch prog.Rule {
		case policy.RuleFixed:
			for _, fen := range prog.StandardFen {
				amounts = append(amounts, fen)
			}
		case policy.RuleTiered:
			for _, fen := range prog.TierFen {
				amounts = append(amounts, fen)
			}
		case policy.RuleTuition:
			for _, s := range r.AllSchools() {
				for _, st := range prog.Stages {
					if fen, ok := s.TuitionFen[st]; ok {
						amounts = append(amounts, fen)
					}
				}
			}
		case policy.RuleRequested:
			// The student chooses the amount; a loan has one source.
			if len(prog.SharesBP) != 1 {
				t.Errorf("%s: a requested amount split between %d sources would round", prog.Code, len(prog.SharesBP))
			}
		}
		for _, fen := range amounts {
			for src, bp := range prog.SharesBP {
				if fen*int64(bp)%policy.FullShare != 0 {
					t.Errorf("%s: %d fen × %d bp for %s is not a whole fen", prog.Code, fen, bp, src)
				}
			}
		}
	}
}

// TestEveryTuitionProgramHasItsTuition: a school teaching a stage a
// tuition waiver covers has its tuition in the register.
func TestEveryTuitionProgramHasItsTuition(t *testing.T) {
	t.Parallel()

	p, r := seedBook(t)
	for _, prog := range p.All() {
		if prog.Rule != policy.RuleTuition {
			continue
		}
		for _, s := range r.AllSchools() {
			for _, st := range prog.Stages {
				if _, ok := s.TuitionFen[st]; s.Teaches(st) && !ok {
					t.Errorf("%s: school %s teaches %s but has no tuition", prog.Code, s.Code, st)
				}
			}
		}
	}
}

// TestAgeRanges: the seed refuses only ages that cannot be right and gives
// every stage the usual range the data office flags outside of: the
// stage's ages at term start with a tolerance (docs/policy.md).
func TestAgeRanges(t *testing.T) {
	t.Parallel()
	p, _ := seedBook(t)
	want := map[catalog.Stage]policy.AgeRange{
		catalog.StagePreschool:  {Min: 2, Max: 7, Usual: &policy.Ages{Min: 3, Max: 6}},
		catalog.StagePrimary:    {Min: 5, Max: 15, Usual: &policy.Ages{Min: 6, Max: 13}},
		catalog.StageJunior:     {Min: 10, Max: 18, Usual: &policy.Ages{Min: 12, Max: 16}},
		catalog.StageHighSchool: {Min: 13, Max: 21, Usual: &policy.Ages{Min: 15, Max: 19}},
		catalog.StageVocational: {Min: 13, Max: 25, Usual: &policy.Ages{Min: 15, Max: 20}},
		catalog.StageUniversity: {Min: 15, Max: 35, Usual: &policy.Ages{Min: 17, Max: 24}},
	}
	if len(p.AgeRanges) != len(want) {
		t.Fatalf("%d age ranges, want %d", len(p.AgeRanges), len(want))
	}
	for st, w := range want {
		got, ok := p.AgeRanges[st]
		if !ok || got.Min != w.Min || got.Max != w.Max || got.Usual == nil || *got.Usual != *w.Usual {
			t.Errorf("%s: %+v (usual %+v), want %+v (usual %+v)", st, got, got.Usual, w, *w.Usual)
		}
	}
}
