package adapters

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/db"
)

// fact is one payment as the aggregates count it: its selection cells, its
// amount and what was recovered against it.
type fact struct {
	termRank                                   int
	program, school, stage, shares, studentIDH string
	government, loan                           bool
	amountFen, recoveredFen                    int64
}

func (f fact) net() int64 { return f.amountFen - f.recoveredFen }

// live: a grant payment still paid after refunds counts in persons and
// person-times.
func (f fact) live() bool { return !f.loan && f.net() > 0 }

const factSelect = `SELECT term_rank, program_code, school_code, stage, shares_bp::text, student_id_hash,
	government_total, loan, amount_fen, recovered_fen FROM payment_facts WHERE payment_id = $1`

// loadFact reads a recorded payment's fact, or false when the read model
// has no such payment (yet).
func loadFact(ctx context.Context, tx db.Tx, paymentID string) (fact, bool, error) {
	var f fact
	err := tx.QueryRow(ctx, factSelect, paymentID).Scan(&f.termRank, &f.program, &f.school, &f.stage, &f.shares, &f.studentIDH,
		&f.government, &f.loan, &f.amountFen, &f.recoveredFen)
	if errors.Is(err, pgx.ErrNoRows) {
		return f, false, nil
	}
	if err != nil {
		return f, false, fmt.Errorf("payment %s: %w", paymentID, err)
	}
	return f, true, nil
}

// moveFact replaces a payment's contribution to the aggregates: before
// (nil for a new payment) is taken out, after put in. It runs in the
// transaction that records the change, so the aggregates always equal
// rebuild_aggregates() of the rows.
func moveFact(ctx context.Context, tx db.Tx, before, after *fact) error {
	if before != nil {
		tag, err := tx.Exec(ctx, `UPDATE paid_groups SET payments = payments - 1, gross_fen = gross_fen - $9, recovered_fen = recovered_fen - $10
			WHERE term_rank = $1 AND program_code = $2 AND school_code = $3 AND stage = $4 AND government_total = $5 AND loan = $6
			  AND shares_bp = $7::jsonb AND net_fen = $8`,
			before.termRank, before.program, before.school, before.stage, before.government, before.loan, before.shares, before.net(),
			before.amountFen, before.recoveredFen)
		if err != nil {
			return fmt.Errorf("paid groups: %w", err)
		}
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("paid groups: %w", errOutOfStep)
		}
	}
	if after != nil {
		if _, err := tx.Exec(ctx, `INSERT INTO paid_groups AS g (term_rank, program_code, school_code, stage, government_total, loan,
			shares_bp, net_fen, payments, gross_fen, recovered_fen) VALUES ($1,$2,$3,$4,$5,$6,$7::jsonb,$8,1,$9,$10)
			ON CONFLICT (term_rank, program_code, school_code, stage, government_total, loan, shares_bp, net_fen) DO UPDATE
			SET payments = g.payments + 1, gross_fen = g.gross_fen + EXCLUDED.gross_fen,
			    recovered_fen = g.recovered_fen + EXCLUDED.recovered_fen`,
			after.termRank, after.program, after.school, after.stage, after.government, after.loan, after.shares, after.net(),
			after.amountFen, after.recoveredFen); err != nil {
			return fmt.Errorf("paid groups: %w", err)
		}
	}
	switch {
	case before != nil && before.live() && (after == nil || !after.live()):
		return personLeaves(ctx, tx, *before)
	case after != nil && after.live() && (before == nil || !before.live()):
		return personCounts(ctx, tx, *after)
	}
	return nil
}

// errOutOfStep: the aggregates lack a payment's contribution, which
// rebuild_aggregates() repairs.
var errOutOfStep = errors.New("aggregates out of step with the rows")

// scopes are the year scopes a live payment counts in.
func (f fact) scopes() []string {
	s := []string{"all", "program:" + f.program}
	if f.government {
		s = append(s, "government")
	}
	return s
}

// personCounts counts a payment that became live: its student is one more
// person in each year scope they were not live in yet.
func personCounts(ctx context.Context, tx db.Tx, f fact) error {
	if _, err := tx.Exec(ctx, `INSERT INTO person_terms AS t (term_rank, program_code, school_code, stage, government_total, student_id_hash, live)
		VALUES ($1,$2,$3,$4,$5,$6,1) ON CONFLICT (term_rank, program_code, school_code, stage, government_total, student_id_hash)
		DO UPDATE SET live = t.live + 1`,
		f.termRank, f.program, f.school, f.stage, f.government, f.studentIDH); err != nil {
		return fmt.Errorf("person terms: %w", err)
	}
	if _, err := tx.Exec(ctx, `WITH py AS (
		  INSERT INTO person_years AS t (year, scope, student_id_hash, live)
		  SELECT $1, s, $3, 1 FROM unnest($2::text[]) s
		  ON CONFLICT (year, scope, student_id_hash) DO UPDATE SET live = t.live + 1
		  RETURNING scope, live)
		INSERT INTO year_persons AS y (year, scope, persons)
		SELECT $1, scope, 1 FROM py WHERE live = 1
		ON CONFLICT (year, scope) DO UPDATE SET persons = y.persons + 1`,
		f.termRank/2, f.scopes(), f.studentIDH); err != nil {
		return fmt.Errorf("person years: %w", err)
	}
	return nil
}

// personLeaves uncounts a payment no longer live (refunded in full): its
// student is one person less in each year scope they have no other live
// payment in.
func personLeaves(ctx context.Context, tx db.Tx, f fact) error {
	tag, err := tx.Exec(ctx, `UPDATE person_terms SET live = live - 1
		WHERE term_rank = $1 AND program_code = $2 AND school_code = $3 AND stage = $4 AND government_total = $5 AND student_id_hash = $6`,
		f.termRank, f.program, f.school, f.stage, f.government, f.studentIDH)
	if err != nil {
		return fmt.Errorf("person terms: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("person terms: %w", errOutOfStep)
	}
	if _, err := tx.Exec(ctx, `WITH py AS (
		  UPDATE person_years SET live = live - 1 WHERE year = $1 AND scope = ANY($2) AND student_id_hash = $3
		  RETURNING scope, live)
		UPDATE year_persons y SET persons = y.persons - 1 FROM py WHERE y.year = $1 AND y.scope = py.scope AND py.live = 0`,
		f.termRank/2, f.scopes(), f.studentIDH); err != nil {
		return fmt.Errorf("person years: %w", err)
	}
	return nil
}

// RebuildAggregates replaces the aggregates by those computed from the
// rows (rebuild_aggregates() of migration 003).
func RebuildAggregates(ctx context.Context, tx db.Tx) error {
	_, err := tx.Exec(ctx, `SELECT rebuild_aggregates()`)
	return err
}
