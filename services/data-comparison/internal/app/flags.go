package app

import (
	"context"
	"slices"
	"sync"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/catalog"
	"github.com/edubureau/studentaid/services/data-comparison/internal/adapters"
	"github.com/edubureau/studentaid/services/data-comparison/internal/domain"
)

// MaxFlagApplications caps the applications of one ListFlags call.
const MaxFlagApplications = 100

// flagRules and usualAges are the seed policy's rules, read once:
// ListFlags is on the reviewer's path, and the seed never changes while
// the service runs.
var (
	flagRules = sync.OnceValue(rules)
	usualAges = sync.OnceValue(domain.UsualAges)
)

// Flag is one review-time flag.
type Flag = adapters.Flag

// ApplicationFlags are the flags of one application.
type ApplicationFlags struct {
	ApplicationID string
	// Known is false when the service has not consumed the application's
	// submission yet.
	Known bool
	// Flags in the order of catalog.FlagKinds.
	Flags []Flag
	// Unchecked are the kinds whose reference data is missing for it.
	Unchecked []catalog.FlagKind
}

// ListFlags returns the review-time flags of 1 to MaxFlagApplications
// applications, in request order, against the current reference versions:
// one snapshot, one round trip, one statement for the whole batch; the age
// is checked here on the applications read (birth month, stage, term),
// against the stage's usual ages. Returns InvalidArgument for a bad list.
func (s *Service) ListFlags(ctx context.Context, ids []string) ([]ApplicationFlags, error) {
	var v apperr.Violations
	ids = checkIDs(&v, "application_ids", ids, MaxFlagApplications)
	if err := v.Err(); err != nil {
		return nil, err
	}
	rs, ages := flagRules(), usualAges()
	res, err := adapters.ListFlags(ctx, s.pool, ids, rs)
	if err != nil {
		return nil, err
	}
	cur, targets, flags := res.Current, res.Targets, res.Flags
	byID := make(map[string]*ApplicationFlags, len(ids))
	out := make([]ApplicationFlags, len(ids))
	for i, id := range ids {
		out[i].ApplicationID = id
		byID[id] = &out[i]
	}
	for _, t := range targets {
		a := byID[t.ApplicationID]
		a.Known = true
		a.Flags = []Flag{}
		if cur.Registry == 0 && slices.Contains(rs.RegistryPrograms, t.ProgramCode) {
			a.Unchecked = append(a.Unchecked, catalog.FlagNotInRegistry)
		}
		if cur.KeyPersons == 0 {
			a.Unchecked = append(a.Unchecked, catalog.FlagKeyPersonRelative)
		}
		if !t.HasRoster {
			a.Unchecked = append(a.Unchecked, catalog.FlagNotOnRoster)
		}
		if cur.Deaths == 0 {
			a.Unchecked = append(a.Unchecked, catalog.FlagDeceased)
		}
		// The age, from the birth month the submission carried (older ones
		// carry none and are not checked), against the stage's usual ages.
		if usual, ok := ages[catalog.Stage(t.Stage)]; !ok || t.BirthMonth.IsZero() {
			a.Unchecked = append(a.Unchecked, catalog.FlagAgeStageMismatch)
		} else if detail, mismatch := domain.AgeMismatch(t.BirthMonth, t.Term, t.Stage, usual); mismatch {
			a.Flags = append(a.Flags, Flag{ApplicationID: t.ApplicationID, Kind: catalog.FlagAgeStageMismatch, Detail: detail})
		}
	}
	for _, f := range flags {
		if a := byID[f.ApplicationID]; a != nil && a.Known {
			a.Flags = append(a.Flags, f)
		}
	}
	order := catalog.FlagKinds()
	for i := range out {
		slices.SortStableFunc(out[i].Flags, func(x, y Flag) int { return slices.Index(order, x.Kind) - slices.Index(order, y.Kind) })
	}
	return out, nil
}
