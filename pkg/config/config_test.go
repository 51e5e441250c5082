package config_test

import (
	"testing"

	"github.com/edubureau/studentaid/pkg/config"
)

func TestLoadTelemetryReadsTheOpenTelemetryVariables(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
	t.Setenv("OTEL_SDK_DISABLED", "TRUE")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	want := config.Telemetry{TracesExporter: "otlp", SDKDisabled: true, OTLPEndpoint: "http://127.0.0.1:4317"}
	if got := config.LoadTelemetry(); got != want {
		t.Fatalf("LoadTelemetry() = %+v, want %+v", got, want)
	}
}
