package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/audit"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/sheet"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	"github.com/edubureau/studentaid/services/data-comparison/internal/adapters"
	"github.com/edubureau/studentaid/services/data-comparison/internal/domain"
)

// ImportRequest is one file to import.
type ImportRequest struct {
	Kind       domain.RefKind
	SchoolCode string
	Term       string
	Source     string
	Encoding   string
	FileName   string
	Content    []byte
	ServerPath string
}

// ImportResult says whether the file was imported and, if not, why.
type ImportResult struct {
	Imported    bool
	Import      adapters.Import
	BadRows     []domain.BadRow
	BadRowCount int64
}

// MaxListedBadRows bounds the bad rows a refusal lists (and keeps in memory).
const MaxListedBadRows = 100_000

// Import imports one file, all or nothing: every row is validated while it
// streams into one COPY inside one transaction; a file with any bad row is
// rolled back and refused with its bad rows listed. Memory stays bounded by
// one row (and the bad rows listed).
func (s *Service) Import(ctx context.Context, by auth.Identity, req ImportRequest) (ImportResult, error) {
	scope, name, err := s.checkImport(req)
	if err != nil {
		return ImportResult{}, err
	}
	in, closeIn, err := s.openImport(req)
	if err != nil {
		return ImportResult{}, err
	}
	defer closeIn()
	rows, closeRows, err := sheet.Open(in, req.Encoding)
	if err != nil {
		return ImportResult{}, err
	}
	defer closeRows()
	src := &fileSource{s: s, r: rows, kind: req.Kind}
	defer src.stop()

	var res ImportResult
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		im, err := adapters.BeginImport(ctx, tx, adapters.Import{Kind: req.Kind, Scope: scope.Key(req.Kind), FileName: name,
			ImportedBy: by.UserID, ImportedAt: s.clock()})
		if err != nil {
			return err
		}
		if err := src.readHeader(); err != nil {
			return err
		}
		n, err := adapters.CopyRows(ctx, tx, im, scope, src)
		if err != nil && src.badCount == 0 {
			return err
		}
		if src.badCount > 0 || n == 0 {
			if n == 0 && src.badCount == 0 {
				src.bad(domain.BadRow{Line: 2, Reason: "the file has no rows"})
			}
			res = ImportResult{BadRows: src.badRows, BadRowCount: src.badCount}
			return errRefused
		}
		im.Rows = n
		if err := adapters.FinishImport(ctx, tx, im.ID, n); err != nil {
			return err
		}
		res = ImportResult{Imported: true, Import: im}
		ev, err := events.New(im.ImportedAt, actorOf(by), events.Keys{}, &eventsv1.ReferenceImported{
			ImportId: im.ID, Kind: string(im.Kind), Scope: im.Scope, Version: int32(im.Version), Rows: n}) //nolint:gosec // versions are small
		if err != nil {
			return err
		}
		return appendEvents(ctx, tx, ev)
	})
	if errors.Is(err, errRefused) {
		actx := context.WithoutCancel(ctx)
		if aerr := audit.Record(actx, s.pool, audit.Entry{Method: "ImportReference", Outcome: "refused", Rule: "import-has-bad-rows",
			Detail: fmt.Sprintf("%s file %q refused: %d bad rows", req.Kind, name, res.BadRowCount)}); aerr != nil {
			return res, fmt.Errorf("audit refused import: %w", aerr)
		}
		return res, nil
	}
	return res, err
}

// errRefused rolls back a file with bad rows.
var errRefused = errors.New("import refused")

