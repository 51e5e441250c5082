package testenv

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/config"
)

// Keys is a test signing key and the PEM file of its public key.
type Keys struct {
	PublicKeyPath string
	Signer        *auth.Signer
}

// NewKeys generates an Ed25519 key pair for the test.
func NewKeys(t testing.TB) Keys {
	t.Helper()
	pub, priv, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pubPath := filepath.Join(dir, "auth.pub.pem")
	if err := auth.WriteKeyPair(filepath.Join(dir, "auth.pem"), pubPath, pub, priv); err != nil {
		t.Fatal(err)
	}
	return Keys{PublicKeyPath: pubPath, Signer: auth.NewSigner(priv, config.DevAuthIssuer, "studentaid")}
}

// Token mints an hour-long token for user in role at org.
func (k Keys) Token(t testing.TB, user string, role auth.Role, org string) string {
	t.Helper()
	tok, err := k.Signer.Mint(auth.Identity{UserID: user, Role: role, Org: org}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
