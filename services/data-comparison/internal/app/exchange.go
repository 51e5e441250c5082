package app

import (
	"archive/zip"
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/xuri/excelize/v2"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/audit"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/catalog"
	"github.com/edubureau/studentaid/pkg/sheet"
	"github.com/edubureau/studentaid/services/data-comparison/internal/adapters"
	"github.com/edubureau/studentaid/services/data-comparison/internal/domain"
)

// Export formats.
const (
	FormatCSV  = "csv"
	FormatXLSX = "xlsx"
)

// MaxInlineExport bounds an export returned in the response.
const MaxInlineExport = 4 << 20

// ExportColumns are the columns of an export, in order (docs/data-comparison.md).
var ExportColumns = []string{"record_id", "origin", "student_id_masked", "student_id_hash", "school_code", "program_code",
	"term", "stage", "hardship_level", "amount_yuan", "payment_id"}

// SummaryColumns are the columns of an XLSX export's summary sheet.
var SummaryColumns = []string{"stage", "person_times", "amount_yuan"}

// stageOrder is the order of the summary's stages.
var stageOrder = []string{string(catalog.StagePreschool), string(catalog.StagePrimary), string(catalog.StageJunior),
	string(catalog.StageHighSchool), string(catalog.StageVocational), string(catalog.StageUniversity)}

// StageTotal is the person-times (人次) and amount of one stage.
type StageTotal struct {
	Stage       string
	PersonTimes int64
	AmountFen   int64
}

// ExportRequest asks for the records of a term range.
type ExportRequest struct {
	FromTerm, ToTerm string
	Format           string
	Inline           bool
}

// ExportResult is a written export and its summary.
type ExportResult struct {
	FileName   string
	ServerPath string
	Content    []byte
	Bytes      int64
	Records    int64
	AmountFen  int64
	Stages     []StageTotal
}

// errTooLarge stops an inline export past MaxInlineExport.
var errTooLarge = errors.New("export too large to return inline")

// limitBuffer is a buffer that refuses to grow past its limit.
type limitBuffer struct {
	bytes.Buffer
	limit int
}

func (b *limitBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > b.limit {
		return 0, errTooLarge
	}
	return b.Buffer.Write(p)
}

