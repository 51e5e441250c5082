package telemetry

import (
	"testing"

	"github.com/edubureau/studentaid/pkg/config"
)

func TestExportingFollowsTheOpenTelemetrySettings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  config.Telemetry
		want bool
	}{
		{name: "no endpoint", cfg: config.Telemetry{}, want: false},
		{name: "endpoint", cfg: config.Telemetry{OTLPEndpoint: "http://127.0.0.1:4317"}, want: true},
		{name: "traces endpoint", cfg: config.Telemetry{OTLPTracesEndpoint: "http://127.0.0.1:4317"}, want: true},
		{name: "exporter none", cfg: config.Telemetry{OTLPEndpoint: "http://127.0.0.1:4317", TracesExporter: "NONE"}, want: false},
		{name: "sdk disabled", cfg: config.Telemetry{OTLPEndpoint: "http://127.0.0.1:4317", SDKDisabled: true}, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := exporting(tt.cfg); got != tt.want {
				t.Errorf("exporting(%+v) = %v, want %v", tt.cfg, got, tt.want)
			}
		})
	}
}
