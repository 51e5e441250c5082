// Package service wires the bureau-review service for the platform host: its
// schema migrations, gRPC policy, gRPC server, REST gateway and the consumer
// of schoolreview.notice_passed and finance.item_returned events.
package service

import (
	"context"
	"time"

	platform "github.com/edubureau/studentaid/pkg/service"
	bureaureviewv1 "github.com/edubureau/studentaid/proto/gen/aid/bureaureview/v1"
	"github.com/edubureau/studentaid/services/bureau-review/internal/app"
	"github.com/edubureau/studentaid/services/bureau-review/internal/ports"
	"github.com/edubureau/studentaid/services/bureau-review/migrations"
)

// Default listen addresses.
const (
	DefaultGRPCAddr = "127.0.0.1:9103"
	DefaultHTTPAddr = "127.0.0.1:8103"
)

// Options are the seams the tests set; the zero value is the service as main
// runs it.
type Options struct {
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Spec returns the bureau-review service as main runs it.
func Spec() platform.Spec { return SpecWith(Options{}) }

// SpecWith returns the bureau-review service with o's seams set; main and
// the tests share the wiring.
func SpecWith(o Options) platform.Spec {
	return platform.Spec{
		Name:            app.ServiceName,
		DefaultGRPCAddr: DefaultGRPCAddr,
		DefaultHTTPAddr: DefaultHTTPAddr,
		Migrations:      migrations.FS(),
		Policy:          ports.Policy(),
		Setup: func(_ context.Context, h *platform.Host) error {
			a := app.New(app.Deps{Pool: h.Pool, Notify: h.Relay.Notify, Now: o.Now})
			bureaureviewv1.RegisterBureauReviewServiceServer(h.GRPC, ports.NewServer(a))
			h.AddGateway(bureaureviewv1.RegisterBureauReviewServiceHandlerFromEndpoint)
			h.AddConsumer(ports.Consumer(a))
			return nil
		},
	}
}
