package natsx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/edubureau/studentaid/pkg/events"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
)

// Handler applies one event inside tx. The event's ID has already been
// recorded in the inbox of the same transaction, so a handler only changes
// state and appends follow-up events to the outbox. It returns ErrNotYet (or
// an error wrapping it) when the event must wait for an earlier one, and a
// Permanent error when the event can never be applied.
type Handler func(ctx context.Context, tx pgx.Tx, ev *eventsv1.Event) error

// Delivery is one event of a batch, with the context of its consumer span:
// follow-up events must be appended with that context so that they continue
// the event's trace.
type Delivery struct {
	Ctx   context.Context
	Event *eventsv1.Event
}

// BatchHandler applies several new events inside one transaction, in order.
// It is all or nothing: an error rolls back the batch, and the consumer then
// applies its events one at a time through Handle.
type BatchHandler func(ctx context.Context, tx pgx.Tx, ds []Delivery) error

// Consumer is a durable JetStream consumer that applies events to PostgreSQL
// exactly once in effect.
type Consumer struct {
	Name     string
	Subjects []string
	Handle   Handler
	// HandleBatch, when set, applies a fetched batch's new events in one call
	// (saving round trips); Handle still applies them singly after a failure.
	HandleBatch BatchHandler
	BatchSize   int
	MaxDeliver  int
	// Linger is how long a batch that has begun to fill waits for more
	// messages before it is applied (default 5 ms; a lone message never waits).
	Linger time.Duration
	// AfterCommit runs after a transaction that applied events commits
	// (e.g. to wake the outbox relay).
	AfterCommit func()

	pool    *pgxpool.Pool
	js      jetstream.JetStream
	log     *slog.Logger
	tracer  trace.Tracer
	metrics *ConsumerMetrics
}

// ConsumerMetrics are shared by a process's consumers.
type ConsumerMetrics struct {
	consumed    *prometheus.CounterVec
	redelivered *prometheus.CounterVec
	dead        *prometheus.CounterVec
	pending     *prometheus.GaugeVec
}

// NewConsumerMetrics registers the consumer metrics with reg (nil skips registering).
func NewConsumerMetrics(reg prometheus.Registerer) *ConsumerMetrics {
	m := &ConsumerMetrics{
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aid_events_consumed_total",
			Help: "Events handled by a consumer, by result (applied, duplicate, retry, dead)."}, []string{"consumer", "type", "result"}),
		redelivered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aid_events_redelivered_total",
			Help: "Deliveries of an event after the first."}, []string{"consumer"}),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aid_events_dead_lettered_total",
			Help: "Events moved to the dead-letter stream."}, []string{"consumer"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "aid_consumer_lag",
			Help: "Messages in the stream the consumer has not yet received (num_pending) plus those awaiting ack."}, []string{"consumer"}),
	}
	if reg != nil {
		reg.MustRegister(m.consumed, m.redelivered, m.dead, m.pending)
	}
	return m
}

// Bind attaches the consumer to its dependencies.
func (c *Consumer) Bind(pool *pgxpool.Pool, js jetstream.JetStream, log *slog.Logger, m *ConsumerMetrics) {
	c.pool, c.js, c.log, c.metrics = pool, js, log, m
	c.tracer = otel.Tracer("github.com/edubureau/studentaid/pkg/natsx")
	if c.BatchSize <= 0 {
		c.BatchSize = 256
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = 20
	}
	if c.Linger == 0 {
		c.Linger = 5 * time.Millisecond
	}
	if c.metrics == nil {
		c.metrics = NewConsumerMetrics(nil)
	}
}

