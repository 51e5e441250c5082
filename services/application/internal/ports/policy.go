package ports

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/grpcx"
	"github.com/edubureau/studentaid/pkg/policy"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
	"github.com/edubureau/studentaid/services/application/internal/adapters"
	"github.com/edubureau/studentaid/services/application/internal/app"
	"github.com/edubureau/studentaid/services/application/internal/domain"
)

// Full method names of the policy service.
const (
	MethodDraftPolicyVersion   = applicationv1.PolicyService_DraftPolicyVersion_FullMethodName
	MethodPreviewPolicyVersion = applicationv1.PolicyService_PreviewPolicyVersion_FullMethodName
	MethodApprovePolicyVersion = applicationv1.PolicyService_ApprovePolicyVersion_FullMethodName
	MethodListPolicyVersions   = applicationv1.PolicyService_ListPolicyVersions_FullMethodName
	MethodGetPolicyVersion     = applicationv1.PolicyService_GetPolicyVersion_FullMethodName
)

// PolicyServer implements applicationv1.PolicyServiceServer.
type PolicyServer struct {
	applicationv1.UnimplementedPolicyServiceServer
	app *app.Service
}

var _ applicationv1.PolicyServiceServer = (*PolicyServer)(nil)

// NewPolicyServer returns the gRPC server of the policy store in a.
func NewPolicyServer(a *app.Service) *PolicyServer { return &PolicyServer{app: a} }

// DraftPolicyVersion implements the RPC.
func (s *PolicyServer) DraftPolicyVersion(ctx context.Context, req *applicationv1.DraftPolicyVersionRequest) (*applicationv1.PolicyVersion, error) {
	id, err := grpcx.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetDocument() == nil {
		var v apperr.Violations
		v.Addf("document", "is required: the policy or register document as a JSON object (docs/policy.md)")
		return nil, v.Err()
	}
	doc, err := app.DocumentJSON(req.GetDocument().AsMap())
	if err != nil {
		return nil, fmt.Errorf("encode document: %w", err)
	}
	v, err := s.app.DraftPolicyVersion(ctx, id, req.GetKind(), doc)
	if err != nil {
		return nil, err
	}
	return versionToProto(v, true)
}

// ApprovePolicyVersion implements the RPC.
func (s *PolicyServer) ApprovePolicyVersion(ctx context.Context, req *applicationv1.ApprovePolicyVersionRequest) (*applicationv1.PolicyVersion, error) {
	id, err := grpcx.Caller(ctx)
	if err != nil {
		return nil, err
	}
	v, err := s.app.ApprovePolicyVersion(ctx, id, req.GetKind(), req.GetNumber(), req.GetSha256())
	if err != nil {
		return nil, err
	}
	return versionToProto(v, false)
}

// GetPolicyVersion implements the RPC.
func (s *PolicyServer) GetPolicyVersion(ctx context.Context, req *applicationv1.GetPolicyVersionRequest) (*applicationv1.PolicyVersion, error) {
	v, err := s.app.GetPolicyVersion(ctx, req.GetKind(), req.GetNumber())
	if err != nil {
		return nil, err
	}
	return versionToProto(v, true)
}

