package servicetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/natsx"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
)

// WaitLimit bounds every wait of these helpers.
const WaitLimit = 15 * time.Second

// Publish sends events to JetStream as another service's outbox relay would:
// on their subjects, with the event ID as the message ID.
func Publish(t testing.TB, js jetstream.JetStream, evs ...*eventsv1.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitLimit)
	defer cancel()
	for _, ev := range evs {
		data, err := events.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		msg := nats.NewMsg(events.Subject(ev.GetType()))
		msg.Data = data
		msg.Header.Set(jetstream.MsgIDHeader, ev.GetEventId())
		if _, err := js.PublishMsgAsync(msg); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		t.Fatal("publishing timed out")
	}
}

// Message is one event read from a stream, with the trace context it was
// sent in and the headers of the message (plain or frame) that carried it.
type Message struct {
	Event  *eventsv1.Event
	Trace  propagation.TextMapCarrier
	Header nats.Header
}

// Read reads the events on subject from the start of stream until n of them
// satisfy keep (nil keeps all), unpacking frames.
func Read(t testing.TB, js jetstream.JetStream, stream, subject string, n int, keep func(*eventsv1.Event) bool) []Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitLimit)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		t.Fatal(err)
	}
	var out []Message
	for len(out) < n {
		_, got := fetch(t, cons, n-len(out))
		for _, m := range got {
			if keep == nil || keep(m.Event) {
				out = append(out, m)
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("%d of %d events on %s after %s", len(out), n, subject, WaitLimit)
		}
	}
	return out
}

// fetch takes up to limit messages from cons and returns how many it took and
// the events they carried.
func fetch(t testing.TB, cons jetstream.Consumer, limit int) (int, []Message) {
	t.Helper()
	batch, err := cons.Fetch(limit, jetstream.FetchMaxWait(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var (
		n   int
		out []Message
	)
	for m := range batch.Messages() {
		evs, err := natsx.Unpack(m.Headers(), m.Data())
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range evs {
			out = append(out, Message{Event: r.Event, Trace: r.Trace, Header: m.Headers()})
		}
		n++
	}
	if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
		t.Fatal(err)
	}
	return n, out
}

// Events reads the events of type typ from the event stream until n of them
// satisfy keep (nil keeps all).
func Events(t testing.TB, js jetstream.JetStream, typ string, n int, keep func(*eventsv1.Event) bool) []*eventsv1.Event {
	t.Helper()
	ms := Read(t, js, natsx.EventStream, events.Subject(typ), n, keep)
	out := make([]*eventsv1.Event, len(ms))
	for i, m := range ms {
		out[i] = m.Event
	}
	return out
}

// Outputs reads the events of type typ (about appIDs, or all when none are
// given) from the event stream until want of them have arrived.
func Outputs(t testing.TB, js jetstream.JetStream, typ string, want int, appIDs ...string) map[string][]*eventsv1.Event {
	t.Helper()
	wanted := make(map[string]bool, len(appIDs))
	for _, id := range appIDs {
		wanted[id] = true
	}
	out := make(map[string][]*eventsv1.Event)
	for _, ev := range Events(t, js, typ, want, func(ev *eventsv1.Event) bool {
		return len(wanted) == 0 || wanted[ev.GetApplicationId()]
	}) {
		out[ev.GetApplicationId()] = append(out[ev.GetApplicationId()], ev)
	}
	return out
}

// StreamCount is how many events of type typ the event stream holds,
// counting each event of a frame.
func StreamCount(t testing.TB, js jetstream.JetStream, typ string) int {
	t.Helper()
	return CountEvents(t, js, natsx.EventStream, events.Subject(typ))
}

// CountEvents is how many events on subject stream holds now, counting each
// event of a frame.
func CountEvents(t testing.TB, js jetstream.JetStream, stream, subject string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitLimit)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	msgs := int(info.State.Subjects[subject]) //nolint:gosec // a test stream's message count fits an int
	if msgs == 0 {
		return 0
	}
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for read := 0; read < msgs; {
		took, evs := fetch(t, cons, msgs-read)
		read += took
		n += len(evs)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d messages on %s", read, msgs, subject)
		}
	}
	return n
}

// Eventually polls fn until it succeeds or WaitLimit passes.
func Eventually(t testing.TB, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(WaitLimit)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %s: %v", WaitLimit, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WantCode fails unless err is a status with code whose message contains each of parts.
func WantCode(t testing.TB, err error, code codes.Code, parts ...string) *status.Status {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code {
		t.Fatalf("got %v, want %s", err, code)
	}
	for _, p := range parts {
		if !strings.Contains(st.Message(), p) {
			t.Fatalf("message %q does not mention %q", st.Message(), p)
		}
	}
	return st
}

// ViolationFields lists the fields of a status's BadRequest detail.
func ViolationFields(st *status.Status) []string {
	var out []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				out = append(out, v.GetField())
			}
		}
	}
	return out
}

// AwaitConsumed waits until the durable consumer has applied (and acked)
// every message on its subjects published to the event stream so far. It
// compares sequences rather than trusting the pending counts alone, which
// the server updates a moment after a publish is acknowledged.
func AwaitConsumed(t testing.TB, js jetstream.JetStream, durable string) {
	t.Helper()
	Eventually(t, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c, err := js.Consumer(ctx, natsx.EventStream, durable)
		if err != nil {
			return err
		}
		stream, err := js.Stream(ctx, natsx.EventStream)
		if err != nil {
			return err
		}
		info, err := c.Info(ctx)
		if err != nil {
			return err
		}
		filters := info.Config.FilterSubjects
		if info.Config.FilterSubject != "" {
			filters = append(filters, info.Config.FilterSubject)
		}
		var last uint64
		for _, f := range filters {
			m, err := stream.GetLastMsgForSubject(ctx, f)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			last = max(last, m.Sequence)
		}
		if info.AckFloor.Stream < last || info.NumPending != 0 || info.NumAckPending != 0 {
			return fmt.Errorf("%s: acked to %d of %d, pending %d, awaiting ack %d", durable, info.AckFloor.Stream, last, info.NumPending, info.NumAckPending)
		}
		return nil
	})
}

// Querier runs a query; pools and transactions satisfy it.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// WaitCount polls a count query until it returns want.
func WaitCount(t testing.TB, q Querier, query string, want int, args ...any) {
	t.Helper()
	Eventually(t, func() error {
		var got int
		if err := q.QueryRow(context.Background(), query, args...).Scan(&got); err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("%q = %d, want %d", query, got, want)
		}
		return nil
	})
}
