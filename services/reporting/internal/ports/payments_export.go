package ports

import (
	"archive/zip"
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/xuri/excelize/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/edubureau/studentaid/pkg/grpcx"
	reportingv1 "github.com/edubureau/studentaid/proto/gen/aid/reporting/v1"
)

// PaymentsExportPattern is where the per-payment files are served:
// ?from_term=&to_term=[&school_codes=A,B][&stage=][&program_code=][&as_of=RFC3339][&format=xlsx|csv|json][&language=zh|en].
const PaymentsExportPattern = "GET /v1/reporting/payments/export"

// SheetRows is how many payments one XLSX sheet holds (a sheet holds at
// most 1,048,576 rows); more go on in payments-2, ….
const SheetRows = 1_000_000

// PaymentsExportRoute serves every paid record of a selection as a file,
// streamed from the service's own ExportPayments with the caller's bearer
// token (the same authentication and roles as the API).
func PaymentsExportRoute() grpcx.HTTPRoute {
	return grpcx.HTTPRoute{Pattern: PaymentsExportPattern, New: func(addr string, opts []grpc.DialOption) (http.Handler, error) {
		conn, err := grpc.NewClient(addr, opts...)
		if err != nil {
			return nil, err
		}
		return &paymentsExporter{client: reportingv1.NewReportingServiceClient(conn)}, nil
	}}
}

type paymentsExporter struct {
	client reportingv1.ReportingServiceClient
}

// PaymentSource yields an export's batches: the first, then each next
// until io.EOF.
type PaymentSource interface {
	Recv() (*reportingv1.PaymentBatch, error)
}

func (e *paymentsExporter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	format := q.Get("format")
	if format == "" {
		format = "xlsx"
	}
	if format != "xlsx" && format != "csv" && format != "json" {
		http.Error(w, "format must be xlsx, csv or json", http.StatusBadRequest)
		return
	}
	req := &reportingv1.ExportPaymentsRequest{FromTerm: q.Get("from_term"), ToTerm: q.Get("to_term"), Stage: q.Get("stage"),
		ProgramCode: q.Get("program_code")}
	for _, v := range q["school_codes"] {
		for c := range strings.SplitSeq(v, ",") {
			if c = strings.TrimSpace(c); c != "" {
				req.SchoolCodes = append(req.SchoolCodes, c)
			}
		}
	}
	if v := q.Get("as_of"); v != "" {
		at, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			http.Error(w, "as_of must be an instant like 2018-01-15T00:00:00Z", http.StatusBadRequest)
			return
		}
		req.AsOf = timestamppb.New(at)
	}
	ctx := metadata.AppendToOutgoingContext(r.Context(), "authorization", r.Header.Get("Authorization"))
	stream, err := e.client.ExportPayments(ctx, req)
	if err != nil {
		st := status.Convert(err)
		http.Error(w, st.Message(), runtime.HTTPStatusFromCode(st.Code()))
		return
	}
	// The first batch before any byte: a refusal (a bad term, a role
	// that may not read) is still an HTTP status.
	first, err := stream.Recv()
	if err != nil {
		st := status.Convert(err)
		http.Error(w, st.Message(), runtime.HTTPStatusFromCode(st.Code()))
		return
	}
	src := &prepended{first: first, rest: stream}
	name := "payments-" + req.GetFromTerm() + "-" + req.GetToTerm()
	// Rows are small: written through 64 KiB, not a write each.
	bw := bufio.NewWriterSize(w, 64<<10)
	switch format {
	case "json":
		w.Header().Set("Content-Type", "application/json")
		if err = WritePaymentsJSON(bw, src); err == nil {
			err = bw.Flush()
		}
	case "csv":
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.csv"`)
		if err = WritePaymentsCSV(bw, src); err == nil {
			err = bw.Flush()
		}
	default:
		w.Header().Set("Content-Type", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.xlsx"`)
		err = WritePaymentsXLSX(w, src, q.Get("language"))
	}
	if err != nil {
		// Midway: the status is sent; the response is cut off (no final
		// chunk), so the client sees a failed download, not a short file.
		panic(http.ErrAbortHandler)
	}
}

// prepended is a source whose first batch was read already.
type prepended struct {
	first *reportingv1.PaymentBatch
	rest  PaymentSource
}

