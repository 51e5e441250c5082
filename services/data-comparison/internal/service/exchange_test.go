package service_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/edubureau/studentaid/pkg/idnumber"
	"github.com/edubureau/studentaid/pkg/service/servicetest"
	dcv1 "github.com/edubureau/studentaid/proto/gen/aid/datacomparison/v1"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
)

// workbook writes rows into the first sheet of a new XLSX file.
func workbook(t *testing.T, rows ...[]any) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer func() { _ = f.Close() }()
	for i, r := range rows {
		cell, err := excelize.CoordinatesToCellName(1, i+1)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.SetSheetRow("Sheet1", cell, &r); err != nil {
			t.Fatal(err)
		}
	}
	var b bytes.Buffer
	if err := f.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func badRows(rs []*dcv1.BadRow) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%d|%s", r.GetLine(), r.GetColumn()))
	}
	return out
}

// TestExchangeWithBigDataOffice imports history as XLSX (refusing a
// workbook with bad rows whole), exports a term range as CSV and XLSX with
// known person-times and amounts by stage, and imports a returned clue
// list whose clues are then worked like the comparison's own.
func TestExchangeWithBigDataOffice(t *testing.T) {
	e, h, publish := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	pays := []payment{
		{person: 0, school: "S1", program: "BOARDING_SUBSIDY", stage: "primary", term: "2017-spring", paidFen: 50000},
		{person: 1, school: "S1", program: "BOARDING_SUBSIDY", stage: "primary", term: "2017-spring", paidFen: 50000},
		{person: 2, school: "S2", program: "HS_NATIONAL_GRANT", stage: "high_school", term: "2017-spring", level: "difficult", paidFen: 100000},
		// rejected: never paid, never exported
		{person: 3, school: "S1", program: "BOARDING_SUBSIDY", stage: "primary", term: "2017-spring", paidFen: 50000, rejected: true},
		// paid after the range
		{person: 4, school: "S1", program: "BOARDING_SUBSIDY", stage: "junior", term: "2017-autumn", paidFen: 62500},
	}
	var evs []*eventsv1.Event
	for _, p := range pays {
		evs = append(evs, chainEvents(h, p)...)
	}
	publish(evs...)
	export := func(format dcv1.ExportFormat) *dcv1.ExportRecordsResponse {
		t.Helper()
		res, err := e.dc.ExportRecords(ctx, &dcv1.ExportRecordsRequest{FromTerm: "2016-autumn", ToTerm: "2017-spring", Format: format, Inline: true})
		if err != nil {
			t.Fatalf("export: %v", err)
		}
		return res
	}
	servicetest.Eventually(t, func() error {
		if n := export(dcv1.ExportFormat_EXPORT_FORMAT_CSV).GetRecords(); n != 3 {
			return fmt.Errorf("exported %d chain records, want 3", n)
		}
		return nil
	})

	// A workbook with bad rows is refused whole: every bad row listed,
	// nothing imported.
	header := []any{"身份证号", "姓名", "学校代码", "项目代码", "学期", "学段", "金额"}
	bad := workbook(t, header,
		[]any{"12345", name(5), "S1", "BOARDING_SUBSIDY", "2016-autumn", "primary", "500"},        // 2: id_number
		[]any{person(6), name(6), "S3", "NO_SUCH_PROGRAM", "2016-autumn", "preschool", "500"},     // 3: program_code
		[]any{person(7), name(7), "S2", "HS_NATIONAL_GRANT", "2016-autumn", "high_school", "abc"}, // 4: amount_yuan
		[]any{person(8), name(8), "S1", "BOARDING_SUBSIDY", "2016-autumn", "high_school", "500"},  // 5: stage
		[]any{person(9), name(9), "S1", "BOARDING_SUBSIDY", "2016-autumn", "primary", "500"},      // 6: good
		[]any{person(9), name(9), "S1", "BOARDING_SUBSIDY", "2016-moonsoon", "primary", "500"},    // 7: term
	)
	res, err := e.dc.ImportReference(ctx, &dcv1.ImportReferenceRequest{Kind: dcv1.ReferenceKind_REFERENCE_KIND_HISTORY,
		Source: "bureau 2015-2017", FileName: "history.xlsx", Content: bad})
	if err != nil {
		t.Fatal(err)
	}
	wantBad := []string{"2|id_number", "3|program_code", "4|amount_yuan", "5|stage", "7|term"}
	if res.GetImported() || !slices.Equal(badRows(res.GetBadRows()), wantBad) || res.GetBadRowCount() != 5 {
		t.Fatalf("bad workbook: imported %t, bad rows %v (%d), want %v", res.GetImported(), res.GetBadRows(), res.GetBadRowCount(), wantBad)
	}
	ims, err := e.aud.ListImports(ctx, &dcv1.ListImportsRequest{Kind: dcv1.ReferenceKind_REFERENCE_KIND_HISTORY})
	if err != nil || len(ims.GetImports()) != 0 {
		t.Fatalf("a refused workbook left imports %v (%v)", ims.GetImports(), err)
	}
	if n := export(dcv1.ExportFormat_EXPORT_FORMAT_CSV).GetRecords(); n != 3 {
		t.Fatalf("a refused workbook changed the records: %d exported, want 3", n)
	}

	good := workbook(t, header,
		[]any{person(5), name(5), "S1", "BOARDING_SUBSIDY", "2016-autumn", "primary", "500"},
		[]any{person(6), name(6), "S3", "PRESCHOOL_AID", "2016-autumn", "preschool", "500.00"},
		[]any{person(7), name(7), "S2", "HS_NATIONAL_GRANT", "2016-autumn", "high_school", "1,250"},
		// before the range
		[]any{person(0), name(0), "S1", "BOARDING_SUBSIDY", "2016-spring", "primary", "500"},
		// a number cell
		[]any{person(1), name(1), "S1", "BOARDING_SUBSIDY", "2016-autumn", "junior", 625},
	)
	e.importFile(ctx, &dcv1.ImportReferenceRequest{Kind: dcv1.ReferenceKind_REFERENCE_KIND_HISTORY, Source: "bureau 2015-2017",
		FileName: "history.xlsx", Content: good})

	// The export's summary, worked out by hand: preschool h6; primary
	// p0, p1 and h5; junior h1; high school p2 and h7.
	wantStages := []string{"preschool|1|50000", "primary|3|150000", "junior|1|62500", "high_school|2|225000"}
	csvRes := export(dcv1.ExportFormat_EXPORT_FORMAT_CSV)
	var gotStages []string
	for _, st := range csvRes.GetStages() {
		gotStages = append(gotStages, fmt.Sprintf("%s|%d|%d", st.GetStage(), st.GetPersonTimes(), st.GetAmountFen()))
	}
	if !slices.Equal(gotStages, wantStages) || csvRes.GetRecords() != 7 || csvRes.GetAmountFen() != 487500 {
		t.Fatalf("summary %v, %d records, %d fen; want %v, 7, 487500", gotStages, csvRes.GetRecords(), csvRes.GetAmountFen(), wantStages)
	}
	content := csvRes.GetContent()
	if !bytes.HasPrefix(content, []byte("\uFEFF")) {
		t.Fatal("the CSV export has no byte order mark")
	}
	recs, err := csv.NewReader(bytes.NewReader(content[3:])).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	wantHeader := []string{"record_id", "origin", "student_id_masked", "student_id_hash", "school_code", "program_code",
		"term", "stage", "hardship_level", "amount_yuan", "payment_id"}
	if !slices.Equal(recs[0], wantHeader) || len(recs) != 8 {
		t.Fatalf("CSV header %v and %d lines", recs[0], len(recs))
	}
	// record by masked ID number and term; origins and amounts as written.
	recordOf := map[string]string{}
	var rows []string
	for _, r := range recs[1:] {
		recordOf[r[2]+"|"+r[6]] = r[0]
		rows = append(rows, strings.Join([]string{r[1], r[2], r[4], r[5], r[6], r[7], r[8], r[9]}, "|"))
	}
	m := func(i int) string { return idnumber.Mask(person(i)) }
	wantRows := []string{
		"imported|" + m(5) + "|S1|BOARDING_SUBSIDY|2016-autumn|primary||500.00",
		"imported|" + m(1) + "|S1|BOARDING_SUBSIDY|2016-autumn|junior||625.00",
		"imported|" + m(7) + "|S2|HS_NATIONAL_GRANT|2016-autumn|high_school||1250.00",
		"imported|" + m(6) + "|S3|PRESCHOOL_AID|2016-autumn|preschool||500.00",
		"chain|" + m(0) + "|S1|BOARDING_SUBSIDY|2017-spring|primary||500.00",
		"chain|" + m(1) + "|S1|BOARDING_SUBSIDY|2017-spring|primary||500.00",
		"chain|" + m(2) + "|S2|HS_NATIONAL_GRANT|2017-spring|high_school|difficult|1000.00",
	}
	slices.Sort(rows)
	slices.Sort(wantRows)
	if !slices.Equal(rows, wantRows) {
		t.Fatalf("exported rows\n%v\nwant\n%v", rows, wantRows)
	}

	// The workbook: the same records and a summary sheet.
	xres := export(dcv1.ExportFormat_EXPORT_FORMAT_XLSX)
	wb, err := excelize.OpenReader(bytes.NewReader(xres.GetContent()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = wb.Close() }()
	if sheets := wb.GetSheetList(); !slices.Equal(sheets, []string{"records", "summary"}) {
		t.Fatalf("sheets %v", sheets)
	}
	xrecs, err := wb.GetRows("records")
	if err != nil || len(xrecs) != 8 || !slices.Equal(xrecs[0], wantHeader) {
		t.Fatalf("records sheet: %d rows, header %v (%v)", len(xrecs), xrecs[0], err)
	}
	summary, err := wb.GetRows("summary")
	if err != nil {
		t.Fatal(err)
	}
	wantSummary := [][]string{{"stage", "person_times", "amount_yuan"}, {"preschool", "1", "500"}, {"primary", "3", "1500"},
		{"junior", "1", "625"}, {"high_school", "2", "2250"}, {"total", "7", "4875"}}
	if fmt.Sprint(summary) != fmt.Sprint(wantSummary) {
		t.Fatalf("summary sheet %v, want %v", summary, wantSummary)
	}

	// Written to the export directory, the file is the same.
	dres, err := e.dc.ExportRecords(ctx, &dcv1.ExportRecordsRequest{FromTerm: "2016-autumn", ToTerm: "2017-spring", Format: dcv1.ExportFormat_EXPORT_FORMAT_CSV})
	if err != nil {
		t.Fatal(err)
	}
	onDisk, err := os.ReadFile(filepath.Join(e.exportDir, dres.GetServerPath()))
	if err != nil || !bytes.Equal(onDisk, content) || dres.GetBytes() != int64(len(content)) || len(dres.GetContent()) != 0 {
		t.Fatalf("export file %q: %d bytes (reported %d), equal to inline %t (%v)", dres.GetServerPath(), len(onDisk), dres.GetBytes(), bytes.Equal(onDisk, content), err)
	}

	// A returned clue list with bad rows is refused whole.
	c0, c1, c2 := recordOf[m(0)+"|2017-spring"], recordOf[m(1)+"|2017-spring"], recordOf[m(2)+"|2017-spring"]
	h1 := recordOf[m(1)+"|2016-autumn"]
	badList := csvOf("线索编号,记录编号,线索类型,金额,问题描述",
		"BD-1,"+c2+",超标准,250,高于标准",
		"BD-2,0190f3a4-0000-7000-8000-000000000000,重复发放,,不存在的记录", // 3: unknown record
		"BD-3,"+c0+",bogus,,类型不对",                                // 4: kind
		"BD-4,"+c0+";"+c2+",重点对象,,两个人",                           // 5: two persons
		"BD-5,"+c1+",死亡,,",                                       // 6: detail
		"BD-6,"+c2+",超标准,250,重复一行",                               // 7: repeats line 2
	)
	lres, err := e.dc.ImportClues(ctx, &dcv1.ImportCluesRequest{FileName: "clues.csv", Content: badList})
	if err != nil {
		t.Fatal(err)
	}
	wantBad = []string{"3|record_ids", "4|kind", "5|record_ids", "6|detail", "7|record_ids"}
	if got := badRows(lres.GetBadRows()); lres.GetImported() || !slices.Equal(got, wantBad) {
		t.Fatalf("bad clue list: imported %t, bad rows %v, want %v", lres.GetImported(), lres.GetBadRows(), wantBad)
	}
	if cs := e.allClues(ctx); len(cs) != 0 {
		t.Fatalf("a refused clue list left %d clues", len(cs))
	}

	// The good list, as a workbook: each clue on the records it names.
	list := workbook(t, []any{"clue_no", "record_ids", "kind", "amount_yuan", "detail"},
		[]any{"BD-1", c2, "above_standard", "250", "高于标准"},
		[]any{"BD-2", c1 + "; " + h1, "重点对象", "", "亲属为公职人员"},
	)
	lres, err = e.dc.ImportClues(ctx, &dcv1.ImportCluesRequest{FileName: "clues.xlsx", Content: list})
	if err != nil {
		t.Fatal(err)
	}
	if !lres.GetImported() || lres.GetAdded() != 2 || lres.GetAlreadyKnown() != 0 || lres.GetRows() != 2 {
		t.Fatalf("clue list: %+v", lres)
	}
	again, err := e.dc.ImportClues(ctx, &dcv1.ImportCluesRequest{FileName: "clues.xlsx", Content: list})
	if err != nil || !again.GetImported() || again.GetAdded() != 0 || again.GetAlreadyKnown() != 2 {
		t.Fatalf("re-import of the list: %+v (%v)", again, err)
	}
	cs := e.allClues(ctx)
	var got []string
	for _, c := range cs {
		ids := slices.Clone(c.GetRecordIds())
		slices.Sort(ids)
		got = append(got, fmt.Sprintf("%s|%s|%s|%s|%d|%s|%s", c.GetOrigin(), c.GetKind(), c.GetStudentIdMasked(), c.GetTerm(),
			c.GetAmountFen(), c.GetSchoolCode(), strings.Join(ids, ",")))
	}
	pair := []string{c1, h1}
	slices.Sort(pair)
	want := []string{
		"big_data_office|above_standard|" + m(2) + "|2017-spring|25000|S2|" + c2,
		// two records of one person: the earlier term's, and what both paid
		"big_data_office|key_person|" + m(1) + "|2016-autumn|112500|S1|" + strings.Join(pair, ","),
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("clues\n%v\nwant\n%v", got, want)
	}

	// Worked like the system's own: assigned, verified, a refund opened.
	above := lres.GetClueIds()[0]
	if _, err := e.dc.AssignClues(ctx, &dcv1.AssignCluesRequest{ClueIds: []string{above}, Assignee: "dc1"}); err != nil {
		t.Fatal(err)
	}
	w, err := e.dc.VerifyClues(ctx, &dcv1.VerifyCluesRequest{ClueIds: []string{above}, Findings: "查实：超标准发放", Ineligible: true})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := e.aud.GetRefund(ctx, &dcv1.GetRefundRequest{RefundId: w.GetClues()[0].GetRefundId()})
	if err != nil || ref.GetAmountFen() != 25000 || ref.GetRecordId() != c2 {
		t.Fatalf("refund %+v (%v), want 25000 fen against %s", ref, err, c2)
	}
	trail, err := e.aud.GetClueTrail(ctx, &dcv1.GetClueTrailRequest{ClueId: above})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, en := range trail.GetEntries() {
		types = append(types, en.GetType())
	}
	wantTypes := []string{"datacomparison.clue_raised.v1", "datacomparison.clue_assigned.v1", "datacomparison.clue_verified.v1", "datacomparison.refund_opened.v1"}
	if !trail.GetIntact() || !slices.Equal(types, wantTypes) {
		t.Fatalf("trail intact %t, steps %v, want %v", trail.GetIntact(), types, wantTypes)
	}
}
