package web

import (
	"context"
	"io"
	"net/http"
	"strings"

	"github.com/edubureau/studentaid/pkg/auth"
	datacomparisonv1 "github.com/edubureau/studentaid/proto/gen/aid/datacomparison/v1"
)

func (s *Server) dataRoutes(mux *http.ServeMux) {
	readers := []auth.Role{auth.RoleDataOfficer, auth.RoleAuditor}
	mux.Handle("GET /data/clues", s.role(s.clues, readers...))
	mux.Handle("POST /data/clues/work", s.role(s.workClues, auth.RoleDataOfficer))
	mux.Handle("POST /data/compare", s.role(s.compare, auth.RoleDataOfficer))
	mux.Handle("GET /data/imports", s.role(s.imports, readers...))
	mux.Handle("POST /data/imports", s.role(s.importReference, auth.RoleDataOfficer))
	mux.Handle("GET /data/refunds", s.role(s.refunds, readers...))
	mux.Handle("POST /data/refunds/{id}/receipts", s.role(s.recordReceipt, auth.RoleDataOfficer))
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
	q.render("clues.html", "clues.title", map[string]any{"F": f, "States": clueStates, "Items": resp.GetClues(), "Next": f.next(resp.GetNextPageToken()),
		"Officer": q.sess.ID.Role == auth.RoleDataOfficer, "Me": q.sess.ID.UserID, "Term": currentTerm(s.now())})
}

// workClues assigns, verifies or dismisses the ticked clues, all or
// nothing (the service's rule: clues worked together share a cause).
func (s *Server) workClues(q *request) {
	ids := q.r.PostForm["id"]
	if len(ids) == 0 || len(ids) > maxBulk {
		q.fail(http.StatusBadRequest, q.t("decide.none"))
		return
	}
	ctx, err := q.ctx()
	if err != nil {
		q.upstreamError(err)
		return
	}
	findings, evidence := strings.TrimSpace(q.r.PostFormValue("findings")), strings.TrimSpace(q.r.PostFormValue("evidence"))
	switch q.r.PostFormValue("action") {
	case "assign":
		assignee := strings.TrimSpace(q.r.PostFormValue("assignee"))
		if assignee == "" {
			assignee = q.sess.ID.UserID
		}
		_, err = s.up.Data.AssignClues(ctx, &datacomparisonv1.AssignCluesRequest{ClueIds: ids, Assignee: assignee})
	case "verify":
		req := &datacomparisonv1.VerifyCluesRequest{ClueIds: ids, Findings: findings, Evidence: evidence, Ineligible: q.r.PostFormValue("ineligible") == "on"}
		if v := strings.TrimSpace(q.r.PostFormValue("recover")); v != "" {
			fen, ok := parseYuan(v)
			if !ok {
				q.fail(http.StatusBadRequest, q.t("confirm.sum"))
				return
			}
			req.RecoverFen = fen
		}
		_, err = s.up.Data.VerifyClues(ctx, req)
	case "dismiss":
		_, err = s.up.Data.DismissClues(ctx, &datacomparisonv1.DismissCluesRequest{ClueIds: ids, Findings: findings, Evidence: evidence})
	default:
		q.fail(http.StatusBadRequest, q.t("err.filter"))
		return
	}
	if err != nil {
		q.upstreamError(err)
		return
	}
	http.Redirect(q.w, q.r, "/data/clues?done=clues", http.StatusSeeOther)
}

// compareResult is a comparison run's outcome, for its job page.
type compareResult struct {
	RunID     int64            `json:"run_id"`
	From      string           `json:"from"`
	To        string           `json:"to"`
	Records   int64            `json:"records"`
	NewClues  map[string]int64 `json:"new_clues"`
	Problem   string           `json:"problem,omitempty"`
	Reference []int64          `json:"reference_import_ids"`
}

