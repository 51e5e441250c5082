// Package config reads the process configuration from environment variables.
// It is the only package that calls os.Getenv; every setting has a working
// default so that a bare `go run` talks to the local development stack.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Defaults shared by every process.
const (
	DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	DefaultNATSURL     = "nats://127.0.0.1:4222"
	// DevDataKey is the development data key (AES-256 and HMAC). Production
	// sets AID_DATA_KEY.
	DevDataKey = "ZGV2ZWxvcG1lbnQta2V5LW5vdC1mb3ItcHJvZHVjdCE="
	// DevAuthIssuer is the issuer of the development stack's and the tests'
	// tokens. Production sets AID_AUTH_ISSUER to its identity provider's.
	DevAuthIssuer = "studentaid-dev"
	// DefaultMaxTokenLifetime bounds how long a token may be valid.
	DefaultMaxTokenLifetime = 12 * time.Hour
)

// Service is the configuration of one of the five services.
type Service struct {
	// Name is the service name, e.g. "application"; it names the schema,
	// the durable consumer and service.name in traces.
	Name        string
	GRPCAddr    string
	HTTPAddr    string
	DatabaseURL string
	NATSURL     string
	// DataKey is the base64 key that seals card numbers and keys the
	// hashes used for duplicate checks.
	DataKey string
	// AuthPublicKeys is a comma-separated list of PEM files with the Ed25519
	// public keys tokens may be signed with.
	AuthPublicKeys string
	// AuthAudience is the audience tokens must carry.
	AuthAudience string
	// AuthIssuer is the issuer tokens must carry (AID_AUTH_ISSUER).
	AuthIssuer string
	// MaxTokenLifetime is the longest validity, expiry minus issue time, a
	// token may have (AID_AUTH_MAX_TOKEN_LIFETIME).
	MaxTokenLifetime time.Duration
	// DBMaxConns caps the service's PostgreSQL pool.
	DBMaxConns int32
	// ShutdownTimeout bounds a graceful stop.
	ShutdownTimeout time.Duration
	// TraceDB turns query spans on.
	TraceDB bool
	// LogLevel is debug, info, warn or error.
	LogLevel string
	// DebugAddr, when set, serves Go's profiles (net/http/pprof) on a
	// listener of its own, kept off the public HTTP port.
	DebugAddr string
	// Telemetry says whether traces are exported.
	Telemetry Telemetry
	// Production is AID_ENV=production: every development default that would
	// be unsafe with real data makes the service refuse to start (see
	// [Service.Unsafe]).
	Production bool
}

// Environments AID_ENV may name.
const (
	EnvDevelopment = "development"
	EnvProduction  = "production"
)

// Unsafe lists the settings that are development defaults no real
// deployment may run on, each with what to set instead. LoadService refuses
// to start in production while the list is not empty; in development the
// host logs each as a warning.
func (c Service) Unsafe() []string {
	var out []string
	if c.DataKey == DevDataKey {
		out = append(out, "AID_DATA_KEY is the development key from the repository: set a key of your own (32 bytes, base64)")
	}
	if c.AuthIssuer == DevAuthIssuer {
		out = append(out, "AID_AUTH_ISSUER is the development issuer: set your identity provider's issuer")
	}
	if user := DatabaseUser(c.DatabaseURL); user == "" || user == "postgres" {
		out = append(out, "DATABASE_URL logs in as the superuser postgres: log in as the service's own role ("+DefaultDBRole(c.Name)+", see docs/operations.md)")
	}
	return out
}

// DatabaseUser is the user a PostgreSQL URL logs in as ("" when it names
// none or does not parse).
func DatabaseUser(databaseURL string) string {
	u, err := url.Parse(databaseURL)
	if err != nil || u.User == nil {
		return ""
	}
	return u.User.Username()
}

// DefaultDBRole is the PostgreSQL login role a service runs under unless
// <SERVICE>_DB_ROLE names another: aid_ and its schema, e.g. aid_school_review.
func DefaultDBRole(service string) string {
	return "aid_" + strings.ReplaceAll(service, "-", "_")
}

// DefaultDBOwnerRole is the role that owns every service's schema and runs
// the migrations (AID_MIGRATE_DATABASE_URL logs in as it).
const DefaultDBOwnerRole = "aid_owner"

// Migrate is the configuration of `<service> migrate`: the step that applies
// a service's migrations as the schema's owner and grants the service's own
// role what it may do, before the service runs (docs/operations.md).
type Migrate struct {
	// Name is the service whose schema is migrated.
	Name string
	// DatabaseURL logs in as the schema's owner (AID_MIGRATE_DATABASE_URL).
	// The running service never gets it.
	DatabaseURL string
	// Role is the service's login role the grants go to (<SERVICE>_DB_ROLE,
	// default [DefaultDBRole]).
	Role string
}

// LoadMigrate reads the configuration of the named service's migrate step.
// In production (AID_ENV=production) AID_MIGRATE_DATABASE_URL must be set.
func LoadMigrate(name string) (Migrate, error) {
	prefix := strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "_"
	m := Migrate{
		Name:        name,
		DatabaseURL: Env("AID_MIGRATE_DATABASE_URL", ""),
		Role:        Env(prefix+"DB_ROLE", DefaultDBRole(name)),
	}
	prod, err := production()
	if err != nil {
		return m, err
	}
	if m.DatabaseURL == "" {
		if prod {
			return m, errors.New("AID_MIGRATE_DATABASE_URL is not set: point it at the schema owner's login (docs/operations.md)")
		}
		m.DatabaseURL = DefaultDatabaseURL
	}
	return m, nil
}

