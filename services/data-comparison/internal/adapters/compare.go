package adapters

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/services/data-comparison/internal/domain"
)

// Current is the reference versions a run compares against: the current
// import of each city-wide kind (0 when there is none) and every import.
type Current struct {
	Registry, KeyPersons, Deaths int64
	All                          []int64
}

// CurrentImports reads the versions comparisons use now.
func CurrentImports(ctx context.Context, q db.Querier) (Current, error) {
	c := Current{All: []int64{}}
	rows, err := q.Query(ctx, `SELECT id, kind FROM current_imports ORDER BY id`)
	if err != nil {
		return c, fmt.Errorf("read current imports: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id   int64
			kind string
		)
		if err := rows.Scan(&id, &kind); err != nil {
			return c, err
		}
		c.All = append(c.All, id)
		switch domain.RefKind(kind) {
		case domain.RefRegistry:
			c.Registry = id
		case domain.RefKeyPersons:
			c.KeyPersons = id
		case domain.RefDeaths:
			c.Deaths = id
		case domain.RefRoster, domain.RefHistory:
		}
	}
	return c, rows.Err()
}

// Run is one comparison run.
type Run struct {
	ID         int64
	From, To   domain.Term
	Records    int64
	NewClues   map[string]int64
	ImportIDs  []int64
	RunBy      string
	StartedAt  time.Time
	FinishedAt time.Time
}

// setRunMemory is what a run's transaction may use per sort or hash, and
// no merge joins: every join of a run is of millions of rows with a hash
// key, and the planner's merge joins sorted both sides to disk (rosters on
// school and term, the missed children on hash and term; docs/performance.md).
const setRunMemory = `SET LOCAL work_mem = '512MB'; SET LOCAL enable_mergejoin = off`

// BeginRun records a run and counts the payment records it compares. The
// run's statements join millions of rows: hash tables and sorts of the
// transaction may take 512 MB each (work_mem; hash tables twice that, by
// hash_mem_multiplier) before they spill to temporary files.
func BeginRun(ctx context.Context, tx db.Tx, r Run) (Run, error) {
	if _, err := tx.Exec(ctx, setRunMemory); err != nil {
		return r, fmt.Errorf("begin run: %w", err)
	}
	err := tx.QueryRow(ctx, `INSERT INTO runs (from_term, to_term, import_ids, run_by, started_at,
			records) VALUES ($1, $2, $3, $4, $5, (SELECT count(*) FROM paid_records WHERE term_ord BETWEEN $6 AND $7))
		RETURNING id, records`, r.From.Name, r.To.Name, r.ImportIDs, r.RunBy, r.StartedAt, r.From.Ord, r.To.Ord).Scan(&r.ID, &r.Records)
	if err != nil {
		return r, fmt.Errorf("begin run: %w", err)
	}
	return r, nil
}

// FinishRun records what a run found.
func FinishRun(ctx context.Context, tx db.Tx, r Run) error {
	if _, err := tx.Exec(ctx, `UPDATE runs SET new_clues = $2, finished_at = $3 WHERE id = $1`, r.ID, r.NewClues, r.FinishedAt); err != nil {
		return fmt.Errorf("finish run %d: %w", r.ID, err)
	}
	return nil
}

// NewClue is a clue a statement added.
type NewClue struct {
	ID            string
	Kind          domain.ClueKind
	StudentIDHash string
	SchoolCode    string
	ProgramCode   string
	Term          string
	AmountFen     int64
	Detail        string
	RecordIDs     []string
}

// Standard is a program's standard for a stage and level, as the comparison
// joins it; Level "*" matches every level (non-tiered programs), Level ""
// is the highest tier (for records whose level is not known).
type Standard struct {
	Program, Stage, Level string
	Fen                   int64
}

// Entitlement is what a registry child at a stage is owed per term.
type Entitlement struct {
	Stage, Program string
	Fen            int64
}

// Rules are the catalog's rules the comparison applies, as parameters.
type Rules struct {
	RegistryPrograms []string
	Standards        []Standard
	Entitlements     []Entitlement
}

