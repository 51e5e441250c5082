package natsx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
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
	Ctx   context.Context //nolint:containedctx // a delivery carries its consumer span's context so follow-up events continue the trace
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
	// OnDeadLetter, when set, runs once for each event moved to the
	// dead-letter stream, with the error that sent it there (e.g. to count
	// refusals by reason).
	OnDeadLetter func(ev *eventsv1.Event, err error)

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
	refused     *prometheus.CounterVec
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
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aid_events_refused_total",
			Help: "Events a consumer refused for their origin and dead-lettered, by reason (malformed, unowned_type, wrong_subject, not_consumed)."}, []string{"consumer", "reason"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "aid_consumer_lag",
			Help: "Messages in the stream the consumer has not yet received (num_pending) plus those awaiting ack."}, []string{"consumer"}),
	}
	if reg != nil {
		reg.MustRegister(m.consumed, m.redelivered, m.dead, m.refused, m.pending)
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
// is done. Messages are fetched in batches and their events applied in one
// transaction; when that fails, each event is retried in its own.
func (c *Consumer) Run(ctx context.Context) error {
	cons, err := c.declare(ctx)
	if err != nil {
		return fmt.Errorf("consumer %s: %w", c.Name, err)
	}
	// The client buffers up to PullMaxBytes; this hand-over channel stays
	// short so that frames (up to MaxFrameEvents events each) waiting here
	// cannot add more than a few MiB on top.
	inbox := make(chan jetstream.Msg, 16)
	cc, err := cons.Consume(func(m jetstream.Msg) { inbox <- m },
		// Bytes, not messages: a frame holds up to MaxFrameEvents events.
		jetstream.PullMaxBytes(4*MaxFrameBytes),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			c.log.DebugContext(ctx, "consume", "consumer", c.Name, "err", err)
		}))
	if err != nil {
		return fmt.Errorf("consume %s: %w", c.Name, err)
	}
	defer cc.Stop()
	lagTicker := time.NewTicker(2 * time.Second)
	defer lagTicker.Stop()
	// In-flight handlers finish even when ctx is cancelled mid-batch.
	work := context.WithoutCancel(ctx)
	for {
		select {
		case <-ctx.Done():
			// Messages still buffered are not acked; JetStream redelivers them.
			return nil
		case <-lagTicker.C:
			// Bounded: an unanswered request (a cluster electing a
			// leader) must not stall the applying of events.
			ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
			if info, err := cons.Info(ictx); err == nil {
				c.metrics.pending.WithLabelValues(c.Name).Set(float64(info.NumPending + uint64(info.NumAckPending))) //nolint:gosec // G115: NumAckPending is a count of messages, never negative
			}
			cancel()
		case m := <-inbox:
			msgs := []*message{c.open(work, m)}
			n := len(msgs[0].ds)
			// Group commit: when more messages are arriving, wait a moment
			// for them, so that one transaction (and one fsync) applies many.
			linger := time.NewTimer(c.Linger)
		drain:
			for n < c.BatchSize {
				select {
				case m := <-inbox:
					msgs = append(msgs, c.open(work, m))
					n += len(msgs[len(msgs)-1].ds)
				default:
					if n <= 1 || c.Linger == 0 {
						break drain // a lone event goes at once
					}
					select {
					case m := <-inbox:
						msgs = append(msgs, c.open(work, m))
						n += len(msgs[len(msgs)-1].ds)
					case <-linger.C:
						break drain
					}
				}
			}
			linger.Stop()
			c.process(work, msgs)
		}
	}
}

