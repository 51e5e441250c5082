package adapters

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/idnumber"
	"github.com/edubureau/studentaid/services/data-comparison/internal/domain"
)

// Import is one imported file: a version of its kind and scope.
type Import struct {
	ID         int64
	Kind       domain.RefKind
	Scope      string
	Version    int
	Rows       int64
	FileName   string
	ImportedBy string
	ImportedAt time.Time
	Current    bool
}

// BeginImport takes the next version of kind and scope (serialised per kind
// and scope by an advisory lock held to the end of tx) and records the
// import with no rows yet.
func BeginImport(ctx context.Context, tx db.Tx, im Import) (Import, error) {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('import:' || $1 || ':' || $2, 0))`, string(im.Kind), im.Scope); err != nil {
		return im, fmt.Errorf("lock imports of %s: %w", im.Kind, err)
	}
	err := tx.QueryRow(ctx, `INSERT INTO imports (kind, scope, version, rows, file_name, imported_by, imported_at)
		SELECT $1, $2, coalesce(max(version), 0) + 1, 0, $3, $4, $5 FROM imports WHERE kind = $1 AND scope = $2
		RETURNING id, version`, string(im.Kind), im.Scope, im.FileName, im.ImportedBy, im.ImportedAt).Scan(&im.ID, &im.Version)
	if err != nil {
		return im, fmt.Errorf("begin import of %s: %w", im.Kind, err)
	}
	im.Current = true
	return im, nil
}

// FinishImport records how many rows the import holds.
func FinishImport(ctx context.Context, tx db.Tx, id, rows int64) error {
	if _, err := tx.Exec(ctx, `UPDATE imports SET rows = $2 WHERE id = $1`, id, rows); err != nil {
		return fmt.Errorf("finish import %d: %w", id, err)
	}
	return nil
}

// HashedRow is a valid row with the keyed hashes of its ID number and name;
// the plaintext stays in memory only.
type HashedRow struct {
	domain.Row
	IDHash   string
	NameHash string
}

// RowSource yields the rows of a file; Next returns false at the end (or
// when the source stops, when Err says why).
type RowSource interface {
	Next() (HashedRow, bool)
	Err() error
}

// copySource adapts a RowSource to COPY, building each row's values.
type copySource struct {
	src    RowSource
	values func(HashedRow) []any
	row    HashedRow
}

func (c *copySource) Next() bool {
	r, ok := c.src.Next()
	c.row = r
	return ok
}
func (c *copySource) Values() ([]any, error) { return c.values(c.row), nil }
func (c *copySource) Err() error             { return c.src.Err() }

var refTables = map[domain.RefKind]struct {
	table   string
	columns []string
}{
	domain.RefRegistry:   {"registry_rows", []string{"import_id", "line", "id_hash", "household_id", "name_hash", "id_masked", "township"}},
	domain.RefKeyPersons: {"key_person_rows", []string{"import_id", "line", "id_hash", "name_hash", "id_masked", "relation", "unit"}},
	domain.RefRoster:     {"roster_rows", []string{"import_id", "line", "id_hash", "name_hash", "id_masked", "school_code", "term", "term_ord", "stage"}},
	domain.RefDeaths:     {"death_rows", []string{"import_id", "line", "id_hash", "name_hash", "id_masked", "event_date", "event_kind"}},
	domain.RefHistory: {"records", []string{"id", "origin", "import_id", "line", "student_id_hash", "student_id_masked", "school_code",
		"program_code", "term", "term_ord", "term_start", "stage", "applied_fen", "status", "paid_fen", "updated_at"}},
}

// CopyRows streams src into the table of im's kind with one COPY, holding
// one row at a time, and returns how many rows it wrote.
//
// A registry import's rows go into a partition of their own
// (copyRegistry). The other reference rows go first into a temporary table
// of the transaction (import_stage, dropped at its end: a temporary table
// needs only the database's TEMP privilege, no DDL in the service's
// schema), which has no index, and from there into the real table in one
// INSERT … SELECT sorted by the primary key (import_id, id_hash, line): the
// new version's index entries are appended in order rather than scattered
// over the index. The sort may use 256 MB before it spills to temporary
// files. History rows are records keyed by time-ordered UUIDs and
// go straight in.
func CopyRows(ctx context.Context, tx db.Tx, im Import, scope domain.Scope, src RowSource) (int64, error) {
	t := refTables[im.Kind]
	values := func(r HashedRow) []any {
		masked := idnumber.Mask(r.ID.String())
		switch im.Kind {
		case domain.RefRegistry:
			return []any{im.ID, r.Line, r.IDHash, r.HouseholdID, r.NameHash, masked, r.Township}
		case domain.RefKeyPersons:
			return []any{im.ID, r.Line, r.IDHash, r.NameHash, masked, r.Relation, r.Unit}
		case domain.RefRoster:
			return []any{im.ID, r.Line, r.IDHash, r.NameHash, masked, scope.SchoolCode, scope.Term.Name, scope.Term.Ord, string(r.Stage)}
		case domain.RefDeaths:
			return []any{im.ID, r.Line, r.IDHash, r.NameHash, masked, r.Date, r.EventKind}
		default:
			id, _ := uuid.NewV7()
			return []any{id, "imported", im.ID, r.Line, r.IDHash, masked, r.SchoolCode, r.ProgramCode, r.Term.Name, r.Term.Ord,
				r.Term.Start, string(r.Stage), r.AmountFen, "paid", r.AmountFen, im.ImportedAt}
		}
	}
	if im.Kind == domain.RefHistory {
		n, err := tx.CopyFrom(ctx, pgx.Identifier{t.table}, t.columns, &copySource{src: src, values: values})
		if err != nil {
			return n, fmt.Errorf("copy %s rows: %w", im.Kind, err)
		}
		return n, nil
	}
	if im.Kind == domain.RefRegistry {
		return copyRegistry(ctx, tx, im, src)
	}
	table := pgx.Identifier{t.table}.Sanitize()
	if _, err := tx.Exec(ctx, `SET LOCAL work_mem = '256MB'; CREATE TEMPORARY TABLE import_stage (LIKE `+table+`) ON COMMIT DROP`); err != nil {
		return 0, fmt.Errorf("stage %s rows: %w", im.Kind, err)
	}
	n, err := tx.CopyFrom(ctx, pgx.Identifier{"pg_temp", "import_stage"}, t.columns, &copySource{src: src, values: values})
	if err != nil {
		return n, fmt.Errorf("copy %s rows: %w", im.Kind, err)
	}
	quoted := make([]string, len(t.columns))
	for i, c := range t.columns {
		quoted[i] = pgx.Identifier{c}.Sanitize()
	}
	list := strings.Join(quoted, ", ")
	if _, err := tx.Exec(ctx, `INSERT INTO `+table+` (`+list+`) SELECT `+list+` FROM pg_temp.import_stage ORDER BY import_id, id_hash, line`); err != nil {
		return 0, fmt.Errorf("insert %s rows: %w", im.Kind, err)
	}
	return n, nil
}

// ListImports lists imports of kind (all kinds when empty), newest first,
// from before the cursor id (0: from the newest).
func ListImports(ctx context.Context, q db.Querier, kind domain.RefKind, before int64, limit int) ([]Import, error) {
	// Current when no later version of its kind and scope exists: one probe
	// of the (kind, scope, version) index per listed row. (Joining the
	// current_imports view instead computed the current version of every
	// kind and scope for each page: 250 ms at 20,000 imports.)
	rows, err := q.Query(ctx, `SELECT i.id, i.kind, i.scope, i.version, i.rows, i.file_name, i.imported_by, i.imported_at,
		NOT EXISTS (SELECT 1 FROM imports later WHERE later.kind = i.kind AND later.scope = i.scope AND later.version > i.version)
		FROM imports i
		WHERE ($1 = '' OR i.kind = $1) AND ($2 = 0 OR i.id < $2) ORDER BY i.id DESC LIMIT $3`, string(kind), before, limit)
	if err != nil {
		return nil, fmt.Errorf("list imports: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Import, error) {
		var im Import
		err := row.Scan(&im.ID, &im.Kind, &im.Scope, &im.Version, &im.Rows, &im.FileName, &im.ImportedBy, &im.ImportedAt, &im.Current)
		return im, err
	})
}

// copyRegistry writes a registry import's rows into a table of their own
// (migration 007): begin_registry_partition makes it, empty and unindexed,
// one COPY … FREEZE in text format fills it (rows frozen and all-visible at
// once: the table is new in this transaction, so no other transaction can
// see it before the commit), and finish_registry_partition builds its
// primary key in one sort and attaches it to registry_rows. Both functions
// run as the schema's owner; the service's role creates nothing itself.
func copyRegistry(ctx context.Context, tx db.Tx, im Import, src RowSource) (int64, error) {
	ct, ok := tx.(interface{ Conn() *pgx.Conn })
	if !ok {
		return 0, fmt.Errorf("copy %s rows: the transaction has no connection to COPY on", im.Kind)
	}
	var part string
	if err := tx.QueryRow(ctx, `SELECT begin_registry_partition($1)`, im.ID).Scan(&part); err != nil {
		return 0, fmt.Errorf("begin %s partition: %w", im.Kind, err)
	}
	r := &registryText{src: src, prefix: strconv.AppendInt(nil, im.ID, 10)}
	r.prefix = append(r.prefix, '\t')
	_, err := ct.Conn().PgConn().CopyFrom(ctx, r, `COPY `+pgx.Identifier{part}.Sanitize()+
		` (import_id, line, id_hash, household_id, name_hash, id_masked, township) FROM STDIN WITH (FREEZE)`)
	if err != nil {
		return r.rows, fmt.Errorf("copy %s rows: %w", im.Kind, err)
	}
	if _, err := tx.Exec(ctx, `SELECT finish_registry_partition($1)`, im.ID); err != nil {
		return 0, fmt.Errorf("index %s rows: %w", im.Kind, err)
	}
	return r.rows, nil
}

// registryText reads a RowSource as COPY's text format, one line a row.
type registryText struct {
	src    RowSource
	prefix []byte // the import's id and a tab
	buf    []byte
	rows   int64
	eof    bool
}

func (r *registryText) Read(p []byte) (int, error) {
	for len(r.buf) < len(p) && !r.eof {
		row, ok := r.src.Next()
		if !ok {
			r.eof = true
			break
		}
		b := r.buf
		b = append(b, r.prefix...)
		b = strconv.AppendInt(b, row.Line, 10)
		b = append(b, '\t')
		b = append(b, row.IDHash...)
		b = append(b, '\t')
		b = appendCopyText(b, row.HouseholdID)
		b = append(b, '\t')
		b = append(b, row.NameHash...)
		b = append(b, '\t')
		b = append(b, idnumber.Mask(row.ID.String())...)
		b = append(b, '\t')
		b = appendCopyText(b, row.Township)
		b = append(b, '\n')
		r.buf = b
		r.rows++
	}
	if len(r.buf) == 0 {
		if err := r.src.Err(); err != nil {
			return 0, err
		}
		return 0, io.EOF
	}
	n := copy(p, r.buf)
	r.buf = r.buf[:copy(r.buf, r.buf[n:])]
	return n, nil
}

// appendCopyText appends s escaped for COPY's text format: backslash, tab,
// newline and carriage return are the only bytes it gives a meaning to.
func appendCopyText(b []byte, s string) []byte {
	if !strings.ContainsAny(s, "\\\t\n\r") {
		return append(b, s...)
	}
	for i := range len(s) {
		switch c := s[i]; c {
		case '\\':
			b = append(b, '\\', '\\')
		case '\t':
			b = append(b, '\\', 't')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		default:
			b = append(b, c)
		}
	}
	return b
}
