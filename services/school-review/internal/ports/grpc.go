// Package ports exposes the school review over gRPC (and, through the
// generated gateway, REST) and turns incoming events into use-case calls.
// It validates every request before anything is read or written.
package ports

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/catalog"
	"github.com/edubureau/studentaid/pkg/grpcx"
	"github.com/edubureau/studentaid/pkg/review/reviewports"
	schoolreviewv1 "github.com/edubureau/studentaid/proto/gen/aid/schoolreview/v1"
	"github.com/edubureau/studentaid/services/school-review/internal/app"
	"github.com/edubureau/studentaid/services/school-review/internal/domain"
)

// Policy says which roles may call each RPC; ops and every unlisted role are refused.
func Policy() grpcx.Policy {
	return grpcx.Policy{
		schoolreviewv1.SchoolReviewService_ListReviews_FullMethodName: {
			auth.RoleSchoolReviewer, auth.RoleSchoolOfficer, auth.RoleBureauReviewer, auth.RoleDataOfficer, auth.RoleAuditor,
		},
		schoolreviewv1.SchoolReviewService_GetReview_FullMethodName: {
			auth.RoleSchoolReviewer, auth.RoleSchoolOfficer, auth.RoleBureauReviewer, auth.RoleDataOfficer, auth.RoleAuditor,
		},
		schoolreviewv1.SchoolReviewService_Decide_FullMethodName:         {auth.RoleSchoolReviewer},
		schoolreviewv1.SchoolReviewService_RaiseObjection_FullMethodName: {auth.RoleSchoolOfficer, auth.RoleSchoolReviewer},
		// The school's aid officer, who submitted it, withdraws it.
		schoolreviewv1.SchoolReviewService_WithdrawApplication_FullMethodName: {auth.RoleSchoolOfficer},
		// Everyone who works with notices may see the calendar they count on.
		schoolreviewv1.SchoolReviewService_GetWorkingCalendar_FullMethodName: {
			auth.RoleSchoolReviewer, auth.RoleSchoolOfficer, auth.RoleBureauReviewer, auth.RoleDataOfficer, auth.RoleAuditor, auth.RolePolicyAdmin,
		},
		schoolreviewv1.SchoolReviewService_SetWorkingCalendar_FullMethodName: {app.CalendarEditor},
	}
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
	f, err := reviewports.Filter(req, stateFromProto, domain.StatePending)
	if err != nil {
		return nil, err
	}
	list, more, err := s.app.List(ctx, id, f)
	if err != nil {
		return nil, err
	}
	resp := &schoolreviewv1.ListReviewsResponse{Reviews: make([]*schoolreviewv1.Review, 0, len(list))}
	for _, r := range list {
		resp.Reviews = append(resp.Reviews, toProto(r))
	}
	resp.NextPageToken = reviewports.NextPageToken(list, more)
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

// Decide approves or rejects 1 to reviewports.MaxDecisions pending items, all or nothing.
func (s *Server) Decide(ctx context.Context, req *schoolreviewv1.DecideRequest) (*schoolreviewv1.DecideResponse, error) {
	id, err := grpcx.Caller(ctx)
	if err != nil {
		return nil, err
	}
	ds, err := reviewports.Decisions(req.GetDecisions(), func(v *apperr.Violations, field, appID string, d *schoolreviewv1.Decision) domain.Decision {
		level, err := catalog.ParseLevel(d.GetHardshipLevel())
		if err != nil {
			v.Addf(field+".hardship_level", "%v", err)
		}
		return domain.Decision{ApplicationID: appID, Approve: d.GetApprove(), Level: level, Reason: d.GetReason()}
	})
	if err != nil {
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
		v.Addf("reason", "%v", err)
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

// WithdrawApplication withdraws a pending item before the review decides it.
func (s *Server) WithdrawApplication(ctx context.Context, req *schoolreviewv1.WithdrawApplicationRequest) (*schoolreviewv1.Review, error) {
	id, err := grpcx.Caller(ctx)
	if err != nil {
		return nil, err
	}
	var v apperr.Violations
	appID := v.CheckUUID("application_id", req.GetApplicationId())
	if err := domain.CheckReason(req.GetReason(), true); err != nil {
		v.Addf("reason", "%v", err)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	r, err := s.app.WithdrawApplication(ctx, id, appID, req.GetReason())
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
	schoolreviewv1.ReviewState_REVIEW_STATE_WITHDRAWN: domain.StateWithdrawn,
}

var stateToProto = map[domain.State]schoolreviewv1.ReviewState{
	domain.StatePending:   schoolreviewv1.ReviewState_REVIEW_STATE_PENDING,
	domain.StateInNotice:  schoolreviewv1.ReviewState_REVIEW_STATE_IN_NOTICE,
	domain.StateRejected:  schoolreviewv1.ReviewState_REVIEW_STATE_REJECTED,
	domain.StatePassed:    schoolreviewv1.ReviewState_REVIEW_STATE_PASSED,
	domain.StateWithdrawn: schoolreviewv1.ReviewState_REVIEW_STATE_WITHDRAWN,
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
