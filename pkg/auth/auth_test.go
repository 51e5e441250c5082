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
	// forge signs claims with the right key, bypassing the Signer's checks,
	// as an identity provider with a bad mapping would.
	forge := func(id Identity, issuedAt bool) string {
		rc := jwt.RegisteredClaims{Subject: id.UserID, Issuer: "t", Audience: jwt.ClaimStrings{"studentaid"},
			ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}
		if issuedAt {
			rc.IssuedAt = jwt.NewNumericDate(time.Now())
		}
		tok, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, Claims{Role: id.Role, Org: id.Org, RegisteredClaims: rc}).SignedString(priv)
		if err != nil {
			t.Fatal(err)
		}
		return tok
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
		"unknown role":   forge(Identity{UserID: "u", Role: "root", Org: "S001"}, true),
		"no org":         forge(Identity{UserID: "u", Role: RoleAuditor}, true),
		"other issuer":   mint(NewSigner(priv, "mallory", "studentaid"), good, time.Hour),
		"too long lived": mint(NewSigner(priv, "t", "studentaid"), good, 12*time.Hour+time.Minute),
		"no issue time":  forge(good, false),
		// A role is valid only in its kind of organisation.
		"auditor of a school":          forge(Identity{UserID: "u", Role: RoleAuditor, Org: "S001"}, true),
		"data officer of a school":     forge(Identity{UserID: "u", Role: RoleDataOfficer, Org: "S001"}, true),
		"bureau reviewer at finance":   forge(Identity{UserID: "u", Role: RoleBureauReviewer, Org: OrgFinance}, true),
		"finance officer at a school":  forge(Identity{UserID: "u", Role: RoleFinanceOfficer, Org: "S001"}, true),
		"school officer at the bureau": forge(Identity{UserID: "u", Role: RoleSchoolOfficer, Org: OrgBureau}, true),
		"school reviewer at IT":        forge(Identity{UserID: "u", Role: RoleSchoolReviewer, Org: OrgIT}, true),
		"school officer at audit":      forge(Identity{UserID: "u", Role: RoleSchoolOfficer, Org: OrgAudit}, true),
		"ops at a school":              forge(Identity{UserID: "u", Role: RoleOps, Org: "S001"}, true),
		"service at the bureau":        forge(Identity{UserID: "u", Role: RoleService, Org: OrgBureau}, true),
		"garbage":                      "a.b.c",
		"alg none":                     "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ1Iiwicm9sZSI6ImF1ZGl0b3IiLCJvcmciOiJCVVJFQVUiLCJhdWQiOlsic3R1ZGVudGFpZCJdLCJleHAiOjk5OTk5OTk5OTl9.",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := v.Verify(tok); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify = %v, want ErrInvalidToken", err)
			}
		})
	}
}

func TestMintRefusesARoleOutsideItsOrganisation(t *testing.T) {
	t.Parallel()
	_, priv, _ := GenerateKey()
	s := NewSigner(priv, "t", "studentaid")
	if _, err := s.Mint(Identity{UserID: "u", Role: RoleAuditor, Org: "S001"}, time.Hour); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("Mint(auditor of S001) = %v, want ErrInvalidToken", err)
	}
	for _, id := range []Identity{
		{UserID: "u", Role: RoleSchoolOfficer, Org: "S001"}, {UserID: "u", Role: RoleSchoolReviewer, Org: "S002"},
		{UserID: "u", Role: RoleBureauReviewer, Org: OrgBureau}, {UserID: "u", Role: RoleDataOfficer, Org: OrgBureau},
		{UserID: "u", Role: RoleAuditor, Org: OrgBureau}, {UserID: "u", Role: RoleAuditor, Org: OrgAudit},
		{UserID: "u", Role: RoleFinanceOfficer, Org: OrgFinance},
		{UserID: "u", Role: RoleOps, Org: OrgIT}, {UserID: "u", Role: RoleService, Org: OrgIT},
	} {
		if _, err := s.Mint(id, time.Hour); err != nil {
			t.Errorf("Mint(%v) = %v, want a token", id, err)
		}
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		id   Identity
		ok   bool
	}{
		{"school officer of a school", Identity{UserID: "u", Role: RoleSchoolOfficer, Org: "S001"}, true},
		{"auditor of the audit office", Identity{UserID: "u", Role: RoleAuditor, Org: OrgAudit}, true},
		{"school officer of the bureau", Identity{UserID: "u", Role: RoleSchoolOfficer, Org: OrgBureau}, false},
		{"finance officer of a school", Identity{UserID: "u", Role: RoleFinanceOfficer, Org: "S001"}, false},
		{"unknown role", Identity{UserID: "u", Role: "dean", Org: OrgBureau}, false},
		{"no subject", Identity{Role: RoleBureauReviewer, Org: OrgBureau}, false},
		{"no organisation", Identity{UserID: "u", Role: RoleSchoolReviewer}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.id.Validate()
			if tc.ok && err != nil {
				t.Fatalf("Validate(%v) = %v, want nil", tc.id, err)
			}
			if !tc.ok && !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Validate(%v) = %v, want ErrInvalidToken", tc.id, err)
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
