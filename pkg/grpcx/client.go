package grpcx

import (
	"context"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// BearerToken sends a bearer token with every call.
type BearerToken string

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (t BearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials. The
// services run behind a TLS-terminating mesh in production and on loopback
// in development.
func (BearerToken) RequireTransportSecurity() bool { return false }

// Dial returns a traced client connection to addr. A non-empty token is sent
// with every call.
func Dial(addr string, token string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	base := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler()),
	}
	if token != "" {
		base = append(base, grpc.WithPerRPCCredentials(BearerToken(token)))
	}
	return grpc.NewClient(addr, append(base, opts...)...)
}
