package auth

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestVerify(t *testing.T) {
	t.Parallel()
	pub, priv, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	_, otherPriv, _ := GenerateKey()
	v := NewVerifier(TokenPolicy{Audience: "studentaid", Issuer: "t", MaxLifetime: 12 * time.Hour}, pub)
	good := Identity{UserID: "officer-1", Role: RoleSchoolOfficer, Org: "S001"}
	mint := func(s *Signer, id Identity, ttl time.Duration) string {
		tok, err := s.Mint(id, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	noIssueTime, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, Claims{Role: good.Role, Org: good.Org,
		RegisteredClaims: jwt.RegisteredClaims{Subject: good.UserID, Issuer: "t", Audience: jwt.ClaimStrings{"studentaid"},
			ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}}).SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	for _, ttl := range []time.Duration{time.Hour, 12 * time.Hour} {
		ok := mint(NewSigner(priv, "t", "studentaid"), good, ttl)
		if got, err := v.Verify(ok); err != nil || got != good {
			t.Fatalf("Verify(valid for %v) = %v, %v", ttl, got, err)
		}
	}
	for name, tok := range map[string]string{
		"expired":        mint(NewSigner(priv, "t", "studentaid"), good, -time.Minute),
		"other key":      mint(NewSigner(otherPriv, "t", "studentaid"), good, time.Hour),
		"other audience": mint(NewSigner(priv, "t", "elsewhere"), good, time.Hour),
		"unknown role":   mint(NewSigner(priv, "t", "studentaid"), Identity{UserID: "u", Role: "root", Org: "S001"}, time.Hour),
		"no org":         mint(NewSigner(priv, "t", "studentaid"), Identity{UserID: "u", Role: RoleAuditor}, time.Hour),
		"other issuer":   mint(NewSigner(priv, "mallory", "studentaid"), good, time.Hour),
		"too long lived": mint(NewSigner(priv, "t", "studentaid"), good, 12*time.Hour+time.Minute),
		"no issue time":  noIssueTime,
		"garbage":        "a.b.c",
		"alg none":       "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ1Iiwicm9sZSI6ImF1ZGl0b3IiLCJvcmciOiJCVVJFQVUiLCJhdWQiOlsic3R1ZGVudGFpZCJdLCJleHAiOjk5OTk5OTk5OTl9.",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := v.Verify(tok); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify = %v, want ErrInvalidToken", err)
			}
		})
	}
}

func TestKeyFiles(t *testing.T) {
	t.Parallel()
	pub, priv, _ := GenerateKey()
	dir := t.TempDir()
	if err := WriteKeyPair(filepath.Join(dir, "k.pem"), filepath.Join(dir, "k.pub.pem"), pub, priv); err != nil {
		t.Fatal(err)
	}
	gotPriv, err := LoadPrivateKey(filepath.Join(dir, "k.pem"))
	if err != nil || !gotPriv.Equal(priv) {
		t.Fatalf("LoadPrivateKey: %v", err)
	}
	keys, err := LoadPublicKeys(" " + filepath.Join(dir, "k.pub.pem") + ", ")
	if err != nil || len(keys) != 1 || !keys[0].Equal(pub) {
		t.Fatalf("LoadPublicKeys: %v", err)
	}
	if _, err := LoadPublicKeys(""); err == nil {
		t.Fatal("no keys must be an error")
	}
}
