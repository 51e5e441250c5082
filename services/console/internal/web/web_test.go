package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/edubureau/studentaid/internal/devtools/oidcdev"
	"github.com/edubureau/studentaid/pkg/audit"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/services/console/internal/signin"
	"github.com/edubureau/studentaid/services/console/migrations"
)

// testPool is the console's schema in a fresh database of DATABASE_URL's
// server (`devstack exec` sets it).
func testPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	base := os.Getenv("DATABASE_URL")
	if base == "" {
		t.Skip("DATABASE_URL not set: run under `devstack exec`")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "console_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	pool, err := db.Connect(ctx, u.String(), db.Options{MaxConns: 4, SearchPath: "console"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := db.Migrate(ctx, pool, "console", audit.Migrations(), migrations.FS()); err != nil {
		t.Fatal(err)
	}
	return pool
}

func testSigner(t *testing.T) *auth.Signer {
	t.Helper()
	_, priv, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return auth.NewSigner(priv, "test-issuer", "studentaid")
}

// newTestServer serves the console with the given sign-in; no services
// stand behind it (the pages that call them are the end-to-end test's).
func newTestServer(t *testing.T, pool *pgxpool.Pool, cfg Config, srv *httptest.Server) *Server {
	t.Helper()
	up, err := NewUpstream("127.0.0.1:1", testSigner(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = up.Close() })
	s, err := New(cfg, slog.New(slog.DiscardHandler), pool, up, 30*time.Minute, 12*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = s.Handler()
	srv.Start()
	t.Cleanup(srv.Close)
	return s
}

func client(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	// Follow redirects up to the console's home, not into the pages that
	// would call the services.
	return &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		if r.URL.Path == "/" || r.URL.Path == "/signin" {
			return http.ErrUseLastResponse
		}
		return nil
	}}
}

func sessionsOf(t *testing.T, pool *pgxpool.Pool) [][4]string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT user_id, role, org, method FROM sessions ORDER BY created_at`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([4]string, error) {
		var v [4]string
		err := r.Scan(&v[0], &v[1], &v[2], &v[3])
		return v, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestOIDCSignIn signs in through a provider started by the test: the
// provider's claims become the session's identity; a callback whose state
// is not the browser's own signs nobody in.
func TestOIDCSignIn(t *testing.T) {
	pool := testPool(t)
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	idp, err := oidcdev.Start(oidcdev.Config{ClientID: "console", ClientSecret: "s3cret", RedirectURL: base + "/signin/callback"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idp.Close() })
	o, err := signin.NewOIDC(context.Background(), signin.OIDCConfig{Issuer: idp.Issuer(), ClientID: "console", ClientSecret: "s3cret", RedirectURL: base + "/signin/callback"})
	if err != nil {
		t.Fatal(err)
	}
	newTestServer(t, pool, Config{OIDC: OIDCAuthenticator{OIDC: o}}, srv)

	// The sign-in page offers the provider only.
	c := client(t)
	resp, err := c.Get(base + "/signin")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if !strings.Contains(string(page), `id="signin-oidc"`) || strings.Contains(string(page), `id="signin-dev"`) {
		t.Fatalf("sign-in page without the development sign-in should offer the provider only:\n%s", page)
	}

	idp.NextUser(oidcdev.User{Subject: "rev-0042", Role: string(auth.RoleSchoolReviewer), Org: "S003"})
	resp, err = c.Get(base + "/signin/oidc")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("after the provider: %d to %q, want 303 to /", resp.StatusCode, resp.Header.Get("Location"))
	}
	got := sessionsOf(t, pool)
	if len(got) != 1 || got[0] != [4]string{"rev-0042", "school_reviewer", "S003", "oidc"} {
		t.Fatalf("sessions %v", got)
	}
	var sessCookie *http.Cookie
	u, _ := url.Parse(base)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == sessionCookie {
			sessCookie = ck
		}
	}
	if sessCookie == nil {
		t.Fatal("no session cookie")
	}

	// A callback with a state the browser did not start: refused.
	c2 := client(t)
	idp.NextUser(oidcdev.User{Subject: "intruder", Role: string(auth.RoleBureauReviewer), Org: auth.OrgBureau})
	c2.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err = c2.Get(base + "/signin/oidc")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	authorize, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	q := authorize.Query()
	q.Set("state", "forged-state")
	authorize.RawQuery = q.Encode()
	resp, err = c2.Get(authorize.String())
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	callback := resp.Header.Get("Location")
	resp, err = c2.Get(callback)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("forged state: %d, want 403", resp.StatusCode)
	}
	if got := sessionsOf(t, pool); len(got) != 1 {
		t.Fatalf("a forged callback made a session: %v", got)
	}
}

// TestSessions: a session idle longer than the timeout is ended, an ended
// one never comes back, and only the token's hash is stored.
func TestSessions(t *testing.T) {
	pool := testPool(t)
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	s := &Sessions{pool: pool, Idle: 30 * time.Minute, Max: 12 * time.Hour, now: func() time.Time { return now }}
	ctx := context.Background()
	id := auth.Identity{UserID: "finance1", Role: auth.RoleFinanceOfficer, Org: auth.OrgFinance}
	token, _, err := s.Create(ctx, id, "dev")
	if err != nil {
		t.Fatal(err)
	}
	var stored int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM sessions WHERE token_sha256 = $1`, []byte(token)).Scan(&stored); err != nil || stored != 0 {
		t.Fatalf("the token itself is stored (%d, %v)", stored, err)
	}
	now = now.Add(29 * time.Minute)
	if got, err := s.Get(ctx, token); err != nil || got.ID != id {
		t.Fatalf("used within the idle timeout: %v %v", got, err)
	}
	now = now.Add(29 * time.Minute) // 29 minutes after the last use
	if _, err := s.Get(ctx, token); err != nil {
		t.Fatalf("used again within the idle timeout: %v", err)
	}
	now = now.Add(31 * time.Minute)
	if _, err := s.Get(ctx, token); !errors.Is(err, errNoSession) {
		t.Fatalf("idle 31 minutes: %v, want no session", err)
	}
	var reason string
	if err := pool.QueryRow(ctx, `SELECT end_reason FROM sessions`).Scan(&reason); err != nil || reason != "idle" {
		t.Fatalf("end reason %q %v", reason, err)
	}
	now = now.Add(-40 * time.Minute) // even a clock set back does not revive it
	if _, err := s.Get(ctx, token); !errors.Is(err, errNoSession) {
		t.Fatalf("an ended session came back: %v", err)
	}
	if _, err := s.Get(ctx, "not-a-token"); !errors.Is(err, errNoSession) {
		t.Fatalf("unknown token: %v", err)
	}
}

