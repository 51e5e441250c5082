// Command console serves the web console for the people in the chain. It
// calls the services through the public API's entry point with each
// signed-in user's identity. `console migrate` applies its schema (sessions,
// uploads, jobs, its audit log) as the schema's owner, then exits.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/edubureau/studentaid/pkg/audit"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/config"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/telemetry"
	"github.com/edubureau/studentaid/services/console/internal/signin"
	"github.com/edubureau/studentaid/services/console/internal/web"
	"github.com/edubureau/studentaid/services/console/migrations"
)

const name = "console"

func main() {
	if err := runUntilSignal(); err != nil {
		fmt.Fprintf(os.Stderr, "console: %v\n", err)
		os.Exit(1)
	}
}

func runUntilSignal() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) > 1 && os.Args[1] == "migrate" {
		return migrate(ctx)
	}
	return serve(ctx)
}

// migrate applies the console's migrations as the schema's owner and
// grants the console's role its rights, the audit log append-only.
func migrate(ctx context.Context) error {
	cfg, err := config.LoadMigrate(name)
	if err != nil {
		return err
	}
	pool, err := db.Connect(ctx, cfg.DatabaseURL, db.Options{MaxConns: 2})
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := db.Migrate(ctx, pool, name, audit.Migrations(), migrations.FS()); err != nil {
		return err
	}
	if err := db.Grant(ctx, pool, db.Grants{Schema: name, Role: cfg.Role, AppendOnly: audit.AppendOnly()}); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "console: schema console migrated; role %s granted\n", cfg.Role)
	return nil
}

// devUsers are the development sign-in's users: one of each role, two
// schools, and two of the roles whose work needs a second person.
var devUsers = []auth.Identity{
	{UserID: "officer1", Role: auth.RoleSchoolOfficer, Org: "S001"},
	{UserID: "reviewer1", Role: auth.RoleSchoolReviewer, Org: "S001"},
	{UserID: "officer2", Role: auth.RoleSchoolOfficer, Org: "S002"},
	{UserID: "reviewer2", Role: auth.RoleSchoolReviewer, Org: "S002"},
	{UserID: "bureau1", Role: auth.RoleBureauReviewer, Org: auth.OrgBureau},
	{UserID: "finance1", Role: auth.RoleFinanceOfficer, Org: auth.OrgFinance},
	{UserID: "finance2", Role: auth.RoleFinanceOfficer, Org: auth.OrgFinance},
	{UserID: "data1", Role: auth.RoleDataOfficer, Org: auth.OrgBureau},
	{UserID: "auditor1", Role: auth.RoleAuditor, Org: auth.OrgAudit},
	{UserID: "policy1", Role: auth.RolePolicyAdmin, Org: auth.OrgBureau},
	// A second policy administrator approves what the first drafted.
	{UserID: "policy2", Role: auth.RolePolicyAdmin, Org: auth.OrgBureau},
}

