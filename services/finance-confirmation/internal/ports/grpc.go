// Package ports exposes finance-confirmation over gRPC (and, through the
// gateway, REST) and applies the events it consumes.
package ports

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/grpcx"
	"github.com/edubureau/studentaid/pkg/page"
	financev1 "github.com/edubureau/studentaid/proto/gen/aid/finance/v1"
	"github.com/edubureau/studentaid/services/finance-confirmation/internal/app"
	"github.com/edubureau/studentaid/services/finance-confirmation/internal/domain"
)

// Policy says who may call each method: reading is open to finance, the
// bureau, data officers and auditors; every change is the finance officer's,
// and ordering payment (confirming, reissuing) is domain.ConfirmerRole's,
// whom domain.CheckConfirmer then holds to separation of duties.
func Policy() grpcx.Policy {
	readers := []auth.Role{auth.RoleFinanceOfficer, auth.RoleBureauReviewer, auth.RoleDataOfficer, auth.RoleAuditor}
	officer := []auth.Role{auth.RoleFinanceOfficer}
	confirmer := []auth.Role{domain.ConfirmerRole}
	return grpcx.Policy{
		financev1.FinanceConfirmationService_ListBatches_FullMethodName:    readers,
		financev1.FinanceConfirmationService_GetBatch_FullMethodName:       readers,
		financev1.FinanceConfirmationService_ListBatchItems_FullMethodName: readers,
		financev1.FinanceConfirmationService_CloseBatch_FullMethodName:     officer,
		financev1.FinanceConfirmationService_ConfirmBatch_FullMethodName:   confirmer,
		financev1.FinanceConfirmationService_ReturnItem_FullMethodName:     officer,
		financev1.FinanceConfirmationService_ReissuePayment_FullMethodName: confirmer,
	}
}

// Server implements financev1.FinanceConfirmationServiceServer.
type Server struct {
	financev1.UnimplementedFinanceConfirmationServiceServer
	app *app.Service
}

var _ financev1.FinanceConfirmationServiceServer = (*Server)(nil)

// NewServer serves the use cases of a.
func NewServer(a *app.Service) *Server { return &Server{app: a} }

var batchStatusToProto = map[domain.BatchStatus]financev1.BatchStatus{
	domain.BatchOpen:      financev1.BatchStatus_BATCH_STATUS_OPEN,
	domain.BatchClosed:    financev1.BatchStatus_BATCH_STATUS_CLOSED,
	domain.BatchConfirmed: financev1.BatchStatus_BATCH_STATUS_CONFIRMED,
}

var itemStatusToProto = map[domain.ItemStatus]financev1.ItemStatus{
	domain.ItemPending:  financev1.ItemStatus_ITEM_STATUS_PENDING,
	domain.ItemReturned: financev1.ItemStatus_ITEM_STATUS_RETURNED,
	domain.ItemOrdered:  financev1.ItemStatus_ITEM_STATUS_ORDERED,
	domain.ItemPaid:     financev1.ItemStatus_ITEM_STATUS_PAID,
	domain.ItemFailed:   financev1.ItemStatus_ITEM_STATUS_FAILED,
}

func batchStatusFromProto(v *apperr.Violations, s financev1.BatchStatus) domain.BatchStatus {
	if s == financev1.BatchStatus_BATCH_STATUS_UNSPECIFIED {
		return ""
	}
	for d, p := range batchStatusToProto {
		if p == s {
			return d
		}
	}
	v.Addf("status", "is not a batch status")
	return ""
}

func itemStatusFromProto(v *apperr.Violations, s financev1.ItemStatus) domain.ItemStatus {
	if s == financev1.ItemStatus_ITEM_STATUS_UNSPECIFIED {
		return ""
	}
	for d, p := range itemStatusToProto {
		if p == s {
			return d
		}
	}
	v.Addf("status", "is not an item status")
	return ""
}

