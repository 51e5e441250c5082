// Package oidcdev is a small OpenID Connect provider that runs inside the
// calling process on a loopback port, for tests of the console's sign-in.
// It serves discovery, a JWKS, an authorization endpoint that signs in
// straight away as the user the test chose beforehand (no login page), and a
// token endpoint that checks the client's secret, the redirect URI and the
// PKCE verifier (S256 only) and answers with an ES256-signed ID token.
//
// A test can make the next ID token faulty (wrong audience, issuer or nonce,
// expired, or signed by a key the JWKS does not publish) to prove the client
// refuses it.
package oidcdev

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Config is what the provider knows of its one client.
type Config struct {
	// ClientID and ClientSecret are the client's credentials; the token
	// endpoint takes them as HTTP Basic or form parameters.
	ClientID, ClientSecret string
	// RedirectURL is the one redirect URI the client registered.
	RedirectURL string
	// RoleClaim and OrgClaim name the claims carrying a user's role and
	// organisation; defaults "aid_role" and "aid_org".
	RoleClaim, OrgClaim string
	// TTL is how long an ID token is valid; default 5 minutes.
	TTL time.Duration
}

// User is who the next authorization signs in as.
type User struct {
	Subject string
	// Role and Org go in the role and organisation claims; empty ones are
	// left out.
	Role, Org string
	// Claims are added to the ID token last, so they may also replace a
	// standard claim.
	Claims map[string]any
}

// Fault is what is wrong with an ID token the provider issues.
type Fault int

// The faults a test can ask for.
const (
	// FaultNone issues a good token.
	FaultNone Fault = iota
	// FaultWrongAudience names another client as the audience.
	FaultWrongAudience
	// FaultWrongIssuer names another issuer.
	FaultWrongIssuer
	// FaultExpired issues a token that expired an hour ago.
	FaultExpired
	// FaultWrongNonce carries a nonce other than the one the client sent.
	FaultWrongNonce
	// FaultOtherKey signs with a key the JWKS does not publish, under the
	// published key's ID.
	FaultOtherKey
)

// Provider is a running provider. Close stops it.
type Provider struct {
	cfg      Config
	issuer   string
	srv      *http.Server
	keyID    string
	key      *ecdsa.PrivateKey
	otherKey *ecdsa.PrivateKey

	mu    sync.Mutex
	next  *User
	fault Fault
	codes map[string]grant
}

// grant is what an authorization code stands for until it is redeemed.
type grant struct {
	user          User
	fault         Fault
	redirectURI   string
	nonce         string
	codeChallenge string
	expires       time.Time
}

// Start runs a provider on a free loopback port.
func Start(cfg Config) (*Provider, error) {
	if cfg.ClientID == "" || cfg.RedirectURL == "" {
		return nil, errors.New("oidcdev: a client ID and a redirect URL are required")
	}
	if cfg.RoleClaim == "" {
		cfg.RoleClaim = "aid_role"
	}
	if cfg.OrgClaim == "" {
		cfg.OrgClaim = "aid_org"
	}
	if cfg.TTL == 0 {
		cfg.TTL = 5 * time.Minute
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("oidcdev: signing key: %w", err)
	}
	otherKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("oidcdev: second key: %w", err)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("oidcdev: listen: %w", err)
	}
	p := &Provider{
		cfg:      cfg,
		issuer:   "http://" + ln.Addr().String(),
		keyID:    rand.Text(),
		key:      key,
		otherKey: otherKey,
		codes:    map[string]grant{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET /jwks", p.jwks)
	mux.HandleFunc("GET /authorize", p.authorize)
	mux.HandleFunc("POST /token", p.token)
	p.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// Issuer is the provider's issuer URL, the one a client discovers it by.
func (p *Provider) Issuer() string { return p.issuer }

// Close stops the provider.
func (p *Provider) Close() error { return p.srv.Close() }

// NextUser makes the next authorization request sign in as u. Without one,
// the authorization endpoint redirects back with error=access_denied.
func (p *Provider) NextUser(u User) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next = &u
}

// NextFault makes the ID token of the next authorization faulty.
func (p *Provider) NextFault(f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fault = f
}

func (p *Provider) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                p.issuer,
		"authorization_endpoint":                p.issuer + "/authorize",
		"token_endpoint":                        p.issuer + "/token",
		"jwks_uri":                              p.issuer + "/jwks",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{string(jose.ES256)},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"scopes_supported":                      []string{"openid", "profile"},
		"grant_types_supported":                 []string{"authorization_code"},
	})
}

func (p *Provider) jwks(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: &p.key.PublicKey, KeyID: p.keyID, Algorithm: string(jose.ES256), Use: "sig",
	}}})
}

