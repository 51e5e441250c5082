// Package ports exposes the application service: the gRPC API (and through
// it the REST gateway) and the handler of the events of the later steps.
package ports

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/grpcx"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
	commonv1 "github.com/edubureau/studentaid/proto/gen/aid/common/v1"
	"github.com/edubureau/studentaid/services/application/internal/app"
	"github.com/edubureau/studentaid/services/application/internal/domain"
)

// Full method names of the service, for the policy.
const (
	MethodSubmitApplications = "/aid.application.v1.ApplicationService/SubmitApplications"
	MethodGetApplication     = "/aid.application.v1.ApplicationService/GetApplication"
	MethodListApplications   = "/aid.application.v1.ApplicationService/ListApplications"
	MethodGetTrail           = "/aid.application.v1.ApplicationService/GetTrail"
	MethodVerifyTrail        = "/aid.application.v1.ApplicationService/VerifyTrail"
	MethodCorrectPayee       = "/aid.application.v1.ApplicationService/CorrectPayee"
	// MethodApprovePayeeCorrection and MethodRejectPayeeCorrection are the
	// second pair of eyes on a payee correction.
	MethodApprovePayeeCorrection = applicationv1.ApplicationService_ApprovePayeeCorrection_FullMethodName
	MethodRejectPayeeCorrection  = applicationv1.ApplicationService_RejectPayeeCorrection_FullMethodName
	MethodListPrograms           = "/aid.application.v1.ApplicationService/ListPrograms"
	// MethodExportCheckpoint, MethodExportTrailLeaves and
	// MethodGetInclusionProof are the trail anchor's exports, for auditors.
	MethodExportCheckpoint  = applicationv1.ApplicationService_ExportCheckpoint_FullMethodName
	MethodExportTrailLeaves = applicationv1.ApplicationService_ExportTrailLeaves_FullMethodName
	MethodGetInclusionProof = applicationv1.ApplicationService_GetInclusionProof_FullMethodName
)

// Policy says which roles may call each method. Ops is in none of them.
func Policy() grpcx.Policy {
	readers := []auth.Role{auth.RoleSchoolOfficer, auth.RoleSchoolReviewer, auth.RoleBureauReviewer,
		auth.RoleFinanceOfficer, auth.RoleDataOfficer, auth.RoleAuditor}
	return grpcx.Policy{
		MethodSubmitApplications: {auth.RoleSchoolOfficer},
		MethodGetApplication:     readers,
		MethodListApplications:   readers,
		MethodGetTrail:           readers,
		MethodVerifyTrail:        {auth.RoleAuditor, auth.RoleDataOfficer, auth.RoleBureauReviewer},
		MethodCorrectPayee:       {auth.RoleSchoolOfficer},
		MethodListPrograms:       append(slices.Clone(readers), auth.RolePolicyAdmin),
		// School roles follow their own school (app.Service.Changes checks).
		MethodListChanges: readers,
		// School roles read their own school's (app.Service.ListBackPayOrders checks).
		MethodListBackPayOrders: readers,
		// A school's portal manages its own school's webhooks (app checks
		// the school); auditors read them.
		MethodCreateWebhook:              {auth.RoleSchoolOfficer},
		MethodDeleteWebhook:              {auth.RoleSchoolOfficer},
		MethodRedeliverWebhookDeadLetter: {auth.RoleSchoolOfficer},
		MethodListWebhooks:               {auth.RoleSchoolOfficer, auth.RoleAuditor},
		MethodListWebhookDeadLetters:     {auth.RoleSchoolOfficer, auth.RoleAuditor},
		// The school reviewer decides; domain.CheckPayeeApprover also
		// checks the school and that the reviewer did not enter it.
		MethodApprovePayeeCorrection: {domain.PayeeApproverRole},
		MethodRejectPayeeCorrection:  {domain.PayeeApproverRole},
		MethodExportCheckpoint:       {auth.RoleAuditor},
		MethodExportTrailLeaves:      {auth.RoleAuditor},
		MethodGetInclusionProof:      {auth.RoleAuditor},
		// The policy: drafted and approved by policy administrators, read
		// by everyone who works with it.
		MethodDraftPolicyVersion:   {auth.RolePolicyAdmin},
		MethodApprovePolicyVersion: {auth.RolePolicyAdmin},
		MethodPreviewPolicyVersion: {auth.RolePolicyAdmin, auth.RoleBureauReviewer, auth.RoleAuditor},
		MethodListPolicyVersions:   append(slices.Clone(readers), auth.RolePolicyAdmin),
		MethodGetPolicyVersion:     append(slices.Clone(readers), auth.RolePolicyAdmin),
	}
}

