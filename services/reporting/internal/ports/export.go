package ports

import (
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/xuri/excelize/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/edubureau/studentaid/pkg/grpcx"
	reportingv1 "github.com/edubureau/studentaid/proto/gen/aid/reporting/v1"
)

// ExportPattern is where the annual report's files are served:
// ?format=xlsx|csv|json, and language, live and version as GetAnnualReport.
const ExportPattern = "GET /v1/reporting/annual/{year}/export"

// ExportRoute serves the annual report as a file. It calls the service's
// own GetAnnualReport with the caller's bearer token, so the same
// authentication and policy apply as to the API.
func ExportRoute() grpcx.HTTPRoute {
	return grpcx.HTTPRoute{Pattern: ExportPattern, New: func(addr string, opts []grpc.DialOption) (http.Handler, error) {
		conn, err := grpc.NewClient(addr, opts...)
		if err != nil {
			return nil, err
		}
		return &exporter{client: reportingv1.NewReportingServiceClient(conn)}, nil
	}}
}

type exporter struct {
	client reportingv1.ReportingServiceClient
}

func (e *exporter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	year, err := strconv.Atoi(r.PathValue("year"))
	if err != nil {
		http.Error(w, "year must be a number, e.g. 2017", http.StatusBadRequest)
		return
	}
	q := r.URL.Query()
	version, _ := strconv.Atoi(q.Get("version"))
	format := q.Get("format")
	if format == "" {
		format = "xlsx"
	}
	if format != "xlsx" && format != "csv" && format != "json" {
		http.Error(w, "format must be xlsx, csv or json", http.StatusBadRequest)
		return
	}
	ctx := metadata.AppendToOutgoingContext(r.Context(), "authorization", r.Header.Get("Authorization"))
	rep, err := e.client.GetAnnualReport(ctx, &reportingv1.GetAnnualReportRequest{Year: int32(year), //nolint:gosec // G115: GetAnnualReport checks the range
		Language: q.Get("language"), Live: q.Get("live") == "true", Version: int32(version)}) //nolint:gosec // G115: as above
	if err != nil {
		st := status.Convert(err)
		http.Error(w, st.Message(), runtime.HTTPStatusFromCode(st.Code()))
		return
	}
	name := fmt.Sprintf("annual-report-%d-%s-v%d", rep.GetYear(), rep.GetStatus(), rep.GetVersion())
	switch format {
	case "json":
		w.Header().Set("Content-Type", "application/json")
		b, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(rep)
		if err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		_, _ = w.Write(b)
	case "csv":
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.csv"`)
		_ = WriteCSV(w, rep)
	default:
		w.Header().Set("Content-Type", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.xlsx"`)
		_ = WriteXLSX(w, rep)
	}
}

// Yuan is fen as an exact decimal string of yuan ("1234.56").
func Yuan(fen int64) string {
	sign := ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	return fmt.Sprintf("%s%d.%02d", sign, fen/100, fen%100)
}

// WanYuan is fen as an exact decimal string of 万元 (10,000 yuan).
func WanYuan(fen int64) string {
	sign := ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	return fmt.Sprintf("%s%d.%06d", sign, fen/1_000_000, fen%1_000_000)
}

// WriteCSV writes the report as one CSV table, a row per line; every row
// repeats what the report is and the instant it is as of.
func WriteCSV(w io.Writer, rep *reportingv1.AnnualReport) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"year", "status", "version", "as_of", "content_sha256",
		"section", "line", "label", "amount_fen", "amount_yuan", "amount_wan_yuan", "count", "unit", "total"})
	head := []string{strconv.Itoa(int(rep.GetYear())), rep.GetStatus(), strconv.Itoa(int(rep.GetVersion())),
		rep.GetAsOf().AsTime().Format("2006-01-02T15:04:05.000000Z07:00"), rep.GetContentSha256()}
	for _, s := range rep.GetSections() {
		for _, l := range s.GetLines() {
			if err := cw.Write(append(slices.Clone(head), s.GetKey(), l.GetKey(), l.GetLabel(), strconv.FormatInt(l.GetAmountFen(), 10),
				Yuan(l.GetAmountFen()), WanYuan(l.GetAmountFen()), strconv.FormatInt(l.GetCount(), 10), l.GetUnit(),
				strconv.FormatBool(l.GetTotal()))); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// headings of the XLSX columns by language.
var headings = map[string][]any{
	"zh": {"项目", "金额（元）", "金额（万元）", "数量", "单位"},
	"en": {"Item", "Amount (yuan)", "Amount (10,000 yuan)", "Count", "Unit"},
}

// sheetName is a valid sheet name for title: at most 31 characters, none
// of []:*?/\.
func sheetName(i int, title string) string {
	out := make([]rune, 0, 31)
	for _, r := range title {
		switch r {
		case '[', ']', ':', '*', '?', '/', '\\':
			r = ' '
		}
		out = append(out, r)
	}
	name := fmt.Sprintf("%d %s", i+1, string(out))
	for utf8.RuneCountInString(name) > 31 {
		r := []rune(name)
		name = string(r[:31])
	}
	return name
}

// WriteXLSX writes the report as a workbook with one sheet per section,
// each streamed (excelize's StreamWriter): a formatted header, amounts in
// yuan and 万元 number formats, totals rows in bold. The first sheet says
// what the report is and as of when.
func WriteXLSX(w io.Writer, rep *reportingv1.AnnualReport) error {
	f := excelize.NewFile()
	defer func() { _ = f.Close() }()
	header, err := f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}, Fill: excelize.Fill{Type: "pattern", Color: []string{"#DDEBF7"}, Pattern: 1},
		Border: []excelize.Border{{Type: "bottom", Color: "#000000", Style: 1}}})
	if err != nil {
		return err
	}
	yuanFmt, wanFmt := "#,##0.00", "#,##0.000000"
	yuan, _ := f.NewStyle(&excelize.Style{CustomNumFmt: &yuanFmt})
	wan, _ := f.NewStyle(&excelize.Style{CustomNumFmt: &wanFmt})
	yuanBold, _ := f.NewStyle(&excelize.Style{CustomNumFmt: &yuanFmt, Font: &excelize.Font{Bold: true}})
	wanBold, _ := f.NewStyle(&excelize.Style{CustomNumFmt: &wanFmt, Font: &excelize.Font{Bold: true}})
	bold, _ := f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}})

	const cover = "report"
	if err := f.SetSheetName("Sheet1", cover); err != nil {
		return err
	}
	sw, err := f.NewStreamWriter(cover)
	if err != nil {
		return err
	}
	_ = sw.SetColWidth(1, 1, 20)
	_ = sw.SetColWidth(2, 2, 70)
	for i, row := range [][]any{
		{excelize.Cell{StyleID: header, Value: "year"}, rep.GetYear()},
		{excelize.Cell{StyleID: header, Value: "status"}, rep.GetStatus()},
		{excelize.Cell{StyleID: header, Value: "version"}, rep.GetVersion()},
		{excelize.Cell{StyleID: header, Value: "as_of"}, rep.GetAsOf().AsTime().Format("2006-01-02T15:04:05.000000Z07:00")},
		{excelize.Cell{StyleID: header, Value: "content_sha256"}, rep.GetContentSha256()},
		{excelize.Cell{StyleID: header, Value: "finalised_by"}, rep.GetFinalisedBy()},
	} {
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := sw.SetRow(cell, row); err != nil {
			return err
		}
	}
	if err := sw.Flush(); err != nil {
		return err
	}
	heads := headings[rep.GetLanguage()]
	if heads == nil {
		heads = headings["zh"]
	}
	for i, s := range rep.GetSections() {
		name := sheetName(i, s.GetTitle())
		if _, err := f.NewSheet(name); err != nil {
			return err
		}
		sw, err := f.NewStreamWriter(name)
		if err != nil {
			return err
		}
		_ = sw.SetColWidth(1, 1, 48)
		_ = sw.SetColWidth(2, 3, 18)
		hrow := make([]any, len(heads))
		for j, h := range heads {
			hrow[j] = excelize.Cell{StyleID: header, Value: h}
		}
		if err := sw.SetRow("A1", hrow, excelize.RowOpts{StyleID: header}); err != nil {
			return err
		}
		for j, l := range s.GetLines() {
			ys, ws, ls := yuan, wan, 0
			if l.GetTotal() {
				ys, ws, ls = yuanBold, wanBold, bold
			}
			cell, _ := excelize.CoordinatesToCellName(1, j+2)
			if err := sw.SetRow(cell, []any{
				excelize.Cell{StyleID: ls, Value: l.GetLabel()},
				excelize.Cell{StyleID: ys, Value: float64(l.GetAmountFen()) / 100},
				excelize.Cell{StyleID: ws, Value: float64(l.GetAmountFen()) / 1_000_000},
				excelize.Cell{StyleID: ls, Value: l.GetCount()},
				excelize.Cell{StyleID: ls, Value: l.GetUnit()},
			}); err != nil {
				return err
			}
		}
		if err := sw.Flush(); err != nil {
			return err
		}
	}
	return f.Write(w)
}
