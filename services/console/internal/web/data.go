package web

import (
	"net/http"

	"github.com/edubureau/studentaid/pkg/auth"
	datacomparisonv1 "github.com/edubureau/studentaid/proto/gen/aid/datacomparison/v1"
)

func (s *Server) dataRoutes(mux *http.ServeMux) {
	mux.Handle("GET /data/clues", s.role(s.clues, auth.RoleDataOfficer, auth.RoleAuditor))
	mux.Handle("GET /data/imports", s.role(s.imports, auth.RoleDataOfficer, auth.RoleAuditor))
	mux.Handle("GET /data/refunds", s.role(s.refunds, auth.RoleDataOfficer, auth.RoleAuditor))
}

var clueStates = []string{"OPEN", "ASSIGNED", "VERIFIED", "DISMISSED"}

func (s *Server) clues(q *request) {
	f := filtersOf(q.r)
	ctx, err := q.ctx()
	if err != nil {
		q.upstreamError(err)
		return
	}
	req := &datacomparisonv1.ListCluesRequest{Kind: q.r.URL.Query().Get("kind"), SchoolCode: f.School, Term: f.Term, PageSize: pageSize, PageToken: f.Token}
	if f.State != "" {
		st, ok := datacomparisonv1.ClueStatus_value["CLUE_STATUS_"+f.State]
		if !ok {
			q.fail(http.StatusBadRequest, q.t("err.filter"))
			return
		}
		req.Status = datacomparisonv1.ClueStatus(st)
	}
	resp, err := s.up.Data.ListClues(ctx, req)
	if err != nil {
		q.upstreamError(err)
		return
	}
	q.render("clues.html", "clues.title", map[string]any{"F": f, "States": clueStates, "Items": resp.GetClues(), "Next": f.next(resp.GetNextPageToken())})
}

func (s *Server) imports(q *request) {
	ctx, err := q.ctx()
	if err != nil {
		q.upstreamError(err)
		return
	}
	f := filtersOf(q.r)
	resp, err := s.up.Data.ListImports(ctx, &datacomparisonv1.ListImportsRequest{PageSize: pageSize, PageToken: f.Token})
	if err != nil {
		q.upstreamError(err)
		return
	}
	q.render("imports.html", "imports.title", map[string]any{"Items": resp.GetImports(), "Next": f.next(resp.GetNextPageToken())})
}

func (s *Server) refunds(q *request) {
	ctx, err := q.ctx()
	if err != nil {
		q.upstreamError(err)
		return
	}
	f := filtersOf(q.r)
	resp, err := s.up.Data.ListRefunds(ctx, &datacomparisonv1.ListRefundsRequest{PageSize: pageSize, PageToken: f.Token})
	if err != nil {
		q.upstreamError(err)
		return
	}
	q.render("refunds.html", "refunds.title", map[string]any{"Items": resp.GetRefunds(), "Next": f.next(resp.GetNextPageToken())})
}
