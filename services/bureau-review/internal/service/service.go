// Package service wires the bureau-review service: migrations,
// authorization policy, gRPC and REST handlers and the consumer of
// schoolreview.notice_passed and finance.item_returned events.
package service

import (
	"context"
	"time"

	"github.com/edubureau/studentaid/pkg/service"
	bureaureviewv1 "github.com/edubureau/studentaid/proto/gen/aid/bureaureview/v1"
	bureaureview "github.com/edubureau/studentaid/services/bureau-review"
	"github.com/edubureau/studentaid/services/bureau-review/internal/app"
	"github.com/edubureau/studentaid/services/bureau-review/internal/ports"
)

// Default listen addresses.
const (
	DefaultGRPCAddr = "127.0.0.1:9103"
	DefaultHTTPAddr = "127.0.0.1:8103"
)

// Spec is the bureau-review service.
func Spec() service.Spec {
	return SpecWithClock(time.Now)
}

// SpecWithClock is the bureau-review service with its clock injected.
func SpecWithClock(now func() time.Time) service.Spec {
	return service.Spec{
		Name:            app.ServiceName,
		DefaultGRPCAddr: DefaultGRPCAddr,
		DefaultHTTPAddr: DefaultHTTPAddr,
		Migrations:      bureaureview.Migrations(),
		Policy:          ports.Policy,
		Setup: func(_ context.Context, h *service.Host) error {
			a := app.New(h.Pool, h.Relay, now)
			bureaureviewv1.RegisterBureauReviewServiceServer(h.GRPC, ports.NewServer(a))
			h.AddGateway(bureaureviewv1.RegisterBureauReviewServiceHandlerFromEndpoint)
			h.AddConsumer(ports.NewConsumer(a))
			return nil
		},
	}
}