// TestFormsNeedTheirToken: a signed-in user's form without the session's
// CSRF token, or posted from another origin, is refused.
func TestFormsNeedTheirToken(t *testing.T) {
	pool := testPool(t)
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	s := newTestServer(t, pool, Config{DevUsers: []auth.Identity{{UserID: "auditor1", Role: auth.RoleAuditor, Org: auth.OrgAudit}}}, srv)
	token, sess, err := s.sessions.Create(context.Background(), auth.Identity{UserID: "auditor1", Role: auth.RoleAuditor, Org: auth.OrgAudit}, "dev")
	if err != nil {
		t.Fatal(err)
	}
	post := func(form url.Values, origin string) int {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, base+"/signout", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: token})
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(url.Values{}, ""); code != http.StatusForbidden {
		t.Errorf("no token: %d", code)
	}
	if code := post(url.Values{"csrf": {"wrong"}}, ""); code != http.StatusForbidden {
		t.Errorf("wrong token: %d", code)
	}
	if code := post(url.Values{"csrf": {sess.CSRF}}, "http://evil.example"); code != http.StatusForbidden {
		t.Errorf("other origin: %d", code)
	}
	if code := post(url.Values{"csrf": {sess.CSRF}}, base); code != http.StatusSeeOther {
		t.Errorf("the right token from the console's origin: %d, want 303", code)
	}
	// Signed out: the same token and cookie no longer work.
	if code := post(url.Values{"csrf": {sess.CSRF}}, base); code != http.StatusUnauthorized {
		t.Errorf("after sign-out: %d, want 401", code)
	}
}

