package service

import (
	"fmt"

	"github.com/edubureau/studentaid/pkg/config"
	"github.com/edubureau/studentaid/services/school-review/internal/app"
	"github.com/edubureau/studentaid/services/school-review/internal/domain"
)

// NoticePeriodEnv names the variable that sets the public notice period:
// "<n>wd" for n working days, or a Go duration ("72h", "1s").
const NoticePeriodEnv = "SCHOOL_REVIEW_NOTICE_PERIOD"

// LoadConfig reads the service's own settings from the environment, through
// pkg/config. The notice timer polls every app.DefaultPollInterval.
func LoadConfig() (app.Config, error) {
	period, err := domain.ParseNoticePeriod(config.Env(NoticePeriodEnv, domain.DefaultNoticePeriod.String()))
	if err != nil {
		return app.Config{}, fmt.Errorf("%s: %w", NoticePeriodEnv, err)
	}
	return app.Config{NoticePeriod: period}, nil
}