func (p *prepended) Recv() (*reportingv1.PaymentBatch, error) {
	if f := p.first; f != nil {
		p.first = nil
		return f, nil
	}
	return p.rest.Recv()
}

// each calls fn with every payment of src, and with the batches' as_of
// once before the first.
func each(src PaymentSource, asOf func(time.Time) error, fn func(*reportingv1.PaymentRecord) error) error {
	started := false
	for {
		b, err := src.Recv()
		if errors.Is(err, io.EOF) {
			if !started {
				return errors.New("export: no batch")
			}
			return nil
		}
		if err != nil {
			return err
		}
		if !started {
			started = true
			if err := asOf(b.GetAsOf().AsTime()); err != nil {
				return err
			}
		}
		for _, p := range b.GetPayments() {
			if err := fn(p); err != nil {
				return err
			}
		}
	}
}

const instant = "2006-01-02T15:04:05.000000Z07:00"

// PaymentColumns are the CSV's columns.
var PaymentColumns = []string{"as_of", "payment_id", "school_code", "student", "program_code", "stage", "term",
	"amount_fen", "amount_yuan", "paid_at", "refunded_fen", "refunded_yuan", "loan"}

// WritePaymentsCSV writes one row per payment; every row repeats the
// instant the export is as of.
func WritePaymentsCSV(w io.Writer, src PaymentSource) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(PaymentColumns); err != nil {
		return err
	}
	var at string
	rec := make([]string, len(PaymentColumns))
	err := each(src, func(t time.Time) error { at = t.UTC().Format(instant); return nil }, func(p *reportingv1.PaymentRecord) error {
		rec[0], rec[1], rec[2], rec[3], rec[4], rec[5], rec[6] = at, p.GetPaymentId(), p.GetSchoolCode(), p.GetStudent(),
			p.GetProgramCode(), p.GetStage(), p.GetTerm()
		rec[7], rec[8] = strconv.FormatInt(p.GetAmountFen(), 10), Yuan(p.GetAmountFen())
		rec[9] = p.GetPaidAt().AsTime().UTC().Format(instant)
		rec[10], rec[11], rec[12] = strconv.FormatInt(p.GetRefundedFen(), 10), Yuan(p.GetRefundedFen()), strconv.FormatBool(p.GetLoan())
		return cw.Write(rec)
	})
	if err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}

// WritePaymentsJSON writes {"as_of": …, "payments": [PaymentRecord …],
// "totals": {…}}, each record as the REST gateway renders the message
// (int64 as strings), one record at a time.
func WritePaymentsJSON(w io.Writer, src PaymentSource) error {
	m := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}
	n, sep := 0, []byte("\n")
	var amount, refunded int64
	err := each(src, func(t time.Time) error {
		_, err := fmt.Fprintf(w, `{"as_of":%q,"payments":[`, t.UTC().Format(instant))
		return err
	}, func(p *reportingv1.PaymentRecord) error {
		b, err := m.Marshal(p)
		if err != nil {
			return err
		}
		if _, err := w.Write(sep); err != nil {
			return err
		}
		sep = []byte(",\n")
		n++
		amount += p.GetAmountFen()
		refunded += p.GetRefundedFen()
		_, err = w.Write(b)
		return err
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "\n],\"totals\":{\"payments\":\"%d\",\"amount_fen\":\"%d\",\"refunded_fen\":\"%d\"}}\n", n, amount, refunded)
	return err
}

// paymentHeadings are the XLSX columns by language.
var paymentHeadings = map[string][]string{
	"zh": {"学校", "学生（标识）", "项目", "学段", "学期", "金额（元）", "发放时间（UTC）", "已退回（元）", "净额（元）", "贷款", "发放编号"},
	"en": {"School", "Student (ID hash)", "Program", "Stage", "Term", "Amount (yuan)", "Paid at (UTC)", "Refunded (yuan)", "Net (yuan)", "Loan", "Payment ID"},
}

