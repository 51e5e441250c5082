package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/natsx"
	"github.com/edubureau/studentaid/pkg/telemetry"
)

// Publisher is the part of JetStream the relay needs.
type Publisher interface {
	PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error)
}

// Relay moves unpublished outbox rows to JetStream in id order. Several relays
// (replicas of one service) may run at once: rows are claimed with
// FOR UPDATE SKIP LOCKED. A crash between publishing and marking rows
// published re-publishes them; JetStream drops the repeats by message ID
// within its duplicate window and consumers drop them by event ID after it.
type Relay struct {
	pool      *pgxpool.Pool
	js        Publisher
	log       *slog.Logger
	tracer    trace.Tracer
	wake      chan struct{}
	batchSize int
	interval  time.Duration
	linger    time.Duration
	metrics   *relayMetrics
}

// RelayOption configures a Relay.
type RelayOption func(*Relay)

// WithBatchSize sets how many rows one round publishes.
func WithBatchSize(n int) RelayOption { return func(r *Relay) { r.batchSize = n } }

// WithPollInterval sets how often the relay looks for rows it was not told about.
func WithPollInterval(d time.Duration) RelayOption { return func(r *Relay) { r.interval = d } }

// WithLinger sets how long the relay, woken by a commit, waits for other
// commits' rows before it publishes, so that one round (one transaction, one
// frame) carries them together. Zero publishes at once.
func WithLinger(d time.Duration) RelayOption { return func(r *Relay) { r.linger = d } }

// WithRegisterer registers the relay's metrics.
func WithRegisterer(reg prometheus.Registerer, service string) RelayOption {
	return func(r *Relay) { r.metrics = newRelayMetrics(reg, service) }
}

// NewRelay returns a relay for the outbox reachable through pool's search path.
func NewRelay(pool *pgxpool.Pool, js Publisher, log *slog.Logger, opts ...RelayOption) *Relay {
	r := &Relay{
		pool:      pool,
		js:        js,
		log:       log,
		tracer:    otel.Tracer("github.com/edubureau/studentaid/pkg/outbox"),
		wake:      make(chan struct{}, 1),
		batchSize: 500,
		interval:  250 * time.Millisecond,
		linger:    10 * time.Millisecond,
	}
	for _, o := range opts {
		o(r)
	}
	if r.metrics == nil {
		r.metrics = newRelayMetrics(nil, "")
	}
	return r
}

// Notify tells the relay that new rows were committed. It never blocks.
func (r *Relay) Notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run relays until ctx is done, then makes a last pass so that rows committed
// before shutdown are not left for the next start.
func (r *Relay) Run(ctx context.Context) error {
	ticker := time.NewTicker(r.interval)
	defer ticker.Stop()
	backoff := 100 * time.Millisecond
	var lastObserved time.Time
	for {
		n, err := r.RelayOnce(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			r.log.WarnContext(ctx, "outbox relay round failed", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		case err == nil:
			backoff = 100 * time.Millisecond
		}
		if n == r.batchSize {
			continue // more waiting
		}
		select {
		case <-ctx.Done():
			return r.flush()
		case <-r.wake:
			// Group commit: under a steady trickle of single writes (one
			// REST submission at a time) each commit would otherwise be a
			// round, a transaction and a message of its own, and so would
			// the consumers' work downstream.
			if r.linger > 0 {
				select {
				case <-ctx.Done():
					return r.flush()
				case <-time.After(r.linger):
				}
			}
		case now := <-ticker.C:
			// The poll picks up rows other replicas committed; the backlog
			// gauges are read once a second, however short the poll.
			if now.Sub(lastObserved) >= time.Second {
				r.observeBacklog(ctx)
				lastObserved = now
			}
		}
	}
}

// flush publishes what is left, bounded in time.
func (r *Relay) flush() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		n, err := r.RelayOnce(ctx)
		if err != nil {
			return fmt.Errorf("outbox flush: %w", err)
		}
		if n < r.batchSize {
			return nil
		}
	}
}

