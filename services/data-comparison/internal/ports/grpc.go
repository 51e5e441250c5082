// Package ports exposes the data-comparison service: its gRPC API (and
// through it the REST gateway) and its consumer of the chain's events.
package ports

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/grpcx"
	"github.com/edubureau/studentaid/pkg/page"
	commonv1 "github.com/edubureau/studentaid/proto/gen/aid/common/v1"
	dcv1 "github.com/edubureau/studentaid/proto/gen/aid/datacomparison/v1"
	"github.com/edubureau/studentaid/services/data-comparison/internal/adapters"
	"github.com/edubureau/studentaid/services/data-comparison/internal/app"
	"github.com/edubureau/studentaid/services/data-comparison/internal/domain"
)

const prefix = "/aid.datacomparison.v1.DataComparisonService/"

// Full method names, for the policy.
const (
	MethodImportReference = prefix + "ImportReference"
	MethodListImports     = prefix + "ListImports"
	MethodRunComparison   = prefix + "RunComparison"
	MethodRaiseClue       = prefix + "RaiseClue"
	MethodGetClue         = prefix + "GetClue"
	MethodListClues       = prefix + "ListClues"
	MethodAssignClues     = prefix + "AssignClues"
	MethodVerifyClues     = prefix + "VerifyClues"
	MethodDismissClues    = prefix + "DismissClues"
	MethodGetClueTrail    = prefix + "GetClueTrail"
	MethodGetRefund       = prefix + "GetRefund"
	MethodListRefunds     = prefix + "ListRefunds"
	MethodRecordReceipt   = prefix + "RecordReceipt"
	MethodExportRecords   = prefix + "ExportRecords"
	MethodImportClues     = prefix + "ImportClues"
	MethodListFlags       = prefix + "ListFlags"
)

// Policy: data officers do everything; auditors read everything; bureau
// reviewers read the review-time flags of what they decide.
func Policy() grpcx.Policy {
	officer := []auth.Role{auth.RoleDataOfficer}
	readers := []auth.Role{auth.RoleDataOfficer, auth.RoleAuditor}
	return grpcx.Policy{
		MethodImportReference: officer,
		MethodListImports:     readers,
		MethodRunComparison:   officer,
		MethodRaiseClue:       officer,
		MethodGetClue:         readers,
		MethodListClues:       readers,
		MethodAssignClues:     officer,
		MethodVerifyClues:     officer,
		MethodDismissClues:    officer,
		MethodGetClueTrail:    readers,
		MethodGetRefund:       readers,
		MethodListRefunds:     readers,
		MethodRecordReceipt:   officer,
		MethodExportRecords:   officer,
		MethodImportClues:     officer,
		MethodListFlags:       {auth.RoleBureauReviewer, auth.RoleDataOfficer, auth.RoleAuditor},
	}
}

// Server implements dcv1.DataComparisonServiceServer.
type Server struct {
	dcv1.UnimplementedDataComparisonServiceServer
	app *app.Service
}

var _ dcv1.DataComparisonServiceServer = (*Server)(nil)

// NewServer returns the gRPC server of the use cases in a.
func NewServer(a *app.Service) *Server { return &Server{app: a} }

var refKinds = map[dcv1.ReferenceKind]domain.RefKind{
	dcv1.ReferenceKind_REFERENCE_KIND_POVERTY_REGISTRY: domain.RefRegistry,
	dcv1.ReferenceKind_REFERENCE_KIND_KEY_PERSONS:      domain.RefKeyPersons,
	dcv1.ReferenceKind_REFERENCE_KIND_ROSTER:           domain.RefRoster,
	dcv1.ReferenceKind_REFERENCE_KIND_DEATHS:           domain.RefDeaths,
	dcv1.ReferenceKind_REFERENCE_KIND_HISTORY:          domain.RefHistory,
}

func kindToProto(k domain.RefKind) dcv1.ReferenceKind {
	for p, d := range refKinds {
		if d == k {
			return p
		}
	}
	return dcv1.ReferenceKind_REFERENCE_KIND_UNSPECIFIED
}

