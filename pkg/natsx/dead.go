package natsx

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DeadLetter is an event a consumer gave up on.
type DeadLetter struct {
	Sequence        uint64
	Consumer        string
	OriginalSubject string
	Error           string
	EventID         string
	At              time.Time
	Data            []byte
}

// ListDead returns the dead letters of consumer ("" for all), oldest first.
func ListDead(ctx context.Context, js jetstream.JetStream, consumer string) ([]DeadLetter, error) {
	s, err := js.Stream(ctx, DeadStream)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	var out []DeadLetter
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		d := DeadLetter{
			Sequence:        m.Sequence,
			Consumer:        m.Header.Get(HeaderConsumer),
			OriginalSubject: m.Header.Get(HeaderOriginalSubject),
			Error:           m.Header.Get(HeaderError),
			EventID:         m.Header.Get(HeaderEventID),
			At:              m.Time,
			Data:            m.Data,
		}
		if consumer == "" || d.Consumer == consumer {
			out = append(out, d)
		}
	}
	return out, nil
}

// ReplayDead publishes a dead letter again on its original subject, under a
// fresh message ID so the stream accepts it (the consumer's inbox still makes
// it take effect once), and removes it from the dead-letter stream.
func ReplayDead(ctx context.Context, js jetstream.JetStream, seq uint64) error {
	s, err := js.Stream(ctx, DeadStream)
	if err != nil {
		return err
	}
	m, err := s.GetMsg(ctx, seq)
	if err != nil {
		return fmt.Errorf("dead letter %d: %w", seq, err)
	}
	subject := m.Header.Get(HeaderOriginalSubject)
	if subject == "" {
		return fmt.Errorf("dead letter %d has no original subject", seq)
	}
	msg := nats.NewMsg(subject)
	msg.Data = m.Data
	maps.Copy(msg.Header, m.Header)
	for _, h := range []string{HeaderOriginalSubject, HeaderError, HeaderConsumer, HeaderStreamSeq, HeaderEventID} {
		msg.Header.Del(h)
	}
	msg.Header.Set(jetstream.MsgIDHeader, "replay-"+strconv.FormatUint(seq, 10)+"-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("replay %d: %w", seq, err)
	}
	return s.DeleteMsg(ctx, seq)
}
