// Package signin signs console users in through the organisation's identity
// provider over OpenID Connect (authorization code flow with PKCE and a
// nonce) and turns the ID token's claims into the auth.Identity the console
// calls the services with.
package signin

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/edubureau/studentaid/pkg/auth"
)

// Default claim names for the role and organisation.
const (
	DefaultRoleClaim = "aid_role"
	DefaultOrgClaim  = "aid_org"
)

// OIDCConfig is how the console is registered with the identity provider.
type OIDCConfig struct {
	// Issuer is the provider's issuer URL; discovery reads
	// Issuer + "/.well-known/openid-configuration", whose issuer must be
	// the same.
	Issuer string
	// ClientID and ClientSecret are the console's client credentials.
	ClientID, ClientSecret string
	// RedirectURL is the console's callback, as registered with the provider.
	RedirectURL string
	// RoleClaim and OrgClaim name the claims carrying the role and the
	// organisation; defaults DefaultRoleClaim and DefaultOrgClaim.
	RoleClaim, OrgClaim string
	// PreferredUsernameClaim, if set, names the claim the user ID is taken
	// from (such as "preferred_username"); otherwise it is the `sub` claim.
	PreferredUsernameClaim string
	// Scopes are requested besides "openid".
	Scopes []string
	// HTTPClient calls the provider (discovery, keys, token exchange);
	// default a client with a 10-second timeout.
	HTTPClient *http.Client
}

// OIDC signs users in through one provider. It is safe for concurrent use.
type OIDC struct {
	oauth     oauth2.Config
	verifier  *oidc.IDTokenVerifier
	client    *http.Client
	roleClaim string
	orgClaim  string
	userClaim string
}

// Pending holds the secrets of one sign-in between Start and Finish. The
// console keeps them where the browser cannot read them (an HttpOnly cookie
// or its session table) for a few minutes, and uses them once.
type Pending struct {
	// State is sent to the provider and must come back on the callback.
	State string `json:"state"`
	// Nonce is sent to the provider and must come back in the ID token.
	Nonce string `json:"nonce"`
	// Verifier is the PKCE code verifier; the provider saw only its hash.
	Verifier string `json:"verifier"`
}

// ErrSignInFailed is wrapped by every error Finish returns. The console shows
// the user a plain "sign-in failed" for it and logs the error itself, whose
// text says which check failed.
var ErrSignInFailed = errors.New("sign-in failed")

// The reasons a sign-in fails; each wraps ErrSignInFailed.
var (
	// ErrStateMismatch: the callback's state is not the one Start made
	// (a forged or replayed callback, or another tab's sign-in).
	ErrStateMismatch = fmt.Errorf("%w: state does not match", ErrSignInFailed)
	// ErrProviderRefused: the callback carries no code (the provider said
	// no, or the user cancelled), or the token endpoint refused the code
	// (expired, already used, wrong PKCE verifier, bad client credentials).
	ErrProviderRefused = fmt.Errorf("%w: provider refused", ErrSignInFailed)
	// ErrInvalidIDToken: the ID token is missing, or its signature, issuer,
	// audience or expiry is wrong.
	ErrInvalidIDToken = fmt.Errorf("%w: invalid ID token", ErrSignInFailed)
	// ErrNonceMismatch: the ID token's nonce is not the one Start made.
	ErrNonceMismatch = fmt.Errorf("%w: nonce does not match", ErrSignInFailed)
	// ErrInvalidIdentity: the claims do not name a user of the system: no
	// user ID, an unknown role, an organisation the role cannot belong to,
	// or the service role, which no person holds.
	ErrInvalidIdentity = fmt.Errorf("%w: claims name no valid identity", ErrSignInFailed)
)