// Server implements applicationv1.ApplicationServiceServer.
type Server struct {
	applicationv1.UnimplementedApplicationServiceServer
	app *app.Service
	// Anchor, when set, counts VerifyTrail answers that are not ok.
	Anchor *AnchorMetrics
}

var _ applicationv1.ApplicationServiceServer = (*Server)(nil)

// NewServer returns the gRPC server of the use cases in a.
func NewServer(a *app.Service) *Server { return &Server{app: a} }

// SubmitApplications implements the RPC.
func (s *Server) SubmitApplications(ctx context.Context, req *applicationv1.SubmitApplicationsRequest) (*applicationv1.SubmitApplicationsResponse, error) {
	id, err := grpcx.Caller(ctx)
	if err != nil {
		return nil, err
	}
	in := app.SubmitRequest{SchoolCode: req.GetSchoolCode(), Term: req.GetTerm(), IdempotencyKey: req.GetIdempotencyKey(),
		ValidateOnly: req.GetValidateOnly(),
		Applications: make([]app.NewApplication, len(req.GetApplications()))}
	for i, a := range req.GetApplications() {
		in.Applications[i] = app.NewApplication{
			StudentIDNumber: a.GetStudentIdNumber(), StudentName: a.GetStudentName(), Stage: a.GetStage(),
			ProgramCode: a.GetProgramCode(), Boarding: a.GetBoarding(), Rural: a.GetRural(), RegisteredPoor: a.GetRegisteredPoor(),
			BankCardNumber: a.GetBankCardNumber(), AccountName: a.GetAccountName(), RequestedAmountFen: a.GetRequestedAmountFen(),
			BackPayClueID: a.GetBackPayClueId(),
		}
	}
	apps, err := s.app.Submit(ctx, id, in)
	if err != nil {
		return nil, err
	}
	out := &applicationv1.SubmitApplicationsResponse{Applications: make([]*applicationv1.Application, len(apps))}
	for i, v := range app.Views(apps) {
		out.Applications[i] = toProto(v)
	}
	return out, nil
}

// GetApplication implements the RPC.
func (s *Server) GetApplication(ctx context.Context, req *applicationv1.GetApplicationRequest) (*applicationv1.Application, error) {
	id, err := grpcx.Caller(ctx)
	if err != nil {
		return nil, err
	}
	v, err := s.app.Get(ctx, id, req.GetApplicationId(), req.GetPurpose())
	if err != nil {
		return nil, err
	}
	return toProto(v), nil
}

// ListApplications implements the RPC.
func (s *Server) ListApplications(ctx context.Context, req *applicationv1.ListApplicationsRequest) (*applicationv1.ListApplicationsResponse, error) {
	id, err := grpcx.Caller(ctx)
	if err != nil {
		return nil, err
	}
	in := app.ListRequest{SchoolCode: req.GetSchoolCode(), Term: req.GetTerm(), ProgramCode: req.GetProgramCode(),
		PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken(), Purpose: req.GetPurpose(), PendingPayee: req.GetPendingPayeeCorrection()}
	if st := req.GetStatus(); st != commonv1.ApplicationStatus_APPLICATION_STATUS_UNSPECIFIED {
		in.Status = statusFromProto(st)
		if in.Status == "" {
			var v apperr.Violations
			v.Addf("status", "is not a known status")
			return nil, v.Err()
		}
	}
	views, next, err := s.app.List(ctx, id, in)
	if err != nil {
		return nil, err
	}
	out := &applicationv1.ListApplicationsResponse{NextPageToken: next, Applications: make([]*applicationv1.Application, len(views))}
	for i, v := range views {
		out.Applications[i] = toProto(v)
	}
	return out, nil
}

