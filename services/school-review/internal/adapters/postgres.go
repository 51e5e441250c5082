// Package adapters stores the school's review items in PostgreSQL (the
// service's own schema, table review), through the review table every
// review service shares (reviewdb) with the school's own columns.
package adapters

import (
	"context"
	"fmt"
	"time"

	"github.com/edubureau/studentaid/pkg/catalog"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/review/reviewdb"
	"github.com/edubureau/studentaid/services/school-review/internal/domain"
)

// Reviews is the school's review table: Insert, Get, List, LockForUpdate
// and Save.
var Reviews = &reviewdb.Table[domain.State, *domain.Review]{
	New: func() *domain.Review { return new(domain.Review) },
	Own: []reviewdb.Column[*domain.Review]{
		reviewdb.Fixed("student_name_masked", "text", func(r *domain.Review) *string { return &r.StudentNameMasked }),
		reviewdb.Fixed("tiered", "boolean", func(r *domain.Review) *bool { return &r.Tiered }),
		reviewdb.Fixed("base_amount_fen", "bigint", func(r *domain.Review) *int64 { return &r.BaseAmountFen }),
		reviewdb.Mutable("hardship_level", "text", func(r *domain.Review) *catalog.HardshipLevel { return &r.HardshipLevel }),
		reviewdb.MutableTime("notice_ends_at", func(r *domain.Review) *time.Time { return &r.NoticeEndsAt }),
		reviewdb.Mutable("objections", "int", func(r *domain.Review) *int32 { return &r.Objections }),
		reviewdb.Fixed("policy_version", "bigint", func(r *domain.Review) *int64 { return &r.PolicyVersion }),
		reviewdb.Fixed("register_version", "bigint", func(r *domain.Review) *int64 { return &r.RegisterVersion }),
		reviewdb.Fixed("tier_especially_difficult_fen", "bigint", func(r *domain.Review) *int64 { return &r.Tiers.EspeciallyDifficult }),
		reviewdb.Fixed("tier_difficult_fen", "bigint", func(r *domain.Review) *int64 { return &r.Tiers.Difficult }),
		reviewdb.Fixed("tier_generally_difficult_fen", "bigint", func(r *domain.Review) *int64 { return &r.Tiers.GenerallyDifficult }),
	},
}

// LockDueNotices loads and row-locks up to limit items whose notice ended by
// now, skipping rows another transaction holds (an objection being raised,
// or another instance's timer).
func LockDueNotices(ctx context.Context, tx db.Tx, now time.Time, limit int) ([]*domain.Review, error) {
	list, err := Reviews.Select(ctx, tx, `WHERE state = 'IN_NOTICE' AND notice_ends_at <= $1
		ORDER BY notice_ends_at LIMIT $2 FOR UPDATE SKIP LOCKED`, now, limit)
	if err != nil {
		return nil, fmt.Errorf("lock due notices: %w", err)
	}
	return list, nil
}
