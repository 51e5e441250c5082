package natsx

import (
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/protobuf/proto"

	"github.com/edubureau/studentaid/pkg/events"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
)

// HeaderFrame marks a message whose data is an eventsv1.Frame; its value is
// the number of events it carries.
const HeaderFrame = "Aid-Frame"

// Frame limits: a frame stays well under NATS's default 1 MiB payload.
const (
	MaxFrameEvents = 256
	MaxFrameBytes  = 512 << 10
)

// Received is one event taken from a stream message: a message holds one
// event, or several when it is a frame.
type Received struct {
	Event *eventsv1.Event
	// Data is the encoded event.
	Data []byte
	// Trace is the trace context the event was sent in.
	Trace propagation.TextMapCarrier
}

// Unpack decodes the events of a stream message.
func Unpack(h nats.Header, data []byte) ([]Received, error) {
	if h.Get(HeaderFrame) == "" {
		ev, err := events.Unmarshal(data)
		if err != nil {
			return nil, err
		}
		return []Received{{Event: ev, Data: data, Trace: HeaderCarrier(h)}}, nil
	}
	var f eventsv1.Frame
	if err := proto.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("decode frame: %w", err)
	}
	if n, err := strconv.Atoi(h.Get(HeaderFrame)); err != nil || n != len(f.GetEvents()) {
		return nil, fmt.Errorf("frame header says %q events, frame holds %d", h.Get(HeaderFrame), len(f.GetEvents()))
	}
	out := make([]Received, len(f.GetEvents()))
	for i, fe := range f.GetEvents() {
		ev, err := events.Unmarshal(fe.GetEvent())
		if err != nil {
			return nil, fmt.Errorf("framed event %d: %w", i, err)
		}
		carrier := propagation.MapCarrier{}
		if tp := fe.GetTraceparent(); tp != "" {
			carrier["traceparent"] = tp
		}
		if ts := fe.GetTracestate(); ts != "" {
			carrier["tracestate"] = ts
		}
		out[i] = Received{Event: ev, Data: fe.GetEvent(), Trace: carrier}
	}
	return out, nil
}

// FrameWriter packs events of one subject into frames.
type FrameWriter struct {
	frame eventsv1.Frame
	size  int
}

// Fits reports whether an event of n bytes still fits in the frame.
func (w *FrameWriter) Fits(n int) bool {
	return len(w.frame.GetEvents()) == 0 || (len(w.frame.GetEvents()) < MaxFrameEvents && w.size+n+64 <= MaxFrameBytes)
}

// Add appends an encoded event and the trace context it is sent in.
func (w *FrameWriter) Add(data []byte, trace propagation.MapCarrier) {
	w.frame.Events = append(w.frame.Events, &eventsv1.FramedEvent{
		Event:       data,
		Traceparent: trace["traceparent"],
		Tracestate:  trace["tracestate"],
	})
	w.size += len(data) + 64
}

// Len is the number of events added.
func (w *FrameWriter) Len() int { return len(w.frame.GetEvents()) }

// Msg returns the frame as a message on subject with message ID id.
func (w *FrameWriter) Msg(subject, id string) (*nats.Msg, error) {
	data, err := proto.Marshal(&w.frame)
	if err != nil {
		return nil, fmt.Errorf("encode frame: %w", err)
	}
	m := nats.NewMsg(subject)
	m.Data = data
	m.Header.Set(HeaderFrame, strconv.Itoa(len(w.frame.GetEvents())))
	m.Header.Set(jetstream.MsgIDHeader, id)
	return m, nil
}
