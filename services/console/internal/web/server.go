// Package web is the console: server-rendered pages for the people in the
// chain (school officers and reviewers, bureau reviewers, finance
// officers, data officers, auditors), calling the services with the
// signed-in user's identity.
package web

import (
	"bytes"
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/edubureau/studentaid/pkg/auth"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Cookie names.
const (
	sessionCookie = "aid_session"
	langCookie    = "aid_lang"
	// signinCookie carries the pending OIDC sign-in (state, nonce, PKCE
	// verifier) or the development sign-in form's CSRF token.
	signinCookie = "aid_signin"
)

// Authenticator signs users in through the organisation's identity
// provider (OpenID Connect).
type Authenticator interface {
	// Begin returns the provider's URL to send the browser to and the
	// secret to keep in the sign-in cookie until the callback.
	Begin() (redirect string, pending string, err error)
	// Complete checks the callback against the kept secret and returns the
	// signed-in identity.
	Complete(ctx context.Context, pending, state, code string) (auth.Identity, error)
}

// Config configures the console.
type Config struct {
	// DevUsers, when not empty, enables the development sign-in: pick one
	// of these users. Production refuses it.
	DevUsers []auth.Identity
	// OIDC, when set, signs users in through the identity provider.
	OIDC Authenticator
	// SecureCookies marks cookies Secure (HTTPS only).
	SecureCookies bool
	// JaegerUI is the base URL of Jaeger's UI, for the auditor's links.
	JaegerUI string
	// APIBase is the entry point's HTTP base URL, for the file exports.
	APIBase string
}

// Server serves the console.
type Server struct {
	cfg      Config
	log      *slog.Logger
	pool     *pgxpool.Pool
	sessions *Sessions
	up       *Upstream
	pages    map[string]*template.Template
	jobs     *Jobs
	http     *http.Client
	now      func() time.Time
}

// New returns the console's server.
func New(cfg Config, log *slog.Logger, pool *pgxpool.Pool, up *Upstream, idle, maxAge time.Duration) (*Server, error) {
	if len(cfg.DevUsers) == 0 && cfg.OIDC == nil {
		return nil, errors.New("no sign-in configured: set the identity provider (AID_OIDC_ISSUER) or, in development, the development sign-in")
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg: cfg, log: log, pool: pool, up: up, pages: pages, now: time.Now,
		sessions: &Sessions{pool: pool, Idle: idle, Max: maxAge, now: time.Now},
		http:     &http.Client{Transport: otelhttp.NewTransport(http.DefaultTransport), Timeout: 5 * time.Minute},
	}
	s.jobs = &Jobs{pool: pool, log: log, now: time.Now}
	return s, nil
}

// Handler returns the console's routes behind its security headers.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFiles, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := s.pool.Ping(r.Context()); err != nil {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /lang/{lang}", s.setLang)
	mux.HandleFunc("GET /signin", s.signinPage)
	mux.HandleFunc("POST /signin/dev", s.signinDev)
	mux.HandleFunc("GET /signin/oidc", s.signinOIDC)
	mux.HandleFunc("GET /signin/callback", s.signinCallback)
	mux.Handle("POST /signout", s.user(s.signout))

	mux.Handle("GET /{$}", s.user(s.home))
	mux.Handle("GET /jobs/{id}", s.user(s.jobPage))
	mux.Handle("GET /jobs/{id}/progress", s.user(s.jobProgress))
	s.schoolRoutes(mux)
	s.reviewRoutes(mux)
	s.financeRoutes(mux)
	s.dataRoutes(mux)
	s.exchangeRoutes(mux)
	s.policyRoutes(mux)
	s.auditRoutes(mux)
	s.reportRoutes(mux)
	return otelhttp.NewHandler(securityHeaders(mux), "console",
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			if r.Pattern != "" {
				return r.Pattern
			}
			return r.Method
		}))
}

