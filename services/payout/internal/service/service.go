// Package service wires payout for the platform host: its settings,
// migrations, authorization policy, gRPC and REST handlers, event consumer
// and pay worker. The command and the component tests share the wiring.
package service

import (
	"context"
	"maps"
	"net/http"
	"time"

	"github.com/edubureau/studentaid/pkg/config"
	"github.com/edubureau/studentaid/pkg/grpcx"
	"github.com/edubureau/studentaid/pkg/keyrotation"
	"github.com/edubureau/studentaid/pkg/manifest"
	platform "github.com/edubureau/studentaid/pkg/service"
	keysv1 "github.com/edubureau/studentaid/proto/gen/aid/keys/v1"
	payoutv1 "github.com/edubureau/studentaid/proto/gen/aid/payout/v1"
	"github.com/edubureau/studentaid/services/payout/internal/adapters"
	"github.com/edubureau/studentaid/services/payout/internal/app"
	"github.com/edubureau/studentaid/services/payout/internal/bank"
	"github.com/edubureau/studentaid/services/payout/internal/ports"
	"github.com/edubureau/studentaid/services/payout/migrations"
)

// Default listen addresses.
const (
	DefaultGRPCAddr = "127.0.0.1:9105"
	DefaultHTTPAddr = "127.0.0.1:8105"
)

// Options are the seams the tests set; the zero value is the service as main
// runs it, but with DefaultConfig instead of the environment's settings.
type Options struct {
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Config is payout's settings; its zero fields take DefaultConfig's.
	Config app.Config
	// HTTPClient, when set, is the client the bank gateway copies; by default
	// one with a connection pool sized to Config.Concurrency.
	HTTPClient *http.Client
}

// Spec returns payout as main runs it, with its settings from the
// environment (LoadConfig).
func Spec() platform.Spec { return spec(Options{}, LoadConfig) }

// SpecWith returns payout with o's seams set; main and the tests share the
// wiring.
func SpecWith(o Options) platform.Spec {
	return spec(o, func() (app.Config, error) {
		c := withDefaults(o.Config)
		return c, validate(c)
	})
}

// policy is the service's own RPCs' policy and the key rotation's.
func policy() grpcx.Policy {
	p := ports.Policy()
	maps.Copy(p, keyrotation.Policy())
	return p
}

// rotator re-seals payout's sealed payees under the current sealing key.
func rotator(h *platform.Host) *keyrotation.Rotator {
	r := &keyrotation.Rotator{Pool: h.Pool, Sealer: h.Sealer}
	for _, t := range adapters.SealedTables {
		r.Passes = append(r.Passes, keyrotation.ResealPass(t, h.Sealer))
	}
	return r
}

func spec(o Options, load func() (app.Config, error)) platform.Spec {
	return platform.Spec{
		Name:            app.ServiceName,
		DefaultGRPCAddr: DefaultGRPCAddr,
		DefaultHTTPAddr: DefaultHTTPAddr,
		Migrations:      migrations.FS(),
		AppendOnly:      migrations.AppendOnly(),
		Policy:          policy(),
		// It opens the sealed payee just before a bank call, and seals nothing
		// of its own; it hashes nothing. It verifies finance's manifests with
		// finance's public keys.
		Needs: config.KeyNeeds{Seal: true, Verify: true},
		Setup: func(_ context.Context, h *platform.Host) error {
			cfg, err := load()
			if err != nil {
				return err
			}
			verifier, err := manifest.ParseVerifyKeys(h.Config.FinanceVerifyKeys)
			if err != nil {
				return err
			}
			d := app.Deps{
				Pool: h.Pool, Log: h.Log, Notify: h.Relay.Notify, Now: o.Now, Tracer: h.Tel.Tracer, Sealer: h.Sealer,
				Bank:     bank.NewHTTPGateway(cfg.BankURL, bankClient(o.HTTPClient, cfg.Concurrency)),
				Metrics:  app.NewMetrics(h.Tel.Registry),
				Verifier: verifier,
				Config:   cfg,
			}
			a := app.New(d)
			payoutv1.RegisterPayoutServiceServer(h.GRPC, ports.NewServer(a))
			keysv1.RegisterKeyRotationServiceServer(h.GRPC, keyrotation.NewServer(rotator(h)))
			h.AddGateway(payoutv1.RegisterPayoutServiceHandlerFromEndpoint)

			w := app.NewWorker(d)
			c := ports.Consumer(a)
			// New orders wake the worker as well as the relay.
			c.AfterCommit = func() {
				h.Relay.Notify()
				w.Wake()
			}
			h.AddConsumer(c)
			h.AddWorker("pay", w.Run)
			return nil
		},
	}
}

// bankClient is client when set, and otherwise an HTTP client whose idle
// pool holds a connection per concurrent call, so the bank is not redialled
// for every payment.
func bankClient(client *http.Client, concurrency int) *http.Client {
	if client != nil {
		return client
	}
	tr := http.DefaultTransport.(*http.Transport).Clone() //nolint:forcetypeassert // net/http declares DefaultTransport as a *Transport
	tr.MaxIdleConns = concurrency * 2
	tr.MaxIdleConnsPerHost = concurrency * 2
	return &http.Client{Transport: tr}
}
