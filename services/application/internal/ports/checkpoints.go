package ports

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/edubureau/studentaid/pkg/natsx"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	"github.com/edubureau/studentaid/services/application/anchor"
	"github.com/edubureau/studentaid/services/application/internal/app"
)

// CheckpointStream reads the signed checkpoints back from the JetStream
// stream AID_CHECKPOINTS, which lies outside the service's database.
type CheckpointStream struct {
	JS jetstream.JetStream
}

var _ app.CheckpointSource = CheckpointStream{}

// Latest returns the last checkpoint published on natsx.CheckpointSubject.
func (c CheckpointStream) Latest(ctx context.Context) (app.PublishedCheckpoint, bool, error) {
	s, err := c.JS.Stream(ctx, natsx.CheckpointStream)
	if err != nil {
		return app.PublishedCheckpoint{}, false, fmt.Errorf("stream %s: %w", natsx.CheckpointStream, err)
	}
	msg, err := s.GetLastMsgForSubject(ctx, natsx.CheckpointSubject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return app.PublishedCheckpoint{}, false, nil
	}
	if err != nil {
		return app.PublishedCheckpoint{}, false, fmt.Errorf("last checkpoint on %s: %w", natsx.CheckpointStream, err)
	}
	got, err := natsx.Unpack(msg.Header, msg.Data)
	if err != nil || len(got) == 0 {
		return app.PublishedCheckpoint{}, false, fmt.Errorf("checkpoint message %d: %w", msg.Sequence, err)
	}
	// A frame holds checkpoints in the order they were signed.
	cp, err := CheckpointOf(got[len(got)-1].Event)
	if err != nil {
		return app.PublishedCheckpoint{}, false, fmt.Errorf("checkpoint message %d: %w", msg.Sequence, err)
	}
	return app.PublishedCheckpoint{Checkpoint: cp, Sequence: msg.Sequence}, true, nil
}

// CheckpointOf is the checkpoint a TrailCheckpointed event carries.
func CheckpointOf(ev *eventsv1.Event) (anchor.Checkpoint, error) {
	b := ev.GetTrailCheckpointed()
	if b == nil {
		return anchor.Checkpoint{}, fmt.Errorf("event %s is a %s, not a checkpoint", ev.GetEventId(), ev.GetType())
	}
	var c anchor.Checkpoint
	if len(b.GetRootHash()) != len(c.Root) {
		return c, fmt.Errorf("checkpoint %s: root of %d bytes", ev.GetEventId(), len(b.GetRootHash()))
	}
	copy(c.Root[:], b.GetRootHash())
	c.TreeSize, c.Time, c.KeyID, c.Signature = b.GetTreeSize(), b.GetSignedAt().AsTime().UTC(), b.GetKeyId(), b.GetSignature()
	return c, nil
}
