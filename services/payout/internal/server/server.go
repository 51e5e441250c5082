// Package server wires payout for the service host: its migrations,
// authorization policy, gRPC and REST handlers, event consumer and pay
// worker. The command and the component tests share Spec.
package server

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/edubureau/studentaid/pkg/config"
	"github.com/edubureau/studentaid/pkg/natsx"
	"github.com/edubureau/studentaid/pkg/service"
	payoutv1 "github.com/edubureau/studentaid/proto/gen/aid/payout/v1"
	"github.com/edubureau/studentaid/services/payout/internal/app"
	"github.com/edubureau/studentaid/services/payout/internal/bank"
	"github.com/edubureau/studentaid/services/payout/internal/ports"
	"github.com/edubureau/studentaid/services/payout/migrations"
)

// Default listen addresses.
const (
	DefaultGRPCAddr = "127.0.0.1:9105"
	DefaultHTTPAddr = "127.0.0.1:8105"
)

// Options are payout's own settings, beyond those every service has.
type Options struct {
	// BankURL is the bank gateway's base URL (PAYOUT_BANK_URL).
	BankURL string
	// Concurrency is the number of bank calls in flight (PAYOUT_CONCURRENCY).
	Concurrency int
	// BankTimeout bounds each bank call (PAYOUT_BANK_TIMEOUT).
	BankTimeout time.Duration
	// RetryBackoff is the first wait before asking the bank again about a
	// payment whose outcome is unknown; it doubles up to MaxBackoff
	// (PAYOUT_RETRY_BACKOFF, PAYOUT_MAX_BACKOFF).
	RetryBackoff time.Duration
	MaxBackoff   time.Duration
	// ClaimLease is how long a payment a worker took up is kept from others;
	// after a crash it is looked up at the bank once the lease ends
	// (PAYOUT_CLAIM_LEASE).
	ClaimLease time.Duration
	// PollInterval is how often an idle worker looks for due payments (PAYOUT_POLL_INTERVAL).
	PollInterval time.Duration
	// HTTPClient, when set, is the client the bank gateway copies; by default
	// one with a connection pool sized to Concurrency.
	HTTPClient *http.Client
}

// DefaultOptions are the settings when nothing is configured.
func DefaultOptions() Options {
	return Options{
		BankURL:      "http://127.0.0.1:8600",
		Concurrency:  32,
		BankTimeout:  5 * time.Second,
		RetryBackoff: time.Second,
		MaxBackoff:   5 * time.Minute,
		ClaimLease:   time.Minute,
		PollInterval: 500 * time.Millisecond,
	}
}

// OptionsFromEnv reads Options from the environment, defaulting what is unset.
func OptionsFromEnv() (Options, error) {
	o := DefaultOptions()
	var err error
	o.BankURL = config.Env("PAYOUT_BANK_URL", o.BankURL)
	if o.Concurrency, err = config.Int("PAYOUT_CONCURRENCY", o.Concurrency); err != nil {
		return o, err
	}
	for _, d := range []struct {
		key string
		v   *time.Duration
	}{
		{"PAYOUT_BANK_TIMEOUT", &o.BankTimeout},
		{"PAYOUT_RETRY_BACKOFF", &o.RetryBackoff},
		{"PAYOUT_MAX_BACKOFF", &o.MaxBackoff},
		{"PAYOUT_CLAIM_LEASE", &o.ClaimLease},
		{"PAYOUT_POLL_INTERVAL", &o.PollInterval},
	} {
		if *d.v, err = config.Duration(d.key, *d.v); err != nil {
			return o, err
		}
	}
	return o, o.validate()
}

// withDefaults fills the zero fields of o from DefaultOptions.
func (o Options) withDefaults() Options {
	def := DefaultOptions()
	if o.BankURL == "" {
		o.BankURL = def.BankURL
	}
	if o.Concurrency == 0 {
		o.Concurrency = def.Concurrency
	}
	if o.BankTimeout == 0 {
		o.BankTimeout = def.BankTimeout
	}
	if o.RetryBackoff == 0 {
		o.RetryBackoff = def.RetryBackoff
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = def.MaxBackoff
	}
	if o.ClaimLease == 0 {
		o.ClaimLease = def.ClaimLease
	}
	if o.PollInterval == 0 {
		o.PollInterval = def.PollInterval
	}
	return o
}

func (o Options) validate() error {
	u, err := url.Parse(o.BankURL)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("PAYOUT_BANK_URL %q is not an http(s) URL", o.BankURL)
	case o.Concurrency < 1 || o.Concurrency > 1024:
		return fmt.Errorf("PAYOUT_CONCURRENCY %d is not in 1..1024", o.Concurrency)
	case o.BankTimeout <= 0, o.RetryBackoff <= 0, o.MaxBackoff < o.RetryBackoff, o.PollInterval <= 0:
		return fmt.Errorf("payout durations must be positive, with PAYOUT_MAX_BACKOFF at least PAYOUT_RETRY_BACKOFF")
	case o.ClaimLease < 10*o.BankTimeout:
		// A claim may wait behind a few rounds of calls and then make two itself.
		return fmt.Errorf("PAYOUT_CLAIM_LEASE %v must be at least 10 × PAYOUT_BANK_TIMEOUT (%v)", o.ClaimLease, o.BankTimeout)
	}
	return nil
}

// bankClient is an HTTP client whose idle pool holds a connection per
// concurrent call, so the bank is not redialled for every payment.
func bankClient(o Options) *http.Client {
	if o.HTTPClient != nil {
		return o.HTTPClient
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = o.Concurrency * 2
	tr.MaxIdleConnsPerHost = o.Concurrency * 2
	return &http.Client{Transport: tr}
}

// Spec describes payout for service.Main and servicetest.Start. Zero fields
// of o take DefaultOptions.
func Spec(o Options) service.Spec {
	return service.Spec{
		Name:            app.ServiceName,
		DefaultGRPCAddr: DefaultGRPCAddr,
		DefaultHTTPAddr: DefaultHTTPAddr,
		Migrations:      migrations.FS(),
		Policy:          ports.Policy(),
		Setup: func(_ context.Context, h *service.Host) error {
			o := o.withDefaults()
			if err := o.validate(); err != nil {
				return err
			}
			a := app.New(h.Pool, h.Log)
			payoutv1.RegisterPayoutServiceServer(h.GRPC, ports.NewServer(a))
			h.AddGateway(payoutv1.RegisterPayoutServiceHandlerFromEndpoint)

			w := app.NewWorker(h.Pool, bank.NewHTTPGateway(o.BankURL, bankClient(o)), h.Sealer, h.Log.With("worker", "pay"),
				h.Tel.Tracer, app.NewMetrics(h.Tel.Registry), h.Relay.Notify, app.WorkerConfig{
					Concurrency:  o.Concurrency,
					BankTimeout:  o.BankTimeout,
					RetryBackoff: o.RetryBackoff,
					MaxBackoff:   o.MaxBackoff,
					ClaimLease:   o.ClaimLease,
					PollInterval: o.PollInterval,
				})
			h.AddConsumer(&natsx.Consumer{
				Subjects:    ports.Subjects(),
				Handle:      ports.EventHandler(a),
				HandleBatch: ports.BatchHandler(a),
				// New orders wake the worker as well as the relay.
				AfterCommit: func() {
					h.Relay.Notify()
					w.Wake()
				},
			})
			h.AddWorker("pay", w.Run)
			return nil
		},
	}
}
