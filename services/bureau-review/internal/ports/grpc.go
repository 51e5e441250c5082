// Package ports exposes the bureau review over gRPC (and, through the
// generated gateway, REST) and routes incoming events to the use cases. It
// validates every request before anything is read or written.
package ports

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/catalog"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/grpcx"
	"github.com/edubureau/studentaid/pkg/natsx"
	"github.com/edubureau/studentaid/pkg/page"
	bureaureviewv1 "github.com/edubureau/studentaid/proto/gen/aid/bureaureview/v1"
	"github.com/edubureau/studentaid/services/bureau-review/internal/adapters"
	"github.com/edubureau/studentaid/services/bureau-review/internal/app"
	"github.com/edubureau/studentaid/services/bureau-review/internal/domain"
)

// Request limits.
const (
	MaxDecisions = 1000
)

// Policy says which roles may call each RPC; ops, school roles and every
// unlisted role are refused.
var Policy = grpcx.Policy{
	bureaureviewv1.BureauReviewService_ListReviews_FullMethodName: {
		auth.RoleBureauReviewer, auth.RoleDataOfficer, auth.RoleAuditor, auth.RoleFinanceOfficer,
	},
	bureaureviewv1.BureauReviewService_GetReview_FullMethodName: {
		auth.RoleBureauReviewer, auth.RoleDataOfficer, auth.RoleAuditor, auth.RoleFinanceOfficer,
	},
	bureaureviewv1.BureauReviewService_Decide_FullMethodName: {auth.RoleBureauReviewer},
}

// NewConsumer returns the service's durable consumer: applications whose
// school notice passed, and items finance sent back.
func NewConsumer(a *app.Service) *natsx.Consumer {
	return &natsx.Consumer{
		Subjects: []string{events.Subject(events.TypeNoticePassed), events.Subject(events.TypeItemReturnedToBureau)},
		Handle:   a.HandleEvent,
	}
}

// Server implements aid.bureaureview.v1.BureauReviewService.
type Server struct {
	bureaureviewv1.UnimplementedBureauReviewServiceServer
	app *app.Service
}

var _ bureaureviewv1.BureauReviewServiceServer = (*Server)(nil)

// NewServer returns a Server backed by a.
func NewServer(a *app.Service) *Server { return &Server{app: a} }

// ListReviews lists review items across schools, pending by default.
func (s *Server) ListReviews(ctx context.Context, req *bureaureviewv1.ListReviewsRequest) (*bureaureviewv1.ListReviewsResponse, error) {
	var v apperr.Violations
	v.CheckCode("school_code", req.GetSchoolCode())
	v.CheckCode("program_code", req.GetProgramCode())
	if t := req.GetTerm(); t != "" {
		if _, err := catalog.ParseTerm(t); err != nil {
			v.Add("term", "%v", err)
		}
	}
	state := domain.StatePending
	if req.GetState() != bureaureviewv1.ReviewState_REVIEW_STATE_UNSPECIFIED {
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
	list, more, err := s.app.List(ctx, adapters.Filter{
		SchoolCode: req.GetSchoolCode(), Term: req.GetTerm(), ProgramCode: req.GetProgramCode(),
		State: state, After: after, Limit: size,
	})
	if err != nil {
		return nil, err
	}
	resp := &bureaureviewv1.ListReviewsResponse{Reviews: make([]*bureaureviewv1.Review, 0, len(list))}
	for _, r := range list {
		resp.Reviews = append(resp.Reviews, toProto(r))
	}
	if more {
		resp.NextPageToken = page.Encode(pageCursor{After: list[len(list)-1].ApplicationID})
	}
	return resp, nil
}

// GetReview returns one review item.
func (s *Server) GetReview(ctx context.Context, req *bureaureviewv1.GetReviewRequest) (*bureaureviewv1.Review, error) {
	var v apperr.Violations
	appID := v.CheckUUID("application_id", req.GetApplicationId())
	if err := v.Err(); err != nil {
		return nil, err
	}
	r, err := s.app.Get(ctx, appID)
	if err != nil {
		return nil, err
	}
	return toProto(r), nil
}

// Decide approves or rejects 1 to 1000 pending items, all or nothing.
func (s *Server) Decide(ctx context.Context, req *bureaureviewv1.DecideRequest) (*bureaureviewv1.DecideResponse, error) {
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
		if err := domain.CheckReason(d.GetReason(), !d.GetApprove()); err != nil {
			v.Add(field+".reason", "%v", err)
		}
		ds = append(ds, domain.Decision{ApplicationID: appID, Approve: d.GetApprove(), Reason: d.GetReason()})
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	out, err := s.app.Decide(ctx, id, ds)
	if err != nil {
		return nil, err
	}
	resp := &bureaureviewv1.DecideResponse{Reviews: make([]*bureaureviewv1.Review, 0, len(out))}
	for _, r := range out {
		resp.Reviews = append(resp.Reviews, toProto(r))
	}
	return resp, nil
}

var stateFromProto = map[bureaureviewv1.ReviewState]domain.State{
	bureaureviewv1.ReviewState_REVIEW_STATE_PENDING:  domain.StatePending,
	bureaureviewv1.ReviewState_REVIEW_STATE_APPROVED: domain.StateApproved,
	bureaureviewv1.ReviewState_REVIEW_STATE_REJECTED: domain.StateRejected,
}

var stateToProto = map[domain.State]bureaureviewv1.ReviewState{
	domain.StatePending:  bureaureviewv1.ReviewState_REVIEW_STATE_PENDING,
	domain.StateApproved: bureaureviewv1.ReviewState_REVIEW_STATE_APPROVED,
	domain.StateRejected: bureaureviewv1.ReviewState_REVIEW_STATE_REJECTED,
}

func toProto(r *domain.Review) *bureaureviewv1.Review {
	return &bureaureviewv1.Review{
		ApplicationId:   r.ApplicationID,
		SchoolCode:      r.SchoolCode,
		Term:            r.Term,
		ProgramCode:     r.ProgramCode,
		Stage:           r.Stage,
		StudentIdMasked: r.StudentIDMasked,
		HardshipLevel:   r.HardshipLevel,
		AmountFen:       r.AmountFen,
		FundingSource:   r.FundingSource,
		State:           stateToProto[r.State],
		Reason:          r.Reason,
		SchoolReviewer:  r.SchoolReviewer,
		Reviewer:        r.Reviewer,
		Returns:         r.Returns,
		UpdatedAt:       timestamppb.New(r.UpdatedAt),
	}
}

// pageCursor is the keyset position a page token carries.
type pageCursor struct {
	After string `json:"after"`
}