// GetTrail implements the RPC.
func (s *Server) GetTrail(ctx context.Context, req *applicationv1.GetTrailRequest) (*applicationv1.Trail, error) {
	id, err := grpcx.Caller(ctx)
	if err != nil {
		return nil, err
	}
	entries, err := s.app.Trail(ctx, id, req.GetApplicationId())
	if err != nil {
		return nil, err
	}
	out := &applicationv1.Trail{ApplicationId: req.GetApplicationId(), Events: make([]*applicationv1.TrailEvent, len(entries))}
	for i, e := range entries {
		out.Events[i] = &applicationv1.TrailEvent{
			Position: e.Position, EventId: e.EventID, Type: e.Type, OccurredAt: timestamppb.New(e.OccurredAt),
			Actor:  &commonv1.Actor{UserId: e.ActorUser, Role: e.ActorRole, Org: e.ActorOrg},
			Status: statusToProto(e.Status), Reason: e.Reason, AmountFen: e.AmountFen, BatchId: e.BatchID,
			PrevHash: e.PrevHash, Hash: e.Hash,
		}
	}
	return out, nil
}

// VerifyTrail implements the RPC.
func (s *Server) VerifyTrail(ctx context.Context, req *applicationv1.VerifyTrailRequest) (*applicationv1.VerifyTrailResponse, error) {
	id, err := grpcx.Caller(ctx)
	if err != nil {
		return nil, err
	}
	v, err := s.app.VerifyTrail(ctx, id, req.GetApplicationId())
	if err != nil {
		return nil, err
	}
	if !v.OK && s.Anchor != nil {
		s.Anchor.verifyFailures.Inc()
	}
	out := &applicationv1.VerifyTrailResponse{Ok: v.OK, Length: v.Length, FirstBadPosition: v.FirstBadPosition, Problem: v.Problem,
		AnchoredEntries: v.Anchored, UnanchoredEntries: v.Unanchored}
	for _, c := range v.Checks {
		out.Checks = append(out.Checks, &applicationv1.TrailCheck{Name: c.Name, Ok: c.OK, Detail: c.Detail})
	}
	if v.Checkpoint != nil {
		out.Checkpoint = checkpointToProto(*v.Checkpoint)
	}
	return out, nil
}

func checkpointToProto(c app.PublishedCheckpoint) *applicationv1.TrailCheckpoint {
	return &applicationv1.TrailCheckpoint{TreeSize: c.TreeSize, RootHash: c.Root.String(), Time: timestamppb.New(c.Time),
		KeyId: c.KeyID, Signature: c.Signature, StreamSequence: c.Sequence}
}

// ExportCheckpoint implements the RPC.
func (s *Server) ExportCheckpoint(ctx context.Context, _ *applicationv1.ExportCheckpointRequest) (*applicationv1.ExportCheckpointResponse, error) {
	id, err := grpcx.Caller(ctx)
	if err != nil {
		return nil, err
	}
	cp, err := s.app.ExportCheckpoint(ctx, id)
	if err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(cp.Checkpoint, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode checkpoint: %w", err)
	}
	return &applicationv1.ExportCheckpointResponse{Checkpoint: checkpointToProto(cp), CheckpointJson: b}, nil
}

// ExportTrailLeaves implements the RPC.
func (s *Server) ExportTrailLeaves(ctx context.Context, req *applicationv1.ExportTrailLeavesRequest) (*applicationv1.ExportTrailLeavesResponse, error) {
	id, err := grpcx.Caller(ctx)
	if err != nil {
		return nil, err
	}
	x, err := s.app.ExportLeaves(ctx, id, req.GetStart(), req.GetEnd())
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(x)
	if err != nil {
		return nil, fmt.Errorf("encode leaves: %w", err)
	}
	return &applicationv1.ExportTrailLeavesResponse{ExportJson: b}, nil
}

// GetInclusionProof implements the RPC.
func (s *Server) GetInclusionProof(ctx context.Context, req *applicationv1.GetInclusionProofRequest) (*applicationv1.GetInclusionProofResponse, error) {
	id, err := grpcx.Caller(ctx)
	if err != nil {
		return nil, err
	}
	x, err := s.app.InclusionProof(ctx, id, req.GetApplicationId())
	if err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(x, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode inclusion proof: %w", err)
	}
	return &applicationv1.GetInclusionProofResponse{ProofJson: b}, nil
}

// CorrectPayee implements the RPC.
func (s *Server) CorrectPayee(ctx context.Context, req *applicationv1.CorrectPayeeRequest) (*applicationv1.Application, error) {
	id, err := grpcx.Caller(ctx)
	if err != nil {
		return nil, err
	}
	v, err := s.app.CorrectPayee(ctx, id, req.GetApplicationId(), req.GetBankCardNumber(), req.GetAccountName())
	if err != nil {
		return nil, err
	}
	return toProto(v), nil
}