// countWriter counts what passes through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// ExportRecords writes the paid records of a term range (chain payments and
// current imported history) for the city's big-data office, streaming from
// the database into the file (excelize's StreamWriter for XLSX), so memory
// stays bounded by one row plus the workbook's buffers.
func (s *Service) ExportRecords(ctx context.Context, _ auth.Identity, req ExportRequest) (ExportResult, error) {
	var v apperr.Violations
	rng, err := domain.ParseTermRange(req.FromTerm, req.ToTerm)
	if err != nil {
		v.Addf("term", "%v", err)
	}
	switch {
	case req.Format != FormatCSV && req.Format != FormatXLSX:
		v.Addf("format", "must be CSV or XLSX")
	case !req.Inline && s.cfg.ExportDir == "":
		v.Addf("inline", "server-side exports are off (set DATA_COMPARISON_EXPORT_DIR): ask for the file inline")
	}
	if err := v.Err(); err != nil {
		return ExportResult{}, err
	}
	res := ExportResult{FileName: fmt.Sprintf("aid-records-%s-%s-%s.%s", rng.From.Name, rng.To.Name, s.clock().Format("20060102T150405Z"), req.Format)}
	var (
		out     io.Writer
		buf     *limitBuffer
		closeFn = func() error { return nil }
	)
	if req.Inline {
		buf = &limitBuffer{limit: MaxInlineExport}
		out = buf
	} else {
		root, err := os.OpenRoot(s.cfg.ExportDir)
		if err != nil {
			return ExportResult{}, fmt.Errorf("open export directory: %w", err)
		}
		f, err := root.Create(res.FileName)
		if err != nil {
			_ = root.Close()
			return ExportResult{}, fmt.Errorf("create export file: %w", err)
		}
		out, res.ServerPath = f, res.FileName
		closeFn = func() error { err := f.Close(); _ = root.Close(); return err }
		defer func() {
			if closeFn != nil {
				_ = closeFn()
				_ = root.Remove(res.FileName)
			}
		}()
	}
	cw := &countWriter{w: out}
	totals := map[string]*StageTotal{}
	add := func(r adapters.ExportRow) {
		t := totals[r.Stage]
		if t == nil {
			t = &StageTotal{Stage: r.Stage}
			totals[r.Stage] = t
		}
		t.PersonTimes++
		t.AmountFen += r.PaidFen
		res.Records++
		res.AmountFen += r.PaidFen
	}
	if req.Format == FormatCSV {
		err = s.exportCSV(ctx, cw, rng, add)
	} else {
		err = s.exportXLSX(ctx, cw, rng, add, totals)
	}
	if errors.Is(err, errTooLarge) {
		return ExportResult{}, apperr.New(apperr.FailedPrecondition,
			"the export is larger than %d MiB: ask for it in the export directory (inline false) instead", MaxInlineExport>>20)
	}
	if err != nil {
		return ExportResult{}, err
	}
	if req.Inline {
		res.Content = buf.Bytes()
	} else {
		cf := closeFn
		closeFn = nil
		if err := cf(); err != nil {
			return ExportResult{}, fmt.Errorf("close export file: %w", err)
		}
	}
	res.Bytes = cw.n
	res.Stages = orderedTotals(totals)
	if err := audit.Record(context.WithoutCancel(ctx), s.pool, audit.Entry{Method: "ExportRecords", Outcome: "exported",
		Detail: fmt.Sprintf("%s to %s as %s: %d records, %d fen, %d bytes", rng.From.Name, rng.To.Name, req.Format, res.Records, res.AmountFen, res.Bytes)}); err != nil {
		return ExportResult{}, fmt.Errorf("audit export: %w", err)
	}
	return res, nil
}

func orderedTotals(totals map[string]*StageTotal) []StageTotal {
	out := make([]StageTotal, 0, len(totals))
	for _, st := range stageOrder {
		if t := totals[st]; t != nil {
			out = append(out, *t)
		}
	}
	var rest []string
	for st := range totals {
		if !slices.Contains(stageOrder, st) {
			rest = append(rest, st)
		}
	}
	slices.Sort(rest)
	for _, st := range rest {
		out = append(out, *totals[st])
	}
	return out
}

// Yuan writes fen as yuan with two decimals.
func Yuan(fen int64) string {
	sign := ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	return fmt.Sprintf("%s%d.%02d", sign, fen/100, fen%100)
}

func exportValues(r adapters.ExportRow) []string {
	return []string{r.RecordID, r.Origin, r.StudentIDMasked, r.StudentIDHash, r.SchoolCode, r.ProgramCode, r.Term, r.Stage,
		r.HardshipLevel, Yuan(r.PaidFen), r.PaymentID}
}

func (s *Service) exportCSV(ctx context.Context, out io.Writer, rng domain.TermRange, add func(adapters.ExportRow)) error {
	if _, err := io.WriteString(out, "\uFEFF"); err != nil { // so spreadsheet programs read it as UTF-8
		return err
	}
	w := csv.NewWriter(out)
	if err := w.Write(ExportColumns); err != nil {
		return err
	}
	err := adapters.ExportRecords(ctx, s.pool, rng, func(r adapters.ExportRow) error {
		add(r)
		return w.Write(exportValues(r))
	})
	if err != nil {
		return err
	}
	w.Flush()
	return w.Error()
}

// recordsSheet names the n-th sheet of records: an XLSX sheet holds at most
// excelize.TotalRows rows, so a larger export goes on in records-2, ….
func recordsSheet(n int) string {
	if n == 1 {
		return "records"
	}
	return "records-" + strconv.Itoa(n)
}