func (s *Service) checkImport(req ImportRequest) (domain.Scope, string, error) {
	var v apperr.Violations
	var scope domain.Scope
	if _, ok := domain.RefColumns[req.Kind]; !ok {
		v.Addf("kind", "is required: poverty_registry, key_persons, roster, deaths or history")
	}
	switch req.Kind {
	case domain.RefRoster:
		v.CheckCode("school_code", req.SchoolCode)
		scope.SchoolCode = req.SchoolCode
		t, err := domain.ParseTerm(req.Term)
		if err != nil {
			v.Addf("term", "%v", err)
		}
		scope.Term = t
	case domain.RefHistory:
		scope.Source = checkText(&v, "source", req.Source, 100, true)
	case domain.RefRegistry, domain.RefKeyPersons, domain.RefDeaths:
	}
	switch strings.ToLower(req.Encoding) {
	case "", "utf-8", "utf8", "gb18030", "gbk":
	default:
		v.Addf("encoding", "must be utf-8 or gb18030 (or empty to detect)")
	}
	switch {
	case len(req.Content) > 0 && req.ServerPath != "":
		v.Addf("server_path", "give either content or server_path, not both")
	case len(req.Content) == 0 && req.ServerPath == "":
		v.Addf("content", "is empty: send the file, or name it with server_path")
	case req.ServerPath != "" && s.cfg.ImportDir == "":
		v.Addf("server_path", "server-side imports are off: set DATA_COMPARISON_IMPORT_DIR")
	case req.ServerPath != "" && !filepath.IsLocal(req.ServerPath):
		v.Addf("server_path", "must be a relative path inside the import directory")
	}
	name := checkText(&v, "file_name", req.FileName, 200, false)
	if name == "" {
		name = filepath.Base(req.ServerPath)
	}
	return scope, name, v.Err()
}

func (s *Service) openImport(req ImportRequest) (io.Reader, func(), error) {
	if req.ServerPath == "" {
		return strings.NewReader(string(req.Content)), func() {}, nil
	}
	root, err := os.OpenRoot(s.cfg.ImportDir)
	if err != nil {
		return nil, nil, fmt.Errorf("open import directory: %w", err)
	}
	f, err := root.Open(req.ServerPath)
	if err != nil {
		_ = root.Close()
		var v apperr.Violations
		v.Addf("server_path", "no such file in the import directory")
		return nil, nil, v.Err()
	}
	return f, func() { _ = f.Close(); _ = root.Close() }, nil
}

// fileSource validates and hashes a file's rows for COPY. A reader
// goroutine reads the file in chunks of importChunk records, importWorkers
// goroutines validate and hash the chunks, and Next hands the rows on in
// the file's order. After the first bad row it yields nothing more but
// reads on, so every bad row is listed. Memory stays bounded by the chunks
// in flight.
type fileSource struct {
	s        *Service
	r        sheet.Rows
	kind     domain.RefKind
	header   domain.Header
	line     int64
	badRows  []domain.BadRow
	badCount int64
	err      error

	started bool
	order   chan chan []checked // chunks in file order, each filled by a worker
	done    chan struct{}
	exited  chan struct{}
	cur     []checked
}

// checked is one record after its check: a valid row, its bad rows, or
// nothing (a blank line, the end, or a read error that stops the file).
type checked struct {
	row  adapters.HashedRow
	ok   bool
	bad  []domain.BadRow
	err  error
	line int64
}

const (
	importChunk   = 512
	importWorkers = 2
)

func (f *fileSource) bad(b ...domain.BadRow) {
	f.badCount += int64(len(b))
	if room := MaxListedBadRows - len(f.badRows); room > 0 {
		f.badRows = append(f.badRows, b[:min(room, len(b))]...)
	}
}

func (f *fileSource) readHeader() error {
	rec, _, err := f.r.Read()
	f.line = 1
	if err != nil {
		if errors.Is(err, io.EOF) {
			f.bad(domain.BadRow{Line: 1, Reason: "the file is empty"})
			return nil
		}
		f.bad(domain.BadRow{Line: 1, Reason: fmt.Sprintf("cannot read the header: %v", err)})
		return nil
	}
	var bad []domain.BadRow
	f.header, bad = domain.ParseHeader(f.kind, rec)
	f.bad(bad...)
	return nil
}

