package service

import (
	"fmt"
	"time"

	"github.com/edubureau/studentaid/pkg/config"
	"github.com/edubureau/studentaid/pkg/lease"
	"github.com/edubureau/studentaid/services/school-review/internal/app"
	"github.com/edubureau/studentaid/services/school-review/internal/domain"
)

// NoticePeriodEnv names the variable that sets the public notice period:
// "<n>wd" for n working days, or a Go duration ("72h", "1s").
const NoticePeriodEnv = "SCHOOL_REVIEW_NOTICE_PERIOD"

// LeaseTTLEnv names the variable that sets how long the notice timer's
// lease lasts unrenewed (a Go duration, at least 1s; default 10s): after a
// crash of its holder, another replica takes the timer over within it.
const LeaseTTLEnv = "SCHOOL_REVIEW_LEASE_TTL"

// LoadConfig reads the service's own settings from the environment, through
// pkg/config. The notice timer polls every app.DefaultPollInterval.
func LoadConfig() (app.Config, error) {
	period, err := domain.ParseNoticePeriod(config.Env(NoticePeriodEnv, domain.DefaultNoticePeriod.String()))
	if err != nil {
		return app.Config{}, fmt.Errorf("%s: %w", NoticePeriodEnv, err)
	}
	ttl, err := config.Duration(LeaseTTLEnv, lease.DefaultTTL)
	if err != nil {
		return app.Config{}, err
	}
	if ttl < time.Second {
		return app.Config{}, fmt.Errorf("%s: %s is too short: renewals every third of it would fail on an ordinary database hiccup; use at least 1s", LeaseTTLEnv, ttl)
	}
	return app.Config{NoticePeriod: period, LeaseTTL: ttl}, nil
}