// WritePaymentsXLSX writes a workbook: an export sheet (as of, rows), then
// the payments, SheetRows to a sheet, each streamed with excelize's
// StreamWriter (rows past its 16 MiB buffer go to a temporary file) and
// the archive written straight to w (SetZipWriter), so memory stays
// bounded however many rows. Amounts in yuan (#,##0.00), a totals row in
// bold at the end.
func WritePaymentsXLSX(w io.Writer, src PaymentSource, language string) error {
	heads := paymentHeadings[language]
	if heads == nil {
		heads = paymentHeadings["zh"]
	}
	f := excelize.NewFile()
	defer func() { _ = f.Close() }()
	f.SetZipWriter(func(io.Writer) excelize.ZipWriter { return zip.NewWriter(w) })
	header, err := f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}, Fill: excelize.Fill{Type: "pattern", Color: []string{"#DDEBF7"}, Pattern: 1},
		Border: []excelize.Border{{Type: "bottom", Color: "#000000", Style: 1}}})
	if err != nil {
		return err
	}
	yuanFmt := "#,##0.00"
	yuan, _ := f.NewStyle(&excelize.Style{CustomNumFmt: &yuanFmt})
	yuanBold, _ := f.NewStyle(&excelize.Style{CustomNumFmt: &yuanFmt, Font: &excelize.Font{Bold: true}})
	bold, _ := f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}})
	hrow := make([]any, len(heads))
	for i, h := range heads {
		hrow[i] = excelize.Cell{StyleID: header, Value: h}
	}
	var (
		sw                       *excelize.StreamWriter
		sheet, row, n            int
		amount, refunded, netFen int64
		cells                    = make([]any, len(heads))
	)
	next := func() error {
		if sw != nil {
			if err := sw.Flush(); err != nil {
				return err
			}
		}
		sheet++
		name := "payments"
		if sheet > 1 {
			name = "payments-" + strconv.Itoa(sheet)
		}
		if _, err := f.NewSheet(name); err != nil {
			return err
		}
		if sw, err = f.NewStreamWriter(name); err != nil {
			return err
		}
		_ = sw.SetColWidth(1, 5, 14)
		_ = sw.SetColWidth(6, 9, 16)
		_ = sw.SetColWidth(7, 7, 28)
		row = 1
		return sw.SetRow("A1", hrow, excelize.RowOpts{StyleID: header})
	}
	err = each(src, func(t time.Time) error {
		if err := f.SetSheetName("Sheet1", "export"); err != nil {
			return err
		}
		cover, err := f.NewStreamWriter("export")
		if err != nil {
			return err
		}
		_ = cover.SetColWidth(1, 1, 16)
		_ = cover.SetColWidth(2, 2, 34)
		if err := cover.SetRow("A1", []any{excelize.Cell{StyleID: header, Value: "as_of"}, t.UTC().Format(instant)}); err != nil {
			return err
		}
		if err := cover.Flush(); err != nil {
			return err
		}
		return next()
	}, func(p *reportingv1.PaymentRecord) error {
		if row > SheetRows {
			if err := next(); err != nil {
				return err
			}
		}
		row++
		n++
		net := p.GetAmountFen() - p.GetRefundedFen()
		amount, refunded, netFen = amount+p.GetAmountFen(), refunded+p.GetRefundedFen(), netFen+net
		cells[0], cells[1], cells[2], cells[3], cells[4] = p.GetSchoolCode(), p.GetStudent(), p.GetProgramCode(), p.GetStage(), p.GetTerm()
		cells[5] = excelize.Cell{StyleID: yuan, Value: float64(p.GetAmountFen()) / 100}
		cells[6] = p.GetPaidAt().AsTime().UTC().Format(instant)
		cells[7] = excelize.Cell{StyleID: yuan, Value: float64(p.GetRefundedFen()) / 100}
		cells[8] = excelize.Cell{StyleID: yuan, Value: float64(net) / 100}
		cells[9] = p.GetLoan()
		cells[10] = p.GetPaymentId()
		cell, _ := excelize.CoordinatesToCellName(1, row)
		return sw.SetRow(cell, cells)
	})
	if err != nil {
		return err
	}
	total := "合计"
	if language == "en" {
		total = "Total"
	}
	cell, _ := excelize.CoordinatesToCellName(1, row+1)
	if err := sw.SetRow(cell, []any{excelize.Cell{StyleID: bold, Value: total}, excelize.Cell{StyleID: bold, Value: n}, nil, nil, nil,
		excelize.Cell{StyleID: yuanBold, Value: float64(amount) / 100}, nil,
		excelize.Cell{StyleID: yuanBold, Value: float64(refunded) / 100},
		excelize.Cell{StyleID: yuanBold, Value: float64(netFen) / 100}}); err != nil {
		return err
	}
	if err := sw.Flush(); err != nil {
		return err
	}
	return f.Write(w)
}
