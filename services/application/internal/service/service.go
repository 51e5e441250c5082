// Package service wires the application service for the platform host: its
// schema migrations, gRPC policy, gRPC server, REST gateway and event consumer.
package service

import (
	"context"

	platform "github.com/edubureau/studentaid/pkg/service"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
	"github.com/edubureau/studentaid/services/application/internal/app"
	"github.com/edubureau/studentaid/services/application/internal/ports"
	"github.com/edubureau/studentaid/services/application/migrations"
)

// Name is the service's name; its schema is "application".
const Name = "application"

// Default listen addresses.
const (
	DefaultGRPCAddr = "127.0.0.1:9101"
	DefaultHTTPAddr = "127.0.0.1:8101"
)

// Spec returns the application service as the platform hosts it; main and
// the tests use the same wiring.
func Spec() platform.Spec {
	return platform.Spec{
		Name:            Name,
		DefaultGRPCAddr: DefaultGRPCAddr,
		DefaultHTTPAddr: DefaultHTTPAddr,
		Migrations:      migrations.FS(),
		Policy:          ports.Policy(),
		Setup:           setup,
	}
}

func setup(_ context.Context, h *platform.Host) error {
	a := app.New(app.Deps{Pool: h.Pool, Sealer: h.Sealer, Hasher: h.Hasher, Notify: h.Relay.Notify})
	applicationv1.RegisterApplicationServiceServer(h.GRPC, ports.NewServer(a))
	h.AddGateway(applicationv1.RegisterApplicationServiceHandlerFromEndpoint)
	h.AddConsumer(ports.NewEventHandler(a).Consumer())
	h.AddWorker("status-gauge", ports.NewStatusGauge(h.Pool, h.Tel.Registry).Run)
	return nil
}