// TestParseList reads a school's list with Chinese headings and values.
func TestParseList(t *testing.T) {
	in := "身份证号,姓名,学段,资助项目,寄宿,农村,建档立卡,银行卡号,户名,申请金额(元)\n" +
		"420102200803010012,王小明,小学,农村义务教育寄宿生生活补助,是,是,否,6217 0000 0000 0000 017,王小明,\n" +
		"420102200803010012,李华,大学,STUDENT_LOAN,否,否,否,6217000000000000017,李华,8000.5\n" +
		"420102200803010012,张静,初中,BOARDING_SUBSIDY,也许,是,否,6217000000000000017,张静,12.345\n"
	got, err := parseList(strings.NewReader(in), map[string]string{"农村义务教育寄宿生生活补助": "BOARDING_SUBSIDY", "BOARDING_SUBSIDY": "BOARDING_SUBSIDY", "STUDENT_LOAN": "STUDENT_LOAN"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.apps) != 3 || got.lines[0] != 2 || got.lines[2] != 4 {
		t.Fatalf("apps %d lines %v", len(got.apps), got.lines)
	}
	a := got.apps[0]
	if a.GetStage() != "primary" || a.GetProgramCode() != "BOARDING_SUBSIDY" || !a.GetBoarding() || !a.GetRural() || a.GetRegisteredPoor() || a.GetBankCardNumber() != "6217000000000000017" {
		t.Errorf("row 2: %v", a)
	}
	if got.apps[1].GetRequestedAmountFen() != 800050 || got.apps[1].GetStage() != "university" {
		t.Errorf("row 3: %v", got.apps[1])
	}
	want := []badRow{{Line: 4, Column: "寄宿", Reason: "write 是 or 否 (yes or no)"}, {Line: 4, Column: "申请金额(元)", Reason: "write the amount in yuan, e.g. 1250 or 1250.50"}}
	if len(got.bad) != 2 || got.bad[0] != want[0] || got.bad[1] != want[1] {
		t.Errorf("bad rows %v, want %v", got.bad, want)
	}
	missing, err := parseList(strings.NewReader("姓名,学段\n李华,小学\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(missing.bad) != 4 || missing.bad[3].Column != "户名" || missing.bad[0].Column != "身份证号" || missing.bad[0].Line != 1 {
		t.Errorf("missing columns: %v", missing.bad)
	}
}

func TestYuan(t *testing.T) {
	for fen, want := range map[int64]string{0: "0.00", 5: "0.05", 50000: "500.00", 1128483500: "11,284,835.00", -1250: "-12.50"} {
		if got := yuan(fen); got != want {
			t.Errorf("yuan(%d) = %q, want %q", fen, got, want)
		}
	}
	if got := wanYuan(1128483500); got != "1128.4835" {
		t.Errorf("wanYuan = %q", got)
	}
	for in, want := range map[string]int64{"1250": 125000, "1250.5": 125050, "1,250.05": 125005, "0.01": 1} {
		if got, ok := parseYuan(in); !ok || got != want {
			t.Errorf("parseYuan(%q) = %d %v, want %d", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "-1", "1.234", "abc", "1e3"} {
		if _, ok := parseYuan(in); ok {
			t.Errorf("parseYuan(%q) accepted", in)
		}
	}
}

// TestNavOpensForItsRole: every page a role's navigation lists is one the
// console lets that role open (no services stand behind this server, so a
// page that passes the role check fails with the services unreachable, not
// with the console's 403); and the reports, which the reporting service
// serves only to its readers, are not offered to a policy administrator.
func TestNavOpensForItsRole(t *testing.T) {
	pool := testPool(t)
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	users := []auth.Identity{
		{UserID: "officer1", Role: auth.RoleSchoolOfficer, Org: "S001"}, {UserID: "reviewer1", Role: auth.RoleSchoolReviewer, Org: "S001"},
		{UserID: "bureau1", Role: auth.RoleBureauReviewer, Org: auth.OrgBureau}, {UserID: "finance1", Role: auth.RoleFinanceOfficer, Org: auth.OrgFinance},
		{UserID: "data1", Role: auth.RoleDataOfficer, Org: auth.OrgBureau}, {UserID: "auditor1", Role: auth.RoleAuditor, Org: auth.OrgAudit},
		{UserID: "policy1", Role: auth.RolePolicyAdmin, Org: auth.OrgBureau}, {UserID: "ops1", Role: auth.RoleOps, Org: auth.OrgIT},
	}
	s := newTestServer(t, pool, Config{DevUsers: users}, srv)
	get := func(token, path string) int {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: token})
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	listed := 0
	for _, u := range users {
		token, _, err := s.sessions.Create(context.Background(), u, "dev")
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range navFor("zh", u.Role, "") {
			listed++
			if code := get(token, item.Href); code == http.StatusForbidden || code == http.StatusNotFound {
				t.Errorf("%s's navigation lists %s, which answers %d", u.Role, item.Href, code)
			}
		}
		if u.Role == auth.RolePolicyAdmin || u.Role == auth.RoleOps {
			if code := get(token, "/reports"); code != http.StatusForbidden {
				t.Errorf("%s on /reports: %d, want 403 (the reporting service does not serve the role)", u.Role, code)
			}
		}
	}
	if listed < 20 {
		t.Errorf("%d navigation links checked", listed)
	}
}
