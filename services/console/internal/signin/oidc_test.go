package signin

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/edubureau/studentaid/internal/devtools/oidcdev"
	"github.com/edubureau/studentaid/pkg/auth"
)

const (
	testClientID     = "console"
	testClientSecret = "console-secret"
	testRedirectURL  = "http://console.test/signin/callback"
)

// setup starts a provider of its own for one test (the user it signs in next
// is per provider) and a client discovered from it; edit adjusts both
// configurations before they start.
func setup(t *testing.T, edit func(*oidcdev.Config, *OIDCConfig)) (*oidcdev.Provider, *OIDC) {
	t.Helper()
	pcfg := oidcdev.Config{ClientID: testClientID, ClientSecret: testClientSecret, RedirectURL: testRedirectURL}
	ccfg := OIDCConfig{ClientID: testClientID, ClientSecret: testClientSecret, RedirectURL: testRedirectURL}
	if edit != nil {
		edit(&pcfg, &ccfg)
	}
	prov, err := oidcdev.Start(pcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = prov.Close() })
	ccfg.Issuer = prov.Issuer()
	o, err := NewOIDC(t.Context(), ccfg)
	if err != nil {
		t.Fatal(err)
	}
	return prov, o
}

// browse plays the browser: it follows Start's redirect to the provider and
// returns the query of the provider's redirect back to the console.
func browse(t *testing.T, redirectURL string) url.Values {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, redirectURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: status %d, want a redirect", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != testRedirectURL {
		t.Fatalf("provider redirected to %s, want %s", got, testRedirectURL)
	}
	return loc.Query()
}

// signIn runs a whole sign-in as the provider's next user; change, if not
// nil, alters what the console kept or the callback brought before Finish.
func signIn(t *testing.T, o *OIDC, change func(p *Pending, state, code *string)) (auth.Identity, error) {
	t.Helper()
	redirectURL, p, err := o.Start()
	if err != nil {
		t.Fatal(err)
	}
	q := browse(t, redirectURL)
	state, code := q.Get("state"), q.Get("code")
	if change != nil {
		change(&p, &state, &code)
	}
	return o.Finish(t.Context(), p, state, code)
}