func (s *Service) exportXLSX(ctx context.Context, out io.Writer, rng domain.TermRange, add func(adapters.ExportRow), totals map[string]*StageTotal) error {
	f := excelize.NewFile()
	defer func() { _ = f.Close() }()
	// excelize's Write builds the whole archive in a buffer; its zip writer
	// writing straight to out keeps memory flat (each sheet streams from
	// the StreamWriter's temporary file).
	f.SetZipWriter(func(io.Writer) excelize.ZipWriter { return zip.NewWriter(out) })
	if err := f.SetSheetName("Sheet1", recordsSheet(1)); err != nil {
		return fmt.Errorf("name records sheet: %w", err)
	}
	header := make([]any, len(ExportColumns))
	for i, c := range ExportColumns {
		header[i] = c
	}
	var (
		sw        *excelize.StreamWriter
		sheet     int
		row       int
		cells     = make([]any, len(ExportColumns))
		nextSheet = func() error {
			if sw != nil {
				if err := sw.Flush(); err != nil {
					return fmt.Errorf("flush records sheet: %w", err)
				}
			}
			sheet++
			if sheet > 1 {
				if _, err := f.NewSheet(recordsSheet(sheet)); err != nil {
					return fmt.Errorf("add records sheet: %w", err)
				}
			}
			var err error
			if sw, err = f.NewStreamWriter(recordsSheet(sheet)); err != nil {
				return fmt.Errorf("stream records sheet: %w", err)
			}
			row = 1
			return sw.SetRow("A1", header)
		}
	)
	if err := nextSheet(); err != nil {
		return err
	}
	err := adapters.ExportRecords(ctx, s.pool, rng, func(r adapters.ExportRow) error {
		add(r)
		if row == excelize.TotalRows {
			if err := nextSheet(); err != nil {
				return err
			}
		}
		row++
		for i, v := range exportValues(r) {
			cells[i] = v
		}
		// The amount is a number, so the sheet sums; yuan with two decimals
		// are exact in a float64 far beyond any aid record.
		cells[9] = float64(r.PaidFen) / 100
		cell, err := excelize.CoordinatesToCellName(1, row)
		if err != nil {
			return err
		}
		return sw.SetRow(cell, cells)
	})
	if err != nil {
		return err
	}
	if err := sw.Flush(); err != nil {
		return fmt.Errorf("flush records sheet: %w", err)
	}
	if _, err := f.NewSheet("summary"); err != nil {
		return fmt.Errorf("add summary sheet: %w", err)
	}
	ssw, err := f.NewStreamWriter("summary")
	if err != nil {
		return fmt.Errorf("stream summary sheet: %w", err)
	}
	rows := [][]any{{SummaryColumns[0], SummaryColumns[1], SummaryColumns[2]}}
	var n, fen int64
	for _, t := range orderedTotals(totals) {
		rows = append(rows, []any{t.Stage, t.PersonTimes, float64(t.AmountFen) / 100})
		n, fen = n+t.PersonTimes, fen+t.AmountFen
	}
	rows = append(rows, []any{"total", n, float64(fen) / 100})
	for i, r := range rows {
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := ssw.SetRow(cell, r); err != nil {
			return fmt.Errorf("write summary: %w", err)
		}
	}
	if err := ssw.Flush(); err != nil {
		return fmt.Errorf("flush summary sheet: %w", err)
	}
	if err := f.Write(out); err != nil {
		return fmt.Errorf("write workbook: %w", err)
	}
	return nil
}

// Clue list columns (docs/data-comparison.md). A header may use the
// English name or the Chinese one.
const (
	colRecordIDs  = "record_ids"
	colClueKind   = "kind"
	colClueAmount = "amount_yuan"
	colClueDetail = "detail"
	colClueNo     = "clue_no"
)

