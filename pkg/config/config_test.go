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

func TestProductionRefusesDevelopmentDefaults(t *testing.T) {
	t.Setenv("AID_AUTH_PUBLIC_KEYS", "/nonexistent/key.pem")
	t.Setenv("AID_DATA_KEY", "")
	t.Setenv("AID_AUTH_ISSUER", "")
	t.Setenv("AID_ENV", "development")
	c, err := config.LoadService("application", ":0", ":0")
	if err != nil {
		t.Fatalf("development: %v", err)
	}
	if c.Production || len(c.Unsafe()) != 2 {
		t.Fatalf("development: production %v, unsafe %q; want false and 2 entries", c.Production, c.Unsafe())
	}

	t.Setenv("AID_ENV", "production")
	if _, err := config.LoadService("application", ":0", ":0"); err == nil {
		t.Fatal("production with the development key and issuer started; want a refusal")
	}
	t.Setenv("AID_DATA_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	t.Setenv("AID_AUTH_ISSUER", "https://idp.example.gov.cn")
	c, err = config.LoadService("application", ":0", ":0")
	if err != nil || !c.Production {
		t.Fatalf("production with real settings: production %v, err %v; want true, nil", c.Production, err)
	}

	t.Setenv("AID_ENV", "prod")
	if _, err := config.LoadService("application", ":0", ":0"); err == nil {
		t.Fatal(`AID_ENV "prod" was accepted; want only development or production`)
	}
}