// Run creates or updates the durable consumer and applies events until ctx
// is done. Messages are fetched in batches and applied in one transaction;
// when that fails, each message of the batch is retried in its own.
func (c *Consumer) Run(ctx context.Context) error {
	cons, err := c.js.CreateOrUpdateConsumer(ctx, EventStream, jetstream.ConsumerConfig{
		Durable:        c.Name,
		FilterSubjects: c.Subjects,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        30 * time.Second,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		MaxAckPending:  c.BatchSize * 4,
		MaxDeliver:     -1,
	})
	if err != nil {
		return fmt.Errorf("consumer %s: %w", c.Name, err)
	}
	inbox := make(chan jetstream.Msg, c.BatchSize*2)
	cc, err := cons.Consume(func(m jetstream.Msg) { inbox <- m },
		jetstream.PullMaxMessages(c.BatchSize*2),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			c.log.DebugContext(ctx, "consume", "consumer", c.Name, "err", err)
		}))
	if err != nil {
		return fmt.Errorf("consume %s: %w", c.Name, err)
	}
	defer cc.Stop()
	lagTicker := time.NewTicker(2 * time.Second)
	defer lagTicker.Stop()
	for {
		select {
		case <-ctx.Done():
			// Messages still buffered are not acked; JetStream redelivers them.
			return nil
		case <-lagTicker.C:
			if info, err := cons.Info(ctx); err == nil {
				c.metrics.pending.WithLabelValues(c.Name).Set(float64(info.NumPending + uint64(info.NumAckPending)))
			}
		case m := <-inbox:
			msgs := []jetstream.Msg{m}
			// Group commit: when more messages are arriving, wait a moment
			// for them, so that one transaction (and one fsync) applies many.
			linger := time.NewTimer(c.Linger)
		drain:
			for len(msgs) < c.BatchSize {
				select {
				case m := <-inbox:
					msgs = append(msgs, m)
				default:
					if len(msgs) == 1 || c.Linger == 0 {
						break drain // a lone message goes at once
					}
					select {
					case m := <-inbox:
						msgs = append(msgs, m)
					case <-linger.C:
						break drain
					}
				}
			}
			linger.Stop()
			c.process(ctx, msgs)
		}
	}
}

type delivery struct {
	msg    jetstream.Msg
	ev     *eventsv1.Event
	ctx    context.Context
	span   trace.Span
	result string
	err    error
}

func (c *Consumer) process(ctx context.Context, msgs []jetstream.Msg) {
	// In-flight handlers finish even when ctx is cancelled mid-batch.
	ctx = context.WithoutCancel(ctx)
	ds := make([]*delivery, 0, len(msgs))
	for _, m := range msgs {
		d := c.open(ctx, m)
		if d.err != nil {
			c.deadLetter(d)
			continue
		}
		ds = append(ds, d)
	}
	if len(ds) == 0 {
		return
	}
	if err := c.applyAll(ctx, ds); err != nil {
		// One bad message must not hold back the rest: apply one by one.
		for _, d := range ds {
			d.result, d.err = "", nil
			if err := c.applyAll(ctx, []*delivery{d}); err != nil {
				d.err = err
			}
		}
	}
	anyApplied := false
	for _, d := range ds {
		c.settle(d)
		anyApplied = anyApplied || d.result == "applied"
	}
	if anyApplied && c.AfterCommit != nil {
		c.AfterCommit()
	}
}

// open decodes a message and starts its consumer span, continuing the trace
// carried in the headers.
func (c *Consumer) open(ctx context.Context, m jetstream.Msg) *delivery {
	parent := otel.GetTextMapPropagator().Extract(ctx, HeaderCarrier(m.Headers()))
	d := &delivery{msg: m}
	msgID := m.Headers().Get(jetstream.MsgIDHeader)
	d.ctx, d.span = c.tracer.Start(parent, "process "+m.Subject(),
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(MessagingAttributes("process", m.Subject(), msgID)...),
	)
	if md, err := m.Metadata(); err == nil && md.NumDelivered > 1 {
		c.metrics.redelivered.WithLabelValues(c.Name).Inc()
	}
	ev, err := events.Unmarshal(m.Data())
	if err != nil {
		d.err = Permanent(err)
		return d
	}
	d.ev = ev
	d.span.SetAttributes(BusinessAttributes(ev)...)
	return d
}

// applyAll applies ds in one transaction; results are recorded on each
// delivery. The inbox rows of the whole batch are written by one statement;
// the events it did not insert were applied before and are skipped.
func (c *Consumer) applyAll(ctx context.Context, ds []*delivery) error {
	return pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		ids := make([]string, len(ds))
		subjects := make([]string, len(ds))
		for i, d := range ds {
			ids[i], subjects[i] = d.ev.GetEventId(), d.msg.Subject()
		}
		rows, err := tx.Query(ctx, `INSERT INTO inbox (event_id, subject)
			SELECT * FROM unnest($1::uuid[], $2::text[]) ON CONFLICT DO NOTHING RETURNING event_id::text`, ids, subjects)
		if err != nil {
			return err
		}
		inserted, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		fresh := make(map[string]bool, len(inserted))
		for _, id := range inserted {
			fresh[id] = true
		}
		var todo []*delivery
		for _, d := range ds {
			if !fresh[d.ev.GetEventId()] {
				d.result = "duplicate"
				continue
			}
			delete(fresh, d.ev.GetEventId()) // a second copy in the same batch is a duplicate
			todo = append(todo, d)
		}
		if len(todo) == 0 {
			return nil
		}
		if c.HandleBatch != nil && len(todo) > 1 {
			batch := make([]Delivery, len(todo))
			for i, d := range todo {
				batch[i] = Delivery{Ctx: d.ctx, Event: d.ev}
			}
			if err := c.HandleBatch(ctx, tx, batch); err != nil {
				return fmt.Errorf("batch of %d: %w", len(batch), err)
			}
		} else {
			for _, d := range todo {
				if err := c.Handle(d.ctx, tx, d.ev); err != nil {
					return fmt.Errorf("%s %s: %w", d.ev.GetType(), d.ev.GetEventId(), err)
				}
			}
		}
		for _, d := range todo {
			d.result = "applied"
		}
		return nil
	})
}