// clueColumns is what each finding statement selects, in this order: the
// natural key, the person (hash, masked), school, program, term, amount,
// detail, the records and the reference rows behind it.
const insertFound = `INSERT INTO clues (id, natural_key, kind, origin, run_id, status, student_id_hash, student_id_masked,
		school_code, program_code, term, amount_fen, detail, record_ids, refs, trail_length, trail_head, created_at, updated_at)
	SELECT gen_random_uuid(), f.nk, $5, 'comparison', $3, 'open', f.hash, f.masked, f.school, f.program, f.term, f.amount,
		f.detail, f.record_ids, f.refs, 0, '', $4, $4
	FROM (%s) AS f (nk, hash, masked, school, program, term, amount, detail, record_ids, refs)
	ON CONFLICT (natural_key) DO NOTHING
	RETURNING id::text, kind, student_id_hash, school_code, program_code, term, amount_fen, detail, record_ids::text[]`

// refJSON names one reference row (line 0: the version as a whole, for a
// person found missing from it).
func refJSON(alias, line string) string {
	return `jsonb_build_object('import_id', ` + alias + `.id, 'kind', ` + alias + `.kind, 'version', ` + alias + `.version, 'line', ` + line + `)`
}

const recordCols = `p.student_id_hash, p.student_id_masked, p.school_code, p.program_code, p.term`

