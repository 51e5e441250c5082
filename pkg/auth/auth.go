// Package auth carries caller identities: Ed25519-signed JWT bearer tokens
// naming a user, a role and an organisation, verified by every service.
package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Role is what a user may do.
type Role string

// The roles of the system.
const (
	RoleSchoolOfficer  Role = "school_officer"
	RoleSchoolReviewer Role = "school_reviewer"
	RoleBureauReviewer Role = "bureau_reviewer"
	RoleDataOfficer    Role = "data_officer"
	RoleFinanceOfficer Role = "finance_officer"
	RoleAuditor        Role = "auditor"
	RoleOps            Role = "ops"
	// RolePolicyAdmin manages the bureau's aid policy as data: programs,
	// standards, the school register and the working calendar. Publishing
	// needs a second policy administrator's approval.
	RolePolicyAdmin Role = "policy_admin"
	// RoleService is a service acting on its own behalf.
	RoleService Role = "service"
)

// Roles lists every role, for token minting and test matrices.
var Roles = []Role{RoleSchoolOfficer, RoleSchoolReviewer, RoleBureauReviewer, RoleDataOfficer,
	RoleFinanceOfficer, RoleAuditor, RoleOps, RolePolicyAdmin, RoleService}

// Organisations that are not schools.
const (
	OrgBureau  = "BUREAU"
	OrgFinance = "FINANCE"
	OrgIT      = "IT"
	// OrgAudit is the city's audit office, whose auditors read the trails
	// as the bureau's own auditors do.
	OrgAudit = "AUDIT"
)

// SchoolBound reports whether users of the role belong to one school.
func (r Role) SchoolBound() bool { return r == RoleSchoolOfficer || r == RoleSchoolReviewer }

// homeOrgs are the organisations each role that is not school-bound may
// belong to: reviewers and data officers work at the bureau, auditors at the
// bureau or the audit office, finance officers at the finance bureau, ops
// and the services themselves at IT.
var homeOrgs = map[Role][]string{
	RoleBureauReviewer: {OrgBureau},
	RoleDataOfficer:    {OrgBureau},
	RolePolicyAdmin:    {OrgBureau},
	RoleAuditor:        {OrgBureau, OrgAudit},
	RoleFinanceOfficer: {OrgFinance},
	RoleOps:            {OrgIT},
	RoleService:        {OrgIT},
}

// OrgIn is the organisation a user of role r has when working for school:
// school itself for a school-bound role, else the role's first home
// organisation. Dev tools and test matrices use it to mint valid tokens.
func (r Role) OrgIn(school string) string {
	if r.SchoolBound() {
		return school
	}
	if orgs := homeOrgs[r]; len(orgs) > 0 {
		return orgs[0]
	}
	return ""
}

// ValidIn reports whether a user of role r may belong to org: a school-bound
// role to a school (any organisation but the bureau, finance, IT and the
// audit office), every other role to its own organisations. A token naming, say, an auditor of a
// school is refused, so no school can hand its staff a bureau role.
func (r Role) ValidIn(org string) bool {
	if r.SchoolBound() {
		return org != OrgBureau && org != OrgFinance && org != OrgIT && org != OrgAudit
	}
	return slices.Contains(homeOrgs[r], org)
}

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	return slices.Contains(Roles, r)
}

// Identity is the verified caller.
type Identity struct {
	UserID string
	Role   Role
	Org    string
}

// String is safe to log: it holds no personal data.
func (i Identity) String() string { return fmt.Sprintf("%s(%s@%s)", i.UserID, i.Role, i.Org) }

// Claims are the JWT claims the system uses.
type Claims struct {
	Role Role   `json:"role"`
	Org  string `json:"org"`
	jwt.RegisteredClaims
}

// Errors returned by Verify.
var (
	ErrNoToken      = errors.New("no bearer token")
	ErrInvalidToken = errors.New("invalid token")
)

// TokenPolicy is what a token must show besides a good signature: the
// audience it was minted for, the issuer that minted it, and a lifetime
// (expiry minus issue time) no longer than MaxLifetime.
type TokenPolicy struct {
	Audience    string
	Issuer      string
	MaxLifetime time.Duration
}

// Verifier checks tokens against a set of public keys.
type Verifier struct {
	keys   []ed25519.PublicKey
	policy TokenPolicy
	now    func() time.Time
}

// NewVerifier returns a Verifier accepting tokens signed by any of keys that
// satisfy p.
func NewVerifier(p TokenPolicy, keys ...ed25519.PublicKey) *Verifier {
	return &Verifier{keys: keys, policy: p, now: time.Now}
}

