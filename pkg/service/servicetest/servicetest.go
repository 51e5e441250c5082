// Package servicetest hosts a service in the test process against real
// PostgreSQL and NATS, for component tests.
package servicetest

import (
	"context"
	"errors"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/edubureau/studentaid/internal/devtools/pgroles"
	"github.com/edubureau/studentaid/internal/devtools/testenv"
	"github.com/edubureau/studentaid/pkg/config"
	"github.com/edubureau/studentaid/pkg/service"
)

// Env is the shared infrastructure of a test: one database, one NATS server
// and one signing key, on which several services can run.
type Env struct {
	// DatabaseURL logs in as a superuser of the test's database; Start makes
	// the owner and service roles there, migrates as the owner and runs the
	// service under its own role.
	DatabaseURL string
	// NATSURL is a server started by testenv.NATS; a service logs in as its
	// own identity (testenv.NATSSeed) unless NATSSeed names another.
	NATSURL       string
	NATSSeed      string
	PublicKeyPath string
	// SealKeys and HashKeys are the key sets (config.Service.SealKeys,
	// HashKeys) given to a service whose Spec needs them; empty means the
	// development keys.
	SealKeys string
	HashKeys string
}

// Running is a service started by Start.
type Running struct {
	GRPCAddr string
	HTTPAddr string
}

// Start migrates spec's schema as the owner role, runs spec in-process under
// the service's own role until the test ends and waits until it is ready.
func Start(t testing.TB, env Env, spec service.Spec) Running {
	t.Helper()
	serviceURL := Migrate(t, env, spec)
	cfg := config.Service{
		Name:             spec.Name,
		GRPCAddr:         freeAddr(t),
		HTTPAddr:         freeAddr(t),
		DatabaseURL:      serviceURL,
		NATSURL:          env.NATSURL,
		NATSSeed:         env.NATSSeed,
		SealKeys:         env.SealKeys,
		HashKeys:         env.HashKeys,
		AuthPublicKeys:   env.PublicKeyPath,
		AuthAudience:     "studentaid",
		AuthIssuer:       config.DevAuthIssuer,
		MaxTokenLifetime: config.DefaultMaxTokenLifetime,
		DBMaxConns:       8,
		ShutdownTimeout:  10 * time.Second,
		LogLevel:         "warn",
	}
	if cfg.NATSSeed == "" {
		cfg.NATSSeed = testenv.NATSSeed(t, spec.Name)
	}
	if cfg.SealKeys == "" {
		cfg.SealKeys = config.DevSealKeys
	}
	if cfg.HashKeys == "" {
		cfg.HashKeys = config.DevHashKeys
	}
	if !spec.Needs.Seal {
		cfg.SealKeys = ""
	}
	if !spec.Needs.Hash {
		cfg.HashKeys = ""
	}
	if spec.Needs.Sign {
		cfg.FinanceSigningKeys = config.DevFinanceSigningKeys
	}
	if spec.Needs.Verify {
		cfg.FinanceVerifyKeys = config.DevFinanceVerifyKeys
	}
	// The free ports are found before the service binds them, so another
	// test may take one in between: a start that fails on a port in use is
	// tried again on other ports.
	for attempt := 1; ; attempt++ {
		run, err := runUntilReady(t, spec, cfg)
		if err == nil {
			return run
		}
		if !errors.Is(err, syscall.EADDRINUSE) || attempt == 5 {
			t.Fatalf("%s exited during start: %v", spec.Name, err)
		}
		cfg.GRPCAddr, cfg.HTTPAddr = freeAddr(t), freeAddr(t)
	}
}

// runUntilReady runs spec with cfg until the test ends and waits until it is
// ready; it returns the error the service exited with during start.
func runUntilReady(t testing.TB, spec service.Spec, cfg config.Service) (Running, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- service.RunWithConfig(ctx, spec, cfg) }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			cancel()
			return Running{}, err
		default:
		}
		resp, err := http.Get("http://" + cfg.HTTPAddr + "/readyz") //nolint:noctx // a bounded poll of the loopback server the test started
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Cleanup(func() {
					cancel()
					select {
					case err := <-done:
						if err != nil {
							t.Errorf("%s stopped with error: %v", spec.Name, err)
						}
					case <-time.After(20 * time.Second):
						t.Errorf("%s did not stop within 20s", spec.Name)
					}
				})
				return Running{GRPCAddr: cfg.GRPCAddr, HTTPAddr: cfg.HTTPAddr}, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	t.Fatalf("%s not ready within 30s", spec.Name)
	return Running{}, nil
}

// Migrate makes the roles (pgroles), applies spec's migrations as the owner
// and grants the service's role, as `<service> migrate` does; it returns the
// service role's URL.
func Migrate(t testing.TB, env Env, spec service.Spec) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	roles, err := pgroles.Provision(ctx, env.DatabaseURL, []string{spec.Name})
	if err != nil {
		t.Fatal(err)
	}
	if err := service.Migrate(ctx, spec, config.Migrate{Name: spec.Name, DatabaseURL: roles.OwnerURL(), Role: config.DefaultDBRole(spec.Name)}); err != nil {
		t.Fatalf("migrate %s: %v", spec.Name, err)
	}
	return roles.ServiceURL(spec.Name)
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0") //nolint:noctx // an instant loopback listen to find a free port
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