// rawRecord is a record as read, before its check.
type rawRecord struct {
	rec  []string
	line int64
	err  error
}

// start begins reading and checking the rows after the header.
func (f *fileSource) start() {
	f.started = true
	f.order = make(chan chan []checked, 2*importWorkers)
	f.done, f.exited = make(chan struct{}), make(chan struct{})
	type job struct {
		raw []rawRecord
		out chan []checked
	}
	jobs := make(chan job, importWorkers)
	go func() {
		defer close(f.exited)
		defer close(jobs)
		defer close(f.order)
		for {
			raw := make([]rawRecord, 0, importChunk)
			last := false
			for len(raw) < importChunk {
				rec, line, err := f.r.Read()
				if err != nil && !errors.As(err, new(*sheet.LineError)) {
					if !errors.Is(err, io.EOF) {
						raw = append(raw, rawRecord{err: err})
					}
					last = true
					break
				}
				raw = append(raw, rawRecord{rec: slices.Clone(rec), line: line, err: err})
			}
			j := job{raw: raw, out: make(chan []checked, 1)}
			select {
			case f.order <- j.out:
			case <-f.done:
				return
			}
			select {
			case jobs <- j:
			case <-f.done:
				return
			}
			if last {
				return
			}
		}
	}()
	for range importWorkers {
		go func() {
			for j := range jobs {
				out := make([]checked, len(j.raw))
				for i, r := range j.raw {
					out[i] = f.check(r)
				}
				j.out <- out
			}
		}()
	}
}

// stop ends the reading (when the COPY stops early) and waits for the
// reader, so the file can be closed.
func (f *fileSource) stop() {
	if f.started {
		close(f.done)
		<-f.exited
		f.started = false
	}
}

// check validates and hashes one record.
func (f *fileSource) check(r rawRecord) checked {
	if r.err != nil {
		if bl, ok := errors.AsType[*sheet.LineError](r.err); ok {
			return checked{bad: []domain.BadRow{{Line: bl.Line, Reason: bl.Reason}}, line: bl.Line}
		}
		return checked{err: r.err}
	}
	if len(r.rec) == 1 && strings.TrimSpace(r.rec[0]) == "" {
		return checked{line: r.line}
	}
	row, bad := f.header.Row(r.line, r.rec)
	if len(bad) > 0 {
		return checked{bad: bad, line: r.line}
	}
	return checked{row: adapters.HashedRow{Row: row, IDHash: f.s.HashID(row.ID.String()), NameHash: f.s.hashName(row.Name)}, ok: true, line: r.line}
}

// Next returns the next valid row while the file has had no bad row.
func (f *fileSource) Next() (adapters.HashedRow, bool) {
	if !f.started && f.order == nil {
		f.start()
	}
	for {
		if f.err != nil {
			return adapters.HashedRow{}, false
		}
		if len(f.cur) == 0 {
			out, ok := <-f.order
			if !ok {
				return adapters.HashedRow{}, false
			}
			f.cur = <-out
			continue
		}
		c := f.cur[0]
		f.cur = f.cur[1:]
		if c.err != nil {
			f.err = c.err
			return adapters.HashedRow{}, false
		}
		if c.line > 0 {
			f.line = c.line
		}
		if len(c.bad) > 0 {
			f.bad(c.bad...)
			continue
		}
		if c.ok && f.badCount == 0 {
			return c.row, true
		}
	}
}

// Err is a read error that stopped the file (not a bad row).
func (f *fileSource) Err() error {
	if f.err != nil {
		return f.err
	}
	if f.badCount > 0 {
		return errRefused
	}
	return nil
}

// ListImports lists imports newest first.
func (s *Service) ListImports(ctx context.Context, kind domain.RefKind, before int64, limit int) ([]adapters.Import, error) {
	return adapters.ListImports(ctx, s.pool, kind, before, limit)
}
