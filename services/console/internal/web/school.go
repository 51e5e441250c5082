package web

import (
	"net/http"
	"slices"
	"strings"

	"github.com/edubureau/studentaid/pkg/auth"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
	commonv1 "github.com/edubureau/studentaid/proto/gen/aid/common/v1"
)

// pageSize is the rows of one list page.
const pageSize = 50

func (s *Server) schoolRoutes(mux *http.ServeMux) {
	mux.Handle("GET /applications", s.user(s.applications))
	mux.Handle("GET /applications/{id}", s.user(s.application))
	mux.Handle("GET /upload", s.role(s.uploadPage, auth.RoleSchoolOfficer))
	mux.Handle("POST /upload", s.role(s.upload, auth.RoleSchoolOfficer))
	mux.Handle("POST /uploads/{id}/submit", s.role(s.submitUpload, auth.RoleSchoolOfficer))
	mux.Handle("POST /applications/{id}/payee", s.role(s.correctPayee, auth.RoleSchoolOfficer))
	mux.Handle("GET /school/back-pay", s.role(s.backPay, auth.RoleSchoolOfficer))
	mux.Handle("GET /school/payees", s.role(s.payees, auth.RoleSchoolReviewer))
	mux.Handle("POST /school/payees/{id}", s.role(s.decidePayee, auth.RoleSchoolReviewer))
}

// correctPayee enters a new card for an application whose payment the bank
// returned; a school reviewer approves it (four eyes, the service's rule).
func (s *Server) correctPayee(q *request) {
	ctx, err := q.ctx()
	if err != nil {
		q.upstreamError(err)
		return
	}
	id := q.r.PathValue("id")
	if _, err := s.up.Applications.CorrectPayee(ctx, &applicationv1.CorrectPayeeRequest{ApplicationId: id,
		BankCardNumber: strings.ReplaceAll(strings.TrimSpace(q.r.PostFormValue("bank_card_number")), " ", ""),
		AccountName:    strings.TrimSpace(q.r.PostFormValue("account_name"))}); err != nil {
		q.upstreamError(err)
		return
	}
	http.Redirect(q.w, q.r, "/applications/"+id+"?done=payee", http.StatusSeeOther)
}

// backPay lists the school's back-pay orders (补发): the missed students the
// data office verified, each to be submitted once in a list naming it.
func (s *Server) backPay(q *request) {
	ctx, err := q.ctx()
	if err != nil {
		q.upstreamError(err)
		return
	}
	f := filtersOf(q.r)
	resp, err := s.up.Applications.ListBackPayOrders(ctx, &applicationv1.ListBackPayOrdersRequest{SchoolCode: q.sess.ID.Org,
		PageSize: pageSize, PageToken: f.Token})
	if err != nil {
		q.upstreamError(err)
		return
	}
	q.render("backpay.html", "backpay.title", map[string]any{"Items": resp.GetOrders(), "Next": f.next(resp.GetNextPageToken())})
}

// payees is the school reviewer's queue of payee corrections to decide.
func (s *Server) payees(q *request) {
	ctx, err := q.ctx()
	if err != nil {
		q.upstreamError(err)
		return
	}
	f := filtersOf(q.r)
	resp, err := s.up.Applications.ListApplications(ctx, &applicationv1.ListApplicationsRequest{SchoolCode: q.sess.ID.Org, PendingPayeeCorrection: true,
		PageSize: pageSize, PageToken: f.Token})
	if err != nil {
		q.upstreamError(err)
		return
	}
	// The listing carries each item's pending correction: one call for the
	// page, not one per item (each of which counted against the school's
	// fair use at the gateway).
	items := make([]*applicationv1.Application, 0, len(resp.GetApplications()))
	for _, a := range resp.GetApplications() {
		if a.GetPendingPayeeCorrection() != nil {
			items = append(items, a)
		}
	}
	q.render("payees.html", "payees.title", map[string]any{"Items": items, "Next": f.next(resp.GetNextPageToken())})
}

