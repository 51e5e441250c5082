package ports

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/edubureau/studentaid/pkg/grpcx"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
	"github.com/edubureau/studentaid/services/application/internal/app"
)

// MethodListBackPayOrders lists a school's back-pay orders.
const MethodListBackPayOrders = applicationv1.ApplicationService_ListBackPayOrders_FullMethodName

// ListBackPayOrders implements the RPC.
func (s *Server) ListBackPayOrders(ctx context.Context, req *applicationv1.ListBackPayOrdersRequest) (*applicationv1.ListBackPayOrdersResponse, error) {
	id, err := grpcx.Caller(ctx)
	if err != nil {
		return nil, err
	}
	list, next, err := s.app.ListBackPayOrders(ctx, id, app.BackPayListRequest{SchoolCode: req.GetSchoolCode(),
		OpenOnly: req.GetOpenOnly(), PageSize: req.GetPageSize(), PageToken: req.GetPageToken()})
	if err != nil {
		return nil, err
	}
	out := &applicationv1.ListBackPayOrdersResponse{NextPageToken: next, Orders: make([]*applicationv1.BackPayOrder, len(list))}
	for i, o := range list {
		out.Orders[i] = &applicationv1.BackPayOrder{ClueId: o.ClueID, SchoolCode: o.SchoolCode, ProgramCode: o.ProgramCode,
			Term: o.Term, StudentIdMasked: o.StudentIDMasked, EstimatedAmountFen: o.EstimatedFen,
			OpenedAt: timestamppb.New(o.OpenedAt), ApplicationId: o.ApplicationID}
	}
	return out, nil
}
