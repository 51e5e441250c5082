// Package ports exposes the school review over gRPC (and, through the
// generated gateway, REST) and turns incoming events into use-case calls.
// It validates every request before anything is read or written.
package ports

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/catalog"
	"github.com/edubureau/studentaid/pkg/grpcx"
	"github.com/edubureau/studentaid/pkg/page"
	schoolreviewv1 "github.com/edubureau/studentaid/proto/gen/aid/schoolreview/v1"
	"github.com/edubureau/studentaid/services/school-review/internal/adapters"
	"github.com/edubureau/studentaid/services/school-review/internal/app"
	"github.com/edubureau/studentaid/services/school-review/internal/domain"
)

// Request limits.
const (
	MaxDecisions = 1000
)

// Policy says which roles may call each RPC; ops and every unlisted role are refused.
var Policy = grpcx.Policy{
	schoolreviewv1.SchoolReviewService_ListReviews_FullMethodName: {
		auth.RoleSchoolReviewer, auth.RoleSchoolOfficer, auth.RoleBureauReviewer, auth.RoleDataOfficer, auth.RoleAuditor,
	},
	schoolreviewv1.SchoolReviewService_GetReview_FullMethodName: {
		auth.RoleSchoolReviewer, auth.RoleSchoolOfficer, auth.RoleBureauReviewer, auth.RoleDataOfficer, auth.RoleAuditor,
	},
	schoolreviewv1.SchoolReviewService_Decide_FullMethodName:         {auth.RoleSchoolReviewer},
	schoolreviewv1.SchoolReviewService_RaiseObjection_FullMethodName: {auth.RoleSchoolOfficer, auth.RoleSchoolReviewer},
}

// Server implements aid.schoolreview.v1.SchoolReviewService.
type Server struct {
	schoolreviewv1.UnimplementedSchoolReviewServiceServer
	app *app.Service
}

var _ schoolreviewv1.SchoolReviewServiceServer = (*Server)(nil)

// NewServer returns a Server backed by a.
func NewServer(a *app.Service) *Server { return &Server{app: a} }

// ListReviews lists review items in the caller's scope, pending by default.
func (s *Server) ListReviews(ctx context.Context, req *schoolreviewv1.ListReviewsRequest) (*schoolreviewv1.ListReviewsResponse, error) {
	id, err := grpcx.Caller(ctx)
	if err != nil {
		return nil, err
	}
	var v apperr.Violations
	v.CheckCode("school_code", req.GetSchoolCode())
	v.CheckCode("program_code", req.GetProgramCode())
	if t := req.GetTerm(); t != "" {
		if _, err := catalog.ParseTerm(t); err != nil {
			v.Add("term", "%v", err)
		}
	}
	state := domain.StatePending
	if req.GetState() != schoolreviewv1.ReviewState_REVIEW_STATE_UNSPECIFIED {
		var ok bool
		if state, ok = stateFromProto[req.GetState()]; !ok {
			v.Add("state", "unknown review state %d", req.GetState())
		}
	}
	size := page.Size(&v, req.GetPageSize())
	var cursor pageCursor
	if page.Decode(&v, req.GetPageToken(), &cursor) {
		cursor.After = v.CheckUUID("page_token", cursor.After)
	}
	after := cursor.After
	if err := v.Err(); err != nil {
		return nil, err
	}
	list, more, err := s.app.List(ctx, id, adapters.Filter{
		SchoolCode: req.GetSchoolCode(), Term: req.GetTerm(), ProgramCode: req.GetProgramCode(),
		State: state, After: after, Limit: size,
	})
	if err != nil {
		return nil, err
	}
	resp := &schoolreviewv1.ListReviewsResponse{Reviews: make([]*schoolreviewv1.Review, 0, len(list))}
	for _, r := range list {
		resp.Reviews = append(resp.Reviews, toProto(r))
	}
	if more {
		resp.NextPageToken = page.Encode(pageCursor{After: list[len(list)-1].ApplicationID})
	}
	return resp, nil
}

// GetReview returns one review item; NotFound for another school's item.
func (s *Server) GetReview(ctx context.Context, req *schoolreviewv1.GetReviewRequest) (*schoolreviewv1.Review, error) {
	id, err := grpcx.Caller(ctx)
	if err != nil {
		return nil, err
	}
	var v apperr.Violations
	appID := v.CheckUUID("application_id", req.GetApplicationId())
	if err := v.Err(); err != nil {
		return nil, err
	}
	r, err := s.app.Get(ctx, id, appID)
	if err != nil {
		return nil, err
	}
	return toProto(r), nil
}