type row struct {
	id          int64
	eventID     string
	subject     string
	payload     []byte
	traceparent string
	tracestate  string
}

// RelayOnce publishes one batch of unpublished rows and returns how many.
func (r *Relay) RelayOnce(ctx context.Context) (int, error) {
	var n int
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		// Marking rows published need not wait for its own fsync: if a
		// crash loses the mark, the rows are published again and dropped as
		// duplicates (by JetStream's message IDs, then by the consumers'
		// inboxes). The events themselves were committed durably by their
		// writers, and JetStream has stored them before this commits.
		if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT id, event_id::text, subject, payload, traceparent, tracestate
			FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`, r.batchSize)
		if err != nil {
			return err
		}
		batch, err := pgx.CollectRows(rows, func(cr pgx.CollectableRow) (row, error) {
			var x row
			err := cr.Scan(&x.id, &x.eventID, &x.subject, &x.payload, &x.traceparent, &x.tracestate)
			return x, err
		})
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		if err := r.publish(ctx, batch); err != nil {
			return err
		}
		ids := make([]int64, len(batch))
		for i, x := range batch {
			ids[i] = x.id
		}
		if _, err := tx.Exec(ctx, `UPDATE outbox SET published_at = now() WHERE id = ANY($1)`, ids); err != nil {
			return err
		}
		n = len(batch)
		return nil
	})
	if err != nil {
		return 0, err
	}
	r.metrics.published.Add(float64(n))
	return n, nil
}

// publish sends batch in id order. Consecutive rows of one subject go out as
// one frame (natsx.Frame), so that JetStream writes, and with SyncAlways
// fsyncs, once per frame rather than once per event; a row alone goes out as
// a plain message. Every event still gets its own producer span, and its
// consumer span continues from it.
func (r *Relay) publish(ctx context.Context, batch []row) error {
	type sent struct {
		future jetstream.PubAckFuture
		rows   []row
		spans  []trace.Span
	}
	var out []sent
	defer func() {
		for _, s := range out {
			for _, sp := range s.spans {
				sp.End()
			}
		}
	}()
	for start := 0; start < len(batch); {
		var (
			fw       natsx.FrameWriter
			spans    []trace.Span
			carriers []propagation.MapCarrier
			end      = start
		)
		subject := batch[start].subject
		for end < len(batch) && batch[end].subject == subject && fw.Fits(len(batch[end].payload)) {
			x := batch[end]
			carrier := propagation.MapCarrier{}
			span := r.sendSpan(ctx, x, carrier)
			spans = append(spans, span)
			carriers = append(carriers, carrier)
			fw.Add(x.payload, carrier)
			end++
		}
		rows := batch[start:end]
		out = append(out, sent{rows: rows, spans: spans}) // the spans end with the others
		var msg *nats.Msg
		if len(rows) == 1 {
			msg = nats.NewMsg(subject)
			msg.Data = rows[0].payload
			msg.Header.Set(jetstream.MsgIDHeader, rows[0].eventID)
			for k, v := range carriers[0] {
				msg.Header.Set(k, v)
			}
		} else {
			var err error
			// The same rows framed again (a re-publish) get the same ID.
			if msg, err = fw.Msg(subject, rows[0].eventID+".."+rows[len(rows)-1].eventID); err != nil {
				return err
			}
		}
		f, err := r.js.PublishMsgAsync(msg)
		if err != nil {
			for _, sp := range spans {
				sp.RecordError(err)
				sp.SetStatus(codes.Error, "publish")
			}
			return fmt.Errorf("publish %s: %w", rows[0].eventID, err)
		}
		out[len(out)-1].future = f
		start = end
	}
	timeout := time.After(10 * time.Second)
	var errs []error
	for _, s := range out {
		select {
		case <-s.future.Ok():
		case err := <-s.future.Err():
			for _, sp := range s.spans {
				sp.RecordError(err)
				sp.SetStatus(codes.Error, "publish not acknowledged")
			}
			errs = append(errs, fmt.Errorf("publish %s (%d events): %w", s.rows[0].eventID, len(s.rows), err))
		case <-timeout:
			return errors.New("publish: timed out waiting for acknowledgements")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	r.metrics.messages.Add(float64(len(out)))
	return nil
}

// sendSpan starts the producer span of row x, continuing the trace of the
// transaction that wrote it, and injects the span's context into carrier.
func (r *Relay) sendSpan(ctx context.Context, x row, carrier propagation.MapCarrier) trace.Span {
	parent := telemetry.WithRemoteParent(ctx, x.traceparent, x.tracestate)
	spanCtx, span := r.tracer.Start(parent, "send "+x.subject,
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(natsx.MessagingAttributes("send", x.subject, x.eventID)...),
	)
	if ev, err := events.Unmarshal(x.payload); err == nil {
		span.SetAttributes(natsx.BusinessAttributes(ev)...)
	}
	otel.GetTextMapPropagator().Inject(spanCtx, carrier)
	return span
}

func (r *Relay) observeBacklog(ctx context.Context) {
	var backlog int64
	var oldest float64
	err := r.pool.QueryRow(ctx, `SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8
		FROM outbox WHERE published_at IS NULL`).Scan(&backlog, &oldest)
	if err != nil {
		return
	}
	r.metrics.backlog.Set(float64(backlog))
	r.metrics.oldestAge.Set(oldest)
}

// Backlog returns the number of unpublished rows.
func Backlog(ctx context.Context, q interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}) (int64, error) {
	var n int64
	err := q.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE published_at IS NULL`).Scan(&n)
	return n, err
}

