// Package ports exposes payout over gRPC (and, through the gateway, REST)
// and applies the events it consumes.
package ports

import (
	"context"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/grpcx"
	"github.com/edubureau/studentaid/pkg/page"
	payoutv1 "github.com/edubureau/studentaid/proto/gen/aid/payout/v1"
	"github.com/edubureau/studentaid/services/payout/internal/app"
	"github.com/edubureau/studentaid/services/payout/internal/domain"
)

// Policy says who may read payments and the loan book: finance, the bureau,
// data officers and auditors. Nobody changes a payment through the API;
// only finance officers record repayments and recoveries of loans.
func Policy() grpcx.Policy {
	readers := []auth.Role{auth.RoleFinanceOfficer, auth.RoleBureauReviewer, auth.RoleDataOfficer, auth.RoleAuditor}
	return grpcx.Policy{
		payoutv1.PayoutService_GetPayment_FullMethodName:          readers,
		payoutv1.PayoutService_ListPayments_FullMethodName:        readers,
		payoutv1.PayoutService_ListLoans_FullMethodName:           readers,
		payoutv1.PayoutService_GetLoanBookTotals_FullMethodName:   readers,
		payoutv1.PayoutService_RecordLoanRepayment_FullMethodName: {auth.RoleFinanceOfficer},
	}
}

// Server implements payoutv1.PayoutServiceServer.
type Server struct {
	payoutv1.UnimplementedPayoutServiceServer
	app *app.Service
}

var _ payoutv1.PayoutServiceServer = (*Server)(nil)

// NewServer serves the queries of a.
func NewServer(a *app.Service) *Server { return &Server{app: a} }

var statusToProto = map[domain.Status]payoutv1.PaymentStatus{
	domain.Pending: payoutv1.PaymentStatus_PAYMENT_STATUS_PENDING,
	domain.Unknown: payoutv1.PaymentStatus_PAYMENT_STATUS_UNKNOWN,
	domain.Paid:    payoutv1.PaymentStatus_PAYMENT_STATUS_PAID,
	domain.Failed:  payoutv1.PaymentStatus_PAYMENT_STATUS_FAILED,
}

func statusFromProto(v *apperr.Violations, s payoutv1.PaymentStatus) domain.Status {
	if s == payoutv1.PaymentStatus_PAYMENT_STATUS_UNSPECIFIED {
		return ""
	}
	for d, p := range statusToProto {
		if p == s {
			return d
		}
	}
	v.Addf("status", "is not a payment status")
	return ""
}

func paymentToProto(p domain.Payment) *payoutv1.Payment {
	return &payoutv1.Payment{
		PaymentId:      p.PaymentID,
		ApplicationId:  p.ApplicationID,
		BatchId:        p.BatchID,
		SchoolCode:     p.SchoolCode,
		AmountFen:      p.AmountFen,
		BankCardMasked: p.CardMasked,
		Status:         statusToProto[p.Status],
		Reason:         p.Reason,
		BankRef:        p.BankRef,
		Attempts:       p.Attempts,
		CreatedAt:      timestamppb.New(p.CreatedAt),
		UpdatedAt:      timestamppb.New(p.UpdatedAt),

		LoanContractNumber: p.LoanContractNumber,
	}
}

// GetPayment implements payoutv1.PayoutServiceServer.
func (s *Server) GetPayment(ctx context.Context, req *payoutv1.GetPaymentRequest) (*payoutv1.Payment, error) {
	var v apperr.Violations
	id := v.CheckUUID("payment_id", req.GetPaymentId())
	if err := v.Err(); err != nil {
		return nil, err
	}
	p, err := s.app.GetPayment(ctx, id)
	if err != nil {
		return nil, err
	}
	return paymentToProto(p), nil
}

type paymentCursor struct {
	CreatedAt string `json:"t"`
	PaymentID string `json:"id"`
}

// ListPayments implements payoutv1.PayoutServiceServer.
func (s *Server) ListPayments(ctx context.Context, req *payoutv1.ListPaymentsRequest) (*payoutv1.ListPaymentsResponse, error) {
	var v apperr.Violations
	var f domain.PaymentFilter
	if req.GetBatchId() == "" && req.GetApplicationId() == "" {
		v.Addf("batch_id", "give a batch_id or an application_id")
	}
	if req.GetBatchId() != "" {
		f.BatchID = v.CheckUUID("batch_id", req.GetBatchId())
	}
	if req.GetApplicationId() != "" {
		f.ApplicationID = v.CheckUUID("application_id", req.GetApplicationId())
	}
	f.Status = statusFromProto(&v, req.GetStatus())
	limit := page.Size(&v, req.GetPageSize())
	var after *domain.PaymentCursor
	var c paymentCursor
	if page.Decode(&v, req.GetPageToken(), &c) {
		at, terr := time.Parse(time.RFC3339Nano, c.CreatedAt)
		id, ierr := uuid.Parse(c.PaymentID)
		if terr != nil || ierr != nil {
			v.Addf("page_token", "is not a page token returned by this method")
		} else {
			after = &domain.PaymentCursor{CreatedAt: at, PaymentID: id.String()}
		}
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	payments, more, err := s.app.ListPayments(ctx, f, after, limit)
	if err != nil {
		return nil, err
	}
	resp := &payoutv1.ListPaymentsResponse{Payments: make([]*payoutv1.Payment, 0, len(payments))}
	for _, p := range payments {
		resp.Payments = append(resp.Payments, paymentToProto(p))
	}
	if more {
		last := payments[len(payments)-1]
		resp.NextPageToken = page.Encode(paymentCursor{CreatedAt: last.CreatedAt.Format(time.RFC3339Nano), PaymentID: last.PaymentID})
	}
	return resp, nil
}
