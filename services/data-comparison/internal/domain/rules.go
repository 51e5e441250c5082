package domain

import (
	"slices"
	"sync"

	"github.com/edubureau/studentaid/pkg/catalog"
	"github.com/edubureau/studentaid/pkg/policy"
	"github.com/edubureau/studentaid/pkg/policy/seed"
)

// These read the aid policy's rules in the form the comparison applies
// them to whole sets. The comparison covers records from before the policy
// store (the historical imports) as well as the chain's, so it holds them
// to the seed policy (pkg/policy/seed, docs/policy.md) and, where versions
// differ, to the most generous of them: a standard is only exceeded when no
// version allowed the amount.

var (
	seedOnce sync.Once
	seedBook *policy.Book
)

// seedPolicies returns every seed policy version, the latest first.
func seedPolicies() []*policy.Policy {
	seedOnce.Do(func() {
		b, err := seed.Book()
		if err != nil {
			panic("data-comparison: the seed policy does not load: " + err.Error()) // its tests keep it loading
		}
		seedBook = b
	})
	var out []*policy.Policy
	for _, v := range slices.Backward(seedBook.Versions(policy.KindPrograms)) {
		if p, err := policy.ParsePolicy(v.Document); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// rulesSource returns every program of every seed policy version, the
// latest version's first, and the schools of every register version.
func rulesSource() ([]policy.Program, []policy.School) {
	var progs []policy.Program
	for _, p := range seedPolicies() {
		progs = append(progs, p.All()...)
	}
	var schools []policy.School
	for _, v := range seedBook.Versions(policy.KindSchools) {
		if r, err := policy.ParseRegister(v.Document); err == nil {
			schools = append(schools, r.AllSchools()...)
		}
	}
	return progs, schools
}

// RegistryPrograms are the programs only registered poor households may receive.
func RegistryPrograms() []string {
	progs, _ := rulesSource()
	var out []string
	for _, p := range progs {
		if p.RequiresRegisteredPoor && !slices.Contains(out, p.Code) {
			out = append(out, p.Code)
		}
	}
	return out
}

// StandardRow is a program's standard per term for a stage and hardship
// level. Level "*" is any level (the program is not tiered); level "" is a
// tiered program's record whose level is not known, held to the highest tier.
type StandardRow struct {
	Program, Stage, Level string
	Fen                   int64
}

// Standards lists every program's highest standard per stage and level:
// the fixed standard, each tier, the highest tuition any school of the
// register charges for a tuition waiver, and a requested program's limit.
func Standards() []StandardRow {
	progs, schools := rulesSource()
	best := map[[3]string]int64{}
	var order [][3]string
	put := func(program string, st catalog.Stage, level string, fen int64) {
		k := [3]string{program, string(st), level}
		if _, ok := best[k]; !ok {
			order = append(order, k)
		}
		best[k] = max(best[k], fen)
	}
	for _, p := range progs {
		for _, st := range p.Stages {
			switch p.Rule {
			case policy.RuleFixed:
				put(p.Code, st, "*", p.StandardFen[st])
			case policy.RuleRequested:
				put(p.Code, st, "*", p.MaxFen)
			case policy.RuleTuition:
				for _, s := range schools {
					if fen, ok := s.TuitionFen[st]; ok {
						put(p.Code, st, "*", fen)
					}
				}
			case policy.RuleTiered:
				var top int64
				for _, lvl := range policy.Levels {
					put(p.Code, st, string(lvl), p.TierFen[lvl])
					top = max(top, p.TierFen[lvl])
				}
				put(p.Code, st, "", top)
			}
		}
	}
	out := make([]StandardRow, 0, len(order))
	for _, k := range order {
		out = append(out, StandardRow{k[0], k[1], k[2], best[k]})
	}
	return out
}

// Entitlement is what a registry child at a stage is owed per term when paid
// nothing: the first registry program (by code) covering the stage, at the
// latest seed version's standard.
func Entitlement(stage catalog.Stage) (program string, fen int64, ok bool) {
	codes := RegistryPrograms()
	slices.Sort(codes)
	progs, _ := rulesSource()
	for _, c := range codes {
		for _, p := range progs {
			if p.Code == c && p.Rule == policy.RuleFixed && p.Covers(stage) {
				return c, p.StandardFen[stage], true
			}
		}
	}
	return "", 0, false
}

// UsualAges are each stage's usual ages at term start (the policy's
// age_ranges usual, docs/policy.md), outside which an application is
// flagged age_stage_mismatch: the widest of the seed versions, so that an
// age is only flagged when no version held it usual. A stage no version
// gives a usual range is missing, and its ages are not checked.
func UsualAges() map[catalog.Stage]policy.Ages {
	out := map[catalog.Stage]policy.Ages{}
	for _, p := range seedPolicies() {
		for st, r := range p.AgeRanges {
			if r.Usual == nil {
				continue
			}
			if cur, ok := out[st]; ok {
				out[st] = policy.Ages{Min: min(cur.Min, r.Usual.Min), Max: max(cur.Max, r.Usual.Max)}
			} else {
				out[st] = *r.Usual
			}
		}
	}
	return out
}