// authorize signs in as the chosen user at once. Errors about the client or
// the redirect URI are shown here, as the specification asks; the others
// go back to the client.
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != p.cfg.ClientID {
		http.Error(w, "unknown client", http.StatusBadRequest)
		return
	}
	if q.Get("redirect_uri") != p.cfg.RedirectURL {
		http.Error(w, "redirect_uri is not the registered one", http.StatusBadRequest)
		return
	}
	back := func(params url.Values) {
		params.Set("state", q.Get("state"))
		http.Redirect(w, r, p.cfg.RedirectURL+"?"+params.Encode(), http.StatusFound)
	}
	switch {
	case q.Get("response_type") != "code":
		back(url.Values{"error": {"unsupported_response_type"}})
		return
	case !hasScope(q.Get("scope"), "openid"):
		back(url.Values{"error": {"invalid_scope"}})
		return
	case q.Get("code_challenge") == "" || q.Get("code_challenge_method") != "S256":
		back(url.Values{"error": {"invalid_request"}, "error_description": {"PKCE with S256 is required"}})
		return
	}
	p.mu.Lock()
	user, fault := p.next, p.fault
	p.next, p.fault = nil, FaultNone
	var code string
	if user != nil {
		code = rand.Text()
		p.codes[code] = grant{
			user: *user, fault: fault, redirectURI: q.Get("redirect_uri"), nonce: q.Get("nonce"),
			codeChallenge: q.Get("code_challenge"), expires: time.Now().Add(time.Minute),
		}
	}
	p.mu.Unlock()
	if user == nil {
		back(url.Values{"error": {"access_denied"}})
		return
	}
	back(url.Values{"code": {code}})
}

func hasScope(scopes, want string) bool {
	for s := range strings.FieldsSeq(scopes) {
		if s == want {
			return true
		}
	}
	return false
}

func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	if !p.clientAuthenticated(r) {
		tokenError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	if r.PostForm.Get("grant_type") != "authorization_code" {
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type")
		return
	}
	p.mu.Lock()
	code := r.PostForm.Get("code")
	g, ok := p.codes[code]
	delete(p.codes, code) // a code is redeemed once, whatever the outcome
	p.mu.Unlock()
	if !ok || time.Now().After(g.expires) || r.PostForm.Get("redirect_uri") != g.redirectURI ||
		!pkceMatches(r.PostForm.Get("code_verifier"), g.codeChallenge) {
		tokenError(w, http.StatusBadRequest, "invalid_grant")
		return
	}
	idToken, err := p.idToken(g)
	if err != nil {
		tokenError(w, http.StatusInternalServerError, "server_error")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": rand.Text(),
		"token_type":   "Bearer",
		"expires_in":   int(p.cfg.TTL.Seconds()),
		"id_token":     idToken,
	})
}

func (p *Provider) clientAuthenticated(r *http.Request) bool {
	id, secret, ok := r.BasicAuth()
	if ok {
		// RFC 6749 §2.3.1: the credentials are form-encoded before Basic.
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return false
		}
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	return id == p.cfg.ClientID &&
		subtle.ConstantTimeCompare([]byte(secret), []byte(p.cfg.ClientSecret)) == 1
}

// pkceMatches checks an S256 code challenge (RFC 7636 §4.6).
func pkceMatches(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	sum := sha256.Sum256([]byte(verifier))
	return subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(challenge)) == 1
}

func (p *Provider) idToken(g grant) (string, error) {
	now := time.Now()
	claims := map[string]any{
		"iss":       p.issuer,
		"sub":       g.user.Subject,
		"aud":       p.cfg.ClientID,
		"iat":       now.Unix(),
		"exp":       now.Add(p.cfg.TTL).Unix(),
		"auth_time": now.Unix(),
	}
	if g.nonce != "" {
		claims["nonce"] = g.nonce
	}
	if g.user.Role != "" {
		claims[p.cfg.RoleClaim] = g.user.Role
	}
	if g.user.Org != "" {
		claims[p.cfg.OrgClaim] = g.user.Org
	}
	maps.Copy(claims, g.user.Claims)
	key := p.key
	switch g.fault {
	case FaultWrongAudience:
		claims["aud"] = "another-client"
	case FaultWrongIssuer:
		claims["iss"] = "http://issuer.invalid"
	case FaultExpired:
		claims["iat"] = now.Add(-2 * time.Hour).Unix()
		claims["exp"] = now.Add(-time.Hour).Unix()
	case FaultWrongNonce:
		claims["nonce"] = rand.Text()
	case FaultOtherKey:
		key = p.otherKey
	case FaultNone:
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: p.keyID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

func tokenError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, map[string]string{"error": code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
