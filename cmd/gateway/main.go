// Command gateway is the one entry point of the public API: REST by path
// prefix and gRPC (h2c) by service name to each service, with per-organisation
// rate limits and request-size limits (docs/operations.md, Gateway).
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/edubureau/studentaid/internal/gateway"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/config"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

// run serves until SIGINT or SIGTERM, then drains the requests in flight.
func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	limits := gateway.DefaultLimits
	var err error
	if limits.Rate, err = config.Float("AID_GATEWAY_RATE", limits.Rate); err != nil {
		return err
	}
	if limits.Burst, err = config.Int("AID_GATEWAY_BURST", limits.Burst); err != nil {
		return err
	}
	maxBody, err := config.Int("AID_GATEWAY_MAX_BODY_BYTES", int(limits.MaxBodyBytes))
	if err != nil {
		return err
	}
	limits.MaxBodyBytes = int64(maxBody)
	if limits.Rate <= 0 || limits.Burst <= 0 || limits.MaxBodyBytes <= 0 {
		return errors.New("AID_GATEWAY_RATE, AID_GATEWAY_BURST and AID_GATEWAY_MAX_BODY_BYTES must be positive")
	}
	if limits.RefusalHold, err = config.Duration("AID_GATEWAY_REFUSAL_HOLD", limits.RefusalHold); err != nil {
		return err
	}
	if limits.MaxHeld, err = config.Int("AID_GATEWAY_MAX_HELD", limits.MaxHeld); err != nil {
		return err
	}
	if limits.RefusalHold < 0 || limits.MaxHeld < 0 {
		return errors.New("AID_GATEWAY_REFUSAL_HOLD and AID_GATEWAY_MAX_HELD must not be negative")
	}
	lifetime, err := config.Duration("AID_AUTH_MAX_TOKEN_LIFETIME", config.DefaultMaxTokenLifetime)
	if err != nil {
		return err
	}
	keyFiles := config.Env("AID_AUTH_PUBLIC_KEYS", "")
	if keyFiles == "" {
		return errors.New("AID_AUTH_PUBLIC_KEYS is not set: the gateway reads each token's organisation with the services' public key(s)")
	}
	keys, err := auth.LoadPublicKeys(keyFiles)
	if err != nil {
		return err
	}
	verifier := auth.NewVerifier(auth.TokenPolicy{
		Audience:    config.Env("AID_AUTH_AUDIENCE", "studentaid"),
		Issuer:      config.Env("AID_AUTH_ISSUER", config.DevAuthIssuer),
		MaxLifetime: lifetime,
	}, keys...)
	upstreams := map[string]gateway.Upstream{}
	for _, r := range gateway.Routes {
		p := gateway.EnvPrefix(r.Service)
		upstreams[r.Service] = gateway.Upstream{
			GRPC: config.Env(p+"GRPC_UPSTREAM", r.GRPCAddr),
			HTTP: config.Env(p+"HTTP_UPSTREAM", r.HTTPAddr),
		}
	}
	g := gateway.New(gateway.Options{Routes: gateway.Routes, Upstreams: upstreams, Limits: limits, Verifier: verifier})
	srv := gateway.NewServer(config.Env("AID_GATEWAY_ADDR", "127.0.0.1:8080"), g)
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("gateway listening", "addr", srv.Addr, "rate", limits.Rate, "burst", limits.Burst, "max_body_bytes", limits.MaxBodyBytes)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	if err := gateway.Shutdown(srv, 15*time.Second); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
