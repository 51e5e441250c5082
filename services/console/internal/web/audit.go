package web

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/google/uuid"

	"github.com/edubureau/studentaid/pkg/auth"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
)

func (s *Server) auditRoutes(mux *http.ServeMux) {
	mux.Handle("GET /audit", s.role(s.auditForm, auth.RoleAuditor))
	mux.Handle("POST /audit/trail", s.role(s.auditTrail, auth.RoleAuditor))
}

func (s *Server) auditForm(q *request) { q.render("audit.html", "audit.title", nil) }

type auditView struct {
	A      *applicationv1.Application
	Trail  []*applicationv1.TrailEvent
	Verify *applicationv1.VerifyTrailResponse
	Jaeger string
}

// auditTrail shows one application in full with its trail and the trail's
// verification. The auditor states why: the application service records
// the read with that purpose. Posted, so neither the ID nor the purpose
// lands in URLs or logs of proxies.
func (s *Server) auditTrail(q *request) {
	id := strings.TrimSpace(q.r.PostFormValue("application_id"))
	purpose := strings.TrimSpace(q.r.PostFormValue("purpose"))
	if _, err := uuid.Parse(id); err != nil {
		q.fail(http.StatusBadRequest, q.t("audit.badid"))
		return
	}
	if purpose == "" {
		q.fail(http.StatusBadRequest, q.t("audit.purpose"))
		return
	}
	ctx, err := q.ctx()
	if err != nil {
		q.upstreamError(err)
		return
	}
	a, err := s.up.Applications.GetApplication(ctx, &applicationv1.GetApplicationRequest{ApplicationId: id, Purpose: purpose})
	if err != nil {
		q.upstreamError(err)
		return
	}
	tr, err := s.up.Applications.GetTrail(ctx, &applicationv1.GetTrailRequest{ApplicationId: id})
	if err != nil {
		q.upstreamError(err)
		return
	}
	v, err := s.up.Applications.VerifyTrail(ctx, &applicationv1.VerifyTrailRequest{ApplicationId: id})
	if err != nil {
		q.upstreamError(err)
		return
	}
	view := auditView{A: a, Trail: tr.GetEvents(), Verify: v}
	if s.cfg.JaegerUI != "" {
		view.Jaeger = s.cfg.JaegerUI + "/search?service=application&limit=100&tags=" + url.QueryEscape(`{"application.id":"`+id+`"}`)
	}
	q.render("audit_trail.html", "audit.title", view)
}