// findings are the statements of each clue kind. Parameters: $1 and $2 the
// term range's order, $3 the run, $4 the time, $5 the kind; from $6 the
// kind's own.
var findings = map[domain.ClueKind]string{
	// The same person, program and term paid more than once. The amount is
	// everything beyond one payment. The groups paid more than once are
	// found first with a count alone, so the details are built only for
	// them.
	domain.KindDuplicatePayment: `SELECT 'duplicate_payment|' || p.student_id_hash || '|' || p.program_code || '|' || p.term,
		p.student_id_hash, min(p.student_id_masked), min(p.school_code), p.program_code, p.term,
		sum(p.paid_fen) - max(p.paid_fen),
		format('paid %s times for %s in %s, by %s: %s', count(*), p.program_code, p.term,
			CASE WHEN count(DISTINCT p.school_code) > 1 THEN count(DISTINCT p.school_code) || ' schools' ELSE 'one school' END,
			string_agg(DISTINCT p.school_code, ', ' ORDER BY p.school_code)),
		array_agg(p.id ORDER BY p.updated_at, p.id), '[]'::jsonb
	FROM paid_records p
		JOIN (SELECT student_id_hash, program_code, term FROM paid_records WHERE term_ord BETWEEN $1 AND $2
			GROUP BY student_id_hash, program_code, term HAVING count(*) > 1) d
		ON d.student_id_hash = p.student_id_hash AND d.program_code = p.program_code AND d.term = p.term
	WHERE p.term_ord BETWEEN $1 AND $2
	GROUP BY p.student_id_hash, p.program_code, p.term`,

	// A program for registered poor households paid to a person not in the
	// registry ($6 the registry import, $7 the programs).
	domain.KindIneligible: `SELECT 'ineligible|' || p.id, ` + recordCols + `, p.paid_fen,
		format('%s is for registered poor households (建档立卡); the person is not in the poverty registry (version %s)', p.program_code, c.version),
		ARRAY[p.id], jsonb_build_array(` + refJSON("c", "0") + `)
	FROM paid_records p JOIN imports c ON c.id = $6
	WHERE p.term_ord BETWEEN $1 AND $2 AND p.program_code = ANY($7::text[])
		AND NOT EXISTS (SELECT 1 FROM registry_rows g WHERE g.import_id = $6 AND g.id_hash = p.student_id_hash)`,

	// The person is on the key-persons list ($6 its import).
	domain.KindKeyPerson: `SELECT 'key_person|' || p.id, ` + recordCols + `, p.paid_fen,
		'on the key-persons list (重点对象): ' || string_agg(k.relation || CASE WHEN k.unit <> '' THEN ', ' || k.unit ELSE '' END, '; ' ORDER BY k.line),
		ARRAY[p.id], jsonb_agg(` + refJSON("c", "k.line") + ` ORDER BY k.line)
	FROM paid_records p JOIN key_person_rows k ON k.import_id = $6 AND k.id_hash = p.student_id_hash JOIN imports c ON c.id = $6
	WHERE p.term_ord BETWEEN $1 AND $2
	GROUP BY p.id, ` + recordCols + `, p.paid_fen`,

	// The paying school's roster for the term exists and does not list the
	// person. The current rosters (a few thousand) are joined on their
	// school and term, a hash join, rather than on a scope built from each
	// record.
	domain.KindNotEnrolled: `SELECT 'not_enrolled|' || p.id, ` + recordCols + `, p.paid_fen,
		format('not on the enrolment roster of %s for %s (version %s)', p.school_code, p.term, c.version),
		ARRAY[p.id], jsonb_build_array(` + refJSON("c", "0") + `)
	FROM paid_records p JOIN (SELECT i.id, i.kind, i.version, split_part(i.scope, '/', 1) AS school, split_part(i.scope, '/', 2) AS term
			FROM current_imports i WHERE i.kind = 'roster') c ON c.school = p.school_code AND c.term = p.term
	WHERE p.term_ord BETWEEN $1 AND $2
		AND NOT EXISTS (SELECT 1 FROM roster_rows r WHERE r.import_id = c.id AND r.id_hash = p.student_id_hash)`,

	// The person died or was deregistered before the term began ($6 the
	// deaths import).
	domain.KindDeceased: `SELECT 'deceased|' || p.id, ` + recordCols + `, p.paid_fen,
		format('recorded as %s before %s began on %s', string_agg(d.event_kind || ' on ' || d.event_date, '; ' ORDER BY d.line), p.term, p.term_start),
		ARRAY[p.id], jsonb_agg(` + refJSON("c", "d.line") + ` ORDER BY d.line)
	FROM paid_records p JOIN death_rows d ON d.import_id = $6 AND d.id_hash = p.student_id_hash AND d.event_date < p.term_start
		JOIN imports c ON c.id = $6
	WHERE p.term_ord BETWEEN $1 AND $2
	GROUP BY p.id, ` + recordCols + `, p.paid_fen, p.term_start`,

	// More paid than the standard ($6..$9 the standards).
	domain.KindAboveStandard: `SELECT 'above_standard|' || p.id, ` + recordCols + `, p.paid_fen - s.fen,
		format('paid %s fen; the standard of %s for %s%s is %s fen', p.paid_fen, p.program_code, p.stage,
			CASE WHEN s.level NOT IN ('*', '') THEN ' at level ' || s.level ELSE '' END, s.fen),
		ARRAY[p.id], '[]'::jsonb
	FROM paid_records p JOIN unnest($6::text[], $7::text[], $8::text[], $9::bigint[]) AS s (program, stage, level, fen)
		ON s.program = p.program_code AND s.stage = p.stage AND (s.level = '*' OR s.level = p.hardship_level)
	WHERE p.term_ord BETWEEN $1 AND $2 AND p.paid_fen > s.fen`,

	// A registry child on a roster paid nothing that term ($6 the registry
	// import, $7..$9 the entitlements by stage).
	domain.KindMissed: `SELECT 'missed|' || ro.id_hash || '|' || ro.term, ro.id_hash, min(ro.id_masked), min(ro.school_code),
		min(e.program), ro.term, min(e.fen),
		format('in the poverty registry and on the roster of %s for %s, but paid nothing that term (应助未助)',
			string_agg(DISTINCT ro.school_code, ', ' ORDER BY ro.school_code), ro.term),
		'{}'::uuid[],
		jsonb_agg(DISTINCT ` + refJSON("rc", "ro.line") + `) || jsonb_agg(DISTINCT ` + refJSON("gc", "g.line") + `)
	FROM roster_rows ro JOIN current_imports rc ON rc.id = ro.import_id
		JOIN registry_rows g ON g.import_id = $6 AND g.id_hash = ro.id_hash JOIN imports gc ON gc.id = $6
		JOIN unnest($7::text[], $8::text[], $9::bigint[]) AS e (stage, program, fen) ON e.stage = ro.stage
	WHERE ro.term_ord BETWEEN $1 AND $2
		AND NOT EXISTS (SELECT 1 FROM paid_records p WHERE p.student_id_hash = ro.id_hash AND p.term = ro.term)
	GROUP BY ro.id_hash, ro.term`,
}

