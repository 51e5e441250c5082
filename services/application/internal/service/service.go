// Package service wires the application service for the platform host: its
// schema migrations, gRPC policy, gRPC server, REST gateway and event consumer.
package service

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/edubureau/studentaid/pkg/config"
	"github.com/edubureau/studentaid/pkg/grpcx"
	"github.com/edubureau/studentaid/pkg/keyrotation"
	"github.com/edubureau/studentaid/pkg/lease"
	"github.com/edubureau/studentaid/pkg/natsx"
	platform "github.com/edubureau/studentaid/pkg/service"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
	keysv1 "github.com/edubureau/studentaid/proto/gen/aid/keys/v1"
	"github.com/edubureau/studentaid/services/application/anchor"
	"github.com/edubureau/studentaid/services/application/internal/app"
	"github.com/edubureau/studentaid/services/application/internal/ports"
	"github.com/edubureau/studentaid/services/application/migrations"
)

// Name is the service's name; its schema is "application".
const Name = "application"

// Default listen addresses.
const (
	DefaultGRPCAddr = "127.0.0.1:9101"
	DefaultHTTPAddr = "127.0.0.1:8101"
)

// Options are the seams the tests set; the zero value is the service as main
// runs it.
type Options struct {
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// CheckpointInterval is how often the trail tree's head is signed when
	// it grew; 0 is AID_CHECKPOINT_INTERVAL (default one minute).
	CheckpointInterval time.Duration
	// Webhooks, when set, replaces the APPLICATION_WEBHOOK_* settings (its
	// Encode is always ports.EncodeDelivery).
	Webhooks *app.WebhookConfig
}

// WebhookLease names the lease of the webhook deliverer: one replica
// delivers, so each webhook's deliveries go out in feed order.
const WebhookLease = "webhooks"

// DefaultWebhookPoll is APPLICATION_WEBHOOK_POLL's default: how often the
// deliverer looks for due webhooks when no commit of its own woke it.
const DefaultWebhookPoll = time.Second

// webhookConfig reads the webhooks' settings; http URLs are allowed only
// outside production.
func webhookConfig(o Options, production bool) (app.WebhookConfig, error) {
	if o.Webhooks != nil {
		c := *o.Webhooks
		c.Encode = ports.EncodeDelivery
		return c, nil
	}
	c := app.WebhookConfig{AllowHTTP: !production, Encode: ports.EncodeDelivery}
	var err error
	if c.MaxAttempts, err = config.Int("APPLICATION_WEBHOOK_MAX_ATTEMPTS", 8); err != nil {
		return c, err
	}
	if c.RetryBase, err = config.Duration("APPLICATION_WEBHOOK_RETRY", time.Second); err != nil {
		return c, err
	}
	if c.RetryMax, err = config.Duration("APPLICATION_WEBHOOK_RETRY_MAX", 5*time.Minute); err != nil {
		return c, err
	}
	if c.Timeout, err = config.Duration("APPLICATION_WEBHOOK_TIMEOUT", 10*time.Second); err != nil {
		return c, err
	}
	if c.MaxAttempts < 1 || c.RetryBase <= 0 || c.RetryMax < c.RetryBase || c.Timeout <= 0 {
		return c, errors.New("APPLICATION_WEBHOOK_MAX_ATTEMPTS must be at least 1 and APPLICATION_WEBHOOK_RETRY, _RETRY_MAX (not below _RETRY) and _TIMEOUT positive")
	}
	return c, nil
}

// DefaultCheckpointInterval is AID_CHECKPOINT_INTERVAL's default.
const DefaultCheckpointInterval = time.Minute

// DefaultPolicyRefresh is APPLICATION_POLICY_REFRESH's default: how often a
// replica checks whether another one published a policy version.
const DefaultPolicyRefresh = 5 * time.Second

// DefaultFeedPoll is APPLICATION_FEED_POLL's default: how often a replica
// looks whether another one committed changes, to wake its long-polls of
// the change feed (its own commits wake them at once).
const DefaultFeedPoll = 100 * time.Millisecond

// trailKeys reads the checkpoint keys: the current signing key and the
// keys checkpoints are verified with (AID_TRAIL_VERIFY_KEYS, or the public
// halves of every signing key).
func trailKeys(production bool) (*anchor.SigningKey, anchor.VerifyKeys, error) {
	cfg, err := config.LoadTrailKeys(production)
	if err != nil {
		return nil, nil, err
	}
	signing, err := anchor.ParseSigningKeys(cfg.Signing)
	if err != nil {
		return nil, nil, fmt.Errorf("AID_TRAIL_SIGNING_KEYS: %w", err)
	}
	verify := anchor.VerifyKeysOf(signing)
	if cfg.Verify != "" {
		if verify, err = anchor.ParseVerifyKeys(cfg.Verify); err != nil {
			return nil, nil, fmt.Errorf("AID_TRAIL_VERIFY_KEYS: %w", err)
		}
	}
	return &signing[0], verify, nil
}

