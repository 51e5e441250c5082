package config_test

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edubureau/studentaid/pkg/config"
)

func TestLoadTelemetryReadsTheOpenTelemetryVariables(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
	t.Setenv("OTEL_SDK_DISABLED", "TRUE")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	want := config.Telemetry{TracesExporter: "otlp", SDKDisabled: true, OTLPEndpoint: "http://127.0.0.1:4317", Environment: "development"}
	if got := config.LoadTelemetry(); got != want {
		t.Fatalf("LoadTelemetry() = %+v, want %+v", got, want)
	}
}

func TestProductionRefusesDevelopmentDefaults(t *testing.T) {
	t.Setenv("AID_AUTH_PUBLIC_KEYS", "/nonexistent/key.pem")
	t.Setenv("AID_DATA_KEY", "")
	t.Setenv("AID_SEAL_KEYS", "")
	t.Setenv("AID_HASH_KEYS", "")
	t.Setenv("AID_AUTH_ISSUER", "")
	t.Setenv("DATABASE_URL", "")
	t.Setenv("AID_NATS_NKEY_SEED", "")
	t.Setenv("AID_NATS_NKEY_SEED_FILE", "")
	t.Setenv("AID_ENV", "development")
	c, err := config.LoadService("application", ":0", ":0")
	if err != nil {
		t.Fatalf("development: %v", err)
	}
	if c, err = c.WithKeys(config.KeyNeeds{Seal: true, Hash: true}); err != nil {
		t.Fatalf("development keys: %v", err)
	}
	if c.Production || len(c.Unsafe()) != 5 || c.SealKeys != config.DevSealKeys || c.HashKeys != config.DevHashKeys {
		t.Fatalf("development: production %v, unsafe %q, keys %q %q; want false, 5 entries (seal key, hash key, issuer, no NATS credentials, superuser login) and the development keys", c.Production, c.Unsafe(), c.SealKeys, c.HashKeys)
	}

	t.Setenv("AID_ENV", "production")
	if _, err := config.LoadService("application", ":0", ":0"); err == nil {
		t.Fatal("production with the development issuer started; want a refusal")
	}
	t.Setenv("AID_AUTH_ISSUER", "https://idp.example.gov.cn")
	if _, err := config.LoadService("application", ":0", ":0"); err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Fatalf("production logging in as postgres: err %v; want a refusal naming DATABASE_URL", err)
	}
	t.Setenv("DATABASE_URL", "postgres://aid_application:secret@db.example.internal:5432/aid?sslmode=verify-full")
	if _, err := config.LoadService("application", ":0", ":0"); err == nil || !strings.Contains(err.Error(), "AID_NATS_NKEY_SEED") {
		t.Fatalf("production without NATS credentials: err %v; want a refusal naming AID_NATS_NKEY_SEED", err)
	}
	t.Setenv("AID_NATS_NKEY_SEED", "not-a-seed")
	if _, err := config.LoadService("application", ":0", ":0"); err == nil || !strings.Contains(err.Error(), "NKey user seed") {
		t.Fatalf("a malformed NATS seed: err %v; want a refusal saying it is not an NKey user seed", err)
	}
	t.Setenv("AID_NATS_NKEY_SEED", "")
	seedFile := filepath.Join(t.TempDir(), "application.nk")
	if err := os.WriteFile(seedFile, []byte(natsSeed+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AID_NATS_NKEY_SEED_FILE", seedFile)
	c, err = config.LoadService("application", ":0", ":0")
	if err == nil && c.NATSSeed != natsSeed {
		t.Fatalf("NATS seed from AID_NATS_NKEY_SEED_FILE = %q, want the file's", c.NATSSeed)
	}
	if err != nil || !c.Production {
		t.Fatalf("production with real settings: production %v, err %v; want true, nil", c.Production, err)
	}
	if c, err = c.WithKeys(config.KeyNeeds{Seal: true, Hash: true}); err == nil {
		t.Fatal("production without AID_SEAL_KEYS and AID_HASH_KEYS started; want a refusal")
	}
	t.Setenv("AID_SEAL_KEYS", "s2:"+realKey)
	t.Setenv("AID_HASH_KEYS", "h2:"+realKey2)
	if c, err = c.WithKeys(config.KeyNeeds{Seal: true, Hash: true}); err != nil {
		t.Fatalf("production with keys of its own: %v", err)
	}
	if c.SealKeys != "s2:"+realKey || c.HashKeys != "h2:"+realKey2 {
		t.Fatalf("keys %q %q, want the environment's", c.SealKeys, c.HashKeys)
	}
	if _, err = c.WithKeys(config.KeyNeeds{Seal: true}); err == nil {
		t.Fatal("production gave AID_HASH_KEYS to a service that does not hash; want a refusal")
	}

	t.Setenv("AID_DATA_KEY", config.DevDataKey)
	if _, err := config.LoadService("application", ":0", ":0"); err == nil {
		t.Fatal("AID_DATA_KEY was accepted; want a refusal naming its replacements")
	}
	t.Setenv("AID_DATA_KEY", "")

	t.Setenv("AID_ENV", "prod")
	if _, err := config.LoadService("application", ":0", ":0"); err == nil {
		t.Fatal(`AID_ENV "prod" was accepted; want only development or production`)
	}
}

const (
	realKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	// natsSeed is an NKey user seed made for this test only.
	natsSeed = "SUADUEFVJPJEFLXJZCSC4FSHJLYRMMOEM2FTADJWGLKLKR3UZYL35FBQNM"
	realKey2 = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="
)

func TestProductionRefusesEveryDevelopmentKey(t *testing.T) {
	t.Setenv("AID_AUTH_PUBLIC_KEYS", "/nonexistent/key.pem")
	t.Setenv("AID_AUTH_ISSUER", "https://idp.example.gov.cn")
	t.Setenv("AID_NATS_NKEY_SEED", natsSeed)
	t.Setenv("AID_DATA_KEY", "")
	t.Setenv("DATABASE_URL", "postgres://aid_application:secret@db.example.internal:5432/aid?sslmode=verify-full")
	t.Setenv("AID_ENV", "production")
	devSeal := strings.TrimPrefix(config.DevSealKeys, "dev-seal-1:")
	devSealHex := hex.EncodeToString([]byte("dev-seal-key-not-for-production!"))
	tests := []struct {
		name, seal, hash string
	}{
		{"development seal key", config.DevSealKeys, "h:" + realKey2},
		{"development hash key", "s:" + realKey, config.DevHashKeys},
		{"development seal key under another ID", "s:" + realKey + ",old:" + devSeal, "h:" + realKey2},
		{"development seal key in hex", "s:" + devSealHex, "h:" + realKey2},
		{"the old development data key", "s:" + config.DevDataKey, "h:" + realKey2},
		{"development hash key as the seal key", "s:" + strings.TrimPrefix(config.DevHashKeys, "dev-hash-1:"), "h:" + realKey2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("AID_SEAL_KEYS", tt.seal)
			t.Setenv("AID_HASH_KEYS", tt.hash)
			c, err := config.LoadService("application", ":0", ":0")
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.WithKeys(config.KeyNeeds{Seal: true, Hash: true})
			if err == nil || !strings.Contains(err.Error(), "development key") {
				t.Fatalf("WithKeys() error = %v, want a refusal of the development key", err)
			}
			if strings.Contains(err.Error(), realKey) || strings.Contains(err.Error(), devSeal) {
				t.Errorf("error %q contains a key", err)
			}
		})
	}
}

