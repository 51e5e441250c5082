package service_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/edubureau/studentaid/internal/devtools/testenv"
	"github.com/edubureau/studentaid/pkg/config"
	platform "github.com/edubureau/studentaid/pkg/service"
	"github.com/edubureau/studentaid/pkg/service/servicetest"
	"github.com/edubureau/studentaid/services/school-review/internal/app"
	"github.com/edubureau/studentaid/services/school-review/internal/domain"
	srservice "github.com/edubureau/studentaid/services/school-review/internal/service"
)

// TestLoadConfig sets environment variables, so it cannot run in parallel.
func TestLoadConfig(t *testing.T) {
	tests := []struct {
		value   string
		want    domain.NoticePeriod
		wantErr bool
	}{
		{"", domain.WorkingDays(5), false},
		{"3wd", domain.WorkingDays(3), false},
		{"1s", domain.FixedNotice(time.Second), false},
		{"five", domain.NoticePeriod{}, true},
		{"0wd", domain.NoticePeriod{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.value, func(t *testing.T) {
			t.Setenv(srservice.NoticePeriodEnv, tc.value)
			cfg, err := srservice.LoadConfig()
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), srservice.NoticePeriodEnv) {
					t.Fatalf("LoadConfig with %q: err %v, want one naming %s", tc.value, err, srservice.NoticePeriodEnv)
				}
				return
			}
			if err != nil || cfg.NoticePeriod != tc.want {
				t.Fatalf("LoadConfig with %q = %v, %v; want %v", tc.value, cfg.NoticePeriod, err, tc.want)
			}
		})
	}
}

// TestLoadLeaseTTL sets environment variables, so it cannot run in parallel.
func TestLoadLeaseTTL(t *testing.T) {
	for value, want := range map[string]time.Duration{"": 10 * time.Second, "3s": 3 * time.Second, "1m": time.Minute} {
		t.Setenv(srservice.LeaseTTLEnv, value)
		cfg, err := srservice.LoadConfig()
		if err != nil || cfg.LeaseTTL != want {
			t.Fatalf("LoadConfig with %s=%q = %v, %v; want %v", srservice.LeaseTTLEnv, value, cfg.LeaseTTL, err, want)
		}
	}
	for _, value := range []string{"500ms", "ten", "-1s"} {
		t.Setenv(srservice.LeaseTTLEnv, value)
		if _, err := srservice.LoadConfig(); err == nil || !strings.Contains(err.Error(), srservice.LeaseTTLEnv) {
			t.Fatalf("LoadConfig with %s=%q: err %v, want one naming the variable", srservice.LeaseTTLEnv, value, err)
		}
	}
}

// TestProductionRefusesANoticeShorterThanAWorkingDay starts the service in
// production mode with each notice period: the ones that may end before a
// whole working day passed are refused at start-up, naming the setting.
func TestProductionRefusesANoticeShorterThanAWorkingDay(t *testing.T) {
	t.Parallel()
	// The service's own login: production refuses a superuser before it
	// looks at the notice period.
	dbURL := servicetest.Migrate(t, servicetest.Env{DatabaseURL: testenv.DatabaseURL(t)}, srservice.Spec())
	natsURL, keys := testenv.NATS(t), testenv.NewKeys(t)
	tests := []struct {
		period  domain.NoticePeriod
		refused bool
	}{
		{domain.FixedNotice(time.Second), true},
		{domain.FixedNotice(24 * time.Hour), true},
		{domain.FixedNotice(domain.MinFixedNoticeSpansAWorkingDay - time.Second), true},
		{domain.FixedNotice(domain.MinFixedNoticeSpansAWorkingDay), false},
		{domain.WorkingDays(1), false},
	}
	for _, tc := range tests {
		t.Run(tc.period.String(), func(t *testing.T) {
			cfg := config.Service{
				Name: "school-review", GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
				DatabaseURL: dbURL, NATSURL: natsURL, NATSSeed: testenv.NATSSeed(t, "school-review"), AuthPublicKeys: keys.PublicKeyPath,
				AuthAudience: "studentaid", AuthIssuer: "https://idp.example.gov.cn", MaxTokenLifetime: time.Hour,
				DBMaxConns: 2, ShutdownTimeout: 5 * time.Second, LogLevel: "error", Production: true,
			}
			period := tc.period
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			err := platform.RunWithConfig(ctx, srservice.SpecWith(srservice.Options{Config: &app.Config{NoticePeriod: period}}), cfg)
			switch {
			case tc.refused && (err == nil || !strings.Contains(err.Error(), "notice period")):
				t.Fatalf("production with notice %s: %v, want a refusal of the notice period", period, err)
			case !tc.refused && err != nil:
				t.Fatalf("production with notice %s: %v, want it to run until stopped", period, err)
			}
		})
	}
}