// settle acks, naks or dead-letters a delivery and ends its span.
func (c *Consumer) settle(d *delivery) {
	defer d.span.End()
	typ := d.ev.GetType()
	if d.err == nil {
		if err := d.msg.Ack(); err != nil {
			c.log.WarnContext(d.ctx, "ack failed; the event will be redelivered and dropped as a duplicate", "err", err)
		}
		c.metrics.consumed.WithLabelValues(c.Name, typ, d.result).Inc()
		return
	}
	md, _ := d.msg.Metadata()
	delivered := uint64(1)
	if md != nil {
		delivered = md.NumDelivered
	}
	if IsPermanent(d.err) || (!errors.Is(d.err, ErrNotYet) && delivered >= uint64(c.MaxDeliver)) {
		c.deadLetter(d)
		return
	}
	delay := time.Duration(min(delivered, 10)) * 200 * time.Millisecond
	if errors.Is(d.err, ErrNotYet) {
		c.log.DebugContext(d.ctx, "event waits for an earlier one", "type", typ, "event_id", d.ev.GetEventId())
	} else {
		c.log.WarnContext(d.ctx, "event failed; will retry", "type", typ, "event_id", d.ev.GetEventId(), "delivered", delivered, "err", d.err)
		d.span.RecordError(d.err)
	}
	_ = d.msg.NakWithDelay(delay)
	c.metrics.consumed.WithLabelValues(c.Name, typ, "retry").Inc()
}

// deadLetter publishes the message with its error to the dead-letter stream
// and terminates it, so it is never redelivered.
func (c *Consumer) deadLetter(d *delivery) {
	defer d.span.End()
	d.span.RecordError(d.err)
	d.span.SetStatus(codes.Error, "dead-lettered")
	c.log.ErrorContext(d.ctx, "event dead-lettered", "consumer", c.Name, "subject", d.msg.Subject(), "err", d.err)
	dead := nats.NewMsg(DeadPrefix + c.Name + "." + d.msg.Subject())
	dead.Data = d.msg.Data()
	for k, v := range d.msg.Headers() {
		dead.Header[k] = v
	}
	dead.Header.Set(HeaderOriginalSubject, d.msg.Subject())
	dead.Header.Set(HeaderError, truncate(d.err.Error(), 512))
	dead.Header.Set(HeaderConsumer, c.Name)
	if d.ev != nil {
		dead.Header.Set(HeaderEventID, d.ev.GetEventId())
	}
	if md, err := d.msg.Metadata(); err == nil {
		dead.Header.Set(HeaderStreamSeq, strconv.FormatUint(md.Sequence.Stream, 10))
		dead.Header.Set(jetstream.MsgIDHeader, c.Name+"-"+strconv.FormatUint(md.Sequence.Stream, 10))
	}
	if _, err := c.js.PublishMsg(d.ctx, dead); err != nil {
		c.log.ErrorContext(d.ctx, "dead-letter publish failed; leaving the event for redelivery", "err", err)
		_ = d.msg.NakWithDelay(5 * time.Second)
		return
	}
	_ = d.msg.Term()
	c.metrics.dead.WithLabelValues(c.Name).Inc()
	c.metrics.consumed.WithLabelValues(c.Name, d.ev.GetType(), "dead").Inc()
}

// Headers of dead-lettered messages.
const (
	HeaderOriginalSubject = "Aid-Original-Subject"
	HeaderError           = "Aid-Error"
	HeaderConsumer        = "Aid-Consumer"
	HeaderStreamSeq       = "Aid-Stream-Seq"
	HeaderEventID         = "Aid-Event-Id"
)

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
