package keyrotation

import (
	"context"

	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/grpcx"
	keysv1 "github.com/edubureau/studentaid/proto/gen/aid/keys/v1"
)

// Policy is who may rotate keys: ops. Add it to the service's own policy.
func Policy() grpcx.Policy {
	return grpcx.Policy{keysv1.KeyRotationService_RotateKeys_FullMethodName: {auth.RoleOps}}
}

// Server serves aid.keys.v1.KeyRotationService with a Rotator.
type Server struct {
	keysv1.UnimplementedKeyRotationServiceServer
	r *Rotator
}

var _ keysv1.KeyRotationServiceServer = (*Server)(nil)

// NewServer serves r.
func NewServer(r *Rotator) *Server { return &Server{r: r} }

// RotateKeys runs one step of the rotation.
func (s *Server) RotateKeys(ctx context.Context, req *keysv1.RotateKeysRequest) (*keysv1.RotateKeysResponse, error) {
	res, err := s.r.Step(ctx, req.GetPageToken(), int(req.GetBatchSize()))
	if err != nil {
		return nil, err
	}
	return &keysv1.RotateKeysResponse{
		SealKeyId: s.r.Sealer.CurrentKeyID(), HashKeyId: s.r.HashKeyID,
		Resealed: res.Resealed, Rehashed: res.Rehashed, Table: res.Table,
		NextPageToken: res.Next, Done: res.Done,
	}, nil
}
