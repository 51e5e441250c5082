package sim

import (
	"fmt"
	"strconv"
	"time"
)

// Config is everything the banksim process reads from its environment.
type Config struct {
	// Addr is the listen address (BANKSIM_ADDR).
	Addr string
	// DatabaseURL points at the PostgreSQL holding schema Schema (DATABASE_URL).
	DatabaseURL string
	// Schema owns the ledger; always "banksim" for the process, unique per test.
	Schema string
	// DBMaxConns caps the ledger's connection pool (BANKSIM_DB_MAX_CONNS). It
	// bounds how many payments the bank books at once, so it is sized for the
	// pay worker's concurrent calls (PAYOUT_CONCURRENCY, 32).
	DBMaxConns int32
	// Faults is the injected misbehaviour.
	Faults Faults
}

// Faults makes the simulated bank slow or unreliable, reproducibly for a given Seed.
type Faults struct {
	// Latency delays every POST /v1/payments before it is executed (BANKSIM_LATENCY).
	Latency time.Duration
	// FailureRate is the probability, 0..1, that a /v1/payments request fails
	// with 503 before doing anything (BANKSIM_FAILURE_RATE).
	FailureRate float64
	// TimeoutRate is the probability, 0..1, that a POST /v1/payments is
	// executed but its response is held back for TimeoutDelay, so the caller
	// cannot tell whether it happened (BANKSIM_TIMEOUT_RATE).
	TimeoutRate float64
	// TimeoutDelay is how long such a response is held back (BANKSIM_TIMEOUT_DELAY).
	TimeoutDelay time.Duration
	// Seed seeds the random source deciding failures and timeouts (BANKSIM_SEED).
	Seed uint64
}

// Defaults of the environment variables read by LoadConfig.
const (
	DefaultAddr         = "127.0.0.1:8600"
	DefaultDatabaseURL  = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	DefaultSchema       = "banksim"
	DefaultTimeoutDelay = 5 * time.Second
	DefaultDBMaxConns   = 32
)

// LoadConfig reads the configuration through lookup (os.LookupEnv in the
// process), applying defaults for unset or empty variables. When BANKSIM_SEED
// is unset, seed is used; the caller passes a fresh random value and logs it so
// the run can be reproduced.
func LoadConfig(lookup func(string) (string, bool), seed uint64) (Config, error) {
	get := func(name, def string) string {
		if v, ok := lookup(name); ok && v != "" {
			return v
		}
		return def
	}
	cfg := Config{
		Addr:        get("BANKSIM_ADDR", DefaultAddr),
		DatabaseURL: get("DATABASE_URL", DefaultDatabaseURL),
		Schema:      DefaultSchema,
	}
	maxConns, err := strconv.ParseInt(get("BANKSIM_DB_MAX_CONNS", strconv.Itoa(DefaultDBMaxConns)), 10, 32)
	if err != nil || maxConns <= 0 {
		return Config{}, fmt.Errorf("BANKSIM_DB_MAX_CONNS: want a positive number, got %q", get("BANKSIM_DB_MAX_CONNS", ""))
	}
	cfg.DBMaxConns = int32(maxConns)
	if cfg.Faults.Latency, err = parseDuration("BANKSIM_LATENCY", get("BANKSIM_LATENCY", "0s")); err != nil {
		return Config{}, err
	}
	if cfg.Faults.TimeoutDelay, err = parseDuration("BANKSIM_TIMEOUT_DELAY", get("BANKSIM_TIMEOUT_DELAY", DefaultTimeoutDelay.String())); err != nil {
		return Config{}, err
	}
	if cfg.Faults.FailureRate, err = parseRate("BANKSIM_FAILURE_RATE", get("BANKSIM_FAILURE_RATE", "0")); err != nil {
		return Config{}, err
	}
	if cfg.Faults.TimeoutRate, err = parseRate("BANKSIM_TIMEOUT_RATE", get("BANKSIM_TIMEOUT_RATE", "0")); err != nil {
		return Config{}, err
	}
	cfg.Faults.Seed = seed
	if v := get("BANKSIM_SEED", ""); v != "" {
		if cfg.Faults.Seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			return Config{}, fmt.Errorf("BANKSIM_SEED: %w", err)
		}
	}
	return cfg, nil
}

func parseDuration(name, v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	if d < 0 {
		return 0, fmt.Errorf("%s: negative duration %s", name, v)
	}
	return d, nil
}

func parseRate(name, v string) (float64, error) {
	r, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	if !(r >= 0 && r <= 1) {
		return 0, fmt.Errorf("%s: %s is not a probability in 0..1", name, v)
	}
	return r, nil
}
