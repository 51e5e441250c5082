package natsx_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/edubureau/studentaid/internal/devtools/testenv"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/natsx"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
)

func TestServerRefusesUnauthenticatedAndUnknownUsers(t *testing.T) {
	t.Parallel()
	url := testenv.NATS(t)
	if nc, err := nats.Connect(url); err == nil {
		nc.Close()
		t.Fatal("connected without credentials; want an authorization violation")
	} else if !strings.Contains(err.Error(), "Authorization Violation") {
		t.Errorf("anonymous connect: %v; want an authorization violation", err)
	}
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	if nc, err := nats.Connect(url, nats.Nkey(pub, kp.Sign)); err == nil {
		nc.Close()
		t.Fatal("connected with an NKey the server does not know; want an authorization violation")
	}
}

// publishAs publishes ev on subject as identity and returns the error the
// server gave the connection, if any.
func publishAs(t *testing.T, url, identity, subject string, ev *eventsv1.Event) error {
	t.Helper()
	nc, js := testenv.ConnectNATS(t, url, identity)
	data, err := events.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg(subject)
	msg.Data = data
	msg.Header.Set(jetstream.MsgIDHeader, ev.GetEventId())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("%w (connection: %w)", err, nc.LastError())
	}
	return nil
}

func order(t *testing.T) *eventsv1.Event {
	t.Helper()
	return events.MustNew(time.Now(), events.Actor("system:finance", "system", "FINANCE"),
		events.Keys{ApplicationID: "a-1", BatchID: "b-1", SchoolCode: "S001", ProgramCode: "PRESCHOOL_AID", Term: "2017-autumn"},
		&eventsv1.PaymentOrdered{PaymentId: "p-1", AmountFen: 50000, Attempt: 1})
}

func TestOnlyTheOwnerMayPublishItsEvents(t *testing.T) {
	t.Parallel()
	b := setup(t)
	subject := events.Subject(events.TypePaymentOrdered)
	for _, identity := range []string{"payout", "application", "school-review", "bureau-review", "data-comparison", natsx.LoadgenIdentity} {
		t.Run(identity, func(t *testing.T) {
			err := publishAs(t, b.url, identity, subject, order(t))
			if err == nil || !strings.Contains(err.Error(), `Permissions Violation for Publish to "aid.finance.payment_ordered.v1"`) {
				t.Fatalf("%s publishing a payment order: %v; want the server's permissions violation", identity, err)
			}
		})
	}
	if err := publishAs(t, b.url, "finance-confirmation", subject, order(t)); err != nil {
		t.Fatalf("finance-confirmation publishing its own order: %v", err)
	}
	// Nor may a service publish another's dead letters.
	if err := publishAs(t, b.url, "payout", natsx.DeadPrefix+"application.x", order(t)); err == nil {
		t.Error("payout published to application's dead letters; want a permissions violation")
	}
	if n := countSubject(t, b.js, natsx.EventStream, subject); n != 1 {
		t.Errorf("the stream holds %d payment orders, want the 1 finance-confirmation published", n)
	}
}

func TestAServiceCannotChangeStreamsOrOthersConsumers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, js := testenv.ConnectNATS(t, b.url, "payout")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.Stream(ctx, natsx.EventStream); err != nil {
		t.Fatalf("payout looking up the event stream: %v", err)
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, natsx.EventStream, jetstream.ConsumerConfig{Durable: "payout", FilterSubjects: []string{"aid.finance.>", "aid.application.>"}}); err != nil {
		t.Fatalf("payout creating its own durable: %v", err)
	}
	attempts := map[string]func(ctx context.Context) error{
		"delete the event stream": func(ctx context.Context) error { return js.DeleteStream(ctx, natsx.EventStream) },
		"create a stream": func(ctx context.Context) error {
			_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVIL", Subjects: []string{"evil.>"}})
			return err
		},
		"purge the dead letters": func(ctx context.Context) error {
			s, err := js.Stream(ctx, natsx.DeadStream)
			if err != nil {
				return err
			}
			return s.Purge(ctx)
		},
		"take over application's durable": func(ctx context.Context) error {
			_, err := js.CreateOrUpdateConsumer(ctx, natsx.EventStream, jetstream.ConsumerConfig{Durable: "application", FilterSubjects: []string{"aid.>", "dead.>"}})
			return err
		},
	}
	for what, try := range attempts {
		t.Run(what, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if err := try(ctx); err == nil {
				t.Errorf("payout could %s; want a refusal", what)
			}
		})
	}
}

