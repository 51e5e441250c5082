package ports

import (
	"context"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/edubureau/studentaid/pkg/grpcx"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
	"github.com/edubureau/studentaid/services/application/internal/app"
)

// The webhook methods.
const (
	MethodCreateWebhook              = applicationv1.ApplicationService_CreateWebhook_FullMethodName
	MethodListWebhooks               = applicationv1.ApplicationService_ListWebhooks_FullMethodName
	MethodDeleteWebhook              = applicationv1.ApplicationService_DeleteWebhook_FullMethodName
	MethodListWebhookDeadLetters     = applicationv1.ApplicationService_ListWebhookDeadLetters_FullMethodName
	MethodRedeliverWebhookDeadLetter = applicationv1.ApplicationService_RedeliverWebhookDeadLetter_FullMethodName
)

func webhookToProto(w app.Webhook) *applicationv1.Webhook {
	out := &applicationv1.Webhook{
		WebhookId: w.ID, SchoolCode: w.SchoolCode, Url: w.URL, CreatedBy: w.CreatedBy,
		CreatedAt: timestamppb.New(w.CreatedAt), DeliveredCursor: w.DeliveredCursor,
		FailedAttempts: int32(min(w.Attempts, 1<<30)), LastError: w.LastError, //nolint:gosec // bounded
	}
	if w.LastDeliveredAt != nil {
		out.LastDeliveredAt = timestamppb.New(*w.LastDeliveredAt)
	}
	if w.DeletedAt != nil {
		out.DeletedAt = timestamppb.New(*w.DeletedAt)
	}
	return out
}

func deadLetterToProto(d app.DeadLetter) *applicationv1.WebhookDeadLetter {
	out := &applicationv1.WebhookDeadLetter{
		DeadLetterId: d.ID, WebhookId: d.WebhookID, AfterCursor: d.AfterCursor, LastCursor: d.LastCursor,
		Changes: int32(min(d.Changes, 1<<30)), Attempts: int32(min(d.Attempts, 1<<30)), //nolint:gosec // bounded
		LastError: d.LastError, FailedAt: timestamppb.New(d.FailedAt),
	}
	if d.RedeliveredAt != nil {
		out.RedeliveredAt = timestamppb.New(*d.RedeliveredAt)
	}
	return out
}

func changeToProto(c app.Change) *applicationv1.Change {
	return &applicationv1.Change{
		Cursor: c.Cursor, ApplicationId: c.ApplicationID, TrailPosition: c.TrailPosition, Type: c.Type,
		Status: statusToProto(c.Status), PreviousStatus: statusToProto(c.PreviousStatus),
		OccurredAt: timestamppb.New(c.OccurredAt), RecordedAt: timestamppb.New(c.RecordedAt),
	}
}

// EncodeDelivery is a webhook delivery's JSON body: WebhookDelivery in
// protojson, as the REST answers are written.
func EncodeDelivery(d app.Delivery) ([]byte, error) {
	msg := &applicationv1.WebhookDelivery{WebhookId: d.WebhookID, SchoolCode: d.SchoolCode, NextCursor: d.NextCursor,
		Attempt: int32(min(d.Attempt, 1<<30)), Redelivery: d.Redelivery, //nolint:gosec // bounded
		Changes: make([]*applicationv1.Change, len(d.Changes))}
	for i, c := range d.Changes {
		msg.Changes[i] = changeToProto(c)
	}
	return protojson.Marshal(msg)
}

// CreateWebhook implements the RPC.
func (s *Server) CreateWebhook(ctx context.Context, req *applicationv1.CreateWebhookRequest) (*applicationv1.CreateWebhookResponse, error) {
	id, err := grpcx.Caller(ctx)
	if err != nil {
		return nil, err
	}
	w, secret, err := s.app.CreateWebhook(ctx, id, req.GetSchoolCode(), req.GetUrl(), req.GetAfter())
	if err != nil {
		return nil, err
	}
	return &applicationv1.CreateWebhookResponse{Webhook: webhookToProto(w), Secret: secret}, nil
}

// ListWebhooks implements the RPC.
func (s *Server) ListWebhooks(ctx context.Context, req *applicationv1.ListWebhooksRequest) (*applicationv1.ListWebhooksResponse, error) {
	id, err := grpcx.Caller(ctx)
	if err != nil {
		return nil, err
	}
	list, err := s.app.ListWebhooks(ctx, id, req.GetSchoolCode())
	if err != nil {
		return nil, err
	}
	out := &applicationv1.ListWebhooksResponse{Webhooks: make([]*applicationv1.Webhook, len(list))}
	for i, w := range list {
		out.Webhooks[i] = webhookToProto(w)
	}
	return out, nil
}

// DeleteWebhook implements the RPC.
func (s *Server) DeleteWebhook(ctx context.Context, req *applicationv1.DeleteWebhookRequest) (*applicationv1.Webhook, error) {
	id, err := grpcx.Caller(ctx)
	if err != nil {
		return nil, err
	}
	w, err := s.app.DeleteWebhook(ctx, id, req.GetSchoolCode(), req.GetWebhookId())
	if err != nil {
		return nil, err
	}
	return webhookToProto(w), nil
}

// ListWebhookDeadLetters implements the RPC.
func (s *Server) ListWebhookDeadLetters(ctx context.Context, req *applicationv1.ListWebhookDeadLettersRequest) (*applicationv1.ListWebhookDeadLettersResponse, error) {
	id, err := grpcx.Caller(ctx)
	if err != nil {
		return nil, err
	}
	list, err := s.app.ListDeadLetters(ctx, id, req.GetSchoolCode(), req.GetWebhookId())
	if err != nil {
		return nil, err
	}
	out := &applicationv1.ListWebhookDeadLettersResponse{DeadLetters: make([]*applicationv1.WebhookDeadLetter, len(list))}
	for i, d := range list {
		out.DeadLetters[i] = deadLetterToProto(d)
	}
	return out, nil
}

// RedeliverWebhookDeadLetter implements the RPC.
func (s *Server) RedeliverWebhookDeadLetter(ctx context.Context, req *applicationv1.RedeliverWebhookDeadLetterRequest) (*applicationv1.WebhookDeadLetter, error) {
	id, err := grpcx.Caller(ctx)
	if err != nil {
		return nil, err
	}
	d, err := s.app.RedeliverDeadLetter(ctx, id, req.GetSchoolCode(), req.GetWebhookId(), req.GetDeadLetterId())
	if err != nil {
		return nil, err
	}
	return deadLetterToProto(d), nil
}