func (s *Server) decidePayee(q *request) {
	ctx, err := q.ctx()
	if err != nil {
		q.upstreamError(err)
		return
	}
	id, correction := q.r.PathValue("id"), q.r.PostFormValue("correction_id")
	if q.r.PostFormValue("action") == "approve" {
		_, err = s.up.Applications.ApprovePayeeCorrection(ctx, &applicationv1.ApprovePayeeCorrectionRequest{ApplicationId: id, CorrectionId: correction})
	} else {
		_, err = s.up.Applications.RejectPayeeCorrection(ctx, &applicationv1.RejectPayeeCorrectionRequest{ApplicationId: id, CorrectionId: correction,
			Reason: strings.TrimSpace(q.r.PostFormValue("reason"))})
	}
	if err != nil {
		q.upstreamError(err)
		return
	}
	http.Redirect(q.w, q.r, "/school/payees?done=payee", http.StatusSeeOther)
}

// role wraps a handler for users of the given roles; others get a refusal
// (the services would refuse them too; the console says so first).
func (s *Server) role(h func(q *request), roles ...auth.Role) http.Handler {
	return s.user(func(q *request) {
		if slices.Contains(roles, q.sess.ID.Role) {
			h(q)
			return
		}
		q.fail(http.StatusForbidden, q.t("err.role"))
	})
}

// filters are a list page's filters, read from its query.
type filters struct {
	Term, Program, Status, School, State, Token string
}

func filtersOf(r *http.Request) filters {
	v := r.URL.Query()
	return filters{Term: strings.TrimSpace(v.Get("term")), Program: strings.TrimSpace(v.Get("program")),
		Status: v.Get("status"), School: strings.TrimSpace(v.Get("school")), State: v.Get("state"), Token: v.Get("page")}
}

// next is the query of the following page: the filters and the page token.
func (f filters) next(token string) string {
	if token == "" {
		return ""
	}
	q := make([]string, 0, 6)
	for _, kv := range [][2]string{{"term", f.Term}, {"program", f.Program}, {"status", f.Status}, {"school", f.School}, {"state", f.State}, {"page", token}} {
		if kv[1] != "" {
			q = append(q, kv[0]+"="+urlEscape(kv[1]))
		}
	}
	return "?" + strings.Join(q, "&")
}

type applicationsView struct {
	F        filters
	Statuses []string
	Items    []*applicationv1.Application
	Next     string
}

var statusNames = func() []string {
	var out []string
	for i := int32(1); ; i++ {
		n, ok := commonv1.ApplicationStatus_name[i]
		if !ok {
			return out
		}
		out = append(out, strings.TrimPrefix(n, "APPLICATION_STATUS_"))
	}
}()

// applications lists the school's applications (a school's users) with
// filters and keyset pages.
func (s *Server) applications(q *request) {
	f := filtersOf(q.r)
	ctx, err := q.ctx()
	if err != nil {
		q.upstreamError(err)
		return
	}
	school := f.School
	if q.sess.ID.Role.SchoolBound() {
		school = q.sess.ID.Org
	}
	req := &applicationv1.ListApplicationsRequest{SchoolCode: school, Term: f.Term, ProgramCode: f.Program, PageSize: pageSize, PageToken: f.Token}
	if f.Status != "" {
		st, ok := commonv1.ApplicationStatus_value["APPLICATION_STATUS_"+f.Status]
		if !ok {
			q.fail(http.StatusBadRequest, q.t("err.filter"))
			return
		}
		req.Status = commonv1.ApplicationStatus(st)
	}
	resp, err := s.up.Applications.ListApplications(ctx, req)
	if err != nil {
		q.upstreamError(err)
		return
	}
	q.render("applications.html", "applications.title", applicationsView{F: f, Statuses: statusNames, Items: resp.GetApplications(), Next: f.next(resp.GetNextPageToken())})
}

func (s *Server) application(q *request) {
	ctx, err := q.ctx()
	if err != nil {
		q.upstreamError(err)
		return
	}
	a, err := s.up.Applications.GetApplication(ctx, &applicationv1.GetApplicationRequest{ApplicationId: q.r.PathValue("id")})
	if err != nil {
		q.upstreamError(err)
		return
	}
	tr, err := s.up.Applications.GetTrail(ctx, &applicationv1.GetTrailRequest{ApplicationId: a.GetApplicationId()})
	if err != nil {
		q.upstreamError(err)
		return
	}
	q.render("application.html", "application.title", map[string]any{"A": a, "Trail": tr.GetEvents()})
}