// csp allows the console's own scripts, styles and images only: no inline
// script, no framing, forms posting to the console only.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// request is what a handler of a signed-in user gets.
type request struct {
	w    http.ResponseWriter
	r    *http.Request
	sess *Session
	lang string
	s    *Server
}

// ctx returns the request's context carrying the user's call token.
func (q *request) ctx() (context.Context, error) { return q.s.up.As(q.r.Context(), q.sess.ID) }

// user wraps a handler that needs a signed-in user: no session sends the
// browser to sign in; a POST without the session's CSRF token (or from
// another origin) is refused.
func (s *Server) user(h func(q *request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var token string
		if c, err := r.Cookie(sessionCookie); err == nil {
			token = c.Value
		}
		sess, err := s.sessions.Get(r.Context(), token)
		if errors.Is(err, errNoSession) {
			if r.Method == http.MethodGet && !strings.HasSuffix(r.URL.Path, "/progress") {
				http.Redirect(w, r, "/signin", http.StatusSeeOther)
				return
			}
			http.Error(w, "signed out: sign in again", http.StatusUnauthorized)
			return
		}
		if err != nil {
			s.log.ErrorContext(r.Context(), "session", "err", err)
			http.Error(w, "the console could not read your session; try again", http.StatusInternalServerError)
			return
		}
		q := &request{w: w, r: r, sess: sess, lang: langOf(r), s: s}
		r.Body = http.MaxBytesReader(w, r.Body, maxUploadBytes+1<<20)
		if r.Method == http.MethodPost && !s.checkCSRF(r, sess.CSRF) {
			s.log.WarnContext(r.Context(), "form refused: CSRF token or origin missing or wrong", "user", sess.ID.String(), "path", r.URL.Path)
			q.fail(http.StatusForbidden, q.t("err.csrf"))
			return
		}
		h(q)
	})
}