func TestWithKeysReadsFilesAndLeavesUnneededKeysOut(t *testing.T) {
	t.Setenv("AID_AUTH_PUBLIC_KEYS", "/nonexistent/key.pem")
	t.Setenv("AID_ENV", "development")
	t.Setenv("AID_DATA_KEY", "")
	t.Setenv("AID_HASH_KEYS", "")
	file := filepath.Join(t.TempDir(), "seal")
	if err := os.WriteFile(file, []byte("s:"+realKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AID_SEAL_KEYS", "")
	t.Setenv("AID_SEAL_KEYS_FILE", file)
	c, err := config.LoadService("payout", ":0", ":0")
	if err != nil {
		t.Fatal(err)
	}
	if c, err = c.WithKeys(config.KeyNeeds{Seal: true}); err != nil {
		t.Fatal(err)
	}
	if c.SealKeys != "s:"+realKey || c.HashKeys != "" {
		t.Fatalf("keys %q %q; want the file's seal keys and no hash keys", c.SealKeys, c.HashKeys)
	}
	if c, err = c.WithKeys(config.KeyNeeds{}); err != nil || c.SealKeys != "" {
		t.Fatalf("a service that needs no key got %q (err %v)", c.SealKeys, err)
	}
	t.Setenv("AID_SEAL_KEYS", "s:"+realKey)
	if _, err = c.WithKeys(config.KeyNeeds{Seal: true}); err == nil {
		t.Fatal("AID_SEAL_KEYS and AID_SEAL_KEYS_FILE both set were accepted")
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

func TestLoadTrailKeys(t *testing.T) {
	t.Setenv("AID_TRAIL_SIGNING_KEYS", "")
	t.Setenv("AID_TRAIL_VERIFY_KEYS", "")
	if k, err := config.LoadTrailKeys(false); err != nil || k.Signing != config.DevTrailSigningKeys {
		t.Fatalf("development default: %+v %v", k, err)
	}
	if _, err := config.LoadTrailKeys(true); err == nil || !strings.Contains(err.Error(), "needs AID_TRAIL_SIGNING_KEYS") {
		t.Fatalf("production without a key: %v", err)
	}
	t.Setenv("AID_TRAIL_SIGNING_KEYS", "mine:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=,"+config.DevTrailSigningKeys)
	if _, err := config.LoadTrailKeys(true); err == nil || !strings.Contains(err.Error(), `"dev-trail-1" is a development key`) {
		t.Fatalf("production with the development key among its keys: %v", err)
	}
	t.Setenv("AID_TRAIL_SIGNING_KEYS", "mine:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	t.Setenv("AID_TRAIL_VERIFY_KEYS", "mine:cHVi")
	if k, err := config.LoadTrailKeys(true); err != nil || k.Verify != "mine:cHVi" {
		t.Fatalf("production with its own key: %+v %v", k, err)
	}
}

func TestFinanceKeysOnlyWhereNeededAndNeverTheDevelopmentOnesInProduction(t *testing.T) {
	t.Setenv("AID_AUTH_PUBLIC_KEYS", "/nonexistent/key.pem")
	t.Setenv("AID_DATA_KEY", "")
	t.Setenv("AID_FINANCE_SIGNING_KEYS", "")
	t.Setenv("AID_FINANCE_VERIFY_KEYS", "")
	t.Setenv("AID_ENV", "development")
	c, err := config.LoadService("finance-confirmation", ":0", ":0")
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.WithKeys(config.KeyNeeds{Sign: true})
	if err != nil || got.FinanceSigningKeys != config.DevFinanceSigningKeys || got.FinanceVerifyKeys != "" {
		t.Fatalf("development signer: keys %q %q (err %v); want the development signing key only", got.FinanceSigningKeys, got.FinanceVerifyKeys, err)
	}
	got, err = c.WithKeys(config.KeyNeeds{Verify: true})
	if err != nil || got.FinanceVerifyKeys != config.DevFinanceVerifyKeys || got.FinanceSigningKeys != "" {
		t.Fatalf("development verifier: keys %q %q (err %v); want the development verifying key only", got.FinanceSigningKeys, got.FinanceVerifyKeys, err)
	}

	t.Setenv("AID_AUTH_ISSUER", "https://idp.example.gov.cn")
	t.Setenv("DATABASE_URL", "postgres://aid_payout:secret@db.example.internal:5432/aid?sslmode=verify-full")
	t.Setenv("AID_NATS_NKEY_SEED", natsSeed)
	t.Setenv("AID_ENV", "production")
	if c, err = config.LoadService("payout", ":0", ":0"); err != nil {
		t.Fatal(err)
	}
	const realPub = "f1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	tests := []struct {
		name, sign, verify string
		need               config.KeyNeeds
		refusal            string
	}{
		{"no verifying key", "", "", config.KeyNeeds{Verify: true}, "needs AID_FINANCE_VERIFY_KEYS"},
		{"development verifying key", "", config.DevFinanceVerifyKeys, config.KeyNeeds{Verify: true}, "development key"},
		{"development signing key", config.DevFinanceSigningKeys, "", config.KeyNeeds{Sign: true}, "development key"},
		{"signing key on the verifier", "f1:" + realKey, realPub, config.KeyNeeds{Verify: true}, "does not use AID_FINANCE_SIGNING_KEYS"},
		{"own verifying key", "", realPub, config.KeyNeeds{Verify: true}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("AID_FINANCE_SIGNING_KEYS", tt.sign)
			t.Setenv("AID_FINANCE_VERIFY_KEYS", tt.verify)
			got, err := c.WithKeys(tt.need)
			if tt.refusal == "" {
				if err != nil || got.FinanceVerifyKeys != tt.verify {
					t.Fatalf("WithKeys() = %q, %v; want %q", got.FinanceVerifyKeys, err, tt.verify)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.refusal) {
				t.Fatalf("WithKeys() error = %v, want a refusal containing %q", err, tt.refusal)
			}
			if strings.Contains(err.Error(), realKey) {
				t.Errorf("error %q contains a key", err)
			}
		})
	}
}