func batchToProto(b domain.Batch) *financev1.Batch {
	out := &financev1.Batch{
		BatchId:       b.ID,
		Term:          b.Term,
		ProgramCode:   b.ProgramCode,
		FundingSource: b.FundingSource,
		Status:        batchStatusToProto[b.Status],
		ControlCount:  b.ControlCount,
		ControlSumFen: b.ControlSumFen,
		PaidCount:     b.PaidCount,
		PaidSumFen:    b.PaidSumFen,
		FailedCount:   b.FailedCount,
		ConfirmedBy:   b.ConfirmedBy,
		CreatedAt:     timestamppb.New(b.CreatedAt),
	}
	if !b.ConfirmedAt.IsZero() {
		out.ConfirmedAt = timestamppb.New(b.ConfirmedAt)
	}
	return out
}

func itemToProto(it domain.Item) *financev1.BatchItem {
	return &financev1.BatchItem{
		BatchId:       it.BatchID,
		ApplicationId: it.ApplicationID,
		SchoolCode:    it.SchoolCode,
		AmountFen:     it.AmountFen,
		Status:        itemStatusToProto[it.Status],
		Reason:        it.Reason,
		PaymentId:     it.PaymentID,
		Attempt:       it.Attempt,
	}
}

type batchCursor struct {
	CreatedAt string `json:"t"`
	BatchID   string `json:"id"`
}

type itemCursor struct {
	ApplicationID string `json:"a"`
}

