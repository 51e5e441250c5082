package service

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/edubureau/studentaid/pkg/config"
	"github.com/edubureau/studentaid/services/payout/internal/app"
)

// DefaultConfig is payout's settings when nothing is configured.
func DefaultConfig() app.Config {
	return app.Config{
		BankURL:      "http://127.0.0.1:8600",
		Concurrency:  32,
		BankTimeout:  5 * time.Second,
		RetryBackoff: time.Second,
		MaxBackoff:   5 * time.Minute,
		ClaimLease:   time.Minute,
		PollInterval: 500 * time.Millisecond,
	}
}

// LoadConfig reads payout's own settings from the environment, defaulting
// what is unset: PAYOUT_BANK_URL, PAYOUT_CONCURRENCY, PAYOUT_BANK_TIMEOUT,
// PAYOUT_RETRY_BACKOFF, PAYOUT_MAX_BACKOFF, PAYOUT_CLAIM_LEASE and
// PAYOUT_POLL_INTERVAL.
func LoadConfig() (app.Config, error) {
	c := DefaultConfig()
	var err error
	c.BankURL = config.Env("PAYOUT_BANK_URL", c.BankURL)
	if c.Concurrency, err = config.Int("PAYOUT_CONCURRENCY", c.Concurrency); err != nil {
		return c, err
	}
	for _, d := range []struct {
		key string
		v   *time.Duration
	}{
		{"PAYOUT_BANK_TIMEOUT", &c.BankTimeout},
		{"PAYOUT_RETRY_BACKOFF", &c.RetryBackoff},
		{"PAYOUT_MAX_BACKOFF", &c.MaxBackoff},
		{"PAYOUT_CLAIM_LEASE", &c.ClaimLease},
		{"PAYOUT_POLL_INTERVAL", &c.PollInterval},
	} {
		if *d.v, err = config.Duration(d.key, *d.v); err != nil {
			return c, err
		}
	}
	return c, validate(c)
}

// withDefaults fills the zero fields of c from DefaultConfig.
func withDefaults(c app.Config) app.Config {
	def := DefaultConfig()
	if c.BankURL == "" {
		c.BankURL = def.BankURL
	}
	if c.Concurrency == 0 {
		c.Concurrency = def.Concurrency
	}
	for _, d := range []struct{ v, def *time.Duration }{
		{&c.BankTimeout, &def.BankTimeout},
		{&c.RetryBackoff, &def.RetryBackoff},
		{&c.MaxBackoff, &def.MaxBackoff},
		{&c.ClaimLease, &def.ClaimLease},
		{&c.PollInterval, &def.PollInterval},
	} {
		if *d.v == 0 {
			*d.v = *d.def
		}
	}
	return c
}

// validate refuses settings payout cannot run with, naming the variable
// that sets them.
func validate(c app.Config) error {
	u, err := url.Parse(c.BankURL)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("PAYOUT_BANK_URL %q is not an http(s) URL", c.BankURL)
	case c.Concurrency < 1 || c.Concurrency > 1024:
		return fmt.Errorf("PAYOUT_CONCURRENCY %d is not in 1..1024", c.Concurrency)
	case c.BankTimeout <= 0, c.RetryBackoff <= 0, c.MaxBackoff < c.RetryBackoff, c.PollInterval <= 0:
		return errors.New("payout durations must be positive, with PAYOUT_MAX_BACKOFF at least PAYOUT_RETRY_BACKOFF")
	case c.ClaimLease < 10*c.BankTimeout:
		// A claim may wait behind a few rounds of calls and then make two itself.
		return fmt.Errorf("PAYOUT_CLAIM_LEASE %v must be at least 10 × PAYOUT_BANK_TIMEOUT (%v)", c.ClaimLease, c.BankTimeout)
	}
	return nil
}
