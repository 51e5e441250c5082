package adapters

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/catalog"
	"github.com/edubureau/studentaid/services/data-comparison/internal/domain"
)

// FlagTarget is an application the service knows, as the flags need it.
type FlagTarget struct {
	ApplicationID string
	ProgramCode   string
	// HasRoster is whether the school's roster for the term was imported.
	HasRoster bool
	Stage     string
	Term      domain.Term
	// BirthMonth is the first of the student's birth month; zero when the
	// submission did not carry it.
	BirthMonth time.Time
}

// Flag is one flag of one application.
type Flag struct {
	ApplicationID string
	Kind          catalog.FlagKind
	Detail        string
	Refs          []domain.RefRow
}

// flagsQuery finds every flag of the applications $1 in one statement: one
// branch per kind, each a join or anti-join on the hashed ID columns'
// indexes, for the whole batch, against the current version of each
// reference kind (looked up on imports' unique index). $2 the registry
// programs, $3..$6 the standards (program, stage, level, fen; see Standard).
// The registry's version is compared with a scalar subquery, not c.id: the
// executor then reads only that version's partition of registry_rows
// (pruned on the subquery's value), where a join column would probe every
// version's index.
var flagsQuery = `WITH a AS MATERIALIZED (
		SELECT id, student_id_hash, school_code, program_code, term, term_ord, term_start, stage, hardship_level, applied_fen
		FROM records WHERE id = ANY($1::uuid[]) AND origin = 'chain'),
	reg AS (` + currentCityWide(domain.RefRegistry) + `),
	kp AS (` + currentCityWide(domain.RefKeyPersons) + `),
	dth AS (` + currentCityWide(domain.RefDeaths) + `)
	SELECT a.id::text, 'not_in_registry',
		format('%s is for registered poor households (建档立卡); the student is not in the poverty registry (version %s)', a.program_code, c.version),
		jsonb_build_array(` + refJSON("c", "0") + `)
	FROM a CROSS JOIN reg c
	WHERE a.program_code = ANY($2::text[])
		AND NOT EXISTS (SELECT 1 FROM registry_rows g WHERE g.id_hash = a.student_id_hash AND g.import_id = (SELECT id FROM reg))
	UNION ALL
	SELECT a.id::text, 'other_school_same_term',
		format('in %s also %s', a.term, string_agg(DISTINCT
			CASE o.origin WHEN 'imported' THEN 'paid by ' || o.school_code || ' (' || o.program_code || ', imported history)'
				WHEN 'chain' THEN CASE o.status WHEN 'paid' THEN 'paid' ELSE 'applied for' END || ' at ' || o.school_code || ' (' || o.program_code || ')' END,
			'; ')),
		'[]'::jsonb
	FROM a JOIN records o ON o.student_id_hash = a.student_id_hash AND o.term_ord = a.term_ord AND o.school_code <> a.school_code
	WHERE (o.origin = 'chain' AND o.status <> 'rejected')
		OR (o.origin = 'imported' AND o.import_id = (SELECT h.id FROM imports h WHERE h.kind = 'history'
			AND h.scope = (SELECT s.scope FROM imports s WHERE s.id = o.import_id) ORDER BY h.version DESC LIMIT 1))
	GROUP BY a.id, a.term
	UNION ALL
	SELECT a.id::text, 'key_person_relative',
		'on the key-persons list (重点对象): ' || string_agg(k.relation || CASE WHEN k.unit <> '' THEN ', ' || k.unit ELSE '' END, '; ' ORDER BY k.line),
		jsonb_agg(` + refJSON("c", "k.line") + ` ORDER BY k.line)
	FROM a CROSS JOIN kp c JOIN key_person_rows k ON k.id_hash = a.student_id_hash AND k.import_id = c.id
	GROUP BY a.id
	UNION ALL
	SELECT a.id::text, 'not_on_roster',
		format('not on the enrolment roster of %s for %s (version %s)', a.school_code, a.term, c.version),
		jsonb_build_array(` + refJSON("c", "0") + `)
	FROM a CROSS JOIN LATERAL (SELECT i.id, i.kind, i.version FROM imports i WHERE i.kind = 'roster' AND i.scope = a.school_code || '/' || a.term
		ORDER BY i.version DESC LIMIT 1) c
	WHERE NOT EXISTS (SELECT 1 FROM roster_rows r WHERE r.id_hash = a.student_id_hash AND r.import_id = c.id)
	UNION ALL
	SELECT a.id::text, 'deceased',
		'recorded as ' || string_agg(d.event_kind || CASE WHEN d.event_date < a.term_start THEN ' before ' ELSE ' after ' END || a.term || ' began',
			'; ' ORDER BY d.line),
		jsonb_agg(` + refJSON("c", "d.line") + ` ORDER BY d.line)
	FROM a CROSS JOIN dth c JOIN death_rows d ON d.id_hash = a.student_id_hash AND d.import_id = c.id
	GROUP BY a.id, a.term
	UNION ALL
	SELECT a.id::text, 'above_standard',
		format('applies for %s fen; the standard of %s for %s%s is %s fen', a.applied_fen, a.program_code, a.stage,
			CASE WHEN s.level NOT IN ('*', '') THEN ' at level ' || s.level ELSE '' END, s.fen),
		'[]'::jsonb
	FROM a JOIN unnest($3::text[], $4::text[], $5::text[], $6::bigint[]) AS s (program, stage, level, fen)
		ON s.program = a.program_code AND s.stage = a.stage AND (s.level = '*' OR s.level = a.hardship_level)
	WHERE a.applied_fen > s.fen`