func TestConsumerDeadLettersEventsOffTheirOwnersSubject(t *testing.T) {
	t.Parallel()
	b := setup(t)
	reg := prometheus.NewRegistry()
	c := &natsx.Consumer{Name: "svc", Subjects: []string{events.Subject(events.TypePaymentOrdered)}, Handle: recordEffect}
	c.Bind(b.pool, b.js, b.log, natsx.NewConsumerMetrics(reg))
	runBound(t, c)

	subject := events.Subject(events.TypePaymentOrdered)
	// A submission published on the order subject: its type is not its subject's.
	wrong := submitted(t, "a-wrong-subject")
	// An envelope naming the order type around a submission's body.
	mismatched := proto.Clone(wrong).(*eventsv1.Event)
	mismatched.EventId, mismatched.Type = "0193c5b0-0000-7000-8000-000000000002", events.TypePaymentOrdered
	for _, ev := range []*eventsv1.Event{wrong, mismatched} {
		data, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		msg := nats.NewMsg(subject)
		msg.Data = data
		msg.Header.Set(jetstream.MsgIDHeader, ev.GetEventId())
		if _, err := b.js.PublishMsg(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for countSubject(t, b.js, natsx.DeadStream, natsx.DeadPrefix+"svc."+subject) < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := countSubject(t, b.js, natsx.DeadStream, natsx.DeadPrefix+"svc."+subject); n != 2 {
		t.Fatalf("%d dead letters, want both events", n)
	}
	var applied int
	if err := b.pool.QueryRow(context.Background(), `SELECT count(*) FROM effects`).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if applied != 0 {
		t.Errorf("%d refused events were applied, want 0", applied)
	}
	for reason, want := range map[string]float64{natsx.RefusedWrongSubject: 1, natsx.RefusedMalformed: 1} {
		if got := labelled(t, reg, "aid_events_refused_total", reason); got != want {
			t.Errorf("aid_events_refused_total{reason=%q} = %v, want %v", reason, got, want)
		}
	}
}

// runBound runs an already bound consumer until the test ends.
func runBound(t *testing.T, c *natsx.Consumer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("consumer: %v", err)
		}
	})
}

// labelled reads the counter name whose reason label is reason.
func labelled(t *testing.T, reg *prometheus.Registry, name, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// countSubject counts the messages of stream on subject.
func countSubject(t *testing.T, js jetstream.JetStream, stream, subject string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	return int(info.State.Subjects[subject])
}

func TestSubjectMatches(t *testing.T) {
	tests := []struct {
		filter, subject string
		want            bool
	}{
		{"aid.finance.payment_ordered.v1", "aid.finance.payment_ordered.v1", true},
		{"aid.schoolreview.>", "aid.schoolreview.approved.v1", true},
		{"aid.schoolreview.>", "aid.schoolreview", false},
		{"aid.*.approved.v1", "aid.bureaureview.approved.v1", true},
		{"aid.*.approved.v1", "aid.bureaureview.rejected.v1", false},
		{"aid.finance.payment_ordered.v1", "aid.finance.payment_ordered.v1.x", false},
	}
	for _, tt := range tests {
		t.Run(tt.filter+" "+tt.subject, func(t *testing.T) {
			if got := natsx.SubjectMatches(tt.filter, tt.subject); got != tt.want {
				t.Errorf("SubjectMatches(%q, %q) = %v, want %v", tt.filter, tt.subject, got, tt.want)
			}
		})
	}
}