// Verify parses and checks a raw token: signature, issuer, audience, issue
// time, expiry, lifetime, role and organisation.
func (v *Verifier) Verify(raw string) (Identity, error) {
	var lastErr error
	for _, key := range v.keys {
		var c Claims
		_, err := jwt.ParseWithClaims(raw, &c, func(*jwt.Token) (any, error) { return key, nil },
			jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
			jwt.WithAudience(v.policy.Audience),
			jwt.WithIssuer(v.policy.Issuer),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithTimeFunc(v.now),
			jwt.WithLeeway(5*time.Second),
		)
		if err != nil {
			lastErr = err
			continue
		}
		if c.IssuedAt == nil || c.ExpiresAt.Sub(c.IssuedAt.Time) > v.policy.MaxLifetime {
			return Identity{}, fmt.Errorf("%w: no issue time, or valid for longer than %v", ErrInvalidToken, v.policy.MaxLifetime)
		}
		id := Identity{UserID: c.Subject, Role: c.Role, Org: c.Org}
		if err := id.check(); err != nil {
			return Identity{}, err
		}
		return id, nil
	}
	return Identity{}, fmt.Errorf("%w: %w", ErrInvalidToken, lastErr)
}

// Validate reports whether i is an identity a Verifier would accept: a
// subject, a known role and an organisation in which the role is valid. It
// returns an error wrapping ErrInvalidToken otherwise. Sign-in through an
// identity provider checks the claims it is given with it.
func (i Identity) Validate() error { return i.check() }

// check refuses an identity with a missing or malformed subject, role or
// organisation, or a role that is not valid in its organisation.
func (i Identity) check() error {
	if i.UserID == "" || len(i.UserID) > 64 || !i.Role.Valid() || i.Org == "" || len(i.Org) > 32 {
		return fmt.Errorf("%w: missing or malformed subject, role or organisation", ErrInvalidToken)
	}
	if !i.Role.ValidIn(i.Org) {
		return fmt.Errorf("%w: role %s is not valid in organisation %q", ErrInvalidToken, i.Role, i.Org)
	}
	return nil
}

// Signer mints tokens with a private key.
type Signer struct {
	key      ed25519.PrivateKey
	audience string
	issuer   string
}

// NewSigner returns a Signer for audience.
func NewSigner(key ed25519.PrivateKey, issuer, audience string) *Signer {
	return &Signer{key: key, audience: audience, issuer: issuer}
}

// Mint returns a signed token for id valid for ttl. It refuses an identity
// no Verifier would accept (a role outside its kind of organisation).
func (s *Signer) Mint(id Identity, ttl time.Duration) (string, error) {
	if err := id.check(); err != nil {
		return "", err
	}
	now := time.Now()
	c := Claims{
		Role: id.Role,
		Org:  id.Org,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   id.UserID,
			Issuer:    s.issuer,
			Audience:  jwt.ClaimStrings{s.audience},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	}
	return jwt.NewWithClaims(jwt.SigningMethodEdDSA, c).SignedString(s.key)
}

// GenerateKey returns a new Ed25519 key pair.
func GenerateKey() (ed25519.PublicKey, ed25519.PrivateKey, error) {
	return ed25519.GenerateKey(rand.Reader)
}

// WriteKeyPair writes the private key (PKCS#8) and public key (PKIX) as PEM files.
func WriteKeyPair(privPath, pubPath string, pub ed25519.PublicKey, priv ed25519.PrivateKey) error {
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return err
	}
	if err := os.WriteFile(privPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644) //nolint:gosec // a public key is meant to be read by every service
}

// LoadPrivateKey reads a PKCS#8 PEM Ed25519 private key.
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path) //nolint:gosec // the operator names the key file
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an Ed25519 key", path)
	}
	return priv, nil
}

// LoadPublicKeys reads a comma-separated list of PKIX PEM Ed25519 public key files.
func LoadPublicKeys(paths string) ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	for p := range strings.SplitSeq(paths, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		b, err := os.ReadFile(p) //nolint:gosec // the operator names the key files (AID_AUTH_PUBLIC_KEYS)
		if err != nil {
			return nil, err
		}
		for {
			var block *pem.Block
			block, b = pem.Decode(b)
			if block == nil {
				break
			}
			k, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			pub, ok := k.(ed25519.PublicKey)
			if !ok {
				return nil, fmt.Errorf("%s: not an Ed25519 key", p)
			}
			keys = append(keys, pub)
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("no public keys configured")
	}
	return keys, nil
}

type ctxKey struct{}

// WithIdentity returns ctx carrying id.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the caller's identity, if the call was authenticated.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(Identity)
	return id, ok
}