func TestSignInMapsClaimsToIdentity(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		user oidcdev.User
		want auth.Identity
	}{
		{"school officer", oidcdev.User{Subject: "officer-7", Role: "school_officer", Org: "S001"},
			auth.Identity{UserID: "officer-7", Role: auth.RoleSchoolOfficer, Org: "S001"}},
		{"school reviewer", oidcdev.User{Subject: "reviewer-2", Role: "school_reviewer", Org: "S002"},
			auth.Identity{UserID: "reviewer-2", Role: auth.RoleSchoolReviewer, Org: "S002"}},
		{"bureau reviewer", oidcdev.User{Subject: "br-1", Role: "bureau_reviewer", Org: "BUREAU"},
			auth.Identity{UserID: "br-1", Role: auth.RoleBureauReviewer, Org: "BUREAU"}},
		{"auditor of the audit office", oidcdev.User{Subject: "aud-1", Role: "auditor", Org: "AUDIT"},
			auth.Identity{UserID: "aud-1", Role: auth.RoleAuditor, Org: "AUDIT"}},
		{"finance officer", oidcdev.User{Subject: "fin-1", Role: "finance_officer", Org: "FINANCE"},
			auth.Identity{UserID: "fin-1", Role: auth.RoleFinanceOfficer, Org: "FINANCE"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			prov, o := setup(t, nil)
			prov.NextUser(tc.user)
			got, err := signIn(t, o, nil)
			if err != nil {
				t.Fatalf("sign-in: %v", err)
			}
			if got != tc.want {
				t.Fatalf("identity %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestSignInWithConfiguredClaimNames(t *testing.T) {
	t.Parallel()
	prov, o := setup(t, func(p *oidcdev.Config, c *OIDCConfig) {
		p.RoleClaim, p.OrgClaim = "studentaid/role", "studentaid/org"
		c.RoleClaim, c.OrgClaim = "studentaid/role", "studentaid/org"
		c.PreferredUsernameClaim = "preferred_username"
		c.Scopes = []string{"profile"}
	})
	prov.NextUser(oidcdev.User{Subject: "3f2a-opaque", Role: "data_officer", Org: "BUREAU",
		Claims: map[string]any{"preferred_username": "wang.li", "aid_role": "ops", "aid_org": "IT"}})
	got, err := signIn(t, o, nil)
	if err != nil {
		t.Fatalf("sign-in: %v", err)
	}
	// The default claim names carry another identity: they must be ignored.
	if want := (auth.Identity{UserID: "wang.li", Role: auth.RoleDataOfficer, Org: "BUREAU"}); got != want {
		t.Fatalf("identity %+v, want %+v", got, want)
	}
}

func TestStartKeepsTheSecretsOutOfTheURL(t *testing.T) {
	t.Parallel()
	_, o := setup(t, nil)
	redirectURL, p, err := o.Start()
	if err != nil {
		t.Fatal(err)
	}
	if p.State == "" || p.Nonce == "" || len(p.Verifier) < 43 {
		t.Fatalf("pending %+v: want a state, a nonce and a verifier of at least 43 characters", p)
	}
	if strings.Contains(redirectURL, p.Verifier) {
		t.Fatal("the PKCE verifier is in the provider URL; only its hash may be")
	}
	u, err := url.Parse(redirectURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("state") != p.State || q.Get("nonce") != p.Nonce || q.Get("code_challenge_method") != "S256" ||
		q.Get("code_challenge") == "" || q.Get("client_id") != testClientID || q.Get("redirect_uri") != testRedirectURL {
		t.Fatalf("provider URL %s does not carry the state, nonce, S256 challenge, client and redirect URI", redirectURL)
	}
	_, p2, _ := o.Start()
	if p2.State == p.State || p2.Nonce == p.Nonce || p2.Verifier == p.Verifier {
		t.Fatal("two sign-ins share a secret")
	}
}

func TestSignInRefused(t *testing.T) {
	t.Parallel()
	schoolOfficer := oidcdev.User{Subject: "officer-7", Role: "school_officer", Org: "S001"}
	for _, tc := range []struct {
		name   string
		user   *oidcdev.User // nil: the provider denies access
		fault  oidcdev.Fault
		change func(p *Pending, state, code *string)
		want   error
	}{
		{name: "state mismatch", user: &schoolOfficer,
			change: func(_ *Pending, state, _ *string) { *state = "forged-state" }, want: ErrStateMismatch},
		{name: "no state kept", user: &schoolOfficer,
			change: func(p *Pending, state, _ *string) { p.State, *state = "", "" }, want: ErrStateMismatch},
		{name: "nonce in the ID token not the one sent", user: &schoolOfficer, fault: oidcdev.FaultWrongNonce, want: ErrNonceMismatch},
		{name: "nonce kept not the one in the ID token", user: &schoolOfficer,
			change: func(p *Pending, _, _ *string) { p.Nonce = "another-sign-in" }, want: ErrNonceMismatch},
		{name: "ID token signed by another key", user: &schoolOfficer, fault: oidcdev.FaultOtherKey, want: ErrInvalidIDToken},
		{name: "ID token for another client", user: &schoolOfficer, fault: oidcdev.FaultWrongAudience, want: ErrInvalidIDToken},
		{name: "ID token from another issuer", user: &schoolOfficer, fault: oidcdev.FaultWrongIssuer, want: ErrInvalidIDToken},
		{name: "ID token expired", user: &schoolOfficer, fault: oidcdev.FaultExpired, want: ErrInvalidIDToken},
		{name: "PKCE verifier wrong", user: &schoolOfficer,
			change: func(p *Pending, _, _ *string) { p.Verifier = strings.Repeat("x", 43) }, want: ErrProviderRefused},
		{name: "code not issued", user: &schoolOfficer,
			change: func(_ *Pending, _, code *string) { *code = "made-up" }, want: ErrProviderRefused},
		{name: "provider denied access", want: ErrProviderRefused},
		{name: "unknown role", user: &oidcdev.User{Subject: "u1", Role: "dean", Org: "BUREAU"}, want: ErrInvalidIdentity},
		{name: "no role", user: &oidcdev.User{Subject: "u1", Org: "BUREAU"}, want: ErrInvalidIdentity},
		{name: "school-bound role in the bureau", user: &oidcdev.User{Subject: "u1", Role: "school_officer", Org: "BUREAU"}, want: ErrInvalidIdentity},
		{name: "school-bound role in finance", user: &oidcdev.User{Subject: "u1", Role: "school_reviewer", Org: "FINANCE"}, want: ErrInvalidIdentity},
		{name: "bureau role in a school", user: &oidcdev.User{Subject: "u1", Role: "bureau_reviewer", Org: "S001"}, want: ErrInvalidIdentity},
		{name: "no organisation", user: &oidcdev.User{Subject: "u1", Role: "school_officer"}, want: ErrInvalidIdentity},
		{name: "role not a string", user: &oidcdev.User{Subject: "u1", Org: "BUREAU",
			Claims: map[string]any{"aid_role": []string{"bureau_reviewer"}}}, want: ErrInvalidIdentity},
		{name: "service role", user: &oidcdev.User{Subject: "svc", Role: "service", Org: "IT"}, want: ErrInvalidIdentity},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			prov, o := setup(t, nil)
			if tc.user != nil {
				prov.NextUser(*tc.user)
			}
			prov.NextFault(tc.fault)
			id, err := signIn(t, o, tc.change)
			if !errors.Is(err, tc.want) || !errors.Is(err, ErrSignInFailed) {
				t.Fatalf("sign-in = %+v, %v; want %v", id, err, tc.want)
			}
			if id != (auth.Identity{}) {
				t.Fatalf("a refused sign-in returned identity %+v", id)
			}
		})
	}
}

func TestCodeRedeemedOnce(t *testing.T) {
	t.Parallel()
	prov, o := setup(t, nil)
	prov.NextUser(oidcdev.User{Subject: "br-1", Role: "bureau_reviewer", Org: "BUREAU"})
	redirectURL, p, err := o.Start()
	if err != nil {
		t.Fatal(err)
	}
	q := browse(t, redirectURL)
	if _, err := o.Finish(t.Context(), p, q.Get("state"), q.Get("code")); err != nil {
		t.Fatalf("first Finish: %v", err)
	}
	if _, err := o.Finish(t.Context(), p, q.Get("state"), q.Get("code")); !errors.Is(err, ErrProviderRefused) {
		t.Fatalf("replayed Finish = %v, want ErrProviderRefused", err)
	}
}

func TestNewOIDCRefusesAnIssuerThatNamesAnother(t *testing.T) {
	t.Parallel()
	prov, err := oidcdev.Start(oidcdev.Config{ClientID: testClientID, ClientSecret: testClientSecret, RedirectURL: testRedirectURL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = prov.Close() })
	// localhost serves the same discovery document, whose issuer is 127.0.0.1.
	other := strings.Replace(prov.Issuer(), "127.0.0.1", "localhost", 1)
	_, err = NewOIDC(t.Context(), OIDCConfig{Issuer: other, ClientID: testClientID, RedirectURL: testRedirectURL})
	if _, ok := errors.AsType[*oidc.IssuerMismatchError](err); !ok {
		t.Fatalf("NewOIDC(%s) = %v, want an issuer mismatch", other, err)
	}
}
