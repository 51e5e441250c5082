package sim_test

import (
	"strings"
	"testing"
	"time"

	"github.com/edubureau/studentaid/cmd/banksim/sim"
)

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		want    sim.Config
		wantErr string
	}{
		{
			name: "defaults",
			want: sim.Config{
				Addr: "127.0.0.1:8600", DatabaseURL: "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", Schema: "banksim", DBMaxConns: 32,
				Faults: sim.Faults{TimeoutDelay: 5 * time.Second, Seed: 7},
			},
		},
		{
			name: "everything set",
			env: map[string]string{
				"BANKSIM_ADDR": ":9000", "DATABASE_URL": "postgres://x/y", "BANKSIM_LATENCY": "20ms",
				"BANKSIM_FAILURE_RATE": "0.1", "BANKSIM_TIMEOUT_RATE": "1", "BANKSIM_TIMEOUT_DELAY": "2s", "BANKSIM_SEED": "99",
				"BANKSIM_DB_MAX_CONNS": "8",
			},
			want: sim.Config{
				Addr: ":9000", DatabaseURL: "postgres://x/y", Schema: "banksim", DBMaxConns: 8,
				Faults: sim.Faults{Latency: 20 * time.Millisecond, FailureRate: 0.1, TimeoutRate: 1, TimeoutDelay: 2 * time.Second, Seed: 99},
			},
		},
		{name: "bad latency", env: map[string]string{"BANKSIM_LATENCY": "soon"}, wantErr: "BANKSIM_LATENCY"},
		{name: "negative delay", env: map[string]string{"BANKSIM_TIMEOUT_DELAY": "-1s"}, wantErr: "BANKSIM_TIMEOUT_DELAY"},
		{name: "rate above one", env: map[string]string{"BANKSIM_FAILURE_RATE": "1.5"}, wantErr: "BANKSIM_FAILURE_RATE"},
		{name: "rate NaN", env: map[string]string{"BANKSIM_TIMEOUT_RATE": "NaN"}, wantErr: "BANKSIM_TIMEOUT_RATE"},
		{name: "bad seed", env: map[string]string{"BANKSIM_SEED": "-3"}, wantErr: "BANKSIM_SEED"},
		{name: "no connections", env: map[string]string{"BANKSIM_DB_MAX_CONNS": "0"}, wantErr: "BANKSIM_DB_MAX_CONNS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lookup := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			got, err := sim.LoadConfig(lookup, 7)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestMaskCard(t *testing.T) {
	t.Parallel()
	tests := []struct{ card, want string }{
		{"6222021234567890123", "6222***********0123"},
		{"622202123456", "6222****3456"},
		{"12345678", "********"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := sim.MaskCard(tt.card); got != tt.want {
			t.Errorf("MaskCard(%q) = %q, want %q", tt.card, got, tt.want)
		}
	}
}

func TestDecide(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		p          sim.Payment
		wantStatus sim.Status
		wantReason string
	}{
		{"ordinary", sim.Payment{CardNumber: "6222021234567891", AccountName: "张三"}, sim.StatusCredited, ""},
		{"closed", sim.Payment{CardNumber: "6222021234560000", AccountName: "张三"}, sim.StatusRejected, sim.ReasonAccountClosed},
		{"mismatch", sim.Payment{CardNumber: "6222021234567891", AccountName: "错名"}, sim.StatusRejected, sim.ReasonNameMismatch},
		{"only exact name", sim.Payment{CardNumber: "6222021234567891", AccountName: "错名 "}, sim.StatusCredited, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, r := sim.Decide(tt.p)
			if s != tt.wantStatus || r != tt.wantReason {
				t.Errorf("got %s %q, want %s %q", s, r, tt.wantStatus, tt.wantReason)
			}
		})
	}
}
