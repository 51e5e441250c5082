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

// Outputs reads the events of type typ (about appIDs, or all when none are
// given) from the event stream until want of them have arrived.
func Outputs(t testing.TB, js jetstream.JetStream, typ string, want int, appIDs ...string) map[string][]*eventsv1.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitLimit)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, natsx.EventStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.Subject(typ)}})
	if err != nil {
		t.Fatal(err)
	}
	wanted := make(map[string]bool, len(appIDs))
	for _, id := range appIDs {
		wanted[id] = true
	}
	out := make(map[string][]*eventsv1.Event)
	got := 0
	for got < want {
		batch, err := cons.Fetch(want-got, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			ev, err := events.Unmarshal(m.Data())
			if err != nil {
				t.Fatal(err)
			}
			if len(wanted) == 0 || wanted[ev.GetApplicationId()] {
				out[ev.GetApplicationId()] = append(out[ev.GetApplicationId()], ev)
				got++
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			t.Fatal(err)
		}
		if ctx.Err() != nil {
			t.Fatalf("%d of %d %s events after %s", got, want, typ, WaitLimit)
		}
	}
	return out
}

// StreamCount is how many messages of type typ the event stream holds.
func StreamCount(t testing.TB, js jetstream.JetStream, typ string) uint64 {
	t.Helper()
	ctx := context.Background()
	stream, err := js.Stream(ctx, natsx.EventStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(events.Subject(typ)))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[events.Subject(typ)]
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
// everything published to the event stream so far.
func AwaitConsumed(t testing.TB, js jetstream.JetStream, durable string) {
	t.Helper()
	Eventually(t, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c, err := js.Consumer(ctx, natsx.EventStream, durable)
		if err != nil {
			return err
		}
		info, err := c.Info(ctx)
		if err != nil {
			return err
		}
		if info.NumPending != 0 || info.NumAckPending != 0 {
			return fmt.Errorf("%s: pending %d, awaiting ack %d", durable, info.NumPending, info.NumAckPending)
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