// ImportReference implements the RPC.
func (s *Server) ImportReference(ctx context.Context, req *dcv1.ImportReferenceRequest) (*dcv1.ImportReferenceResponse, error) {
	id, err := grpcx.Caller(ctx)
	if err != nil {
		return nil, err
	}
	res, err := s.app.Import(ctx, id, app.ImportRequest{Kind: refKinds[req.GetKind()], SchoolCode: req.GetSchoolCode(), Term: req.GetTerm(),
		Source: req.GetSource(), Encoding: req.GetEncoding(), FileName: req.GetFileName(), Content: req.GetContent(), ServerPath: req.GetServerPath()})
	if err != nil {
		return nil, err
	}
	out := &dcv1.ImportReferenceResponse{Imported: res.Imported, BadRowCount: res.BadRowCount}
	if res.Imported {
		out.Import = importToProto(res.Import)
	}
	for _, b := range res.BadRows {
		out.BadRows = append(out.BadRows, &dcv1.BadRow{Line: b.Line, Column: b.Column, Reason: b.Reason})
	}
	return out, nil
}

func importToProto(im adapters.Import) *dcv1.Import {
	return &dcv1.Import{ImportId: im.ID, Kind: kindToProto(im.Kind), Scope: im.Scope, Version: int32(im.Version), Rows: im.Rows, //nolint:gosec // versions are small
		FileName: im.FileName, ImportedBy: im.ImportedBy, ImportedAt: timestamppb.New(im.ImportedAt), Current: im.Current}
}

type idCursor struct {
	ID int64 `json:"i"`
}

// ListImports implements the RPC.
func (s *Server) ListImports(ctx context.Context, req *dcv1.ListImportsRequest) (*dcv1.ListImportsResponse, error) {
	var v apperr.Violations
	size := page.Size(&v, req.GetPageSize())
	var cur idCursor
	page.Decode(&v, req.GetPageToken(), &cur)
	if err := v.Err(); err != nil {
		return nil, err
	}
	ims, err := s.app.ListImports(ctx, refKinds[req.GetKind()], cur.ID, size)
	if err != nil {
		return nil, err
	}
	out := &dcv1.ListImportsResponse{}
	for _, im := range ims {
		out.Imports = append(out.Imports, importToProto(im))
	}
	if len(ims) == size {
		out.NextPageToken = page.Encode(idCursor{ID: ims[len(ims)-1].ID})
	}
	return out, nil
}

// RunComparison implements the RPC.
func (s *Server) RunComparison(ctx context.Context, req *dcv1.RunComparisonRequest) (*dcv1.ComparisonRun, error) {
	id, err := grpcx.Caller(ctx)
	if err != nil {
		return nil, err
	}
	r, err := s.app.RunComparison(ctx, id, req.GetFromTerm(), req.GetToTerm())
	if err != nil {
		return nil, err
	}
	return &dcv1.ComparisonRun{RunId: r.ID, FromTerm: r.From.Name, ToTerm: r.To.Name, Records: r.Records, NewClues: r.NewClues,
		ReferenceImportIds: r.ImportIDs, RunBy: r.RunBy, StartedAt: timestamppb.New(r.StartedAt), FinishedAt: timestamppb.New(r.FinishedAt)}, nil
}

// RaiseClue implements the RPC.
func (s *Server) RaiseClue(ctx context.Context, req *dcv1.RaiseClueRequest) (*dcv1.Clue, error) {
	id, err := grpcx.Caller(ctx)
	if err != nil {
		return nil, err
	}
	c, err := s.app.RaiseClue(ctx, id, app.NewClue{Kind: req.GetKind(), StudentIDNumber: req.GetStudentIdNumber(), SchoolCode: req.GetSchoolCode(),
		ProgramCode: req.GetProgramCode(), Term: req.GetTerm(), RecordIDs: req.GetRecordIds(), AmountFen: req.GetAmountFen(), Detail: req.GetDetail()})
	if err != nil {
		return nil, err
	}
	return clueToProto(c), nil
}

// GetClue implements the RPC.
func (s *Server) GetClue(ctx context.Context, req *dcv1.GetClueRequest) (*dcv1.Clue, error) {
	c, err := s.app.GetClue(ctx, req.GetClueId())
	if err != nil {
		return nil, err
	}
	return clueToProto(c), nil
}

type clueCursor struct {
	At string `json:"t"`
	ID string `json:"i"`
}