// ListBatches implements financev1.FinanceConfirmationServiceServer.
func (s *Server) ListBatches(ctx context.Context, req *financev1.ListBatchesRequest) (*financev1.ListBatchesResponse, error) {
	var v apperr.Violations
	checkText(&v, "term", req.GetTerm(), maxFilterLen)
	checkText(&v, "program_code", req.GetProgramCode(), maxFilterLen)
	status := batchStatusFromProto(&v, req.GetStatus())
	limit := page.Size(&v, req.GetPageSize())
	var after *domain.BatchCursor
	var c batchCursor
	if page.Decode(&v, req.GetPageToken(), &c) {
		at, terr := time.Parse(time.RFC3339Nano, c.CreatedAt)
		id, ierr := uuid.Parse(c.BatchID)
		if terr != nil || ierr != nil {
			v.Addf("page_token", "is not a page token returned by this method")
		} else {
			after = &domain.BatchCursor{CreatedAt: at, BatchID: id.String()}
		}
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	batches, more, err := s.app.ListBatches(ctx, domain.BatchFilter{Term: req.GetTerm(), ProgramCode: req.GetProgramCode(), Status: status}, after, limit)
	if err != nil {
		return nil, err
	}
	resp := &financev1.ListBatchesResponse{Batches: make([]*financev1.Batch, 0, len(batches))}
	for _, b := range batches {
		resp.Batches = append(resp.Batches, batchToProto(b))
	}
	if more {
		last := batches[len(batches)-1]
		resp.NextPageToken = page.Encode(batchCursor{CreatedAt: last.CreatedAt.Format(time.RFC3339Nano), BatchID: last.ID})
	}
	return resp, nil
}

// GetBatch implements financev1.FinanceConfirmationServiceServer.
func (s *Server) GetBatch(ctx context.Context, req *financev1.GetBatchRequest) (*financev1.Batch, error) {
	var v apperr.Violations
	id := v.CheckUUID("batch_id", req.GetBatchId())
	if err := v.Err(); err != nil {
		return nil, err
	}
	b, err := s.app.GetBatch(ctx, id)
	if err != nil {
		return nil, err
	}
	return batchToProto(b), nil
}

// ListBatchItems implements financev1.FinanceConfirmationServiceServer.
func (s *Server) ListBatchItems(ctx context.Context, req *financev1.ListBatchItemsRequest) (*financev1.ListBatchItemsResponse, error) {
	var v apperr.Violations
	id := v.CheckUUID("batch_id", req.GetBatchId())
	status := itemStatusFromProto(&v, req.GetStatus())
	limit := page.Size(&v, req.GetPageSize())
	after := ""
	var c itemCursor
	if page.Decode(&v, req.GetPageToken(), &c) {
		a, err := uuid.Parse(c.ApplicationID)
		if err != nil {
			v.Addf("page_token", "is not a page token returned by this method")
		} else {
			after = a.String()
		}
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	items, more, err := s.app.ListItems(ctx, id, status, after, limit)
	if err != nil {
		return nil, err
	}
	resp := &financev1.ListBatchItemsResponse{Items: make([]*financev1.BatchItem, 0, len(items))}
	for _, it := range items {
		resp.Items = append(resp.Items, itemToProto(it))
	}
	if more {
		resp.NextPageToken = page.Encode(itemCursor{ApplicationID: items[len(items)-1].ApplicationID})
	}
	return resp, nil
}

// CloseBatch implements financev1.FinanceConfirmationServiceServer.
func (s *Server) CloseBatch(ctx context.Context, req *financev1.CloseBatchRequest) (*financev1.Batch, error) {
	who, err := grpcx.Caller(ctx)
	if err != nil {
		return nil, err
	}
	var v apperr.Violations
	id := v.CheckUUID("batch_id", req.GetBatchId())
	if err := v.Err(); err != nil {
		return nil, err
	}
	b, err := s.app.CloseBatch(ctx, who, id)
	if err != nil {
		return nil, err
	}
	return batchToProto(b), nil
}

// ConfirmBatch implements financev1.FinanceConfirmationServiceServer.
func (s *Server) ConfirmBatch(ctx context.Context, req *financev1.ConfirmBatchRequest) (*financev1.Batch, error) {
	who, err := grpcx.Caller(ctx)
	if err != nil {
		return nil, err
	}
	var v apperr.Violations
	id := v.CheckUUID("batch_id", req.GetBatchId())
	if req.GetControlCount() < 0 {
		v.Addf("control_count", "must not be negative")
	}
	if req.GetControlSumFen() < 0 {
		v.Addf("control_sum_fen", "must not be negative")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	b, err := s.app.ConfirmBatch(ctx, who, id, req.GetControlCount(), req.GetControlSumFen())
	if err != nil {
		return nil, err
	}
	return batchToProto(b), nil
}

// ReturnItem implements financev1.FinanceConfirmationServiceServer.
func (s *Server) ReturnItem(ctx context.Context, req *financev1.ReturnItemRequest) (*financev1.Batch, error) {
	who, err := grpcx.Caller(ctx)
	if err != nil {
		return nil, err
	}
	var v apperr.Violations
	id := v.CheckUUID("batch_id", req.GetBatchId())
	appID := v.CheckUUID("application_id", req.GetApplicationId())
	reason := strings.TrimSpace(req.GetReason())
	if reason == "" {
		v.Addf("reason", "is required: say why the item goes back to the bureau")
	} else {
		checkText(&v, "reason", reason, domain.MaxReasonRunes)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	b, err := s.app.ReturnItem(ctx, who, id, appID, reason)
	if err != nil {
		return nil, err
	}
	return batchToProto(b), nil
}

// ReissuePayment implements financev1.FinanceConfirmationServiceServer.
func (s *Server) ReissuePayment(ctx context.Context, req *financev1.ReissuePaymentRequest) (*financev1.BatchItem, error) {
	who, err := grpcx.Caller(ctx)
	if err != nil {
		return nil, err
	}
	var v apperr.Violations
	id := v.CheckUUID("batch_id", req.GetBatchId())
	appID := v.CheckUUID("application_id", req.GetApplicationId())
	if err := v.Err(); err != nil {
		return nil, err
	}
	it, err := s.app.ReissuePayment(ctx, who, id, appID)
	if err != nil {
		return nil, err
	}
	return itemToProto(it), nil
}
