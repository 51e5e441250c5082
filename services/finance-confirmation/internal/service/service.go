// Package service wires finance-confirmation for the platform host: its
// schema migrations, gRPC policy, gRPC server, REST gateway and event
// consumer. The command and the component tests share the wiring.
package service

import (
	"context"
	"time"

	"github.com/edubureau/studentaid/pkg/config"
	"github.com/edubureau/studentaid/pkg/manifest"
	platform "github.com/edubureau/studentaid/pkg/service"
	financev1 "github.com/edubureau/studentaid/proto/gen/aid/finance/v1"
	"github.com/edubureau/studentaid/services/finance-confirmation/internal/app"
	"github.com/edubureau/studentaid/services/finance-confirmation/internal/ports"
	"github.com/edubureau/studentaid/services/finance-confirmation/migrations"
)

// Default listen addresses.
const (
	DefaultGRPCAddr = "127.0.0.1:9104"
	DefaultHTTPAddr = "127.0.0.1:8104"
)

// Options are the seams the tests set; the zero value is the service as main
// runs it.
type Options struct {
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Spec returns finance-confirmation as main runs it.
func Spec() platform.Spec { return SpecWith(Options{}) }

// SpecWith returns finance-confirmation with o's seams set; main and the
// tests share the wiring.
func SpecWith(o Options) platform.Spec {
	return platform.Spec{
		Name:            app.ServiceName,
		DefaultGRPCAddr: DefaultGRPCAddr,
		DefaultHTTPAddr: DefaultHTTPAddr,
		Migrations:      migrations.FS(),
		Policy:          ports.Policy(),
		// It signs each confirmed batch's manifest; it opens and hashes no
		// personal data.
		Needs: config.KeyNeeds{Sign: true},
		Setup: func(_ context.Context, h *platform.Host) error {
			signer, err := manifest.ParseSigningKeys(h.Config.FinanceSigningKeys)
			if err != nil {
				return err
			}
			a := app.New(app.Deps{Pool: h.Pool, Log: h.Log, Notify: h.Relay.Notify, Now: o.Now, Signer: signer})
			financev1.RegisterFinanceConfirmationServiceServer(h.GRPC, ports.NewServer(a))
			h.AddGateway(financev1.RegisterFinanceConfirmationServiceHandlerFromEndpoint)
			h.AddConsumer(ports.Consumer(a))
			return nil
		},
	}
}
