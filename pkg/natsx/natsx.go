// Package natsx connects to NATS JetStream, declares the event streams,
// carries trace context in message headers and runs durable consumers.
package natsx

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"go.opentelemetry.io/otel/attribute"

	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
)

// Stream names and subjects.
const (
	EventStream   = "AID_EVENTS"
	EventSubjects = "aid.>"
	DeadStream    = "AID_DEAD_LETTERS"
	DeadPrefix    = "dead."
	// DuplicateWindow is how long JetStream remembers a message ID to drop
	// a re-publish: long enough for a relay's restart or a standby's
	// takeover (its lease lapses in 10 s). The server keeps every ID of the
	// window in memory, so its size follows rate × window (a 10-minute
	// window held about a million IDs at the national peak). A re-publish
	// after it is stored twice and dropped by every consumer's inbox.
	DuplicateWindow = 2 * time.Minute
	// CheckpointStream holds the application service's signed trail
	// checkpoints, outside any service's database; nobody may delete or
	// purge its messages.
	CheckpointStream   = "AID_CHECKPOINTS"
	CheckpointSubject  = "trail.checkpoints.v1"
	CheckpointRetained = 10 * 365 * 24 * time.Hour
	// EventStreamMaxBytes bounds the event stream, oldest events dropped
	// first: about a day at the national peak (250 applications/s write
	// some 2.2 GiB of events an hour). Without a byte limit the stream would
	// fill the server's file store (deploy/: 100 GiB) and JetStream would
	// then refuse every publish. A consumer a day behind is an outage the
	// lag alert has long reported; every event is also a row of its
	// writer's outbox, and `aidctl republish` sends a range again.
	EventStreamMaxBytes int64 = 64 << 30
)

// Option configures Connect.
type Option func(*connectOptions)

type connectOptions struct {
	seed   string
	caFile string
}

// WithNKeySeed logs in as the NKey user whose seed ("SU...") is seed.
func WithNKeySeed(seed string) Option { return func(o *connectOptions) { o.seed = seed } }

// WithRootCA trusts the PEM CA certificates in file for a tls:// server.
func WithRootCA(file string) Option { return func(o *connectOptions) { o.caFile = file } }

