// Package ports exposes the reporting service: its gRPC API (and through it
// the REST gateway) and its consumer of the chain's events.
package ports

import (
	"context"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/grpcx"
	reportingv1 "github.com/edubureau/studentaid/proto/gen/aid/reporting/v1"
	"github.com/edubureau/studentaid/services/reporting/internal/adapters"
	"github.com/edubureau/studentaid/services/reporting/internal/app"
	"github.com/edubureau/studentaid/services/reporting/internal/domain"
)

const prefix = "/aid.reporting.v1.ReportingService/"

// Full method names, for the policy.
const (
	MethodGetStatistics        = prefix + "GetStatistics"
	MethodGetAnnualReport      = prefix + "GetAnnualReport"
	MethodFinaliseAnnualReport = prefix + "FinaliseAnnualReport"
	MethodListReportVersions   = prefix + "ListReportVersions"
	MethodExportPayments       = prefix + "ExportPayments"
)

// Readers may read statistics and reports: the bureau's reviewers, the
// data office, finance and the auditors.
var Readers = []auth.Role{auth.RoleBureauReviewer, auth.RoleDataOfficer, auth.RoleFinanceOfficer, auth.RoleAuditor}

// Policy: readers read; only the bureau's reviewers finalise.
func Policy() grpcx.Policy {
	return grpcx.Policy{
		MethodGetStatistics:        Readers,
		MethodGetAnnualReport:      Readers,
		MethodFinaliseAnnualReport: slices.Clone(app.FinaliseRoles),
		MethodListReportVersions:   Readers,
		MethodExportPayments:       Readers,
	}
}

// Server implements reportingv1.ReportingServiceServer.
type Server struct {
	reportingv1.UnimplementedReportingServiceServer
	app *app.Service
}

var _ reportingv1.ReportingServiceServer = (*Server)(nil)

// NewServer returns the gRPC server of the use cases in a.
func NewServer(a *app.Service) *Server { return &Server{app: a} }

// GetStatistics implements the RPC.
func (s *Server) GetStatistics(ctx context.Context, req *reportingv1.GetStatisticsRequest) (*reportingv1.Statistics, error) {
	q := app.StatisticsQuery{FromTerm: req.GetFromTerm(), ToTerm: req.GetToTerm(), Schools: req.GetSchoolCodes(),
		Stage: req.GetStage(), Program: req.GetProgramCode()}
	if req.GetAsOf() != nil {
		q.AsOf = req.GetAsOf().AsTime()
	}
	f, err := s.app.Statistics(ctx, q)
	if err != nil {
		return nil, err
	}
	return StatisticsPB(f), nil
}

// ExportPayments implements the RPC: the selection's paid records, a
// batch per message.
func (s *Server) ExportPayments(req *reportingv1.ExportPaymentsRequest, stream reportingv1.ReportingService_ExportPaymentsServer) error {
	q := app.StatisticsQuery{FromTerm: req.GetFromTerm(), ToTerm: req.GetToTerm(), Schools: req.GetSchoolCodes(),
		Stage: req.GetStage(), Program: req.GetProgramCode()}
	if req.GetAsOf() != nil {
		q.AsOf = req.GetAsOf().AsTime()
	}
	return s.app.ExportPayments(stream.Context(), q, func(asOf time.Time, batch []adapters.PaymentRecord) error {
		msg := &reportingv1.PaymentBatch{AsOf: timestamppb.New(asOf), Payments: make([]*reportingv1.PaymentRecord, len(batch))}
		for i, r := range batch {
			msg.Payments[i] = &reportingv1.PaymentRecord{PaymentId: r.PaymentID, SchoolCode: r.School, Student: r.Student,
				ProgramCode: r.Program, Stage: r.Stage, Term: r.Term, AmountFen: r.AmountFen, PaidAt: timestamppb.New(r.PaidAt),
				RefundedFen: r.RefundedFen, Loan: r.Loan}
		}
		return stream.Send(msg)
	})
}