// ApprovePayeeCorrection implements the RPC.
func (s *Server) ApprovePayeeCorrection(ctx context.Context, req *applicationv1.ApprovePayeeCorrectionRequest) (*applicationv1.Application, error) {
	id, err := grpcx.Caller(ctx)
	if err != nil {
		return nil, err
	}
	v, err := s.app.ApprovePayeeCorrection(ctx, id, req.GetApplicationId(), req.GetCorrectionId())
	if err != nil {
		return nil, err
	}
	return toProto(v), nil
}

// RejectPayeeCorrection implements the RPC.
func (s *Server) RejectPayeeCorrection(ctx context.Context, req *applicationv1.RejectPayeeCorrectionRequest) (*applicationv1.Application, error) {
	id, err := grpcx.Caller(ctx)
	if err != nil {
		return nil, err
	}
	v, err := s.app.RejectPayeeCorrection(ctx, id, req.GetApplicationId(), req.GetCorrectionId(), req.GetReason())
	if err != nil {
		return nil, err
	}
	return toProto(v), nil
}

// toProto renders an application as its caller may see it.
func toProto(v app.View) *applicationv1.Application {
	a := v.Application
	out := &applicationv1.Application{
		ApplicationId: a.ID, SchoolCode: a.SchoolCode, Term: a.Term, ProgramCode: a.ProgramCode, Stage: a.Stage,
		StudentIdNumber: v.Identity.StudentIDNumber, StudentName: v.Identity.StudentName, BankCardMasked: a.BankCardMasked,
		Status: statusToProto(a.Status), AmountFen: a.AmountFen, HardshipLevel: a.HardshipLevel, BatchId: a.BatchID,
		StatusReason: a.Reason, SubmittedBy: a.SubmittedBy,
		SubmittedAt: timestamppb.New(a.SubmittedAt), UpdatedAt: timestamppb.New(a.UpdatedAt),
		PolicyVersion: a.PolicyVersion, RegisterVersion: a.RegisterVersion, BackPayClueId: a.BackPayClueID,
	}
	if c := v.PendingPayee; c != nil {
		out.PendingPayeeCorrection = &applicationv1.PayeeCorrection{
			CorrectionId: c.ID, BankCardMasked: c.CardMasked, BankCardFingerprint: c.CardFingerprint,
			PreviousBankCardMasked: c.PreviousCardMasked, PreviousBankCardFingerprint: c.PreviousCardFingerprint,
			EnteredBy: &commonv1.Actor{UserId: c.EnteredBy.UserID, Role: string(c.EnteredBy.Role), Org: c.EnteredBy.Org},
			EnteredAt: timestamppb.New(c.EnteredAt),
		}
	}
	return out
}

var statusNames = map[domain.Status]commonv1.ApplicationStatus{
	domain.StatusSubmitted:      commonv1.ApplicationStatus_APPLICATION_STATUS_SUBMITTED,
	domain.StatusInNotice:       commonv1.ApplicationStatus_APPLICATION_STATUS_IN_NOTICE,
	domain.StatusSchoolRejected: commonv1.ApplicationStatus_APPLICATION_STATUS_SCHOOL_REJECTED,
	domain.StatusSchoolApproved: commonv1.ApplicationStatus_APPLICATION_STATUS_SCHOOL_APPROVED,
	domain.StatusBureauRejected: commonv1.ApplicationStatus_APPLICATION_STATUS_BUREAU_REJECTED,
	domain.StatusBureauApproved: commonv1.ApplicationStatus_APPLICATION_STATUS_BUREAU_APPROVED,
	domain.StatusConfirmed:      commonv1.ApplicationStatus_APPLICATION_STATUS_CONFIRMED,
	domain.StatusPaid:           commonv1.ApplicationStatus_APPLICATION_STATUS_PAID,
	domain.StatusPaymentFailed:  commonv1.ApplicationStatus_APPLICATION_STATUS_PAYMENT_FAILED,
	domain.StatusWithdrawn:      commonv1.ApplicationStatus_APPLICATION_STATUS_WITHDRAWN,
}

func statusToProto(s domain.Status) commonv1.ApplicationStatus { return statusNames[s] }

func statusFromProto(p commonv1.ApplicationStatus) domain.Status {
	for s, q := range statusNames {
		if q == p {
			return s
		}
	}
	return ""
}
