package adapters

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/services/data-comparison/internal/domain"
)

// ExportRow is one aid record as the big-data office receives it.
type ExportRow struct {
	RecordID        string
	Origin          string
	StudentIDMasked string
	StudentIDHash   string
	SchoolCode      string
	ProgramCode     string
	Term            string
	Stage           string
	HardshipLevel   string
	PaidFen         int64
	PaymentID       string
}

// ExportRecords streams the paid records of a term range (chain payments
// and current imported history) to fn in term, school and record order,
// holding one row at a time.
func ExportRecords(ctx context.Context, q db.Querier, rng domain.TermRange, fn func(ExportRow) error) error {
	rows, err := q.Query(ctx, `SELECT id::text, origin, student_id_masked, student_id_hash, school_code, program_code, term, stage,
			hardship_level, paid_fen, payment_id
		FROM paid_records WHERE term_ord BETWEEN $1 AND $2 ORDER BY term_ord, school_code, program_code, id`, rng.From.Ord, rng.To.Ord)
	if err != nil {
		return fmt.Errorf("export records: %w", err)
	}
	defer rows.Close()
	var r ExportRow
	for rows.Next() {
		if err := rows.Scan(&r.RecordID, &r.Origin, &r.StudentIDMasked, &r.StudentIDHash, &r.SchoolCode, &r.ProgramCode, &r.Term,
			&r.Stage, &r.HardshipLevel, &r.PaidFen, &r.PaymentID); err != nil {
			return fmt.Errorf("export records: %w", err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("export records: %w", err)
	}
	return nil
}

// ClueRecord is what a returned clue needs of a record it names.
type ClueRecord struct {
	ID              string
	StudentIDHash   string
	StudentIDMasked string
	SchoolCode      string
	ProgramCode     string
	Term            string
	TermOrd         int
	PaidFen         int64
}

// ClueRecords reads the records with ids (any origin), keyed by ID.
func ClueRecords(ctx context.Context, q db.Querier, ids []string) (map[string]ClueRecord, error) {
	rows, err := q.Query(ctx, `SELECT id::text, student_id_hash, student_id_masked, school_code, program_code, term, term_ord, paid_fen
		FROM records WHERE id = ANY($1::uuid[])`, ids)
	if err != nil {
		return nil, fmt.Errorf("read records of clues: %w", err)
	}
	defer rows.Close()
	out := make(map[string]ClueRecord, len(ids))
	for rows.Next() {
		var r ClueRecord
		if err := rows.Scan(&r.ID, &r.StudentIDHash, &r.StudentIDMasked, &r.SchoolCode, &r.ProgramCode, &r.Term, &r.TermOrd, &r.PaidFen); err != nil {
			return nil, fmt.Errorf("read records of clues: %w", err)
		}
		out[r.ID] = r
	}
	return out, rows.Err()
}

// ClueList is one imported clue list of the big-data office.
type ClueList struct {
	ID         int64
	FileName   string
	Rows       int64
	Added      int64
	ImportedBy string
	ImportedAt time.Time
}

// BeginClueList records a clue list (serialised with other lists by an
// advisory lock held to the end of tx, so two imports of one list add its
// clues once).
func BeginClueList(ctx context.Context, tx db.Tx, l ClueList) (ClueList, error) {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('clue-list', 0))`); err != nil {
		return l, fmt.Errorf("lock clue lists: %w", err)
	}
	err := tx.QueryRow(ctx, `INSERT INTO clue_lists (file_name, rows, added, imported_by, imported_at) VALUES ($1, $2, 0, $3, $4) RETURNING id`,
		l.FileName, l.Rows, l.ImportedBy, l.ImportedAt).Scan(&l.ID)
	if err != nil {
		return l, fmt.Errorf("begin clue list: %w", err)
	}
	return l, nil
}

// FinishClueList records how many clues the list added.
func FinishClueList(ctx context.Context, tx db.Tx, id, added int64) error {
	if _, err := tx.Exec(ctx, `UPDATE clue_lists SET added = $2 WHERE id = $1`, id, added); err != nil {
		return fmt.Errorf("finish clue list %d: %w", id, err)
	}
	return nil
}

// ReturnedClue is one clue of a list, to insert.
type ReturnedClue struct {
	NaturalKey string
	NewClue
	StudentIDMasked string
}

// InsertReturnedClues inserts the clues of list l not known before (by
// natural key), in one statement, and returns those it added in the order
// given.
func InsertReturnedClues(ctx context.Context, tx db.Tx, l ClueList, cs []ReturnedClue) ([]NewClue, error) {
	n := len(cs)
	ids, keys, kinds, hashes, masked := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	schools, programs, terms, details, records := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	amounts, ords := make([]int64, n), make([]int64, n)
	for i, c := range cs {
		ids[i], keys[i], kinds[i], hashes[i], masked[i] = c.ID, c.NaturalKey, string(c.Kind), c.StudentIDHash, c.StudentIDMasked
		schools[i], programs[i], terms[i], details[i] = c.SchoolCode, c.ProgramCode, c.Term, c.Detail
		records[i] = "{" + strings.Join(c.RecordIDs, ",") + "}"
		amounts[i], ords[i] = c.AmountFen, int64(i)
	}
	rows, err := tx.Query(ctx, `INSERT INTO clues (id, natural_key, kind, origin, clue_list_id, status, student_id_hash, student_id_masked,
			school_code, program_code, term, amount_fen, detail, record_ids, refs, trail_length, trail_head, created_at, updated_at)
		SELECT u.id, u.nk, u.kind, 'big_data_office', $1, 'open', u.hash, u.masked, u.school, u.program, u.term, u.amount, u.detail,
			u.records::uuid[], '[]', 0, '', $2, $2
		FROM unnest($3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::bigint[],
			$12::text[], $13::text[], $14::bigint[]) AS u (id, nk, kind, hash, masked, school, program, term, amount, detail, records, ord)
		ORDER BY u.ord
		ON CONFLICT (natural_key) DO NOTHING
		RETURNING id::text`, l.ID, l.ImportedAt, ids, keys, kinds, hashes, masked, schools, programs, terms, amounts, details, records, ords)
	if err != nil {
		return nil, fmt.Errorf("insert returned clues: %w", err)
	}
	added, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("insert returned clues: %w", err)
	}
	isAdded := make(map[string]bool, len(added))
	for _, id := range added {
		isAdded[id] = true
	}
	out := make([]NewClue, 0, len(added))
	for _, c := range cs {
		if isAdded[c.ID] {
			out = append(out, c.NewClue)
		}
	}
	return out, nil
}