// currentCityWide selects the current import of a city-wide kind (none
// when there is none).
func currentCityWide(kind domain.RefKind) string {
	return `SELECT id, kind, version FROM imports WHERE kind = '` + string(kind) + `' AND scope = '' ORDER BY version DESC LIMIT 1`
}

// targetsQuery reads which of $1 are chain records the service holds, with
// whether the school's roster for the term was imported, and what the age
// check needs (the age is checked on these rows, see app.ListFlags).
const targetsQuery = `SELECT a.id::text, a.program_code, EXISTS (SELECT 1 FROM imports i WHERE i.kind = 'roster' AND i.scope = a.school_code || '/' || a.term),
		a.stage, a.term, a.term_ord, a.term_start, a.birth_month
	FROM records a WHERE a.id = ANY($1::uuid[]) AND a.origin = 'chain'`

// cityWideQuery reads the current import of each city-wide kind.
const cityWideQuery = `SELECT DISTINCT ON (kind) id, kind FROM imports
	WHERE scope = '' AND kind IN ('poverty_registry', 'key_persons', 'deaths') ORDER BY kind, version DESC`

// Flags are what ListFlags read: the current city-wide versions, the
// applications known and their flags.
type Flags struct {
	Current Current
	Targets []FlagTarget
	Flags   []Flag
}

// ListFlags finds the flags of the applications ids against the current
// reference versions: three statements sent at once (one round trip) in one
// read-only repeatable-read transaction, so they see one snapshot. A kind
// whose reference data is missing finds nothing.
func ListFlags(ctx context.Context, b Batcher, ids []string, rules Rules) (Flags, error) {
	var out Flags
	n := len(rules.Standards)
	programs, stages, levels, fens := make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]int64, 0, n)
	for _, s := range rules.Standards {
		programs, stages, levels, fens = append(programs, s.Program), append(stages, s.Stage), append(levels, s.Level), append(fens, s.Fen)
	}
	batch := &pgx.Batch{}
	batch.Queue(`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`)
	batch.Queue(cityWideQuery).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var (
				id   int64
				kind string
			)
			if err := rows.Scan(&id, &kind); err != nil {
				return err
			}
			switch domain.RefKind(kind) {
			case domain.RefRegistry:
				out.Current.Registry = id
			case domain.RefKeyPersons:
				out.Current.KeyPersons = id
			case domain.RefDeaths:
				out.Current.Deaths = id
			case domain.RefRoster, domain.RefHistory:
			}
		}
		return rows.Err()
	})
	batch.Queue(targetsQuery, ids).Query(func(rows pgx.Rows) error {
		var err error
		out.Targets, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (FlagTarget, error) {
			var (
				t     FlagTarget
				birth *time.Time
			)
			err := row.Scan(&t.ApplicationID, &t.ProgramCode, &t.HasRoster, &t.Stage, &t.Term.Name, &t.Term.Ord, &t.Term.Start, &birth)
			if birth != nil {
				t.BirthMonth = *birth
			}
			return t, err
		})
		return err
	})
	batch.Queue(flagsQuery, ids, rules.RegistryPrograms, programs, stages, levels, fens).Query(func(rows pgx.Rows) error {
		var err error
		out.Flags, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Flag, error) {
			var f Flag
			err := row.Scan(&f.ApplicationID, &f.Kind, &f.Detail, &f.Refs)
			return f, err
		})
		return err
	})
	batch.Queue(`COMMIT`)
	if err := b.SendBatch(ctx, batch).Close(); err != nil {
		return Flags{}, fmt.Errorf("list flags: %w", err)
	}
	return out, nil
}

// Batcher sends a batch of statements (a pool or a connection).
type Batcher interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}
