package web

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/edubureau/studentaid/pkg/auth"
	financev1 "github.com/edubureau/studentaid/proto/gen/aid/finance/v1"
)

func (s *Server) financeRoutes(mux *http.ServeMux) {
	mux.Handle("GET /finance/batches", s.role(s.batches, auth.RoleFinanceOfficer))
	mux.Handle("GET /finance/batches/{id}", s.role(s.batch, auth.RoleFinanceOfficer))
	mux.Handle("POST /finance/batches/{id}/close", s.role(s.closeBatch, auth.RoleFinanceOfficer))
	mux.Handle("POST /finance/batches/{id}/confirm", s.role(s.confirmBatch, auth.RoleFinanceOfficer))
	mux.Handle("POST /finance/batches/{id}/return", s.role(s.returnItem, auth.RoleFinanceOfficer))
}

var batchStates = []string{"OPEN", "CLOSED", "CONFIRMED"}

type batchesView struct {
	F      filters
	States []string
	Items  []*financev1.Batch
	Next   string
}

func (s *Server) batches(q *request) {
	f := filtersOf(q.r)
	ctx, err := q.ctx()
	if err != nil {
		q.upstreamError(err)
		return
	}
	req := &financev1.ListBatchesRequest{Term: f.Term, ProgramCode: f.Program, PageSize: pageSize, PageToken: f.Token}
	if f.State != "" {
		st, ok := financev1.BatchStatus_value["BATCH_STATUS_"+f.State]
		if !ok {
			q.fail(http.StatusBadRequest, q.t("err.filter"))
			return
		}
		req.Status = financev1.BatchStatus(st)
	}
	resp, err := s.up.Finance.ListBatches(ctx, req)
	if err != nil {
		q.upstreamError(err)
		return
	}
	q.render("batches.html", "batches.title", batchesView{F: f, States: batchStates, Items: resp.GetBatches(), Next: f.next(resp.GetNextPageToken())})
}

type batchView struct {
	B     *financev1.Batch
	Items []*financev1.BatchItem
	Next  string
	Error string
}

func (s *Server) batch(q *request) {
	s.showBatch(q, "")
}

func (s *Server) showBatch(q *request, errMsg string) {
	ctx, err := q.ctx()
	if err != nil {
		q.upstreamError(err)
		return
	}
	id := q.r.PathValue("id")
	b, err := s.up.Finance.GetBatch(ctx, &financev1.GetBatchRequest{BatchId: id})
	if err != nil {
		q.upstreamError(err)
		return
	}
	page := q.r.URL.Query().Get("page")
	items, err := s.up.Finance.ListBatchItems(ctx, &financev1.ListBatchItemsRequest{BatchId: id, PageSize: pageSize, PageToken: page})
	if err != nil {
		q.upstreamError(err)
		return
	}
	next := ""
	if t := items.GetNextPageToken(); t != "" {
		next = "?page=" + urlEscape(t)
	}
	if errMsg != "" {
		q.w.WriteHeader(http.StatusBadRequest)
	}
	q.render("batch.html", "batch.title", batchView{B: b, Items: items.GetItems(), Next: next, Error: errMsg})
}

func (s *Server) closeBatch(q *request) {
	ctx, err := q.ctx()
	if err != nil {
		q.upstreamError(err)
		return
	}
	if _, err := s.up.Finance.CloseBatch(ctx, &financev1.CloseBatchRequest{BatchId: q.r.PathValue("id")}); err != nil {
		q.upstreamError(err)
		return
	}
	http.Redirect(q.w, q.r, "/finance/batches/"+q.r.PathValue("id")+"?done=closed", http.StatusSeeOther)
}

// confirmBatch is the second officer's confirmation: the control count and
// sum re-typed from the paper order, sent as typed; the service compares.
func (s *Server) confirmBatch(q *request) {
	count, err := strconv.ParseInt(strings.TrimSpace(q.r.PostFormValue("count")), 10, 64)
	if err != nil {
		s.showBatch(q, q.t("confirm.count"))
		return
	}
	sum, ok := parseYuan(q.r.PostFormValue("sum"))
	if !ok {
		s.showBatch(q, q.t("confirm.sum"))
		return
	}
	ctx, err := q.ctx()
	if err != nil {
		q.upstreamError(err)
		return
	}
	if _, err := s.up.Finance.ConfirmBatch(ctx, &financev1.ConfirmBatchRequest{BatchId: q.r.PathValue("id"), ControlCount: count, ControlSumFen: sum}); err != nil {
		s.showBatch(q, q.explain(err))
		return
	}
	http.Redirect(q.w, q.r, "/finance/batches/"+q.r.PathValue("id")+"?done=confirmed", http.StatusSeeOther)
}

func (s *Server) returnItem(q *request) {
	ctx, err := q.ctx()
	if err != nil {
		q.upstreamError(err)
		return
	}
	if _, err := s.up.Finance.ReturnItem(ctx, &financev1.ReturnItemRequest{BatchId: q.r.PathValue("id"), ApplicationId: q.r.PostFormValue("application_id"),
		Reason: strings.TrimSpace(q.r.PostFormValue("reason"))}); err != nil {
		s.showBatch(q, q.explain(err))
		return
	}
	http.Redirect(q.w, q.r, "/finance/batches/"+q.r.PathValue("id")+"?done=returned", http.StatusSeeOther)
}