var clueListNames = map[string]string{"记录编号": colRecordIDs, "线索类型": colClueKind, "金额": colClueAmount,
	"问题描述": colClueDetail, "线索编号": colClueNo}

// clueKindNames are the Chinese names of the clue kinds a list may use.
var clueKindNames = map[string]domain.ClueKind{
	"重复发放": domain.KindDuplicatePayment, "不符合条件": domain.KindIneligible, "重点对象": domain.KindKeyPerson,
	"未在校": domain.KindNotEnrolled, "死亡": domain.KindDeceased, "超标准": domain.KindAboveStandard,
	"应助未助": domain.KindMissed, "其他": domain.KindOther,
}

// Limits of a clue list.
const (
	MaxClueListRows  = 100_000
	maxRecordsPerRow = 100
)

// ClueListRequest is one clue list to import.
type ClueListRequest struct {
	Encoding   string
	FileName   string
	Content    []byte
	ServerPath string
}

// ClueListResult says whether the list was imported and, if not, why.
type ClueListResult struct {
	Imported     bool
	List         adapters.ClueList
	Added        []string
	AlreadyKnown int64
	BadRows      []domain.BadRow
	BadRowCount  int64
}

// parsedClue is one valid row of a clue list before its records are read.
type parsedClue struct {
	line      int64
	kind      domain.ClueKind
	records   []string
	amountFen int64
	detail    string
}

// ImportClues imports a clue list of the big-data office, all or nothing:
// every row is checked (its columns, then that the records it names exist
// and are one person's); any bad row refuses the list with every bad row
// listed. Clues already imported (same kind and records) are not added
// again, so a re-import adds nothing.
func (s *Service) ImportClues(ctx context.Context, by auth.Identity, req ClueListRequest) (ClueListResult, error) {
	ireq := ImportRequest{Kind: domain.RefHistory, Source: "big-data office", Encoding: req.Encoding, FileName: req.FileName,
		Content: req.Content, ServerPath: req.ServerPath}
	_, name, err := s.checkImport(ireq)
	if err != nil {
		return ClueListResult{}, err
	}
	in, closeIn, err := s.openImport(ireq)
	if err != nil {
		return ClueListResult{}, err
	}
	defer closeIn()
	rows, closeRows, err := sheet.Open(in, req.Encoding)
	if err != nil {
		return ClueListResult{}, err
	}
	defer closeRows()

	var res ClueListResult
	bad := func(b domain.BadRow) {
		res.BadRowCount++
		if len(res.BadRows) < MaxListedBadRows {
			res.BadRows = append(res.BadRows, b)
		}
	}
	parsed, err := parseClueList(rows, bad)
	if err != nil {
		return ClueListResult{}, err
	}
	var ids []string
	for _, p := range parsed {
		ids = append(ids, p.records...)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		recs, err := adapters.ClueRecords(ctx, tx, ids)
		if err != nil {
			return err
		}
		clues := make([]adapters.ReturnedClue, 0, len(parsed))
		seen := make(map[string]int64, len(parsed))
		for _, p := range parsed {
			c, ok := s.returnedClue(p, recs, bad)
			if !ok {
				continue
			}
			if first, dup := seen[c.NaturalKey]; dup {
				bad(domain.BadRow{Line: p.line, Column: colRecordIDs, Reason: fmt.Sprintf("repeats the clue of line %d", first)})
				continue
			}
			seen[c.NaturalKey] = p.line
			clues = append(clues, c)
		}
		if res.BadRowCount == 0 && len(parsed) == 0 {
			bad(domain.BadRow{Line: 2, Reason: "the list has no rows"})
		}
		if res.BadRowCount > 0 {
			return errRefused
		}
		l, err := adapters.BeginClueList(ctx, tx, adapters.ClueList{FileName: name, Rows: int64(len(clues)), ImportedBy: by.UserID, ImportedAt: s.clock()})
		if err != nil {
			return err
		}
		added, err := adapters.InsertReturnedClues(ctx, tx, l, clues)
		if err != nil {
			return err
		}
		l.Added = int64(len(added))
		if err := adapters.FinishClueList(ctx, tx, l.ID, l.Added); err != nil {
			return err
		}
		if err := s.raiseReturned(ctx, tx, by, l, added); err != nil {
			return err
		}
		res.Imported, res.List, res.AlreadyKnown = true, l, int64(len(clues)-len(added))
		for _, c := range added {
			res.Added = append(res.Added, c.ID)
		}
		return nil
	})
	if errors.Is(err, errRefused) {
		if aerr := audit.Record(context.WithoutCancel(ctx), s.pool, audit.Entry{Method: "ImportClues", Outcome: "refused", Rule: "import-has-bad-rows",
			Detail: fmt.Sprintf("clue list %q refused: %d bad rows", name, res.BadRowCount)}); aerr != nil {
			return res, fmt.Errorf("audit refused clue list: %w", aerr)
		}
		// Column problems are found before record problems: list in line order.
		slices.SortStableFunc(res.BadRows, func(a, b domain.BadRow) int { return cmp.Compare(a.Line, b.Line) })
		return ClueListResult{BadRows: res.BadRows, BadRowCount: res.BadRowCount}, nil
	}
	return res, err
}