// NewOIDC discovers the provider (Issuer's /.well-known/openid-configuration)
// and prepares the client.
func NewOIDC(ctx context.Context, cfg OIDCConfig) (*OIDC, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" || cfg.RedirectURL == "" {
		return nil, errors.New("oidc: issuer, client ID and redirect URL are required")
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	provider, err := oidc.NewProvider(oidc.ClientContext(ctx, client), cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc: discover %s: %w", cfg.Issuer, err)
	}
	var meta struct {
		AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	}
	if err := provider.Claims(&meta); err != nil {
		return nil, fmt.Errorf("oidc: discovery document of %s: %w", cfg.Issuer, err)
	}
	endpoint := provider.Endpoint()
	endpoint.AuthStyle = authStyle(meta.AuthMethods)
	o := &OIDC{
		oauth: oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			Endpoint:     endpoint,
			RedirectURL:  cfg.RedirectURL,
			Scopes:       append([]string{oidc.ScopeOpenID}, cfg.Scopes...),
		},
		verifier:  provider.Verifier(&oidc.Config{ClientID: cfg.ClientID}),
		client:    client,
		roleClaim: cmp.Or(cfg.RoleClaim, DefaultRoleClaim),
		orgClaim:  cmp.Or(cfg.OrgClaim, DefaultOrgClaim),
		userClaim: cmp.Or(cfg.PreferredUsernameClaim, "sub"),
	}
	return o, nil
}

// authStyle picks how the client authenticates at the token endpoint from
// what the provider advertises, rather than letting oauth2 guess: a guess
// that fails is retried the other way with the same code, which a provider
// may count as a replay. Client secret Basic is the specification's default.
func authStyle(methods []string) oauth2.AuthStyle {
	if len(methods) == 0 || slices.Contains(methods, "client_secret_basic") {
		return oauth2.AuthStyleInHeader
	}
	if slices.Contains(methods, "client_secret_post") {
		return oauth2.AuthStyleInParams
	}
	return oauth2.AuthStyleAutoDetect
}

// Start begins a sign-in: it returns the provider URL to redirect the
// browser to, and the secrets Finish needs.
func (o *OIDC) Start() (redirectURL string, p Pending, err error) {
	p = Pending{State: rand.Text(), Nonce: rand.Text(), Verifier: oauth2.GenerateVerifier()}
	redirectURL = o.oauth.AuthCodeURL(p.State, oidc.Nonce(p.Nonce), oauth2.S256ChallengeOption(p.Verifier))
	return redirectURL, p, nil
}

// Finish completes the sign-in from the callback's state and code: it checks
// the state, exchanges the code with the PKCE verifier, verifies the ID
// token (signature, issuer, audience, expiry, nonce) and maps its claims to
// a valid identity. Every error wraps ErrSignInFailed and one of the reasons
// above.
func (o *OIDC) Finish(ctx context.Context, p Pending, state, code string) (auth.Identity, error) {
	if p.State == "" || subtle.ConstantTimeCompare([]byte(state), []byte(p.State)) != 1 {
		return auth.Identity{}, ErrStateMismatch
	}
	if code == "" {
		return auth.Identity{}, fmt.Errorf("%w: the callback carries no code", ErrProviderRefused)
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, o.client)
	tok, err := o.oauth.Exchange(ctx, code, oauth2.VerifierOption(p.Verifier))
	if err != nil {
		return auth.Identity{}, fmt.Errorf("%w: %w", ErrProviderRefused, err)
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return auth.Identity{}, fmt.Errorf("%w: the token response has no ID token", ErrInvalidIDToken)
	}
	idToken, err := o.verifier.Verify(oidc.ClientContext(ctx, o.client), raw)
	if err != nil {
		return auth.Identity{}, fmt.Errorf("%w: %w", ErrInvalidIDToken, err)
	}
	if p.Nonce == "" || subtle.ConstantTimeCompare([]byte(idToken.Nonce), []byte(p.Nonce)) != 1 {
		return auth.Identity{}, ErrNonceMismatch
	}
	var claims map[string]any
	if err := idToken.Claims(&claims); err != nil {
		return auth.Identity{}, fmt.Errorf("%w: %w", ErrInvalidIDToken, err)
	}
	id := auth.Identity{
		UserID: stringClaim(claims, o.userClaim),
		Role:   auth.Role(stringClaim(claims, o.roleClaim)),
		Org:    stringClaim(claims, o.orgClaim),
	}
	if id.Role == auth.RoleService {
		return auth.Identity{}, fmt.Errorf("%w: the service role is not for people", ErrInvalidIdentity)
	}
	if err := id.Validate(); err != nil {
		return auth.Identity{}, fmt.Errorf("%w: %w", ErrInvalidIdentity, err)
	}
	return id, nil
}

// stringClaim is the claim's value if it is a string, else "", which the
// identity check then refuses.
func stringClaim(claims map[string]any, name string) string {
	s, _ := claims[name].(string)
	return s
}
