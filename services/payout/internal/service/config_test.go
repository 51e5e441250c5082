package service_test

import (
	"strings"
	"testing"
	"time"

	"github.com/edubureau/studentaid/services/payout/internal/app"
	payoutservice "github.com/edubureau/studentaid/services/payout/internal/service"
)

// TestLoadConfig sets environment variables, so it cannot run in parallel.
func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    func(c *app.Config)
		wantErr string
	}{
		{"defaults", nil, func(*app.Config) {}, ""},
		{"every setting", map[string]string{
			"PAYOUT_BANK_URL": "https://bank.example", "PAYOUT_CONCURRENCY": "8", "PAYOUT_BANK_TIMEOUT": "1s",
			"PAYOUT_RETRY_BACKOFF": "2s", "PAYOUT_MAX_BACKOFF": "1m", "PAYOUT_CLAIM_LEASE": "30s", "PAYOUT_POLL_INTERVAL": "100ms",
		}, func(c *app.Config) {
			*c = app.Config{BankURL: "https://bank.example", Concurrency: 8, BankTimeout: time.Second, RetryBackoff: 2 * time.Second,
				MaxBackoff: time.Minute, ClaimLease: 30 * time.Second, PollInterval: 100 * time.Millisecond}
		}, ""},
		{"bank URL", map[string]string{"PAYOUT_BANK_URL": "ftp://bank"}, nil, "PAYOUT_BANK_URL"},
		{"concurrency not a number", map[string]string{"PAYOUT_CONCURRENCY": "many"}, nil, "PAYOUT_CONCURRENCY"},
		{"concurrency out of range", map[string]string{"PAYOUT_CONCURRENCY": "0"}, nil, "PAYOUT_CONCURRENCY"},
		{"duration", map[string]string{"PAYOUT_POLL_INTERVAL": "soon"}, nil, "PAYOUT_POLL_INTERVAL"},
		{"backoff", map[string]string{"PAYOUT_MAX_BACKOFF": "100ms"}, nil, "PAYOUT_MAX_BACKOFF"},
		{"lease", map[string]string{"PAYOUT_CLAIM_LEASE": "10s"}, nil, "PAYOUT_CLAIM_LEASE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"PAYOUT_BANK_URL", "PAYOUT_CONCURRENCY", "PAYOUT_BANK_TIMEOUT", "PAYOUT_RETRY_BACKOFF",
				"PAYOUT_MAX_BACKOFF", "PAYOUT_CLAIM_LEASE", "PAYOUT_POLL_INTERVAL"} {
				t.Setenv(k, tt.env[k])
			}
			got, err := payoutservice.LoadConfig()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("LoadConfig: err %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			want := payoutservice.DefaultConfig()
			tt.want(&want)
			if err != nil || got != want {
				t.Fatalf("LoadConfig = %+v, %v; want %+v", got, err, want)
			}
		})
	}
}