// policy is the service's own RPCs' policy and the key rotation's.
func policy() grpcx.Policy {
	p := ports.Policy()
	maps.Copy(p, keyrotation.Policy())
	return p
}

// Spec returns the application service as main runs it.
func Spec() platform.Spec { return SpecWith(Options{}) }

// SpecWith returns the application service with o's seams set; main and the
// tests share the wiring.
func SpecWith(o Options) platform.Spec {
	return platform.Spec{
		Name:            Name,
		DefaultGRPCAddr: DefaultGRPCAddr,
		DefaultHTTPAddr: DefaultHTTPAddr,
		Migrations:      migrations.FS(),
		AppendOnly:      migrations.AppendOnly(),
		Policy:          policy(),
		// It seals and opens the students' and payees' data and hashes ID
		// numbers for the duplicate check.
		Needs: config.KeyNeeds{Seal: true, Hash: true},
		Setup: func(ctx context.Context, h *platform.Host) error {
			signer, verify, err := trailKeys(h.Config.Production)
			if err != nil {
				return err
			}
			// Its checkpoints go to a stream of their own, made by the
			// admin's setup step like the others.
			if err := natsx.CheckStreams(ctx, h.JS, 30*time.Second, natsx.CheckpointStream); err != nil {
				return err
			}
			interval := o.CheckpointInterval
			if interval == 0 {
				if interval, err = config.Duration("AID_CHECKPOINT_INTERVAL", DefaultCheckpointInterval); err != nil {
					return err
				}
			}
			hooks, err := webhookConfig(o, h.Config.Production)
			if err != nil {
				return err
			}
			a := app.New(app.Deps{Pool: h.Pool, Notify: h.Relay.Notify, Now: o.Now, Sealer: h.Sealer, Hasher: h.Hasher,
				TrailSigner: signer, TrailVerifyKeys: verify, Checkpoints: ports.CheckpointStream{JS: h.JS}, Webhooks: hooks})
			if err := a.CheckHashKeys(ctx); err != nil {
				return err
			}
			if err := a.SeedPolicy(ctx); err != nil {
				return err
			}
			refresh, err := config.Duration("APPLICATION_POLICY_REFRESH", DefaultPolicyRefresh)
			if err != nil {
				return err
			}
			anchorMetrics := ports.NewAnchorMetrics(h.Tel.Registry)
			srv := ports.NewServer(a)
			srv.Anchor = anchorMetrics
			applicationv1.RegisterApplicationServiceServer(h.GRPC, srv)
			keysv1.RegisterKeyRotationServiceServer(h.GRPC, keyrotation.NewServer(a.Rotator()))
			h.AddGateway(applicationv1.RegisterApplicationServiceHandlerFromEndpoint)
			applicationv1.RegisterPolicyServiceServer(h.GRPC, ports.NewPolicyServer(a))
			h.AddGateway(applicationv1.RegisterPolicyServiceHandlerFromEndpoint)
			h.AddWorker("policy-refresh", func(ctx context.Context) error {
				return a.RunPolicyRefresh(ctx, refresh, func(err error) { h.Log.Error("policy refresh", "err", err) })
			})
			consumer := ports.Consumer(a)
			consumer.AfterCommit = func() {
				h.Relay.Notify()
				a.ChangesCommitted()
			}
			h.AddConsumer(consumer)
			feedPoll, err := config.Duration("APPLICATION_FEED_POLL", DefaultFeedPoll)
			if err != nil {
				return err
			}
			h.AddWorker("change-watch", func(ctx context.Context) error {
				return a.RunChangeWatch(ctx, feedPoll, func(err error) { h.Log.Error("change watch", "err", err) })
			})
			hookPoll, err := config.Duration("APPLICATION_WEBHOOK_POLL", DefaultWebhookPoll)
			if err != nil {
				return err
			}
			deliverer := lease.NewRunner(h.Pool, WebhookLease, lease.WithLogger(h.Log.With("worker", "webhooks")),
				lease.WithRegisterer(h.Tel.Registry, Name))
			h.AddWorker("webhooks", func(ctx context.Context) error {
				return deliverer.Run(ctx, func(ctx context.Context, l lease.Lease) error {
					return a.RunWebhooks(ctx, l, hookPoll, func(err error) { h.Log.Error("webhook delivery", "err", err) })
				})
			})
			h.AddWorker("status-gauge", ports.NewStatusGauge(a.StatusCounts, h.Tel.Registry, h.Log.With("worker", "status-gauge")).Run)
			h.AddWorker("trail-checkpoints", func(ctx context.Context) error {
				return a.RunCheckpoints(ctx, interval, anchorMetrics, func(err error) { h.Log.Error("trail checkpoint", "err", err) })
			})
			return nil
		},
	}
}
