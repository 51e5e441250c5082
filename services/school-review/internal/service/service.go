// Package service wires the school-review service for the platform host:
// its schema migrations, gRPC policy, gRPC server, REST gateway, the
// application.submitted consumer and the public-notice timer.
package service

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/edubureau/studentaid/pkg/lease"
	platform "github.com/edubureau/studentaid/pkg/service"
	schoolreviewv1 "github.com/edubureau/studentaid/proto/gen/aid/schoolreview/v1"
	"github.com/edubureau/studentaid/services/school-review/internal/app"
	"github.com/edubureau/studentaid/services/school-review/internal/domain"
	"github.com/edubureau/studentaid/services/school-review/internal/ports"
	"github.com/edubureau/studentaid/services/school-review/migrations"
)

// Default listen addresses.
const (
	DefaultGRPCAddr = "127.0.0.1:9102"
	DefaultHTTPAddr = "127.0.0.1:8102"
)

// Options are the seams the tests set; the zero value is the service as main
// runs it.
type Options struct {
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Config, when set, replaces the settings LoadConfig reads from the
	// environment.
	Config *app.Config
}

// Spec returns the school-review service as main runs it, configured from
// the environment.
func Spec() platform.Spec { return SpecWith(Options{}) }

// SpecWith returns the school-review service with o's seams set; main and
// the tests share the wiring.
func SpecWith(o Options) platform.Spec {
	return platform.Spec{
		Name:            app.ServiceName,
		DefaultGRPCAddr: DefaultGRPCAddr,
		DefaultHTTPAddr: DefaultHTTPAddr,
		Migrations:      migrations.FS(),
		AppendOnly:      migrations.AppendOnly(),
		Policy:          ports.Policy(),
		Setup: func(ctx context.Context, h *platform.Host) error {
			cfg, err := configOf(o)
			if err != nil {
				return err
			}
			if h.Config.Production && !cfg.NoticePeriod.AtLeastOneWorkingDay() {
				return fmt.Errorf("AID_ENV=production refuses the public notice period %s: it must span at least one working day (%s at least 1wd, or a duration of at least %s)",
					cfg.NoticePeriod, NoticePeriodEnv, domain.MinFixedNoticeSpansAWorkingDay)
			}
			a := app.New(app.Deps{Pool: h.Pool, Log: h.Log, Notify: h.Relay.Notify, Now: o.Now, Tracer: h.Tel.Tracer, Config: cfg, Registry: h.Tel.Registry})
			// The years of pkg/calendar's files that the schema lacks, then
			// the calendar into memory, before any notice is counted.
			if err := a.SeedCalendar(ctx); err != nil {
				return err
			}
			schoolreviewv1.RegisterSchoolReviewServiceServer(h.GRPC, ports.NewServer(a))
			h.AddGateway(schoolreviewv1.RegisterSchoolReviewServiceHandlerFromEndpoint)
			h.AddConsumer(ports.Consumer(a))
			timer := lease.NewRunner(h.Pool, app.NoticeTimerLease,
				lease.WithTTL(cmp.Or(cfg.LeaseTTL, lease.DefaultTTL)),
				lease.WithLogger(h.Log.With("worker", "notice-timer")),
				lease.WithRegisterer(h.Tel.Registry, app.ServiceName))
			h.AddWorker("notice-timer", func(ctx context.Context) error { return timer.Run(ctx, a.RunNoticeTimer) })
			h.AddWorker("calendar-refresh", a.RunCalendarRefresh)
			h.Log.Info("school review configured", "notice_period", cfg.NoticePeriod.String(), "calendar_years", fmt.Sprint(a.WorkingCalendar().Years()))
			return nil
		},
	}
}

// configOf is o's Config, or the environment's when o sets none.
func configOf(o Options) (app.Config, error) {
	if o.Config != nil {
		return *o.Config, nil
	}
	return LoadConfig()
}