// Telemetry is what the standard OpenTelemetry variables say about exporting
// traces. The OTLP exporter reads the endpoint's details (OTEL_EXPORTER_OTLP_*)
// and the SDK the sampler and resource (OTEL_TRACES_SAMPLER,
// OTEL_RESOURCE_ATTRIBUTES…) from the same variables themselves.
type Telemetry struct {
	// TracesExporter is OTEL_TRACES_EXPORTER; "none" turns the export off.
	TracesExporter string
	// SDKDisabled is OTEL_SDK_DISABLED=true: no export.
	SDKDisabled bool
	// OTLPEndpoint is OTEL_EXPORTER_OTLP_ENDPOINT and OTLPTracesEndpoint
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT; traces are exported when either is set.
	OTLPEndpoint       string
	OTLPTracesEndpoint string
}

// LoadTelemetry reads the OpenTelemetry settings.
func LoadTelemetry() Telemetry {
	return Telemetry{
		TracesExporter:     Env("OTEL_TRACES_EXPORTER", ""),
		SDKDisabled:        strings.EqualFold(Env("OTEL_SDK_DISABLED", ""), "true"),
		OTLPEndpoint:       Env("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
		OTLPTracesEndpoint: Env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", ""),
	}
}

// Env returns the value of key or def when it is unset or empty.
func Env(key, def string) string {
	if v := strings.TrimSpace(os.Getenv(key)); v != "" {
		return v
	}
	return def
}

// Duration reads a Go duration from key.
func Duration(key string, def time.Duration) (time.Duration, error) {
	v := Env(key, "")
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", key, err)
	}
	return d, nil
}

// Int reads an integer from key.
func Int(key string, def int) (int, error) {
	v := Env(key, "")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", key, err)
	}
	return n, nil
}

// Int32 reads an integer that must fit in 32 bits from key.
func Int32(key string, def int32) (int32, error) {
	v := Env(key, "")
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", key, err)
	}
	return int32(n), nil
}

// Float reads a float from key.
func Float(key string, def float64) (float64, error) {
	v := Env(key, "")
	if v == "" {
		return def, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", key, err)
	}
	return f, nil
}

// Bool reads a boolean from key.
func Bool(key string, def bool) (bool, error) {
	v := Env(key, "")
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s: %w", key, err)
	}
	return b, nil
}

// LoadService reads the configuration of the named service. Variables are
// prefixed with the service's upper-cased name where they differ per
// service (APPLICATION_GRPC_ADDR) and shared otherwise (DATABASE_URL).
func LoadService(name string, defaultGRPC, defaultHTTP string) (Service, error) {
	prefix := strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "_"
	c := Service{
		Name:           name,
		GRPCAddr:       Env(prefix+"GRPC_ADDR", defaultGRPC),
		HTTPAddr:       Env(prefix+"HTTP_ADDR", defaultHTTP),
		DatabaseURL:    Env("DATABASE_URL", DefaultDatabaseURL),
		NATSURL:        Env("NATS_URL", DefaultNATSURL),
		DataKey:        Env("AID_DATA_KEY", DevDataKey),
		AuthPublicKeys: Env("AID_AUTH_PUBLIC_KEYS", ""),
		AuthAudience:   Env("AID_AUTH_AUDIENCE", "studentaid"),
		AuthIssuer:     Env("AID_AUTH_ISSUER", DevAuthIssuer),
		LogLevel:       Env("LOG_LEVEL", "info"),
		DebugAddr:      Env(prefix+"DEBUG_ADDR", ""),
		Telemetry:      LoadTelemetry(),
	}
	var err error
	if c.DBMaxConns, err = Int32(prefix+"DB_MAX_CONNS", 16); err != nil {
		return c, err
	}
	if c.ShutdownTimeout, err = Duration("SHUTDOWN_TIMEOUT", 15*time.Second); err != nil {
		return c, err
	}
	if c.MaxTokenLifetime, err = Duration("AID_AUTH_MAX_TOKEN_LIFETIME", DefaultMaxTokenLifetime); err != nil {
		return c, err
	}
	if c.MaxTokenLifetime <= 0 {
		return c, fmt.Errorf("AID_AUTH_MAX_TOKEN_LIFETIME %v must be positive", c.MaxTokenLifetime)
	}
	if c.TraceDB, err = Bool("AID_TRACE_DB", true); err != nil {
		return c, err
	}
	if c.AuthPublicKeys == "" {
		return c, errors.New("AID_AUTH_PUBLIC_KEYS is not set: run `make run`, or point it at the PEM public key(s) tokens are signed with")
	}
	if c.Production, err = production(); err != nil {
		return c, err
	}
	if unsafe := c.Unsafe(); c.Production && len(unsafe) > 0 {
		return c, fmt.Errorf("AID_ENV=production refuses development defaults: %s", strings.Join(unsafe, "; "))
	}
	return c, nil
}

// production reads AID_ENV: "development" (the default) or "production".
func production() (bool, error) {
	switch v := Env("AID_ENV", EnvDevelopment); v {
	case EnvDevelopment:
		return false, nil
	case EnvProduction:
		return true, nil
	default:
		return false, fmt.Errorf("AID_ENV %q: want %q or %q", v, EnvDevelopment, EnvProduction)
	}
}