// StatisticsPB converts figures to their message.
func StatisticsPB(f domain.Figures) *reportingv1.Statistics {
	out := &reportingv1.Statistics{AsOf: timestamppb.New(f.AsOf), PaidFen: f.PaidFen, GrossPaidFen: f.GrossFen,
		Persons: f.Persons, PersonTimes: f.PersonTimes, RefundsOrderedFen: f.RefundsOrderedFen,
		RefundsRecoveredFen: f.RefundsRecoveredFen, LoansIssuedFen: f.LoansIssuedFen, LoansIssuedCount: f.LoansIssuedCount,
		LoansRecoveredFen: f.LoansRecoveredFen}
	for _, src := range []string{domain.SourceCentralProvincial, domain.SourceMunicipal, domain.SourceCharity, domain.SourceBankLoan} {
		out.Funding = append(out.Funding, &reportingv1.SourceAmount{Source: src, AmountFen: f.Funding[src]})
	}
	for _, p := range f.Programs {
		out.Programs = append(out.Programs, &reportingv1.ProgramFigure{ProgramCode: p.ProgramCode, PaidFen: p.PaidFen,
			Persons: p.Persons, PersonTimes: p.PersonTimes})
	}
	for _, st := range f.Steps {
		out.Steps = append(out.Steps, &reportingv1.StepFigure{Step: st.Step, Applications: st.Applications, Left: st.Left,
			MedianSeconds: st.MedianSeconds})
	}
	for _, r := range f.Rejections {
		out.Rejections = append(out.Rejections, &reportingv1.RejectionReason{Step: r.Step, Reason: r.Reason, Other: r.Other, Count: r.Count})
	}
	return out
}

// GetAnnualReport implements the RPC.
func (s *Server) GetAnnualReport(ctx context.Context, req *reportingv1.GetAnnualReportRequest) (*reportingv1.AnnualReport, error) {
	r, err := s.app.AnnualReport(ctx, int(req.GetYear()), req.GetLanguage(), req.GetLive(), int(req.GetVersion()))
	if err != nil {
		return nil, err
	}
	return ReportPB(r), nil
}

// FinaliseAnnualReport implements the RPC.
func (s *Server) FinaliseAnnualReport(ctx context.Context, req *reportingv1.FinaliseAnnualReportRequest) (*reportingv1.AnnualReport, error) {
	by, err := grpcx.Caller(ctx)
	if err != nil {
		return nil, err
	}
	r, err := s.app.Finalise(ctx, by, int(req.GetYear()), req.GetLanguage(), req.GetNote())
	if err != nil {
		return nil, err
	}
	return ReportPB(r), nil
}

// ListReportVersions implements the RPC.
func (s *Server) ListReportVersions(ctx context.Context, req *reportingv1.ListReportVersionsRequest) (*reportingv1.ListReportVersionsResponse, error) {
	vs, err := s.app.Versions(ctx, int(req.GetYear()))
	if err != nil {
		return nil, err
	}
	out := &reportingv1.ListReportVersionsResponse{}
	for _, v := range vs {
		pb := ReportPB(v)
		pb.Sections = nil
		out.Versions = append(out.Versions, pb)
	}
	return out, nil
}

// ReportPB converts a report to its message.
func ReportPB(v app.ReportVersion) *reportingv1.AnnualReport {
	r := v.Report
	out := &reportingv1.AnnualReport{Year: int32(r.Year), Status: "DRAFT", Version: int32(v.Version), //nolint:gosec // G115: years and versions are small
		AsOf: timestamppb.New(r.AsOf), Language: r.Language, ContentSha256: v.SHA256, FinalisedBy: v.FinalisedBy,
		Note: v.Note, Changes: v.Changes, GovernmentTotalFen: r.GovernmentTotalFen,
		CentralProvincialFen: r.CentralProvincialFen, MunicipalFen: r.MunicipalFen, Students: r.Students}
	if v.Final {
		out.Status = "FINAL"
	}
	for _, s := range r.Sections {
		sec := &reportingv1.Section{Key: s.Key, Title: s.Title}
		for _, l := range s.Lines {
			sec.Lines = append(sec.Lines, &reportingv1.Line{Key: l.Key, Label: l.Label, AmountFen: l.AmountFen, Count: l.Count, Unit: l.Unit, Total: l.Total})
		}
		out.Sections = append(out.Sections, sec)
	}
	return out
}