// checkCSRF accepts a form carrying the session's token, posted from the
// console's own origin when the browser says where from.
func (s *Server) checkCSRF(r *http.Request, want string) bool {
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return false
		}
	}
	got := r.Header.Get("X-Csrf-Token")
	if got == "" {
		// The body is bounded by the caller (MaxBytesReader).
		if err := r.ParseMultipartForm(maxUploadBytes); err != nil && !errors.Is(err, http.ErrNotMultipart) { //nolint:gosec // G120: bounded by http.MaxBytesReader in user
			return false
		}
		got = r.PostFormValue("csrf")
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func langOf(r *http.Request) string {
	if c, err := r.Cookie(langCookie); err == nil && c.Value == "en" {
		return "en"
	}
	return "zh"
}

func (s *Server) setLang(w http.ResponseWriter, r *http.Request) {
	lang := "zh"
	if r.PathValue("lang") == "en" {
		lang = "en"
	}
	http.SetCookie(w, s.cookie(langCookie, lang, "/", 365*24*3600))
	back := "/"
	if ref := r.URL.Query().Get("back"); localPath.MatchString(ref) {
		back = ref
	}
	http.Redirect(w, r, back, http.StatusSeeOther) //nolint:gosec // G710: back is a path of this console (localPath), never another host
}

// localPath is a path of the console with an optional query: no scheme, no
// host, no "//" or backslash that a browser could read as another host.
var localPath = regexp.MustCompile(`^/[A-Za-z0-9/_.-]*(\?[A-Za-z0-9=&%_.-]*)?$`)

// cookie is a console cookie: HttpOnly, SameSite=Strict, and Secure when
// the console is served over HTTPS (AID_CONSOLE_SECURE_COOKIES, on in
// production).
func (s *Server) cookie(name, value, path string, maxAge int) *http.Cookie {
	return &http.Cookie{ //nolint:gosec // G124: Secure follows AID_CONSOLE_SECURE_COOKIES, which production requires
		Name: name, Value: value, Path: path, MaxAge: maxAge, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.cfg.SecureCookies}
}

// page is what every template gets.
type page struct {
	Title string
	Lang  string
	Path  string
	Sess  *Session
	CSRF  string
	Nav   []navItem
	Data  any
	Error string
	Flash string
}

type navItem struct {
	Href, Label string
	Current     bool
}

// T translates key into the page's language.
func (p page) T(key string) string { return translate(p.Lang, key) }

func (q *request) t(key string) string { return translate(q.lang, key) }

// render writes a page.
func (q *request) render(name, title string, data any) {
	q.s.renderPage(q.w, q.r, q.lang, q.sess, name, title, data, "")
}

func (s *Server) renderPage(w http.ResponseWriter, r *http.Request, lang string, sess *Session, name, title string, data any, errMsg string) {
	t, ok := s.pages[name]
	if !ok {
		s.log.Error("no such page template", "page", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	p := page{Title: translate(lang, title), Lang: lang, Path: r.URL.Path, Sess: sess, Data: data, Error: errMsg, Flash: r.URL.Query().Get("done")}
	if sess != nil {
		p.CSRF = sess.CSRF
		p.Nav = navFor(lang, sess.ID.Role, r.URL.Path)
	}
	// Rendered whole before anything is sent, so a page that fails half-way
	// is an error, not half a page.
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		s.log.ErrorContext(r.Context(), "render", "page", name, "err", err)
		http.Error(w, translate(lang, "err.unavailable"), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

// fail shows an error page with a message the user can act on.
func (q *request) fail(code int, msg string) {
	q.w.WriteHeader(code)
	q.s.renderPage(q.w, q.r, q.lang, q.sess, "error.html", "err.title", nil, msg)
}

// upstreamError shows a service's refusal: its message (written for the
// officer) for the codes a user can act on, a generic line otherwise, with
// the detail logged.
func (q *request) upstreamError(err error) {
	q.fail(httpStatus(err), q.explain(err))
}

func (q *request) explain(err error) string {
	if msg := explainStatus(err); msg != "" {
		return msg
	}
	if status.Code(err) == codes.Unauthenticated {
		return q.t("err.signin")
	}
	q.s.log.ErrorContext(q.r.Context(), "service call failed", "err", err, "user", q.sess.ID.String())
	return q.t("err.unavailable")
}

// explainStatus is a service's message for the refusals a user can act on
// (the services write those for officers), "" for the others.
func explainStatus(err error) string {
	st, _ := status.FromError(err)
	switch st.Code() {
	case codes.InvalidArgument, codes.FailedPrecondition, codes.AlreadyExists, codes.PermissionDenied,
		codes.NotFound, codes.Aborted, codes.OutOfRange, codes.ResourceExhausted:
		return st.Message()
	default:
		return ""
	}
}

func httpStatus(err error) int {
	switch status.Code(err) {
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.AlreadyExists, codes.Aborted:
		return http.StatusConflict
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.NotFound:
		return http.StatusNotFound
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	default:
		return http.StatusBadGateway
	}
}

// sharedTemplates are parsed into every page: the layout and the pieces
// several pages use.
var sharedTemplates = []string{"templates/layout.html", "templates/filters.html", "templates/trail.html"}

// dict builds a map from key, value pairs, to hand a shared template
// several values.
func dict(kv ...any) (map[string]any, error) {
	if len(kv)%2 != 0 {
		return nil, errors.New("dict: odd number of arguments")
	}
	m := make(map[string]any, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			return nil, errors.New("dict: keys must be strings")
		}
		m[k] = kv[i+1]
	}
	return m, nil
}

func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"yuan":   yuan,
		"wan":    wanYuan,
		"utc":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
		"date":   func(t time.Time) string { return t.UTC().Format("2006-01-02") },
		"add":    func(a, b int) int { return a + b },
		"status": statusLabel,
		"state":  stateKey,
		"dict":   dict,
		"hours":  hours,
	}
	layout, err := template.New("").Funcs(funcs).ParseFS(templateFiles, sharedTemplates...)
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimPrefix(n, "templates/")
		if slices.Contains(sharedTemplates, n) {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(templateFiles, n)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", base, err)
		}
		pages[base] = t
	}
	return pages, nil
}
