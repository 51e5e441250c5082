package web

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strconv"

	"github.com/edubureau/studentaid/pkg/audit"
	"github.com/edubureau/studentaid/pkg/auth"
)

// signinTTL bounds how long a sign-in may take at the identity provider.
const signinTTL = 10 * 60

type signinData struct {
	DevUsers []auth.Identity
	OIDC     bool
	Token    string
}

func (s *Server) signinPage(w http.ResponseWriter, r *http.Request) {
	lang := langOf(r)
	d := signinData{DevUsers: s.cfg.DevUsers, OIDC: s.cfg.OIDC != nil}
	if len(s.cfg.DevUsers) > 0 {
		tok, err := randomToken()
		if err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		d.Token = tok
		http.SetCookie(w, s.cookie(signinCookie, tok, "/signin", signinTTL))
	}
	s.renderPage(w, r, lang, nil, "signin.html", "signin.title", d, "")
}

// signinDev signs in as one of the development users (make run only).
func (s *Server) signinDev(w http.ResponseWriter, r *http.Request) {
	lang := langOf(r)
	c, err := r.Cookie(signinCookie)
	if len(s.cfg.DevUsers) == 0 || err != nil || c.Value == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue("csrf"))) != 1 {
		w.WriteHeader(http.StatusForbidden)
		s.renderPage(w, r, lang, nil, "error.html", "err.title", nil, translate(lang, "err.csrf"))
		return
	}
	i, err := strconv.Atoi(r.PostFormValue("user"))
	if err != nil || i < 0 || i >= len(s.cfg.DevUsers) {
		w.WriteHeader(http.StatusBadRequest)
		s.renderPage(w, r, lang, nil, "error.html", "err.title", nil, translate(lang, "signin.pick"))
		return
	}
	s.startSession(w, r, s.cfg.DevUsers[i], "dev")
}

func (s *Server) signinOIDC(w http.ResponseWriter, r *http.Request) {
	if s.cfg.OIDC == nil {
		http.NotFound(w, r)
		return
	}
	redirect, pending, err := s.cfg.OIDC.Begin()
	if err != nil {
		s.log.ErrorContext(r.Context(), "oidc begin", "err", err)
		http.Error(w, translate(langOf(r), "err.unavailable"), http.StatusBadGateway)
		return
	}
	http.SetCookie(w, s.cookie(signinCookie, pending, "/signin", signinTTL))
	http.Redirect(w, r, redirect, http.StatusFound)
}

func (s *Server) signinCallback(w http.ResponseWriter, r *http.Request) {
	lang := langOf(r)
	c, err := r.Cookie(signinCookie)
	if s.cfg.OIDC == nil || err != nil {
		w.WriteHeader(http.StatusForbidden)
		s.renderPage(w, r, lang, nil, "error.html", "err.title", nil, translate(lang, "signin.failed"))
		return
	}
	http.SetCookie(w, s.cookie(signinCookie, "", "/signin", -1))
	q := r.URL.Query()
	id, err := s.cfg.OIDC.Complete(r.Context(), c.Value, q.Get("state"), q.Get("code"))
	if err != nil {
		s.log.WarnContext(r.Context(), "oidc sign-in refused", "err", err)
		s.record(r.Context(), auth.Identity{UserID: "unknown", Role: "", Org: ""}, "console.SignIn", "refused", "oidc: "+err.Error())
		w.WriteHeader(http.StatusForbidden)
		s.renderPage(w, r, lang, nil, "error.html", "err.title", nil, translate(lang, "signin.failed"))
		return
	}
	s.startSession(w, r, id, "oidc")
}

func (s *Server) startSession(w http.ResponseWriter, r *http.Request, id auth.Identity, method string) {
	token, _, err := s.sessions.Create(r.Context(), id, method)
	if err != nil {
		s.log.ErrorContext(r.Context(), "create session", "err", err)
		http.Error(w, translate(langOf(r), "err.unavailable"), http.StatusInternalServerError)
		return
	}
	s.record(r.Context(), id, "console.SignIn", "ok", method)
	http.SetCookie(w, s.cookie(signinCookie, "", "/signin", -1))
	http.SetCookie(w, s.cookie(sessionCookie, token, "/", 0))
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) signout(q *request) {
	if err := s.sessions.End(q.r.Context(), q.sess); err != nil {
		s.log.ErrorContext(q.r.Context(), "end session", "err", err)
	}
	s.record(q.r.Context(), q.sess.ID, "console.SignOut", "ok", "")
	http.SetCookie(q.w, s.cookie(sessionCookie, "", "/", -1))
	http.Redirect(q.w, q.r, "/signin", http.StatusSeeOther)
}

// record writes a security fact to the console's audit log.
func (s *Server) record(ctx context.Context, id auth.Identity, method, outcome, detail string) {
	if err := audit.Record(auth.WithIdentity(ctx, id), s.pool, audit.Entry{Method: method, Outcome: outcome, Detail: detail}); err != nil {
		s.log.ErrorContext(ctx, "audit record", "err", err)
	}
}

// home sends each role to its work.
func (s *Server) home(q *request) {
	nav := navFor(q.lang, q.sess.ID.Role, "")
	if len(nav) > 0 {
		http.Redirect(q.w, q.r, nav[0].Href, http.StatusSeeOther)
		return
	}
	q.render("home.html", "home.title", nil)
}

// navFor lists the pages of a role, its main work first.
func navFor(lang string, role auth.Role, current string) []navItem {
	var items [][2]string
	switch role {
	case auth.RoleSchoolOfficer:
		items = [][2]string{{"/applications", "nav.applications"}, {"/upload", "nav.upload"}, {"/school/back-pay", "nav.backpay"}}
	case auth.RoleSchoolReviewer:
		items = [][2]string{{"/school/reviews", "nav.inbox"}, {"/school/notice", "nav.notice"}, {"/school/payees", "nav.payees"}, {"/applications", "nav.applications"}}
	case auth.RoleBureauReviewer:
		items = [][2]string{{"/bureau/reviews", "nav.inbox"}, {"/policy", "nav.policy"}, {"/reports", "nav.reports"}}
	case auth.RoleFinanceOfficer:
		items = [][2]string{{"/finance/batches", "nav.batches"}, {"/reports", "nav.reports"}}
	case auth.RoleDataOfficer:
		items = [][2]string{{"/data/clues", "nav.clues"}, {"/data/imports", "nav.imports"}, {"/data/refunds", "nav.refunds"}, {"/data/exchange", "nav.exchange"}, {"/reports", "nav.reports"}}
	case auth.RoleAuditor:
		items = [][2]string{{"/audit", "nav.audit"}, {"/data/clues", "nav.clues"}, {"/data/imports", "nav.imports"}, {"/data/refunds", "nav.refunds"},
			{"/policy", "nav.policy"}, {"/reports", "nav.reports"}}
	case auth.RolePolicyAdmin:
		items = [][2]string{{"/policy", "nav.policy"}}
	case auth.RoleOps:
		// Operations work from the services' metrics and logs; the
		// reporting service does not serve them reports.
	case auth.RoleService:
		// Services have no pages; sign-in refuses the role anyway.
	}
	out := make([]navItem, len(items))
	for i, it := range items {
		out[i] = navItem{Href: it[0], Label: translate(lang, it[1]), Current: current == it[0]}
	}
	return out
}