// compare runs a comparison as a job: the page shows it running until the
// service answers with what it found.
func (s *Server) compare(q *request) {
	from, to := strings.TrimSpace(q.r.PostFormValue("from_term")), strings.TrimSpace(q.r.PostFormValue("to_term"))
	who := q.sess.ID
	jid, err := s.jobs.Start(q.r.Context(), who, jobCompare, from+" – "+to, 1, func(bg context.Context, _ Progress) (any, error) {
		ctx, err := s.up.As(bg, who)
		if err != nil {
			return nil, err
		}
		run, err := s.up.Data.RunComparison(ctx, &datacomparisonv1.RunComparisonRequest{FromTerm: from, ToTerm: to})
		if err != nil {
			return compareResult{From: from, To: to, Problem: explainStatus(err)}, err
		}
		return compareResult{RunID: run.GetRunId(), From: from, To: to, Records: run.GetRecords(), NewClues: run.GetNewClues(), Reference: run.GetReferenceImportIds()}, nil
	})
	if err != nil {
		q.fail(http.StatusInternalServerError, q.t("err.unavailable"))
		return
	}
	http.Redirect(q.w, q.r, "/jobs/"+jid.String(), http.StatusSeeOther)
}

var referenceKinds = []string{"POVERTY_REGISTRY", "KEY_PERSONS", "ROSTER", "DEATHS", "HISTORY"}

func (s *Server) imports(q *request) {
	s.showImports(q, nil)
}

func (s *Server) showImports(q *request, result *datacomparisonv1.ImportReferenceResponse) {
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
	if result != nil && !result.GetImported() {
		q.w.WriteHeader(http.StatusBadRequest)
	}
	q.render("imports.html", "imports.title", map[string]any{"Items": resp.GetImports(), "Next": f.next(resp.GetNextPageToken()),
		"Kinds": referenceKinds, "Officer": q.sess.ID.Role == auth.RoleDataOfficer, "Result": result})
}

// importReference sends a reference file (registry, key persons, roster,
// deaths) to the data office; a file with bad rows is refused whole and its
// rows listed.
func (s *Server) importReference(q *request) {
	kind, ok := datacomparisonv1.ReferenceKind_value["REFERENCE_KIND_"+q.r.PostFormValue("kind")]
	if !ok {
		q.fail(http.StatusBadRequest, q.t("err.filter"))
		return
	}
	f, hdr, err := q.r.FormFile("file")
	if err != nil {
		q.fail(http.StatusBadRequest, q.t("upload.nofile"))
		return
	}
	defer func() { _ = f.Close() }()
	body, err := io.ReadAll(io.LimitReader(f, maxUploadBytes+1))
	if err != nil || len(body) > maxUploadBytes {
		q.fail(http.StatusRequestEntityTooLarge, q.t("upload.toolarge"))
		return
	}
	ctx, err := q.ctx()
	if err != nil {
		q.upstreamError(err)
		return
	}
	resp, err := s.up.Data.ImportReference(ctx, &datacomparisonv1.ImportReferenceRequest{Kind: datacomparisonv1.ReferenceKind(kind),
		SchoolCode: strings.TrimSpace(q.r.PostFormValue("school")), Term: strings.TrimSpace(q.r.PostFormValue("term")),
		Source: strings.TrimSpace(q.r.PostFormValue("source")), FileName: hdr.Filename, Content: body})
	if err != nil {
		q.upstreamError(err)
		return
	}
	s.showImports(q, resp)
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
	q.render("refunds.html", "refunds.title", map[string]any{"Items": resp.GetRefunds(), "Next": f.next(resp.GetNextPageToken()),
		"Officer": q.sess.ID.Role == auth.RoleDataOfficer})
}

// recordReceipt records money received into the integrity account against
// a refund order (the service makes a retry with the same bank reference a
// no-op).
func (s *Server) recordReceipt(q *request) {
	fen, ok := parseYuan(q.r.PostFormValue("amount"))
	if !ok {
		q.fail(http.StatusBadRequest, q.t("confirm.sum"))
		return
	}
	ctx, err := q.ctx()
	if err != nil {
		q.upstreamError(err)
		return
	}
	if _, err := s.up.Data.RecordReceipt(ctx, &datacomparisonv1.RecordReceiptRequest{RefundId: q.r.PathValue("id"), AmountFen: fen,
		BankRef: strings.TrimSpace(q.r.PostFormValue("bank_ref")), Account: strings.TrimSpace(q.r.PostFormValue("account"))}); err != nil {
		q.upstreamError(err)
		return
	}
	http.Redirect(q.w, q.r, "/data/refunds?done=receipt", http.StatusSeeOther)
}