// FindClues runs the statement of kind over the run's range and returns the
// clues it added: a clue whose natural key exists already is not added
// again. A kind whose reference data is missing finds nothing.
func FindClues(ctx context.Context, tx db.Tx, r Run, kind domain.ClueKind, cur Current, rules Rules) ([]NewClue, error) {
	if _, known := findings[kind]; !known {
		return nil, fmt.Errorf("no comparison for clue kind %s", kind)
	}
	sql, args, ok := findStatement(r, kind, cur, rules)
	if !ok {
		return nil, nil
	}
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("find %s clues: %w", kind, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (NewClue, error) {
		var c NewClue
		err := row.Scan(&c.ID, &c.Kind, &c.StudentIDHash, &c.SchoolCode, &c.ProgramCode, &c.Term, &c.AmountFen, &c.Detail, &c.RecordIDs)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("find %s clues: %w", kind, err)
	}
	return out, nil
}

// findStatement is the statement of kind and its arguments; false when the
// kind's reference data is missing (or the kind has no statement).
func findStatement(r Run, kind domain.ClueKind, cur Current, rules Rules) (string, []any, bool) {
	args := []any{r.From.Ord, r.To.Ord, r.ID, r.StartedAt, string(kind)}
	switch kind {
	case domain.KindDuplicatePayment, domain.KindNotEnrolled:
	case domain.KindIneligible:
		if cur.Registry == 0 {
			return "", nil, false
		}
		args = append(args, cur.Registry, rules.RegistryPrograms)
	case domain.KindKeyPerson:
		if cur.KeyPersons == 0 {
			return "", nil, false
		}
		args = append(args, cur.KeyPersons)
	case domain.KindDeceased:
		if cur.Deaths == 0 {
			return "", nil, false
		}
		args = append(args, cur.Deaths)
	case domain.KindAboveStandard:
		var programs, stages, levels []string
		var fens []int64
		for _, s := range rules.Standards {
			programs, stages, levels, fens = append(programs, s.Program), append(stages, s.Stage), append(levels, s.Level), append(fens, s.Fen)
		}
		args = append(args, programs, stages, levels, fens)
	case domain.KindMissed:
		if cur.Registry == 0 {
			return "", nil, false
		}
		var stages, programs []string
		var fens []int64
		for _, e := range rules.Entitlements {
			stages, programs, fens = append(stages, e.Stage), append(programs, e.Program), append(fens, e.Fen)
		}
		args = append(args, cur.Registry, stages, programs, fens)
	default:
		return "", nil, false
	}
	return fmt.Sprintf(insertFound, findings[kind]), args, true
}

// ExplainFindings runs the statement of kind under EXPLAIN (ANALYZE,
// BUFFERS) in tx (which the caller rolls back: the statement inserts) and
// returns the plan's lines, for the measurements in docs/performance.md.
func ExplainFindings(ctx context.Context, tx db.Tx, r Run, kind domain.ClueKind, cur Current, rules Rules) ([]string, error) {
	sql, args, ok := findStatement(r, kind, cur, rules)
	if !ok {
		return []string{"(no reference data: nothing to find)"}, nil
	}
	if _, err := tx.Exec(ctx, setRunMemory); err != nil {
		return nil, fmt.Errorf("explain %s: %w", kind, err)
	}
	rows, err := tx.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) "+sql, args...)
	if err != nil {
		return nil, fmt.Errorf("explain %s: %w", kind, err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
