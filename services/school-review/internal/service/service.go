// Package service wires the school-review service: configuration,
// migrations, authorization policy, gRPC and REST handlers, the
// application.submitted consumer and the public-notice timer.
package service

import (
	"context"
	"fmt"

	"github.com/edubureau/studentaid/pkg/config"
	"github.com/edubureau/studentaid/pkg/service"
	schoolreviewv1 "github.com/edubureau/studentaid/proto/gen/aid/schoolreview/v1"
	schoolreview "github.com/edubureau/studentaid/services/school-review"
	"github.com/edubureau/studentaid/services/school-review/internal/app"
	"github.com/edubureau/studentaid/services/school-review/internal/domain"
	"github.com/edubureau/studentaid/services/school-review/internal/ports"
)

// Default listen addresses.
const (
	DefaultGRPCAddr = "127.0.0.1:9102"
	DefaultHTTPAddr = "127.0.0.1:8102"
)

// NoticePeriodEnv names the variable that sets the public notice period:
// "<n>wd" for n working days, or a Go duration ("72h", "1s").
const NoticePeriodEnv = "SCHOOL_REVIEW_NOTICE_PERIOD"

// LoadConfig reads the service's own settings from the environment. It is
// the only place that does.
func LoadConfig() (app.Config, error) {
	period, err := domain.ParseNoticePeriod(config.Env(NoticePeriodEnv, domain.DefaultNoticePeriod.String()))
	if err != nil {
		return app.Config{}, fmt.Errorf("%s: %w", NoticePeriodEnv, err)
	}
	return app.Config{NoticePeriod: period}, nil
}

// Spec is the school-review service configured from the environment.
func Spec() service.Spec {
	return spec(LoadConfig)
}

// SpecWith is the school-review service with cfg instead of the
// environment's settings; tests use it to shorten the notice period.
func SpecWith(cfg app.Config) service.Spec {
	return spec(func() (app.Config, error) { return cfg, nil })
}

func spec(load func() (app.Config, error)) service.Spec {
	return service.Spec{
		Name:            app.ServiceName,
		DefaultGRPCAddr: DefaultGRPCAddr,
		DefaultHTTPAddr: DefaultHTTPAddr,
		Migrations:      schoolreview.Migrations(),
		Policy:          ports.Policy,
		Setup: func(_ context.Context, h *service.Host) error {
			cfg, err := load()
			if err != nil {
				return err
			}
			a := app.New(h.Pool, h.Relay, cfg, h.Tel.Tracer, h.Log)
			schoolreviewv1.RegisterSchoolReviewServiceServer(h.GRPC, ports.NewServer(a))
			h.AddGateway(schoolreviewv1.RegisterSchoolReviewServiceHandlerFromEndpoint)
			h.AddConsumer(ports.NewConsumer(a))
			h.AddWorker("notice-timer", a.RunNoticeTimer)
			h.Log.Info("school review configured", "notice_period", cfg.NoticePeriod.String())
			return nil
		},
	}
}