// Connect dials url as name with reconnects forever and returns the
// connection and its JetStream context. Replies come to InboxPrefix(name),
// the only inbox name's NATS user may subscribe to. Without WithNKeySeed it
// connects anonymously, which a server with authorization refuses.
func Connect(url, name string, opts ...Option) (*nats.Conn, jetstream.JetStream, error) {
	var o connectOptions
	for _, opt := range opts {
		opt(&o)
	}
	natsOpts := []nats.Option{
		nats.Name(name),
		nats.CustomInboxPrefix(InboxPrefix(name)),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
	}
	if o.seed != "" {
		auth, err := nkeyAuth(o.seed)
		if err != nil {
			return nil, nil, err
		}
		natsOpts = append(natsOpts, auth)
	}
	if o.caFile != "" {
		natsOpts = append(natsOpts, nats.RootCAs(o.caFile))
	}
	nc, err := nats.Connect(url, natsOpts...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect nats: %w", err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return nc, js, nil
}

// nkeyAuth signs the server's nonce with the NKey user seed.
func nkeyAuth(seed string) (nats.Option, error) {
	kp, err := nkeys.FromSeed([]byte(seed))
	if err != nil {
		return nil, fmt.Errorf("nats nkey seed: %w", err)
	}
	pub, err := kp.PublicKey()
	if err != nil || !nkeys.IsValidPublicUserKey(pub) {
		return nil, errors.New("nats nkey seed: not a user seed (want one starting with SU)")
	}
	return nats.Nkey(pub, kp.Sign), nil
}

// Streams are the streams EnsureStreams declares: file storage, a
// duplicate window for message-ID dedup, kept for a year.
func Streams() []jetstream.StreamConfig {
	return []jetstream.StreamConfig{
		{
			Name:        EventStream,
			Description: "Student aid events, one subject per event type.",
			Subjects:    []string{EventSubjects},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			MaxAge:      365 * 24 * time.Hour,
			MaxBytes:    EventStreamMaxBytes,
			Discard:     jetstream.DiscardOld,
			Duplicates:  DuplicateWindow,
		},
		{
			Name:        DeadStream,
			Description: "Events a consumer could not process, with the error, for replay.",
			Subjects:    []string{DeadPrefix + ">"},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			MaxAge:      365 * 24 * time.Hour,
			Duplicates:  DuplicateWindow,
		},
		{
			Name:        CheckpointStream,
			Description: "Signed checkpoints of the application trails' Merkle tree; no deletes, no purges.",
			Subjects:    []string{CheckpointSubject},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			MaxAge:      CheckpointRetained,
			Duplicates:  DuplicateWindow,
			DenyDelete:  true,
			DenyPurge:   true,
		},
	}
}

// DevEventStreamMaxBytes caps the event stream of a development or test
// server, which reserves a stream's byte limit from its disk at creation
// and would refuse EventStreamMaxBytes on a laptop.
const DevEventStreamMaxBytes int64 = 4 << 30

// EnsureStreams creates or updates Streams, on one server, the event
// stream capped at DevEventStreamMaxBytes: the dev stack's and the tests'
// setup. It needs the admin identity; the services only check the streams
// exist (CheckStreams).
func EnsureStreams(ctx context.Context, js jetstream.JetStream) error {
	return EnsureStreamsWith(ctx, js, StreamSetup{Replicas: 1, EventMaxBytes: DevEventStreamMaxBytes})
}

// EnsureStreamsReplicated creates or updates Streams as they are (the
// event stream at EventStreamMaxBytes) with each stream kept on replicas
// servers of a JetStream cluster (3 in production: R3 survives the loss of
// any one node). A cluster still electing its meta leader is waited for.
// It is the privileged setup step (`aidctl nats-setup`).
func EnsureStreamsReplicated(ctx context.Context, js jetstream.JetStream, replicas int) error {
	return EnsureStreamsWith(ctx, js, StreamSetup{Replicas: replicas})
}

// StreamSetup is how EnsureStreamsWith sets the streams up.
type StreamSetup struct {
	// Replicas is each stream's replication (1 when 0).
	Replicas int
	// EventMaxBytes, when set, bounds the event stream instead of
	// EventStreamMaxBytes (a soak caps it low to run at its limit).
	EventMaxBytes int64
}

// EnsureStreamsWith is EnsureStreams as set says.
func EnsureStreamsWith(ctx context.Context, js jetstream.JetStream, set StreamSetup) error {
	for _, cfg := range Streams() {
		cfg.Replicas = max(set.Replicas, 1)
		if cfg.Name == EventStream && set.EventMaxBytes > 0 {
			cfg.MaxBytes = set.EventMaxBytes
		}
		var err error
		for range 80 {
			// Each attempt has its own deadline: a cluster that has not
			// elected its meta leader yet may leave a request unanswered.
			actx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err = js.CreateOrUpdateStream(actx, cfg)
			cancel()
			if err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(250 * time.Millisecond):
			}
		}
		if err != nil {
			return fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// CheckStreams waits up to wait for the named streams to exist (the event
// and dead-letter streams when none is named); a service calls it at start,
// since it may not create them, naming the ones it uses.
func CheckStreams(ctx context.Context, js jetstream.JetStream, wait time.Duration, names ...string) error {
	if len(names) == 0 {
		names = []string{EventStream, DeadStream}
	}
	deadline := time.Now().Add(wait)
	for _, name := range names {
		for {
			_, err := js.Stream(ctx, name)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("stream %s: %w (create the streams with `aidctl nats-setup` under the NATS admin identity)", name, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(250 * time.Millisecond):
			}
		}
	}
	return nil
}

// HeaderCarrier adapts NATS headers to OpenTelemetry's TextMapCarrier.
type HeaderCarrier nats.Header

// Get returns the first value of key.
func (h HeaderCarrier) Get(key string) string { return nats.Header(h).Get(key) }

// Set sets key to value.
func (h HeaderCarrier) Set(key, value string) { nats.Header(h).Set(key, value) }

// Keys lists the header names.
func (h HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}

// MessagingAttributes are the OpenTelemetry messaging attributes of an
// operation ("send", "process") on subject.
func MessagingAttributes(op, subject, messageID string) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("messaging.system", "nats"),
		attribute.String("messaging.operation.name", op),
		attribute.String("messaging.operation.type", op),
		attribute.String("messaging.destination.name", subject),
		attribute.String("messaging.message.id", messageID),
	}
}

// BusinessAttributes are the keys ops search by. They never include personal data.
func BusinessAttributes(ev *eventsv1.Event) []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 0, 6)
	add := func(k, v string) {
		if v != "" {
			attrs = append(attrs, attribute.String(k, v))
		}
	}
	add("application.id", ev.GetApplicationId())
	add("batch.id", ev.GetBatchId())
	add("school.code", ev.GetSchoolCode())
	add("program.code", ev.GetProgramCode())
	add("term", ev.GetTerm())
	add("event.type", ev.GetType())
	switch {
	case ev.GetPaymentOrdered() != nil:
		add("payout.id", ev.GetPaymentOrdered().GetPaymentId())
	case ev.GetPaymentSucceeded() != nil:
		add("payout.id", ev.GetPaymentSucceeded().GetPaymentId())
	case ev.GetPaymentFailed() != nil:
		add("payout.id", ev.GetPaymentFailed().GetPaymentId())
	}
	return attrs
}

// ErrNotYet marks an event that arrived before the state it needs; it is
// redelivered after a short delay rather than dead-lettered.
var ErrNotYet = errors.New("event arrived before its prerequisite")

// NotYet marks err as an event's early arrival (errors.Is(err, ErrNotYet)
// holds) while keeping err's message and chain: the event is redelivered
// shortly.
func NotYet(err error) error { return notYetError{err} }

// notYetError is an error that also matches ErrNotYet.
type notYetError struct{ error }

func (e notYetError) Unwrap() []error { return []error{e.error, ErrNotYet} }

// permanent wraps an error that redelivery cannot fix.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent marks err as one that redelivery cannot fix: the message goes to
// the dead-letter stream at once.
func Permanent(err error) error { return permanent{err} }

// MaxKeyLen bounds the business keys (school, program, term, funding
// source) a consumer reads from an event.
const MaxKeyLen = 64

// CheckKey refuses for good an event whose business key name is empty,
// longer than MaxKeyLen, not UTF-8 or padded with spaces.
func CheckKey(name, v string) error {
	if v == "" || len(v) > MaxKeyLen || !utf8.ValidString(v) || strings.TrimSpace(v) != v {
		return Permanent(fmt.Errorf("event %s %q is empty, too long or malformed", name, v))
	}
	return nil
}

// IsPermanent reports whether err was marked Permanent.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}
