package web

import (
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/edubureau/studentaid/pkg/auth"
	datacomparisonv1 "github.com/edubureau/studentaid/proto/gen/aid/datacomparison/v1"
)

// The exchange with the city's big-data office (docs/data-comparison.md):
// the aid records of a term range go out as CSV or XLSX; the clue list the
// office returns comes back in, refused whole with its bad rows listed.

// maxClueListBytes is the largest clue list the service takes inline.
const maxClueListBytes = 4 << 20

var exportFormats = []string{"CSV", "XLSX"}

var clueListEncodings = []string{"", "utf-8", "gb18030"}

func (s *Server) exchangeRoutes(mux *http.ServeMux) {
	mux.Handle("GET /data/exchange", s.role(s.exchange, auth.RoleDataOfficer))
	mux.Handle("POST /data/exchange/export", s.role(s.exportRecords, auth.RoleDataOfficer))
	mux.Handle("POST /data/exchange/clues", s.role(s.importClues, auth.RoleDataOfficer))
}

type exchangeView struct {
	From, To  string
	Formats   []string
	Encodings []string
	Export    *datacomparisonv1.ExportRecordsResponse
	Problem   string
	Clues     *datacomparisonv1.ImportCluesResponse
}

func (s *Server) exchange(q *request) {
	term := currentTerm(s.now())
	s.showExchange(q, exchangeView{From: term, To: term})
}

func (s *Server) showExchange(q *request, v exchangeView) {
	v.Formats, v.Encodings = exportFormats, clueListEncodings
	if v.Problem != "" || (v.Clues != nil && !v.Clues.GetImported()) {
		q.w.WriteHeader(http.StatusBadRequest)
	}
	q.render("exchange.html", "exchange.title", v)
}

// exportRecords exports a term range's records: a download of the file
// (the service returns it inline, up to 4 MiB), or, for a larger range,
// the file written to the service's export folder, with its summary.
func (s *Server) exportRecords(q *request) {
	from, to := strings.TrimSpace(q.r.PostFormValue("from_term")), strings.TrimSpace(q.r.PostFormValue("to_term"))
	format, ok := datacomparisonv1.ExportFormat_value["EXPORT_FORMAT_"+q.r.PostFormValue("format")]
	if !ok {
		q.fail(http.StatusBadRequest, q.t("err.filter"))
		return
	}
	toFolder := q.r.PostFormValue("to") == "folder"
	ctx, err := q.ctx()
	if err != nil {
		q.upstreamError(err)
		return
	}
	resp, err := s.up.Data.ExportRecords(ctx, &datacomparisonv1.ExportRecordsRequest{FromTerm: from, ToTerm: to,
		Format: datacomparisonv1.ExportFormat(format), Inline: !toFolder})
	if err != nil {
		if msg := explainStatus(err); msg != "" {
			s.showExchange(q, exchangeView{From: from, To: to, Problem: msg})
			return
		}
		q.upstreamError(err)
		return
	}
	if toFolder {
		s.showExchange(q, exchangeView{From: from, To: to, Export: resp})
		return
	}
	ctype := "text/csv; charset=utf-8"
	if format == int32(datacomparisonv1.ExportFormat_EXPORT_FORMAT_XLSX) {
		ctype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	}
	h := q.w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": resp.GetFileName()}))
	h.Set("Content-Length", strconv.Itoa(len(resp.GetContent())))
	h.Set("X-Aid-Records", strconv.FormatInt(resp.GetRecords(), 10))
	_, _ = q.w.Write(resp.GetContent())
}

// importClues sends a returned clue list to the data office: imported
// whole, or refused whole with every bad row listed.
func (s *Server) importClues(q *request) {
	f, hdr, err := q.r.FormFile("file")
	if err != nil {
		q.fail(http.StatusBadRequest, q.t("upload.nofile"))
		return
	}
	defer func() { _ = f.Close() }()
	body, err := io.ReadAll(io.LimitReader(f, maxClueListBytes+1))
	if err != nil || len(body) > maxClueListBytes {
		q.fail(http.StatusRequestEntityTooLarge, q.t("exchange.toolarge"))
		return
	}
	enc := q.r.PostFormValue("encoding")
	if enc != "" && enc != "utf-8" && enc != "gb18030" {
		q.fail(http.StatusBadRequest, q.t("err.filter"))
		return
	}
	ctx, err := q.ctx()
	if err != nil {
		q.upstreamError(err)
		return
	}
	term := currentTerm(s.now())
	resp, err := s.up.Data.ImportClues(ctx, &datacomparisonv1.ImportCluesRequest{Encoding: enc, FileName: hdr.Filename, Content: body})
	if err != nil {
		if msg := explainStatus(err); msg != "" {
			s.showExchange(q, exchangeView{From: term, To: term, Problem: msg})
			return
		}
		q.upstreamError(err)
		return
	}
	s.showExchange(q, exchangeView{From: term, To: term, Clues: resp})
}
