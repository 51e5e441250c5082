package web

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/services/console/internal/signin"
)

// OIDCAuthenticator adapts the OpenID Connect sign-in to the console: the
// pending sign-in's secrets travel in the short-lived HttpOnly sign-in
// cookie, never in a URL.
type OIDCAuthenticator struct{ OIDC *signin.OIDC }

// Begin implements Authenticator.
func (a OIDCAuthenticator) Begin() (string, string, error) {
	redirect, p, err := a.OIDC.Start()
	if err != nil {
		return "", "", err
	}
	b, err := json.Marshal(p)
	if err != nil {
		return "", "", err
	}
	return redirect, base64.RawURLEncoding.EncodeToString(b), nil
}

// Complete implements Authenticator.
func (a OIDCAuthenticator) Complete(ctx context.Context, pending, state, code string) (auth.Identity, error) {
	b, err := base64.RawURLEncoding.DecodeString(pending)
	if err != nil {
		return auth.Identity{}, fmt.Errorf("%w: sign-in cookie unreadable", signin.ErrSignInFailed)
	}
	var p signin.Pending
	if err := json.Unmarshal(b, &p); err != nil {
		return auth.Identity{}, fmt.Errorf("%w: sign-in cookie unreadable", signin.ErrSignInFailed)
	}
	return a.OIDC.Finish(ctx, p, state, code)
}
