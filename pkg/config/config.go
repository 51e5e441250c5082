// Package config reads the process configuration from environment variables.
// It is the only package that calls os.Getenv; every setting has a working
// default so that a bare `go run` talks to the local development stack.
package config

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
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
	// DevDataKey is the single data key of earlier versions, kept so that
	// production refuses it as any other development key.
	DevDataKey = "ZGV2ZWxvcG1lbnQta2V5LW5vdC1mb3ItcHJvZHVjdCE="
	// DevSealKeys is the development sealing key set (AID_SEAL_KEYS):
	// "dev-seal-key-not-for-production!".
	DevSealKeys = "dev-seal-1:ZGV2LXNlYWwta2V5LW5vdC1mb3ItcHJvZHVjdGlvbiE="
	// DevHashKeys is the development hashing key set (AID_HASH_KEYS):
	// "dev-hash-key-not-for-production!".
	DevHashKeys = "dev-hash-1:ZGV2LWhhc2gta2V5LW5vdC1mb3ItcHJvZHVjdGlvbiE="
	// DevFinanceSigningKeys is the development key finance signs batch
	// manifests with (AID_FINANCE_SIGNING_KEYS): the Ed25519 seed
	// "dev-finance-signing-key-not-prod".
	DevFinanceSigningKeys = "dev-finance-1:ZGV2LWZpbmFuY2Utc2lnbmluZy1rZXktbm90LXByb2Q="
	// DevFinanceVerifyKeys is its public key, payout's development
	// verifying key set (AID_FINANCE_VERIFY_KEYS).
	DevFinanceVerifyKeys = "dev-finance-1:JPnJdGIJCrSP3tRKN7g8zKLPno3SyE2QS6/Doclmg0E="
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
	// NATSSeed is the NKey user seed the service logs in to NATS with
	// (AID_NATS_NKEY_SEED or the file AID_NATS_NKEY_SEED_FILE): one identity
	// per service, whose NATS permissions allow its own subjects only.
	NATSSeed string
	// NATSCAFile, when set, holds the CA certificates a tls:// NATS server
	// is verified against (AID_NATS_CA_FILE).
	NATSCAFile string
	// SealKeys is the sealing key set, "<id>:<base64>[,<id>:<base64>...]",
	// current first (AID_SEAL_KEYS or the file AID_SEAL_KEYS_FILE). Empty
	// for a service that opens no personal data; see [Service.WithKeys].
	SealKeys string
	// HashKeys is the ID-hashing key set in the same form (AID_HASH_KEYS or
	// AID_HASH_KEYS_FILE). Empty for a service that hashes nothing.
	HashKeys string
	// FinanceSigningKeys is finance's Ed25519 manifest signing key set,
	// "<id>:<base64 seed>[,...]", current first (AID_FINANCE_SIGNING_KEYS or
	// AID_FINANCE_SIGNING_KEYS_FILE). Only finance-confirmation holds it.
	FinanceSigningKeys string
	// FinanceVerifyKeys is the matching public key set,
	// "<id>:<base64 public key>[,...]" (AID_FINANCE_VERIFY_KEYS or
	// AID_FINANCE_VERIFY_KEYS_FILE). Payout verifies orders with it.
	FinanceVerifyKeys string
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
	for _, k := range []struct{ name, keys string }{
		{"AID_SEAL_KEYS", c.SealKeys}, {"AID_HASH_KEYS", c.HashKeys},
		{"AID_FINANCE_SIGNING_KEYS", c.FinanceSigningKeys}, {"AID_FINANCE_VERIFY_KEYS", c.FinanceVerifyKeys},
	} {
		if id := devKeyIn(k.keys); id != "" {
			out = append(out, fmt.Sprintf("%s key %q is a development key from the repository: set keys of your own (32 random bytes each, base64)", k.name, id))
		}
	}
	if c.AuthIssuer == DevAuthIssuer {
		out = append(out, "AID_AUTH_ISSUER is the development issuer: set your identity provider's issuer")
	}
	if c.NATSSeed == "" {
		out = append(out, "AID_NATS_NKEY_SEED (or AID_NATS_NKEY_SEED_FILE) is not set: the service would log in to NATS without credentials; give it its own NKey seed (docs/operations.md, NATS)")
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
	// Environment is AID_ENV (development unless set), the traces'
	// deployment.environment.name.
	Environment string
}