// declare creates or updates the durable consumer. A JetStream cluster
// electing a leader (a node lost, a restart) answers late or not at all for
// a few seconds: each attempt has its own deadline and failures are retried
// with backoff until ctx ends.
func (c *Consumer) declare(ctx context.Context) (jetstream.Consumer, error) {
	cfg := jetstream.ConsumerConfig{
		Durable:        c.Name,
		FilterSubjects: c.Subjects,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        30 * time.Second,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		MaxAckPending:  c.BatchSize * 4,
		MaxDeliver:     -1,
	}
	wait := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		cons, err := c.js.CreateOrUpdateConsumer(actx, EventStream, cfg)
		cancel()
		if err == nil {
			return cons, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		c.log.WarnContext(ctx, "declare consumer failed; retrying", "consumer", c.Name, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// message is one JetStream message and the events it carries.
type message struct {
	msg jetstream.Msg
	ds  []*delivery
	// err is set when the message cannot be decoded at all.
	err  error
	span trace.Span
}

// delivery is one event of a message.
type delivery struct {
	msg    *message
	index  int
	ev     *eventsv1.Event
	data   []byte
	trace  propagation.TextMapCarrier
	ctx    context.Context //nolint:containedctx // the context of this event's consumer span, ended when the message settles
	span   trace.Span
	result string
	err    error
}

func (c *Consumer) process(ctx context.Context, msgs []*message) {
	var ds []*delivery
	for _, m := range msgs {
		if m.err != nil {
			c.deadLetterMessage(ctx, m)
			continue
		}
		for _, d := range m.ds {
			if d.err == nil { // refused events are dead-lettered, never applied
				ds = append(ds, d)
			}
		}
	}
	if len(ds) > 0 {
		if err := c.applyAll(ctx, ds); err != nil {
			// One bad event must not hold back the rest: apply one by one.
			for _, d := range ds {
				d.result, d.err = "", nil
				if err := c.applyAll(ctx, []*delivery{d}); err != nil {
					d.err = err
				}
			}
		}
	}
	anyApplied := false
	for _, m := range msgs {
		if m.err != nil {
			continue
		}
		c.settle(m)
		for _, d := range m.ds {
			anyApplied = anyApplied || d.result == "applied"
		}
	}
	if anyApplied && c.AfterCommit != nil {
		c.AfterCommit()
	}
}

// open decodes a message into its events and starts each event's consumer
// span, continuing the trace the event was sent in.
func (c *Consumer) open(ctx context.Context, m jetstream.Msg) *message {
	out := &message{msg: m}
	if md, err := m.Metadata(); err == nil && md.NumDelivered > 1 {
		c.metrics.redelivered.WithLabelValues(c.Name).Inc()
	}
	received, err := Unpack(m.Headers(), m.Data())
	if err != nil {
		c.metrics.refused.WithLabelValues(c.Name, RefusedMalformed).Inc()
		out.err = Permanent(err)
		parent := otel.GetTextMapPropagator().Extract(ctx, HeaderCarrier(m.Headers()))
		_, out.span = c.tracer.Start(parent, "process "+m.Subject(), //nolint:spancheck // ended with the message
			trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithAttributes(MessagingAttributes("process", m.Subject(), m.Headers().Get(jetstream.MsgIDHeader))...))
		return out
	}
	out.ds = make([]*delivery, len(received))
	for i, r := range received {
		d := c.startDelivery(ctx, out, i, r)
		if reason, err := c.checkOrigin(m.Subject(), r.Event); err != nil {
			c.metrics.refused.WithLabelValues(c.Name, reason).Inc()
			d.err = Permanent(err)
		}
		out.ds[i] = d
	}
	return out
}

// Reasons a consumer refuses an event (aid_events_refused_total).
const (
	// RefusedMalformed: the message does not decode, or an event's type
	// does not match its body.
	RefusedMalformed = "malformed"
	// RefusedUnownedType: no service owns the event's type (events.Owner).
	RefusedUnownedType = "unowned_type"
	// RefusedWrongSubject: the event came on a subject other than its
	// type's, so the NATS permission that guards the type's subject did not
	// guard it.
	RefusedWrongSubject = "wrong_subject"
	// RefusedNotConsumed: the consumer does not follow the event's type.
	RefusedNotConsumed = "not_consumed"
)

// checkOrigin accepts an event only when its type has an owner, it arrived
// on events.Subject(type), which only the owner may publish to, and the
// consumer follows that subject. It returns the reason of a refusal.
func (c *Consumer) checkOrigin(subject string, ev *eventsv1.Event) (string, error) {
	typ := ev.GetType()
	if events.Owner(typ) == "" {
		return RefusedUnownedType, fmt.Errorf("refused event %s: no service owns type %q", ev.GetEventId(), typ)
	}
	if want := events.Subject(typ); subject != want {
		return RefusedWrongSubject, fmt.Errorf("refused event %s: type %s came on subject %s, not %s (only %s may publish it)", ev.GetEventId(), typ, subject, want, events.Owner(typ))
	}
	if !slices.ContainsFunc(c.Subjects, func(f string) bool { return SubjectMatches(f, subject) }) {
		return RefusedNotConsumed, fmt.Errorf("refused event %s: consumer %s does not follow %s", ev.GetEventId(), c.Name, subject)
	}
	return "", nil
}

// SubjectMatches reports whether subject matches the NATS filter ("*" one
// token, ">" the rest).
func SubjectMatches(filter, subject string) bool {
	if filter == subject {
		return true
	}
	if !strings.ContainsAny(filter, "*>") {
		return false
	}
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, tok := range f {
		switch {
		case tok == ">":
			return len(s) > i
		case i >= len(s):
			return false
		case tok != "*" && tok != s[i]:
			return false
		}
	}
	return len(f) == len(s)
}

// startDelivery makes the delivery of event i of m and starts its consumer
// span, continuing the trace the event was sent in.
func (c *Consumer) startDelivery(ctx context.Context, m *message, i int, r Received) *delivery {
	d := &delivery{msg: m, index: i, ev: r.Event, data: r.Data, trace: r.Trace}
	subject := m.msg.Subject()
	parent := otel.GetTextMapPropagator().Extract(ctx, r.Trace)
	d.ctx, d.span = c.tracer.Start(parent, "process "+subject, //nolint:spancheck // the delivery ends its span when it is acked or dead-lettered
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(MessagingAttributes("process", subject, r.Event.GetEventId())...),
		trace.WithAttributes(BusinessAttributes(r.Event)...),
	)
	return d
}

// applyAll applies ds in one transaction; results are recorded on each
// delivery. The inbox rows of the whole batch are written by one statement;
// the events it did not insert were applied before and are skipped.
func (c *Consumer) applyAll(ctx context.Context, ds []*delivery) error {
	// The transaction's SQL (the inbox insert, the handler's statements,
	// the commit) runs in a trace: under the event's own process span when
	// it is alone, else under an "apply" span child of the first event's
	// process span and linked to the others'.
	if len(ds) == 1 {
		ctx = trace.ContextWithSpan(ctx, ds[0].span)
	} else if len(ds) > 1 {
		links := make([]trace.Link, 0, len(ds)-1)
		for _, d := range ds[1:] {
			links = append(links, trace.LinkFromContext(d.ctx))
		}
		_, span := c.tracer.Start(ds[0].ctx, "apply "+c.Name, trace.WithLinks(links...),
			trace.WithAttributes(attribute.Int("messaging.batch.message_count", len(ds))))
		defer span.End()
		ctx = trace.ContextWithSpan(ctx, span)
	}
	return pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		ids := make([]string, len(ds))
		subjects := make([]string, len(ds))
		for i, d := range ds {
			ids[i], subjects[i] = d.ev.GetEventId(), d.msg.msg.Subject()
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

// settle acks a message whose events were all applied (or dead-lettered),
// and otherwise naks it for redelivery, when the events already applied are
// dropped by the inbox. It ends the events' spans.
func (c *Consumer) settle(m *message) {
	delivered := uint64(1)
	if md, _ := m.msg.Metadata(); md != nil {
		delivered = md.NumDelivered
	}
	var retry time.Duration
	for _, d := range m.ds {
		typ := d.ev.GetType()
		switch {
		case d.err == nil:
			c.metrics.consumed.WithLabelValues(c.Name, typ, d.result).Inc()
		case IsPermanent(d.err) || (!errors.Is(d.err, ErrNotYet) && delivered >= uint64(c.MaxDeliver)): //nolint:gosec // G115: Bind makes MaxDeliver positive
			if !c.deadLetter(d) {
				retry = max(retry, 5*time.Second)
			}
		default:
			if errors.Is(d.err, ErrNotYet) {
				c.log.DebugContext(d.ctx, "event waits for an earlier one", "type", typ, "event_id", d.ev.GetEventId())
			} else {
				c.log.WarnContext(d.ctx, "event failed; will retry", "type", typ, "event_id", d.ev.GetEventId(), "delivered", delivered, "err", d.err)
				d.span.RecordError(d.err)
			}
			c.metrics.consumed.WithLabelValues(c.Name, typ, "retry").Inc()
			retry = max(retry, time.Duration(min(delivered, 10))*200*time.Millisecond)
		}
		d.span.End()
	}
	if retry > 0 {
		_ = m.msg.NakWithDelay(retry)
		return
	}
	if err := m.msg.Ack(); err != nil {
		c.log.Warn("ack failed; the events will be redelivered and dropped as duplicates", "consumer", c.Name, "err", err)
	}
}

// deadLetter publishes one event with its error to the dead-letter stream,
// so that it is never applied by redelivery, and reports whether it did.
func (c *Consumer) deadLetter(d *delivery) bool {
	d.span.RecordError(d.err)
	d.span.SetStatus(codes.Error, "dead-lettered")
	dead := nats.NewMsg(DeadPrefix + c.Name + "." + d.msg.msg.Subject())
	dead.Data = d.data
	for _, k := range d.trace.Keys() {
		dead.Header.Set(k, d.trace.Get(k))
	}
	dead.Header.Del(HeaderFrame)
	dead.Header.Set(HeaderEventID, d.ev.GetEventId())
	id := c.Name
	if md, err := d.msg.msg.Metadata(); err == nil {
		dead.Header.Set(HeaderStreamSeq, strconv.FormatUint(md.Sequence.Stream, 10))
		id += "-" + strconv.FormatUint(md.Sequence.Stream, 10)
	}
	if len(d.msg.ds) > 1 {
		// A frame redelivered for another event's sake dead-letters this
		// one again under the same ID, which the dead-letter stream drops.
		id += "-" + strconv.Itoa(d.index)
	}
	if !c.publishDead(d.ctx, dead, d.msg.msg.Subject(), d.err, id) {
		return false
	}
	c.metrics.consumed.WithLabelValues(c.Name, d.ev.GetType(), "dead").Inc()
	if c.OnDeadLetter != nil {
		c.OnDeadLetter(d.ev, d.err)
	}
	return true
}

// deadLetterMessage dead-letters a message that cannot be decoded, whole.
func (c *Consumer) deadLetterMessage(ctx context.Context, m *message) {
	defer m.span.End()
	m.span.RecordError(m.err)
	m.span.SetStatus(codes.Error, "dead-lettered")
	dead := nats.NewMsg(DeadPrefix + c.Name + "." + m.msg.Subject())
	dead.Data = m.msg.Data()
	maps.Copy(dead.Header, m.msg.Headers())
	id := c.Name
	if md, err := m.msg.Metadata(); err == nil {
		dead.Header.Set(HeaderStreamSeq, strconv.FormatUint(md.Sequence.Stream, 10))
		id += "-" + strconv.FormatUint(md.Sequence.Stream, 10)
	}
	if !c.publishDead(ctx, dead, m.msg.Subject(), m.err, id) {
		_ = m.msg.NakWithDelay(5 * time.Second)
		return
	}
	c.metrics.consumed.WithLabelValues(c.Name, "", "dead").Inc()
	_ = m.msg.Term()
}

// publishDead sends a dead letter with the headers that say where it came
// from and why, and reports whether JetStream stored it.
func (c *Consumer) publishDead(ctx context.Context, dead *nats.Msg, subject string, cause error, id string) bool {
	c.log.ErrorContext(ctx, "event dead-lettered", "consumer", c.Name, "subject", subject, "err", cause)
	dead.Header.Set(HeaderOriginalSubject, subject)
	dead.Header.Set(HeaderError, truncate(cause.Error(), 512))
	dead.Header.Set(HeaderConsumer, c.Name)
	dead.Header.Set(jetstream.MsgIDHeader, id)
	if _, err := c.js.PublishMsg(ctx, dead); err != nil {
		c.log.ErrorContext(ctx, "dead-letter publish failed; leaving the event for redelivery", "err", err)
		return false
	}
	c.metrics.dead.WithLabelValues(c.Name).Inc()
	return true
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
