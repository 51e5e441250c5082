package natsx_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"

	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/natsx"
)

func TestFrameRoundTrip(t *testing.T) {
	var w natsx.FrameWriter
	var want []string
	for i := range 3 {
		ev := submitted(t, "app")
		data, err := events.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		w.Add(data, propagation.MapCarrier{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0" + string(rune('0'+i))})
		want = append(want, ev.GetEventId())
	}
	m, err := w.Msg("aid.application.submitted.v1", "first..last")
	if err != nil {
		t.Fatal(err)
	}
	got, err := natsx.Unpack(m.Header, m.Data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || m.Header.Get("Nats-Msg-Id") != "first..last" {
		t.Fatalf("%d events, id %q", len(got), m.Header.Get("Nats-Msg-Id"))
	}
	for i, r := range got {
		if r.Event.GetEventId() != want[i] || !strings.HasSuffix(r.Trace.Get("traceparent"), "-0"+string(rune('0'+i))) {
			t.Fatalf("event %d: %s %q", i, r.Event.GetEventId(), r.Trace.Get("traceparent"))
		}
	}
}

func TestFrameLimits(t *testing.T) {
	var w natsx.FrameWriter
	for w.Fits(100) {
		w.Add(make([]byte, 100), nil)
	}
	if w.Len() != natsx.MaxFrameEvents {
		t.Fatalf("a frame of 100-byte events closes at %d, want %d", w.Len(), natsx.MaxFrameEvents)
	}
	var big natsx.FrameWriter
	if !big.Fits(natsx.MaxFrameBytes * 2) {
		t.Fatal("an empty frame must take any one event")
	}
	big.Add(make([]byte, natsx.MaxFrameBytes/2), nil)
	if big.Fits(natsx.MaxFrameBytes / 2) {
		t.Fatal("a frame must not grow past MaxFrameBytes")
	}
}

func TestUnpackRejectsBadFrames(t *testing.T) {
	var w natsx.FrameWriter
	data, _ := events.Marshal(submitted(t, "app"))
	w.Add(data, nil)
	w.Add(data, nil)
	good, err := w.Msg("aid.x", "id")
	if err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]*nats.Msg{
		"count mismatch": {Header: nats.Header{natsx.HeaderFrame: []string{"3"}}, Data: good.Data},
		"not a number":   {Header: nats.Header{natsx.HeaderFrame: []string{"many"}}, Data: good.Data},
		"garbage":        {Header: nats.Header{natsx.HeaderFrame: []string{"1"}}, Data: []byte{0xff, 0xff, 0xff}},
		"plain garbage":  {Header: nats.Header{}, Data: []byte{0xff, 0xff, 0xff}},
	} {
		if _, err := natsx.Unpack(m.Header, m.Data); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestCheckKey(t *testing.T) {
	for key, ok := range map[string]bool{"S001": true, "": false, " S001": false, "S\xff": false, strings.Repeat("k", natsx.MaxKeyLen+1): false} { //nolint:gocritic // mapKey: the leading space in " S001" is the invalid key under test
		err := natsx.CheckKey("school_code", key)
		if (err == nil) != ok || (err != nil && !natsx.IsPermanent(err)) {
			t.Errorf("CheckKey(%q) = %v", key, err)
		}
	}
}

func TestNotYetAndPermanentKeepTheCause(t *testing.T) {
	t.Parallel()
	cause := errors.New("payee correction before the payment's failure")
	early := natsx.NotYet(fmt.Errorf("application a1: %w", cause))
	if !errors.Is(early, natsx.ErrNotYet) || !errors.Is(early, cause) {
		t.Fatalf("NotYet: errors.Is ErrNotYet %v, cause %v", errors.Is(early, natsx.ErrNotYet), errors.Is(early, cause))
	}
	if got, want := early.Error(), "application a1: payee correction before the payment's failure"; got != want {
		t.Errorf("NotYet message %q, want %q", got, want)
	}
	never := natsx.Permanent(cause)
	if errors.Is(never, natsx.ErrNotYet) || !errors.Is(never, cause) || never.Error() != cause.Error() {
		t.Errorf("Permanent(%v) = %v", cause, never)
	}
}