// parseClueList reads and checks every row's columns; the rows are held in
// memory (a list has at most MaxClueListRows) until their records are read.
func parseClueList(rows sheet.Rows, bad func(domain.BadRow)) ([]parsedClue, error) {
	rec, _, err := rows.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			bad(domain.BadRow{Line: 1, Reason: "the file is empty"})
			return nil, nil
		}
		bad(domain.BadRow{Line: 1, Reason: fmt.Sprintf("cannot read the header: %v", err)})
		return nil, nil
	}
	pos := map[string]int{}
	for i, name := range rec {
		name = strings.TrimSpace(strings.TrimPrefix(name, "\uFEFF"))
		if en, ok := clueListNames[name]; ok {
			name = en
		}
		if _, dup := pos[name]; dup {
			bad(domain.BadRow{Line: 1, Column: name, Reason: "column appears twice"})
		}
		pos[name] = i
	}
	headerOK := true
	for _, c := range []string{colRecordIDs, colClueKind, colClueDetail} {
		if _, ok := pos[c]; !ok {
			headerOK = false
			bad(domain.BadRow{Line: 1, Column: c, Reason: fmt.Sprintf("missing column %s (a clue list has record_ids, kind, detail, and optionally amount_yuan and clue_no)", c)})
		}
	}
	var out []parsedClue
	for {
		rec, line, err := rows.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			bl, ok := errors.AsType[*sheet.LineError](err)
			if !ok {
				return nil, err
			}
			bad(domain.BadRow{Line: bl.Line, Reason: bl.Reason})
			continue
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" || !headerOK {
			continue
		}
		if len(out) == MaxClueListRows {
			bad(domain.BadRow{Line: line, Reason: fmt.Sprintf("a clue list has at most %d rows: split it", MaxClueListRows)})
			return out, nil
		}
		if p, ok := parseClueRow(line, rec, pos, bad); ok {
			out = append(out, p)
		}
	}
}