func serve(ctx context.Context) error {
	production := config.Env("AID_ENV", config.EnvDevelopment) == config.EnvProduction
	idle, err := config.Duration("AID_CONSOLE_IDLE_TIMEOUT", 30*time.Minute)
	if err != nil {
		return err
	}
	maxAge, err := config.Duration("AID_CONSOLE_SESSION_MAX", 12*time.Hour)
	if err != nil {
		return err
	}
	secure, err := config.Bool("AID_CONSOLE_SECURE_COOKIES", production)
	if err != nil {
		return err
	}
	devSignin, err := config.Bool("AID_CONSOLE_DEV_SIGNIN", !production)
	if err != nil {
		return err
	}
	issuer := config.Env("AID_AUTH_ISSUER", config.DevAuthIssuer)
	keyFile := config.Env("AID_CONSOLE_TOKEN_KEY", filepath.Join(config.Env("AID_DEV_DIR", ".devstack"), "keys", "auth.pem"))
	oidcIssuer := config.Env("AID_OIDC_ISSUER", "")
	var unsafe []string
	if devSignin {
		unsafe = append(unsafe, "AID_CONSOLE_DEV_SIGNIN lets anyone sign in as a development user: sign in through the identity provider (AID_OIDC_ISSUER)")
	}
	if !secure {
		unsafe = append(unsafe, "AID_CONSOLE_SECURE_COOKIES is off: serve the console over HTTPS with secure cookies")
	}
	if issuer == config.DevAuthIssuer {
		unsafe = append(unsafe, "AID_AUTH_ISSUER is the development issuer: set the issuer the services trust")
	}
	if os.Getenv("AID_CONSOLE_TOKEN_KEY") == "" {
		unsafe = append(unsafe, "AID_CONSOLE_TOKEN_KEY is not set: give the console its own signing key, trusted by the services (AID_AUTH_PUBLIC_KEYS)")
	}
	if production && len(unsafe) > 0 {
		return fmt.Errorf("AID_ENV=production refuses development defaults: %v", unsafe)
	}

	tel, err := telemetry.Setup(ctx, name, config.Env("AID_LOG_LEVEL", "info"), config.LoadTelemetry())
	if err != nil {
		return err
	}
	log := tel.Log
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tel.Shutdown(sctx)
	}()
	for _, u := range unsafe {
		log.Warn("development default in use; AID_ENV=production refuses it", "setting", u)
	}

	pool, err := db.Connect(ctx, config.Env("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"), db.Options{MaxConns: 8, SearchPath: name})
	if err != nil {
		return err
	}
	defer pool.Close()
	pending, err := db.Pending(ctx, pool, name, audit.Migrations(), migrations.FS())
	if err != nil {
		return err
	}
	if len(pending) > 0 {
		return fmt.Errorf("schema console lacks migrations %v: run `console migrate` (as the schema's owner, AID_MIGRATE_DATABASE_URL) first", pending)
	}

	key, err := auth.LoadPrivateKey(keyFile)
	if err != nil {
		return fmt.Errorf("AID_CONSOLE_TOKEN_KEY: %w", err)
	}
	up, err := web.NewUpstream(config.Env("AID_CONSOLE_API_GRPC", "127.0.0.1:8080"), auth.NewSigner(key, issuer, config.Env("AID_AUTH_AUDIENCE", "studentaid")))
	if err != nil {
		return err
	}
	defer func() { _ = up.Close() }()

	cfg := web.Config{SecureCookies: secure, JaegerUI: config.Env("AID_JAEGER_UI", "http://127.0.0.1:16686"),
		APIBase: config.Env("AID_CONSOLE_API_BASE", "http://127.0.0.1:8080")}
	if devSignin {
		cfg.DevUsers = devUsers
	}
	if oidcIssuer != "" {
		o, err := signin.NewOIDC(ctx, signin.OIDCConfig{Issuer: oidcIssuer, ClientID: config.Env("AID_OIDC_CLIENT_ID", ""),
			ClientSecret: os.Getenv("AID_OIDC_CLIENT_SECRET"), RedirectURL: config.Env("AID_OIDC_REDIRECT_URL", ""),
			RoleClaim: config.Env("AID_OIDC_ROLE_CLAIM", ""), OrgClaim: config.Env("AID_OIDC_ORG_CLAIM", "")})
		if err != nil {
			return fmt.Errorf("identity provider: %w", err)
		}
		cfg.OIDC = web.OIDCAuthenticator{OIDC: o}
	}
	srv, err := web.New(cfg, log, pool, up, idle, maxAge)
	if err != nil {
		return err
	}
	hs := &http.Server{Addr: config.Env("CONSOLE_ADDR", "127.0.0.1:8090"), Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.ListenAndServe() }()
	log.Info("console listening", "addr", hs.Addr, "dev_signin", devSignin, "oidc", oidcIssuer != "")
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
