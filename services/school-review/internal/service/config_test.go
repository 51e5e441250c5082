package service_test

import (
	"strings"
	"testing"
	"time"

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
