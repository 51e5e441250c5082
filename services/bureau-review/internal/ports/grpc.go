// Package ports exposes the bureau review over gRPC (and, through the
// generated gateway, REST) and turns incoming events into use-case calls. It
// validates every request before anything is read or written.
package ports

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/catalog"
	"github.com/edubureau/studentaid/pkg/grpcx"
	"github.com/edubureau/studentaid/pkg/review/reviewports"
	bureaureviewv1 "github.com/edubureau/studentaid/proto/gen/aid/bureaureview/v1"
	"github.com/edubureau/studentaid/services/bureau-review/internal/app"
	"github.com/edubureau/studentaid/services/bureau-review/internal/domain"
)

// Policy says which roles may call each RPC; ops, school roles and every
// unlisted role are refused.
func Policy() grpcx.Policy {
	return grpcx.Policy{
		bureaureviewv1.BureauReviewService_ListReviews_FullMethodName: {
			auth.RoleBureauReviewer, auth.RoleDataOfficer, auth.RoleAuditor, auth.RoleFinanceOfficer,
		},
		bureaureviewv1.BureauReviewService_GetReview_FullMethodName: {
			auth.RoleBureauReviewer, auth.RoleDataOfficer, auth.RoleAuditor, auth.RoleFinanceOfficer,
		},
		bureaureviewv1.BureauReviewService_Decide_FullMethodName: {auth.RoleBureauReviewer},
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
	f, err := reviewports.Filter(req, stateFromProto, domain.StatePending)
	if err != nil {
		return nil, err
	}
	list, more, err := s.app.List(ctx, f)
	if err != nil {
		return nil, err
	}
	resp := &bureaureviewv1.ListReviewsResponse{Reviews: make([]*bureaureviewv1.Review, 0, len(list))}
	for _, r := range list {
		resp.Reviews = append(resp.Reviews, toProto(r))
	}
	resp.NextPageToken = reviewports.NextPageToken(list, more)
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

// Decide approves or rejects 1 to reviewports.MaxDecisions pending items, all or nothing.
func (s *Server) Decide(ctx context.Context, req *bureaureviewv1.DecideRequest) (*bureaureviewv1.DecideResponse, error) {
	id, err := grpcx.Caller(ctx)
	if err != nil {
		return nil, err
	}
	ds, err := reviewports.Decisions(req.GetDecisions(), func(v *apperr.Violations, field, appID string, d *bureaureviewv1.Decision) domain.Decision {
		return domain.Decision{ApplicationID: appID, Approve: d.GetApprove(), Reason: d.GetReason(),
			FlagsShown: flagsShown(v, field+".flags_shown", d.GetFlagsShown())}
	})
	if err != nil {
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

// flagsShown validates the flag kinds a reviewer was shown: known kinds
// (catalog.FlagKinds), each at most once.
func flagsShown(v *apperr.Violations, field string, kinds []string) []string {
	if n := len(catalog.FlagKinds()); len(kinds) > n {
		v.Addf(field, "list at most %d flag kinds, not %d", n, len(kinds))
		return nil
	}
	out := make([]string, 0, len(kinds))
	for i, k := range kinds {
		f := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case !known(k):
			v.Addf(f, "%q is not a flag kind (%s)", k, strings.Join(flagKindNames(), ", "))
		case slices.Contains(out, k):
			v.Addf(f, "flag kind %s is listed twice", k)
		default:
			out = append(out, k)
		}
	}
	return out
}

func known(kind string) bool {
	_, ok := catalog.ParseFlagKind(kind)
	return ok
}

func flagKindNames() []string {
	out := make([]string, 0, len(catalog.FlagKinds()))
	for _, k := range catalog.FlagKinds() {
		out = append(out, string(k))
	}
	return out
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
		FlagsShown:      r.FlagsShown,
	}
}