type relayMetrics struct {
	published prometheus.Counter
	messages  prometheus.Counter
	backlog   prometheus.Gauge
	oldestAge prometheus.Gauge
}

func newRelayMetrics(reg prometheus.Registerer, service string) *relayMetrics {
	labels := prometheus.Labels{"service": service}
	m := &relayMetrics{
		published: prometheus.NewCounter(prometheus.CounterOpts{Name: "aid_outbox_published_total", Help: "Events relayed from the outbox to JetStream.", ConstLabels: labels}),
		messages: prometheus.NewCounter(prometheus.CounterOpts{Name: "aid_outbox_messages_total",
			Help: "JetStream messages the relay published (a frame carries many events).", ConstLabels: labels}),
		backlog:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "aid_outbox_backlog", Help: "Outbox rows not yet published.", ConstLabels: labels}),
		oldestAge: prometheus.NewGauge(prometheus.GaugeOpts{Name: "aid_outbox_oldest_age_seconds", Help: "Age of the oldest unpublished outbox row.", ConstLabels: labels}),
	}
	if reg != nil {
		reg.MustRegister(m.published, m.messages, m.backlog, m.oldestAge)
	}
	return m
}

// Republish publishes again the outbox rows with ids in [fromID, toID],
// published or not, in id order, with their original message IDs. Within the
// stream's duplicate window JetStream drops them; after it, consumers drop
// them by event ID. It returns how many rows it sent.
func Republish(ctx context.Context, pool *pgxpool.Pool, js Publisher, fromID, toID int64) (int, error) {
	r := NewRelay(pool, js, slog.New(slog.DiscardHandler))
	sent := 0
	for next := fromID; next <= toID; {
		rows, err := pool.Query(ctx, `SELECT id, event_id::text, subject, payload, traceparent, tracestate
			FROM outbox WHERE id >= $1 AND id <= $2 ORDER BY id LIMIT 500`, next, toID)
		if err != nil {
			return sent, err
		}
		batch, err := pgx.CollectRows(rows, func(cr pgx.CollectableRow) (row, error) {
			var x row
			err := cr.Scan(&x.id, &x.eventID, &x.subject, &x.payload, &x.traceparent, &x.tracestate)
			return x, err
		})
		if err != nil {
			return sent, err
		}
		if len(batch) == 0 {
			break
		}
		if err := r.publish(ctx, batch); err != nil {
			return sent, err
		}
		sent += len(batch)
		next = batch[len(batch)-1].id + 1
	}
	return sent, nil
}
