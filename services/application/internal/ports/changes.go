package ports

import (
	"context"
	"time"

	"github.com/edubureau/studentaid/pkg/grpcx"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
	"github.com/edubureau/studentaid/services/application/internal/app"
)

// MethodListChanges is the school's change feed.
const MethodListChanges = applicationv1.ApplicationService_ListChanges_FullMethodName

// ListChanges implements the RPC.
func (s *Server) ListChanges(ctx context.Context, req *applicationv1.ListChangesRequest) (*applicationv1.ListChangesResponse, error) {
	id, err := grpcx.Caller(ctx)
	if err != nil {
		return nil, err
	}
	wait := time.Duration(req.GetWaitSeconds()) * time.Second
	got, err := s.app.Changes(ctx, id, app.ChangesRequest{SchoolCode: req.GetSchoolCode(), After: req.GetAfter(),
		PageSize: int(req.GetPageSize()), Wait: wait})
	if err != nil {
		return nil, err
	}
	out := &applicationv1.ListChangesResponse{NextCursor: got.NextCursor, Changes: make([]*applicationv1.Change, len(got.Changes))}
	for i, c := range got.Changes {
		out.Changes[i] = changeToProto(c)
	}
	return out, nil
}
