// Package adapters stores the bureau's review items in PostgreSQL (the
// service's own schema, table review), through the review table every
// review service shares (reviewdb) with the bureau's own columns.
package adapters

import (
	"github.com/edubureau/studentaid/pkg/review/reviewdb"
	"github.com/edubureau/studentaid/services/bureau-review/internal/domain"
)

// Reviews is the bureau's review table: Insert, Get, List, LockForUpdate
// and Save.
var Reviews = &reviewdb.Table[domain.State, *domain.Review]{
	New: func() *domain.Review { return new(domain.Review) },
	Own: []reviewdb.Column[*domain.Review]{
		reviewdb.Fixed("hardship_level", "text", func(r *domain.Review) *string { return &r.HardshipLevel }),
		reviewdb.Fixed("school_reviewer", "text", func(r *domain.Review) *string { return &r.SchoolReviewer }),
		reviewdb.Mutable("returns", "int", func(r *domain.Review) *int32 { return &r.Returns }),
		reviewdb.MutableStrings("flags_shown", func(r *domain.Review) *[]string { return &r.FlagsShown }),
	},
}
