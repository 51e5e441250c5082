// Package service wires the reporting service for the platform host: its
// schema migrations, gRPC policy, gRPC server, REST gateway and event
// consumer.
package service

import (
	"context"
	"time"

	platform "github.com/edubureau/studentaid/pkg/service"
	reportingv1 "github.com/edubureau/studentaid/proto/gen/aid/reporting/v1"
	"github.com/edubureau/studentaid/services/reporting/internal/app"
	"github.com/edubureau/studentaid/services/reporting/internal/ports"
	"github.com/edubureau/studentaid/services/reporting/migrations"
)

// Name is the service's name; its schema is "reporting".
const Name = "reporting"

// Default listen addresses.
const (
	DefaultGRPCAddr = "127.0.0.1:9107"
	DefaultHTTPAddr = "127.0.0.1:8107"
)

// Options are the seams the tests set; the zero value is the service as
// main runs it.
type Options struct {
	// Now is the clock; nil is time.Now.
	Now func() time.Time
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
		// It counts persons by the ID hash the events carry; it needs no key.
		Setup: func(_ context.Context, h *platform.Host) error {
			a := app.New(app.Deps{Pool: h.Pool, Now: o.Now})
			reportingv1.RegisterReportingServiceServer(h.GRPC, ports.NewServer(a))
			h.AddGateway(reportingv1.RegisterReportingServiceHandlerFromEndpoint)
			h.AddRoute(ports.ExportRoute())
			h.AddRoute(ports.PaymentsExportRoute())
			h.AddConsumer(ports.Consumer(a))
			return nil
		},
	}
}
