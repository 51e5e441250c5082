// Package service wires the data-comparison service for the platform host:
// its schema migrations, gRPC policy, gRPC server, REST gateway and event
// consumer.
package service

import (
	"context"
	"time"

	"github.com/edubureau/studentaid/pkg/config"
	platform "github.com/edubureau/studentaid/pkg/service"
	dcv1 "github.com/edubureau/studentaid/proto/gen/aid/datacomparison/v1"
	"github.com/edubureau/studentaid/services/data-comparison/internal/app"
	"github.com/edubureau/studentaid/services/data-comparison/internal/ports"
	"github.com/edubureau/studentaid/services/data-comparison/migrations"
)

// Name is the service's name; its schema is "data_comparison".
const Name = "data-comparison"

// Default listen addresses.
const (
	DefaultGRPCAddr = "127.0.0.1:9106"
	DefaultHTTPAddr = "127.0.0.1:8106"
)

// Options are the seams the tests set; the zero value is the service as
// main runs it.
type Options struct {
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Config replaces LoadConfig when set.
	Config *app.Config
}

// Spec returns the service as main runs it.
func Spec() platform.Spec { return SpecWith(Options{}) }

// SpecWith returns the service with o's seams set.
func SpecWith(o Options) platform.Spec {
	return platform.Spec{
		Name:            Name,
		DefaultGRPCAddr: DefaultGRPCAddr,
		DefaultHTTPAddr: DefaultHTTPAddr,
		Migrations:      migrations.FS(),
		AppendOnly:      migrations.AppendOnly(),
		Policy:          ports.Policy(),
		// It matches people by the ID hash the application service writes,
		// so it needs the same hashing key and never the sealing key.
		Needs: config.KeyNeeds{Hash: true},
		Setup: func(_ context.Context, h *platform.Host) error {
			cfg, err := LoadConfig(h.Config.Production)
			if err != nil {
				return err
			}
			if o.Config != nil {
				cfg = *o.Config
			}
			a := app.New(app.Deps{Pool: h.Pool, Hasher: h.Hasher, Config: cfg, Notify: h.Relay.Notify, Now: o.Now})
			dcv1.RegisterDataComparisonServiceServer(h.GRPC, ports.NewServer(a))
			h.AddGateway(dcv1.RegisterDataComparisonServiceHandlerFromEndpoint)
			h.AddConsumer(ports.Consumer(a))
			return nil
		},
	}
}