// Decide approves or rejects 1 to 1000 pending items, all or nothing.
func (s *Server) Decide(ctx context.Context, req *schoolreviewv1.DecideRequest) (*schoolreviewv1.DecideResponse, error) {
	id, err := grpcx.Caller(ctx)
	if err != nil {
		return nil, err
	}
	var v apperr.Violations
	n := len(req.GetDecisions())
	if n < 1 || n > MaxDecisions {
		v.Add("decisions", "give between 1 and %d decisions, not %d", MaxDecisions, n)
		return nil, v.Err()
	}
	ds := make([]domain.Decision, 0, n)
	seen := make(map[string]int, n)
	for i, d := range req.GetDecisions() {
		field := fmt.Sprintf("decisions[%d]", i)
		appID := v.CheckUUID(field+".application_id", d.GetApplicationId())
		if j, dup := seen[appID]; dup && appID != "" {
			v.Add(field+".application_id", "application %s is also decided in decisions[%d]", appID, j)
		}
		seen[appID] = i
		level, err := catalog.ParseLevel(d.GetHardshipLevel())
		if err != nil {
			v.Add(field+".hardship_level", "%v", err)
		}
		if err := domain.CheckReason(d.GetReason(), !d.GetApprove()); err != nil {
			v.Add(field+".reason", "%v", err)
		}
		ds = append(ds, domain.Decision{ApplicationID: appID, Approve: d.GetApprove(), Level: level, Reason: d.GetReason()})
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	out, err := s.app.Decide(ctx, id, ds)
	if err != nil {
		return nil, err
	}
	resp := &schoolreviewv1.DecideResponse{Reviews: make([]*schoolreviewv1.Review, 0, len(out))}
	for _, r := range out {
		resp.Reviews = append(resp.Reviews, toProto(r))
	}
	return resp, nil
}

// RaiseObjection sends an item in notice back to review.
func (s *Server) RaiseObjection(ctx context.Context, req *schoolreviewv1.RaiseObjectionRequest) (*schoolreviewv1.Review, error) {
	id, err := grpcx.Caller(ctx)
	if err != nil {
		return nil, err
	}
	var v apperr.Violations
	appID := v.CheckUUID("application_id", req.GetApplicationId())
	if err := domain.CheckReason(req.GetReason(), true); err != nil {
		v.Add("reason", "%v", err)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	r, err := s.app.RaiseObjection(ctx, id, appID, req.GetReason())
	if err != nil {
		return nil, err
	}
	return toProto(r), nil
}

var stateFromProto = map[schoolreviewv1.ReviewState]domain.State{
	schoolreviewv1.ReviewState_REVIEW_STATE_PENDING:   domain.StatePending,
	schoolreviewv1.ReviewState_REVIEW_STATE_IN_NOTICE: domain.StateInNotice,
	schoolreviewv1.ReviewState_REVIEW_STATE_REJECTED:  domain.StateRejected,
	schoolreviewv1.ReviewState_REVIEW_STATE_PASSED:    domain.StatePassed,
}

var stateToProto = map[domain.State]schoolreviewv1.ReviewState{
	domain.StatePending:  schoolreviewv1.ReviewState_REVIEW_STATE_PENDING,
	domain.StateInNotice: schoolreviewv1.ReviewState_REVIEW_STATE_IN_NOTICE,
	domain.StateRejected: schoolreviewv1.ReviewState_REVIEW_STATE_REJECTED,
	domain.StatePassed:   schoolreviewv1.ReviewState_REVIEW_STATE_PASSED,
}

func toProto(r *domain.Review) *schoolreviewv1.Review {
	out := &schoolreviewv1.Review{
		ApplicationId:     r.ApplicationID,
		SchoolCode:        r.SchoolCode,
		Term:              r.Term,
		ProgramCode:       r.ProgramCode,
		Stage:             r.Stage,
		StudentIdMasked:   r.StudentIDMasked,
		StudentNameMasked: r.StudentNameMasked,
		State:             stateToProto[r.State],
		HardshipLevel:     string(r.HardshipLevel),
		AmountFen:         r.AmountFen,
		Tiered:            r.Tiered,
		Reason:            r.Reason,
		Reviewer:          r.Reviewer,
		Objections:        r.Objections,
		UpdatedAt:         timestamppb.New(r.UpdatedAt),
	}
	if !r.NoticeEndsAt.IsZero() {
		out.NoticeEndsAt = timestamppb.New(r.NoticeEndsAt)
	}
	return out
}

// pageCursor is the keyset position a page token carries.
type pageCursor struct {
	After string `json:"after"`
}