var clueStatuses = map[domain.ClueStatus]dcv1.ClueStatus{
	domain.ClueOpen: dcv1.ClueStatus_CLUE_STATUS_OPEN, domain.ClueAssigned: dcv1.ClueStatus_CLUE_STATUS_ASSIGNED,
	domain.ClueVerified: dcv1.ClueStatus_CLUE_STATUS_VERIFIED, domain.ClueDismissed: dcv1.ClueStatus_CLUE_STATUS_DISMISSED,
}

// ListClues implements the RPC.
func (s *Server) ListClues(ctx context.Context, req *dcv1.ListCluesRequest) (*dcv1.ListCluesResponse, error) {
	var v apperr.Violations
	f := app.ClueFilter{Kind: req.GetKind(), SchoolCode: req.GetSchoolCode(), Term: req.GetTerm(), Assignee: req.GetAssignee(), RunID: req.GetRunId()}
	f.Limit = page.Size(&v, req.GetPageSize())
	if st := req.GetStatus(); st != dcv1.ClueStatus_CLUE_STATUS_UNSPECIFIED {
		for d, p := range clueStatuses {
			if p == st {
				f.Status = string(d)
			}
		}
	}
	var cur clueCursor
	if page.Decode(&v, req.GetPageToken(), &cur) {
		t, err := time.Parse(time.RFC3339Nano, cur.At)
		if err != nil {
			v.Addf("page_token", "is not a page token returned by this method")
		}
		f.AfterTime, f.AfterID = t, cur.ID
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	cs, err := s.app.ListClues(ctx, f)
	if err != nil {
		return nil, err
	}
	out := &dcv1.ListCluesResponse{}
	for _, c := range cs {
		out.Clues = append(out.Clues, clueToProto(c))
	}
	if len(cs) == f.Limit {
		last := cs[len(cs)-1]
		out.NextPageToken = page.Encode(clueCursor{At: last.CreatedAt.Format(time.RFC3339Nano), ID: last.ID})
	}
	return out, nil
}

func (s *Server) work(ctx context.Context, w app.Work, fn func(context.Context, auth.Identity, app.Work) ([]domain.Clue, error)) (*dcv1.WorkCluesResponse, error) {
	id, err := grpcx.Caller(ctx)
	if err != nil {
		return nil, err
	}
	cs, err := fn(ctx, id, w)
	if err != nil {
		return nil, err
	}
	out := &dcv1.WorkCluesResponse{}
	for _, c := range cs {
		out.Clues = append(out.Clues, clueToProto(c))
	}
	return out, nil
}

// AssignClues implements the RPC.
func (s *Server) AssignClues(ctx context.Context, req *dcv1.AssignCluesRequest) (*dcv1.WorkCluesResponse, error) {
	return s.work(ctx, app.Work{ClueIDs: req.GetClueIds(), Assignee: req.GetAssignee()}, s.app.AssignClues)
}

// VerifyClues implements the RPC.
func (s *Server) VerifyClues(ctx context.Context, req *dcv1.VerifyCluesRequest) (*dcv1.WorkCluesResponse, error) {
	return s.work(ctx, app.Work{ClueIDs: req.GetClueIds(), Findings: req.GetFindings(), Evidence: req.GetEvidence(),
		Ineligible: req.GetIneligible(), RecoverFen: req.GetRecoverFen()}, s.app.VerifyClues)
}

// DismissClues implements the RPC.
func (s *Server) DismissClues(ctx context.Context, req *dcv1.DismissCluesRequest) (*dcv1.WorkCluesResponse, error) {
	return s.work(ctx, app.Work{ClueIDs: req.GetClueIds(), Findings: req.GetFindings(), Evidence: req.GetEvidence()}, s.app.DismissClues)
}

// GetClueTrail implements the RPC.
func (s *Server) GetClueTrail(ctx context.Context, req *dcv1.GetClueTrailRequest) (*dcv1.ClueTrail, error) {
	t, err := s.app.Trail(ctx, req.GetClueId())
	if err != nil {
		return nil, err
	}
	out := &dcv1.ClueTrail{ClueId: req.GetClueId(), Intact: t.FirstBadPosition == 0, FirstBadPosition: t.FirstBadPosition}
	for _, st := range t.Steps {
		out.Entries = append(out.Entries, &dcv1.ClueTrailEntry{Position: st.Position, EventId: st.EventID, Type: st.Type,
			OccurredAt: timestamppb.New(st.OccurredAt), Actor: &commonv1.Actor{UserId: st.ActorUser, Role: st.ActorRole, Org: st.ActorOrg},
			Status: clueStatuses[st.Status], Note: st.Note, PrevHash: st.PrevHash, Hash: st.Hash})
	}
	return out, nil
}

// GetRefund implements the RPC.
func (s *Server) GetRefund(ctx context.Context, req *dcv1.GetRefundRequest) (*dcv1.Refund, error) {
	r, err := s.app.GetRefund(ctx, req.GetRefundId())
	if err != nil {
		return nil, err
	}
	return refundToProto(r), nil
}

type refundCursor struct {
	ID string `json:"i"`
}

// ListRefunds implements the RPC.
func (s *Server) ListRefunds(ctx context.Context, req *dcv1.ListRefundsRequest) (*dcv1.ListRefundsResponse, error) {
	var v apperr.Violations
	size := page.Size(&v, req.GetPageSize())
	var cur refundCursor
	page.Decode(&v, req.GetPageToken(), &cur)
	if err := v.Err(); err != nil {
		return nil, err
	}
	status := ""
	switch req.GetStatus() {
	case dcv1.RefundStatus_REFUND_STATUS_OPEN:
		status = domain.RefundOpen
	case dcv1.RefundStatus_REFUND_STATUS_CLOSED:
		status = domain.RefundClosed
	case dcv1.RefundStatus_REFUND_STATUS_UNSPECIFIED:
	}
	rs, err := s.app.ListRefunds(ctx, status, cur.ID, size)
	if err != nil {
		return nil, err
	}
	out := &dcv1.ListRefundsResponse{}
	for _, r := range rs {
		out.Refunds = append(out.Refunds, refundToProto(r))
	}
	if len(rs) == size {
		out.NextPageToken = page.Encode(refundCursor{ID: rs[len(rs)-1].ID})
	}
	return out, nil
}

// RecordReceipt implements the RPC.
func (s *Server) RecordReceipt(ctx context.Context, req *dcv1.RecordReceiptRequest) (*dcv1.Refund, error) {
	id, err := grpcx.Caller(ctx)
	if err != nil {
		return nil, err
	}
	in := app.Receipt{RefundID: req.GetRefundId(), AmountFen: req.GetAmountFen(), BankRef: req.GetBankRef(), Account: req.GetAccount()}
	if req.GetReceivedAt() != nil {
		in.ReceivedAt = req.GetReceivedAt().AsTime()
	}
	r, err := s.app.RecordReceipt(ctx, id, in)
	if err != nil {
		return nil, err
	}
	return refundToProto(r), nil
}

// ListFlags implements the RPC.
func (s *Server) ListFlags(ctx context.Context, req *dcv1.ListFlagsRequest) (*dcv1.ListFlagsResponse, error) {
	res, err := s.app.ListFlags(ctx, req.GetApplicationIds())
	if err != nil {
		return nil, err
	}
	out := &dcv1.ListFlagsResponse{Applications: make([]*dcv1.ApplicationFlags, 0, len(res))}
	for _, a := range res {
		p := &dcv1.ApplicationFlags{ApplicationId: a.ApplicationID, Known: a.Known, Flags: make([]*dcv1.Flag, 0, len(a.Flags))}
		for _, f := range a.Flags {
			p.Flags = append(p.Flags, &dcv1.Flag{Kind: string(f.Kind), Detail: f.Detail, References: refsToProto(f.Refs)})
		}
		for _, k := range a.Unchecked {
			p.UncheckedKinds = append(p.UncheckedKinds, string(k))
		}
		out.Applications = append(out.Applications, p)
	}
	return out, nil
}

func refsToProto(refs []domain.RefRow) []*dcv1.ReferenceRow {
	out := make([]*dcv1.ReferenceRow, 0, len(refs))
	for _, r := range refs {
		out = append(out, &dcv1.ReferenceRow{ImportId: r.ImportID, Kind: kindToProto(domain.RefKind(r.Kind)),
			Version: int32(r.Version), Line: r.Line}) //nolint:gosec // versions are small
	}
	return out
}

func clueToProto(c domain.Clue) *dcv1.Clue {
	out := &dcv1.Clue{ClueId: c.ID, Kind: string(c.Kind), Status: clueStatuses[c.Status], Origin: c.Origin, SchoolCode: c.SchoolCode,
		ProgramCode: c.ProgramCode, Term: c.Term, StudentIdMasked: c.StudentIDMasked, AmountFen: c.AmountFen, Detail: c.Detail,
		RecordIds: c.RecordIDs, RunId: c.RunID, Assignee: c.Assignee, Findings: c.Findings, Evidence: c.Evidence,
		Ineligible: c.Ineligible, RefundId: c.RefundID, BackPayStatus: string(c.BackPay), BackPayApplicationId: c.BackPayApplicationID,
		CreatedAt: timestamppb.New(c.CreatedAt), UpdatedAt: timestamppb.New(c.UpdatedAt)}
	out.References = refsToProto(c.Refs)
	return out
}

func refundToProto(r domain.Refund) *dcv1.Refund {
	out := &dcv1.Refund{RefundId: r.ID, ClueId: r.ClueID, RecordId: r.RecordID, PaymentId: r.PaymentID, SchoolCode: r.SchoolCode,
		ProgramCode: r.ProgramCode, Term: r.Term, AmountFen: r.AmountFen, ReceivedFen: r.ReceivedFen, Account: r.Account,
		Status: dcv1.RefundStatus_REFUND_STATUS_OPEN, OpenedAt: timestamppb.New(r.OpenedAt)}
	if r.Status == domain.RefundClosed {
		out.Status, out.ClosedAt = dcv1.RefundStatus_REFUND_STATUS_CLOSED, timestamppb.New(r.ClosedAt)
	}
	for _, rc := range r.Receipts {
		out.Receipts = append(out.Receipts, &dcv1.Receipt{AmountFen: rc.AmountFen, BankRef: rc.BankRef, Account: rc.Account,
			ReceivedAt: timestamppb.New(rc.ReceivedAt), RecordedBy: rc.RecordedBy})
	}
	return out
}

var exportFormats = map[dcv1.ExportFormat]string{dcv1.ExportFormat_EXPORT_FORMAT_CSV: app.FormatCSV, dcv1.ExportFormat_EXPORT_FORMAT_XLSX: app.FormatXLSX}

// ExportRecords implements the RPC.
func (s *Server) ExportRecords(ctx context.Context, req *dcv1.ExportRecordsRequest) (*dcv1.ExportRecordsResponse, error) {
	id, err := grpcx.Caller(ctx)
	if err != nil {
		return nil, err
	}
	res, err := s.app.ExportRecords(ctx, id, app.ExportRequest{FromTerm: req.GetFromTerm(), ToTerm: req.GetToTerm(),
		Format: exportFormats[req.GetFormat()], Inline: req.GetInline()})
	if err != nil {
		return nil, err
	}
	out := &dcv1.ExportRecordsResponse{FileName: res.FileName, ServerPath: res.ServerPath, Content: res.Content, Bytes: res.Bytes,
		Records: res.Records, AmountFen: res.AmountFen}
	for _, t := range res.Stages {
		out.Stages = append(out.Stages, &dcv1.StageTotal{Stage: t.Stage, PersonTimes: t.PersonTimes, AmountFen: t.AmountFen})
	}
	return out, nil
}

// ImportClues implements the RPC.
func (s *Server) ImportClues(ctx context.Context, req *dcv1.ImportCluesRequest) (*dcv1.ImportCluesResponse, error) {
	id, err := grpcx.Caller(ctx)
	if err != nil {
		return nil, err
	}
	res, err := s.app.ImportClues(ctx, id, app.ClueListRequest{Encoding: req.GetEncoding(), FileName: req.GetFileName(),
		Content: req.GetContent(), ServerPath: req.GetServerPath()})
	if err != nil {
		return nil, err
	}
	out := &dcv1.ImportCluesResponse{Imported: res.Imported, BadRowCount: res.BadRowCount}
	if res.Imported {
		out.ClueListId, out.Rows, out.Added, out.AlreadyKnown, out.ClueIds = res.List.ID, res.List.Rows, int64(len(res.Added)), res.AlreadyKnown, res.Added
	}
	for _, b := range res.BadRows {
		out.BadRows = append(out.BadRows, &dcv1.BadRow{Line: b.Line, Column: b.Column, Reason: b.Reason})
	}
	return out, nil
}
