// Command devtoken mints a development bearer token with the key `make run`
// created, for calling the APIs with curl or grpcurl.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/config"
)

func main() {
	role := flag.String("role", string(auth.RoleSchoolOfficer), "role: school_officer, school_reviewer, bureau_reviewer, data_officer, finance_officer, auditor, ops")
	org := flag.String("org", "S001", "organisation: a school code, BUREAU, FINANCE or IT")
	user := flag.String("user", "", "user ID (default: <role>-<org>)")
	ttl := flag.Duration("ttl", 12*time.Hour, "validity")
	key := flag.String("key", filepath.Join(config.Env("AID_DEV_DIR", ".devstack"), "keys", "auth.pem"), "private key (PEM, Ed25519)")
	flag.Parse()
	if err := run(*role, *org, *user, *key, *ttl); err != nil {
		fmt.Fprintln(os.Stderr, "devtoken:", err)
		os.Exit(1)
	}
}

func run(role, org, user, keyPath string, ttl time.Duration) error {
	r := auth.Role(role)
	if !r.Valid() {
		return fmt.Errorf("unknown role %q", role)
	}
	if user == "" {
		user = role + "-" + org
	}
	key, err := auth.LoadPrivateKey(keyPath)
	if err != nil {
		return fmt.Errorf("%w (start the stack once with `make run` to create it)", err)
	}
	tok, err := auth.NewSigner(key, config.Env("AID_AUTH_ISSUER", config.DevAuthIssuer), config.Env("AID_AUTH_AUDIENCE", "studentaid")).Mint(auth.Identity{UserID: user, Role: r, Org: org}, ttl)
	if err != nil {
		return err
	}
	fmt.Println(tok)
	return nil
}