func parseClueRow(line int64, rec []string, pos map[string]int, bad func(domain.BadRow)) (parsedClue, bool) {
	get := func(col string) string {
		i, ok := pos[col]
		if !ok || i >= len(rec) {
			return ""
		}
		return strings.TrimSpace(rec[i])
	}
	p := parsedClue{line: line}
	ok := true
	fail := func(col, format string, args ...any) {
		ok = false
		bad(domain.BadRow{Line: line, Column: col, Reason: fmt.Sprintf(format, args...)})
	}
	ids := strings.FieldsFunc(get(colRecordIDs), func(r rune) bool { return r == ';' || r == '；' || r == ',' || r == '，' || r == ' ' })
	switch {
	case len(ids) == 0:
		fail(colRecordIDs, "is empty: name the record_id of each exported record the clue is about")
	case len(ids) > maxRecordsPerRow:
		fail(colRecordIDs, "names %d records; at most %d", len(ids), maxRecordsPerRow)
	}
	for _, id := range ids {
		u, err := uuid.Parse(id)
		if err != nil || len(id) != 36 {
			fail(colRecordIDs, "%q is not a record_id of an export", id)
			continue
		}
		if slices.Contains(p.records, u.String()) {
			fail(colRecordIDs, "names record %s twice", u)
			continue
		}
		p.records = append(p.records, u.String())
	}
	kind := get(colClueKind)
	if k, isChinese := clueKindNames[kind]; isChinese {
		p.kind = k
	} else if k, err := domain.ParseClueKind(kind); err == nil {
		p.kind = k
	} else {
		fail(colClueKind, "%q is not a clue kind (duplicate_payment, ineligible, key_person, not_enrolled, deceased, above_standard, missed, other)", kind)
	}
	if a := get(colClueAmount); a != "" {
		fen, err := domain.ParseYuan(a)
		if err != nil {
			fail(colClueAmount, "%v", err)
		}
		p.amountFen = fen
	}
	var v apperr.Violations
	p.detail = checkText(&v, colClueDetail, get(colClueDetail), maxDetail, true)
	if v.Err() != nil {
		fail(colClueDetail, "is empty or longer than %d characters", maxDetail)
	}
	if no := get(colClueNo); no != "" {
		if len([]rune(no)) > 64 {
			fail(colClueNo, "is longer than 64 characters")
		}
		p.detail = "[" + no + "] " + p.detail
	}
	slices.Sort(p.records)
	return p, ok
}

// returnedClue matches a row to the records it names: they must exist and
// be one person's; the clue's school, program and term are those of its
// first record (in term order), its amount the row's or what the records paid.
func (s *Service) returnedClue(p parsedClue, recs map[string]adapters.ClueRecord, bad func(domain.BadRow)) (adapters.ReturnedClue, bool) {
	var first adapters.ClueRecord
	var paid int64
	ok := true
	for i, id := range p.records {
		r, found := recs[id]
		if !found {
			ok = false
			bad(domain.BadRow{Line: p.line, Column: colRecordIDs, Reason: fmt.Sprintf("record %s is not a record of this service's exports", id)})
			continue
		}
		if i > 0 && first.ID != "" && r.StudentIDHash != first.StudentIDHash {
			ok = false
			bad(domain.BadRow{Line: p.line, Column: colRecordIDs, Reason: fmt.Sprintf("record %s is another person's than record %s", id, first.ID)})
			continue
		}
		if first.ID == "" || r.TermOrd < first.TermOrd {
			first = r
		}
		paid += r.PaidFen
	}
	if !ok {
		return adapters.ReturnedClue{}, false
	}
	amount := p.amountFen
	if amount == 0 {
		amount = paid
	}
	return adapters.ReturnedClue{
		NaturalKey: "big_data_office|" + string(p.kind) + "|" + strings.Join(p.records, ","),
		NewClue: adapters.NewClue{ID: uuid.Must(uuid.NewV7()).String(), Kind: p.kind, StudentIDHash: first.StudentIDHash,
			SchoolCode: first.SchoolCode, ProgramCode: first.ProgramCode, Term: first.Term, AmountFen: amount, Detail: p.detail,
			RecordIDs: p.records},
		StudentIDMasked: first.StudentIDMasked,
	}, true
}

// clueListNote is the first trail step's note of a returned clue.
func clueListNote(l adapters.ClueList, detail string) string {
	return "big-data office list " + strconv.FormatInt(l.ID, 10) + ": " + detail
}