// ListPolicyVersions implements the RPC.
func (s *PolicyServer) ListPolicyVersions(ctx context.Context, req *applicationv1.ListPolicyVersionsRequest) (*applicationv1.ListPolicyVersionsResponse, error) {
	vs, err := s.app.ListPolicyVersions(ctx, req.GetKind())
	if err != nil {
		return nil, err
	}
	out := &applicationv1.ListPolicyVersionsResponse{Versions: make([]*applicationv1.PolicyVersion, len(vs))}
	for i, v := range vs {
		if out.Versions[i], err = versionToProto(v, false); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// PreviewPolicyVersion implements the RPC.
func (s *PolicyServer) PreviewPolicyVersion(ctx context.Context, req *applicationv1.PreviewPolicyVersionRequest) (*applicationv1.PreviewPolicyVersionResponse, error) {
	p, err := s.app.PreviewPolicyVersion(ctx, req.GetKind(), req.GetNumber())
	if err != nil {
		return nil, err
	}
	out := &applicationv1.PreviewPolicyVersionResponse{ApplicationsConsidered: p.Considered, ApplicationsAffected: p.Affects}
	for _, c := range p.Changes {
		out.Changes = append(out.Changes, &applicationv1.PolicyChange{
			Term: c.Term, SchoolCode: c.SchoolCode, ProgramCode: c.ProgramCode, Stage: c.Stage,
			Status: statusToProto(domain.Status(c.Status)), Applications: c.Applications,
			PolicyVersion: c.PolicyVersion, RegisterVersion: c.RegisterVersion,
			AmountFen: c.Before.AmountFen, DraftAmountFen: c.After.AmountFen,
			TierFen: tierNames(c.Before.TierFen), DraftTierFen: tierNames(c.After.TierFen),
			DraftRefusal: c.Refusal,
		})
	}
	return out, nil
}

func versionToProto(v adapters.StoredVersion, withDocument bool) (*applicationv1.PolicyVersion, error) {
	out := &applicationv1.PolicyVersion{
		Kind: string(v.Kind), Number: v.Number, Status: statusLabel(v.Status),
		EffectiveFrom: v.Header.EffectiveFrom, Corrects: v.Header.Corrects, Summary: v.Header.Summary,
		Sha256: v.SHA256, DraftedBy: v.DraftedBy, DraftedAt: timestamppb.New(v.DraftedAt), ApprovedBy: v.ApprovedBy,
	}
	if !v.ApprovedAt.IsZero() {
		out.ApprovedAt = timestamppb.New(v.ApprovedAt)
	}
	if withDocument {
		var m map[string]any
		if err := json.Unmarshal(v.Document, &m); err != nil {
			return nil, fmt.Errorf("decode policy version %s %d: %w", v.Kind, v.Number, err)
		}
		doc, err := structpb.NewStruct(m)
		if err != nil {
			return nil, fmt.Errorf("policy version %s %d as a struct: %w", v.Kind, v.Number, err)
		}
		out.Document = doc
	}
	return out, nil
}

func statusLabel(s string) string {
	if s == adapters.PolicyPublished {
		return "PUBLISHED"
	}
	return "DRAFT"
}

func tierNames[L ~string](tiers map[L]int64) map[string]int64 {
	if len(tiers) == 0 {
		return nil
	}
	out := make(map[string]int64, len(tiers))
	for l, fen := range tiers {
		out[string(l)] = fen
	}
	return out
}

// ListPrograms implements the RPC: the policy in force for the term.
func (s *Server) ListPrograms(_ context.Context, req *applicationv1.ListProgramsRequest) (*applicationv1.ListProgramsResponse, error) {
	term := req.GetTerm()
	if term == "" {
		term = CurrentTerm(time.Now())
	}
	if policy.TermRank(term) < 0 {
		var v apperr.Violations
		v.Addf("term", "must be a year and season such as 2017-spring or 2017-autumn")
		return nil, v.Err()
	}
	pv, ok := s.app.Book().Policy(term)
	if !ok {
		return nil, apperr.Refused(apperr.FailedPrecondition, apperr.ReasonNoPolicyInForce, "no aid policy is in force for %s", term)
	}
	programs := pv.Policy.All()
	out := &applicationv1.ListProgramsResponse{Programs: make([]*applicationv1.Program, len(programs)),
		PolicyVersion: pv.Number, EffectiveFrom: pv.Header.EffectiveFrom, Term: term}
	for i, p := range programs {
		pp := &applicationv1.Program{
			Code: p.Code, Name: p.Name, NameEn: p.NameEN, FundingSource: string(p.Funding), Tiered: p.Tiered(),
			StandardFen: tierNames(p.StandardFen), TierFen: tierNames(p.TierFen),
			RequiresBoarding: p.RequiresBoarding, RequiresRural: p.RequiresRural, RequiresRegisteredPoor: p.RequiresRegisteredPoor,
			Rule: string(p.Rule), MaxFen: p.MaxFen, YearlyMaxFen: p.YearlyMaxFen, Frequency: string(p.Frequency),
			SharesBp: make(map[string]int32, len(p.SharesBP)), GovernmentTotal: p.GovernmentTotal,
		}
		for _, st := range p.Stages {
			pp.Stages = append(pp.Stages, string(st))
		}
		for src, bp := range p.SharesBP {
			pp.SharesBp[string(src)] = bp
		}
		out.Programs[i] = pp
	}
	return out, nil
}

// CurrentTerm is the term of day t in China: spring from March to August,
// autumn from September to February (January and February belong to the
// autumn term of the year before).
func CurrentTerm(t time.Time) string {
	local := t.In(time.FixedZone("CST", 8*3600))
	y, m := local.Year(), local.Month()
	switch {
	case m >= time.March && m <= time.August:
		return fmt.Sprintf("%d-spring", y)
	case m >= time.September:
		return fmt.Sprintf("%d-autumn", y)
	}
	return fmt.Sprintf("%d-autumn", y-1)
}