// LoadTelemetry reads the OpenTelemetry settings.
func LoadTelemetry() Telemetry {
	return Telemetry{
		TracesExporter:     Env("OTEL_TRACES_EXPORTER", ""),
		SDKDisabled:        strings.EqualFold(Env("OTEL_SDK_DISABLED", ""), "true"),
		OTLPEndpoint:       Env("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
		OTLPTracesEndpoint: Env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", ""),
		Environment:        Env("AID_ENV", EnvDevelopment),
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
		AuthPublicKeys: Env("AID_AUTH_PUBLIC_KEYS", ""),
		AuthAudience:   Env("AID_AUTH_AUDIENCE", "studentaid"),
		AuthIssuer:     Env("AID_AUTH_ISSUER", DevAuthIssuer),
		LogLevel:       Env("LOG_LEVEL", "info"),
		DebugAddr:      Env(prefix+"DEBUG_ADDR", ""),
		Telemetry:      LoadTelemetry(),
	}
	var err error
	if c.NATSSeed, c.NATSCAFile, err = NATSCredentials(); err != nil {
		return c, err
	}
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
	if Env("AID_DATA_KEY", "") != "" {
		return c, errors.New("AID_DATA_KEY is no longer read: set AID_SEAL_KEYS and AID_HASH_KEYS on the services that use them (docs/operations.md, Keys)")
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

// KeyNeeds says which keys a service uses: the sealing keys to open or seal
// personal data, the hashing keys to fingerprint ID numbers.
type KeyNeeds struct {
	Seal bool
	Hash bool
	// Sign: finance's manifest signing keys; Verify: their public keys.
	Sign   bool
	Verify bool
}

// WithKeys returns c with the key sets the service needs: AID_SEAL_KEYS and
// AID_HASH_KEYS, or the files AID_SEAL_KEYS_FILE and AID_HASH_KEYS_FILE
// (for secrets mounted as files). Outside production a missing set is the
// development one. In production a needed set must be given and hold no
// development key, and a set the service does not need must not be given:
// only the services that use a key hold it. Keys a service does not need
// are left empty.
func (c Service) WithKeys(need KeyNeeds) (Service, error) {
	for _, k := range []struct {
		name string
		need bool
		dev  string
		dst  *string
	}{
		{"AID_SEAL_KEYS", need.Seal, DevSealKeys, &c.SealKeys},
		{"AID_HASH_KEYS", need.Hash, DevHashKeys, &c.HashKeys},
		{"AID_FINANCE_SIGNING_KEYS", need.Sign, DevFinanceSigningKeys, &c.FinanceSigningKeys},
		{"AID_FINANCE_VERIFY_KEYS", need.Verify, DevFinanceVerifyKeys, &c.FinanceVerifyKeys},
	} {
		v, err := envOrFile(k.name)
		if err != nil {
			return c, err
		}
		switch {
		case !k.need && v != "" && c.Production:
			return c, fmt.Errorf("AID_ENV=production: %s does not use %s; remove it from its environment (only the services that use a key hold it)", c.Name, k.name)
		case !k.need:
			*k.dst = ""
		case v == "" && c.Production:
			return c, fmt.Errorf("AID_ENV=production: %s needs %s (or %s_FILE): \"<id>:<base64 of 32 random bytes>\", current first", c.Name, k.name, k.name)
		case v == "":
			*k.dst = k.dev
		default:
			*k.dst = v
		}
	}
	if unsafe := c.Unsafe(); c.Production && len(unsafe) > 0 {
		return c, fmt.Errorf("AID_ENV=production refuses development defaults: %s", strings.Join(unsafe, "; "))
	}
	return c, nil
}

// NATSCredentials reads the NKey user seed (AID_NATS_NKEY_SEED or the file
// AID_NATS_NKEY_SEED_FILE) and the CA file of a tls:// server
// (AID_NATS_CA_FILE). A seed must be an NKey user seed ("SU...").
func NATSCredentials() (seed, caFile string, err error) {
	if seed, err = envOrFile("AID_NATS_NKEY_SEED"); err != nil {
		return "", "", err
	}
	if seed != "" && !strings.HasPrefix(seed, "SU") {
		return "", "", errors.New("AID_NATS_NKEY_SEED is not an NKey user seed (it starts with SU; `nk -gen user` makes one)")
	}
	return seed, Env("AID_NATS_CA_FILE", ""), nil
}

// envOrFile returns the variable name, or the trimmed contents of the file
// name_FILE names; setting both is an error.
func envOrFile(name string) (string, error) {
	v, file := Env(name, ""), Env(name+"_FILE", "")
	if file == "" {
		return v, nil
	}
	if v != "" {
		return "", fmt.Errorf("set %s or %s_FILE, not both", name, name)
	}
	b, err := os.ReadFile(file) //nolint:gosec // G304: the operator names the secret file
	if err != nil {
		return "", fmt.Errorf("%s_FILE: %w", name, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// devSecrets are the base64 secrets of every development key in the
// repository.
var devSecrets = []string{
	DevDataKey, secretOf(DevSealKeys), secretOf(DevHashKeys),
	secretOf(DevFinanceSigningKeys), secretOf(DevFinanceVerifyKeys),
}

func secretOf(entry string) string {
	_, secret, _ := strings.Cut(entry, ":")
	return secret
}

// devKeyIn returns the ID of the first key of the set that is a
// development key, decoded, so that a hex spelling of it is found too; or
// "". A set that does not parse is reported by the service, not here.
func devKeyIn(set string) string {
	for entry := range strings.SplitSeq(set, ",") {
		id, secret, _ := strings.Cut(strings.TrimSpace(entry), ":")
		got, err := decodeSecret(secret)
		if err != nil {
			continue
		}
		for _, dev := range devSecrets {
			if want, _ := decodeSecret(dev); bytes.Equal(got, want) {
				return id
			}
		}
	}
	return ""
}

// decodeSecret reads a key as pii.ParseKey does (64 hex characters or
// standard base64); config does not import pii to keep it a leaf.
func decodeSecret(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) == 64 {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return base64.StdEncoding.DecodeString(s)
}

// DevTrailSigningKeys is the development trail checkpoint signing key set
// (AID_TRAIL_SIGNING_KEYS): the Ed25519 seed "dev-trail-key-not-for-production".
const DevTrailSigningKeys = "dev-trail-1:ZGV2LXRyYWlsLWtleS1ub3QtZm9yLXByb2R1Y3Rpb24="

// TrailKeys are the application service's checkpoint keys.
type TrailKeys struct {
	// Signing is "<id>:<base64 Ed25519 seed>[,...]", current first
	// (AID_TRAIL_SIGNING_KEYS or AID_TRAIL_SIGNING_KEYS_FILE).
	Signing string
	// Verify is "<id>:<base64 Ed25519 public key>[,...]"
	// (AID_TRAIL_VERIFY_KEYS); empty means the public halves of Signing.
	Verify string
}

// LoadTrailKeys reads the checkpoint keys. Outside production a missing
// signing set is the development one; in production it must be given and
// must not be the development key.
func LoadTrailKeys(production bool) (TrailKeys, error) {
	signing, err := envOrFile("AID_TRAIL_SIGNING_KEYS")
	if err != nil {
		return TrailKeys{}, err
	}
	switch {
	case signing == "" && production:
		return TrailKeys{}, errors.New("AID_ENV=production: the application service needs AID_TRAIL_SIGNING_KEYS (or AID_TRAIL_SIGNING_KEYS_FILE): \"<id>:<base64 of a 32-byte Ed25519 seed>\", current first")
	case signing == "":
		signing = DevTrailSigningKeys
	}
	if production {
		dev, _ := decodeSecret(secretOf(DevTrailSigningKeys))
		for entry := range strings.SplitSeq(signing, ",") {
			id, secret, _ := strings.Cut(strings.TrimSpace(entry), ":")
			if got, err := decodeSecret(secret); err == nil && bytes.Equal(got, dev) {
				return TrailKeys{}, fmt.Errorf("AID_ENV=production refuses development defaults: AID_TRAIL_SIGNING_KEYS key %q is a development key from the repository: set a key of your own (32 random bytes, base64)", id)
			}
		}
	}
	return TrailKeys{Signing: signing, Verify: Env("AID_TRAIL_VERIFY_KEYS", "")}, nil
}
