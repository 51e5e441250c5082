package domain

import (
	"slices"

	"github.com/edubureau/studentaid/pkg/catalog"
)

// These read the catalog's rules (pkg/catalog is their home) in the form the
// comparison applies them to whole sets.

// RegistryPrograms are the programs only registered poor households may receive.
func RegistryPrograms() []string {
	var out []string
	for _, p := range catalog.All() {
		if p.RequiresRegisteredPoor {
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

// Standards lists every program's standards, from Program.AmountFen.
func Standards() []StandardRow {
	var out []StandardRow
	for _, p := range catalog.All() {
		for _, st := range p.Stages {
			if !p.Tiered {
				if fen, err := p.AmountFen(st, catalog.LevelUnspecified); err == nil {
					out = append(out, StandardRow{p.Code, string(st), "*", fen})
				}
				continue
			}
			var top int64
			for _, lvl := range []catalog.HardshipLevel{catalog.LevelEspeciallyDifficult, catalog.LevelDifficult, catalog.LevelGenerallyDifficult} {
				if fen, err := p.AmountFen(st, lvl); err == nil {
					out = append(out, StandardRow{p.Code, string(st), string(lvl), fen})
					top = max(top, fen)
				}
			}
			out = append(out, StandardRow{p.Code, string(st), "", top})
		}
	}
	return out
}

// Entitlement is what a registry child at a stage is owed per term when paid
// nothing: the first registry program (by code) covering the stage.
func Entitlement(stage catalog.Stage) (program string, fen int64, ok bool) {
	codes := RegistryPrograms()
	slices.Sort(codes)
	for _, c := range codes {
		p, _ := catalog.Lookup(c)
		if amount, err := p.AmountFen(stage, catalog.LevelUnspecified); err == nil {
			return c, amount, true
		}
	}
	return "", 0, false
}
