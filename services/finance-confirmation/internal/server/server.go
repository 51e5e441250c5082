// Package server wires finance-confirmation for the service host: its
// migrations, authorization policy, gRPC and REST handlers and its event
// consumer. The command and the component tests share Spec.
package server

import (
	"context"

	"github.com/edubureau/studentaid/pkg/natsx"
	"github.com/edubureau/studentaid/pkg/service"
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

// Spec describes finance-confirmation for service.Main and servicetest.Start.
func Spec() service.Spec {
	return service.Spec{
		Name:            app.ServiceName,
		DefaultGRPCAddr: DefaultGRPCAddr,
		DefaultHTTPAddr: DefaultHTTPAddr,
		Migrations:      migrations.FS(),
		Policy:          ports.Policy(),
		Setup: func(_ context.Context, h *service.Host) error {
			a := app.New(h.Pool, h.Log, h.Relay.Notify)
			financev1.RegisterFinanceConfirmationServiceServer(h.GRPC, ports.NewServer(a))
			h.AddGateway(financev1.RegisterFinanceConfirmationServiceHandlerFromEndpoint)
			h.AddConsumer(&natsx.Consumer{Subjects: ports.Subjects(), Handle: ports.EventHandler(a), HandleBatch: ports.BatchHandler(a)})
			return nil
		},
	}
}
