package ports

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/grpcx"
	"github.com/edubureau/studentaid/pkg/natsx"
	"github.com/edubureau/studentaid/pkg/page"
	payoutv1 "github.com/edubureau/studentaid/proto/gen/aid/payout/v1"
	"github.com/edubureau/studentaid/services/payout/internal/app"
	"github.com/edubureau/studentaid/services/payout/internal/domain"
)

var repaymentKinds = map[payoutv1.LoanRepaymentKind]domain.RepaymentKind{
	payoutv1.LoanRepaymentKind_LOAN_REPAYMENT_KIND_REPAYMENT: domain.KindRepayment,
	payoutv1.LoanRepaymentKind_LOAN_REPAYMENT_KIND_RECOVERY:  domain.KindRecovery,
}

func kindToProto(k domain.RepaymentKind) payoutv1.LoanRepaymentKind {
	for p, d := range repaymentKinds {
		if d == k {
			return p
		}
	}
	return payoutv1.LoanRepaymentKind_LOAN_REPAYMENT_KIND_UNSPECIFIED
}

var loanStatuses = map[domain.LoanStatus]payoutv1.LoanStatus{
	domain.LoanOpen:   payoutv1.LoanStatus_LOAN_STATUS_OPEN,
	domain.LoanRepaid: payoutv1.LoanStatus_LOAN_STATUS_REPAID,
}

func loanStatusFromProto(v *apperr.Violations, s payoutv1.LoanStatus) domain.LoanStatus {
	if s == payoutv1.LoanStatus_LOAN_STATUS_UNSPECIFIED {
		return ""
	}
	for d, p := range loanStatuses {
		if p == s {
			return d
		}
	}
	v.Addf("status", "is not a loan status (OPEN or REPAID)")
	return ""
}

func loanToProto(c domain.LoanContract) *payoutv1.LoanContract {
	return &payoutv1.LoanContract{
		ContractNumber: c.ContractNumber,
		PaymentId:      c.PaymentID,
		ApplicationId:  c.ApplicationID,
		BatchId:        c.BatchID,
		SchoolCode:     c.SchoolCode,
		ProgramCode:    c.ProgramCode,
		Term:           c.Term,
		AmountFen:      c.AmountFen,
		Years:          c.Years,
		OpenedAt:       timestamppb.New(c.OpenedAt),
		RepaidFen:      c.RepaidFen,
		RecoveredFen:   c.RecoveredFen,
		OutstandingFen: c.OutstandingFen(),
		Status:         loanStatuses[c.Status()],
	}
}

func repaymentToProto(r domain.Repayment) *payoutv1.LoanRepayment {
	return &payoutv1.LoanRepayment{
		RepaymentId:    r.ID,
		ContractNumber: r.ContractNumber,
		Kind:           kindToProto(r.Kind),
		AmountFen:      r.AmountFen,
		BankReference:  r.BankReference,
		PaidOn:         r.PaidOn.Format(time.DateOnly),
		Reason:         r.Reason,
		RecordedBy:     r.RecordedBy,
		RecordedAt:     timestamppb.New(r.RecordedAt),
	}
}

// RecordLoanRepayment implements payoutv1.PayoutServiceServer.
func (s *Server) RecordLoanRepayment(ctx context.Context, req *payoutv1.RecordLoanRepaymentRequest) (*payoutv1.RecordLoanRepaymentResponse, error) {
	by, err := grpcx.Caller(ctx)
	if err != nil {
		return nil, err
	}
	in := app.RepaymentInput{ContractNumber: req.GetContractNumber(), Kind: repaymentKinds[req.GetKind()], AmountFen: req.GetAmountFen(),
		BankReference: req.GetBankReference(), PaidOn: req.GetPaidOn(), Reason: req.GetReason()}
	r, c, err := s.app.RecordLoanRepayment(ctx, by, in)
	if err != nil {
		return nil, err
	}
	return &payoutv1.RecordLoanRepaymentResponse{Repayment: repaymentToProto(r), Contract: loanToProto(c)}, nil
}

// loanFilter reads the loan book's filters.
func loanFilter(v *apperr.Violations, term, school string, status payoutv1.LoanStatus) domain.LoanFilter {
	f := domain.LoanFilter{Term: term, SchoolCode: school, Status: loanStatusFromProto(v, status)}
	for _, k := range [][2]string{{"term", term}, {"school_code", school}} {
		if k[1] != "" && natsx.CheckKey(k[0], k[1]) != nil {
			v.Addf(k[0], "is not a %s (letters, digits, - and _)", k[0])
		}
	}
	return f
}

type loanCursor struct {
	ContractNumber string `json:"c"`
}

// ListLoans implements payoutv1.PayoutServiceServer.
func (s *Server) ListLoans(ctx context.Context, req *payoutv1.ListLoansRequest) (*payoutv1.ListLoansResponse, error) {
	var v apperr.Violations
	f := loanFilter(&v, req.GetTerm(), req.GetSchoolCode(), req.GetStatus())
	limit := page.Size(&v, req.GetPageSize())
	var c loanCursor
	if page.Decode(&v, req.GetPageToken(), &c) && c.ContractNumber == "" {
		v.Addf("page_token", "is not a page token returned by this method")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	loans, more, err := s.app.ListLoans(ctx, f, c.ContractNumber, limit)
	if err != nil {
		return nil, err
	}
	resp := &payoutv1.ListLoansResponse{Loans: make([]*payoutv1.LoanContract, 0, len(loans))}
	for _, l := range loans {
		resp.Loans = append(resp.Loans, loanToProto(l))
	}
	if more {
		resp.NextPageToken = page.Encode(loanCursor{ContractNumber: loans[len(loans)-1].ContractNumber})
	}
	return resp, nil
}

// GetLoanBookTotals implements payoutv1.PayoutServiceServer.
func (s *Server) GetLoanBookTotals(ctx context.Context, req *payoutv1.GetLoanBookTotalsRequest) (*payoutv1.LoanBookTotals, error) {
	var v apperr.Violations
	f := loanFilter(&v, req.GetTerm(), req.GetSchoolCode(), req.GetStatus())
	if err := v.Err(); err != nil {
		return nil, err
	}
	t, err := s.app.LoanBookTotals(ctx, f)
	if err != nil {
		return nil, err
	}
	return &payoutv1.LoanBookTotals{Contracts: t.Contracts, AmountFen: t.AmountFen, RepaidFen: t.RepaidFen,
		RecoveredFen: t.RecoveredFen, OutstandingFen: t.OutstandingFen}, nil
}
