package config_test

import (
	"strings"
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
	t.Setenv("DATABASE_URL", "")
	t.Setenv("AID_ENV", "development")
	c, err := config.LoadService("application", ":0", ":0")
	if err != nil {
		t.Fatalf("development: %v", err)
	}
	if c.Production || len(c.Unsafe()) != 3 {
		t.Fatalf("development: production %v, unsafe %q; want false and 3 entries (key, issuer, superuser login)", c.Production, c.Unsafe())
	}

	t.Setenv("AID_ENV", "production")
	if _, err := config.LoadService("application", ":0", ":0"); err == nil {
		t.Fatal("production with the development key and issuer started; want a refusal")
	}
	t.Setenv("AID_DATA_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	t.Setenv("AID_AUTH_ISSUER", "https://idp.example.gov.cn")
	if _, err := config.LoadService("application", ":0", ":0"); err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Fatalf("production logging in as postgres: err %v; want a refusal naming DATABASE_URL", err)
	}
	t.Setenv("DATABASE_URL", "postgres://aid_application:secret@db.example.internal:5432/aid?sslmode=verify-full")
	c, err = config.LoadService("application", ":0", ":0")
	if err != nil || !c.Production {
		t.Fatalf("production with real settings: production %v, err %v; want true, nil", c.Production, err)
	}

	t.Setenv("AID_ENV", "prod")
	if _, err := config.LoadService("application", ":0", ":0"); err == nil {
		t.Fatal(`AID_ENV "prod" was accepted; want only development or production`)
	}
}

func TestMigrateNeedsTheOwnerURLInProduction(t *testing.T) {
	t.Setenv("AID_MIGRATE_DATABASE_URL", "")
	t.Setenv("SCHOOL_REVIEW_DB_ROLE", "")
	t.Setenv("AID_ENV", "development")
	m, err := config.LoadMigrate("school-review")
	if err != nil || m.DatabaseURL != config.DefaultDatabaseURL || m.Role != "aid_school_review" {
		t.Fatalf("development: %+v, %v; want the default URL and role aid_school_review", m, err)
	}
	t.Setenv("AID_ENV", "production")
	if _, err := config.LoadMigrate("school-review"); err == nil {
		t.Fatal("production without AID_MIGRATE_DATABASE_URL was accepted")
	}
	t.Setenv("AID_MIGRATE_DATABASE_URL", "postgres://aid_owner:x@db/aid")
	t.Setenv("SCHOOL_REVIEW_DB_ROLE", "sr_app")
	if m, err := config.LoadMigrate("school-review"); err != nil || m.Role != "sr_app" || m.DatabaseURL != "postgres://aid_owner:x@db/aid" {
		t.Fatalf("production: %+v, %v", m, err)
	}
}
