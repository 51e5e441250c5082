package gateway

import (
	"context"
	"net"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
)

// TestGRPCTrailersOnly sends many calls through the gateway to a gRPC
// server that refuses each at once. gRPC sends such a refusal as a
// trailers-only answer (the status in one HEADERS frame that ends the
// stream); the proxy must pass it on whole. Flushing its headers before the
// handler ends splits it into headers and an empty end of stream, which a
// gRPC client reads as Internal "server closed the stream without sending
// trailers" (seen in the e2e feed test, once in two runs).
func TestGRPCTrailersOnly(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.UnknownServiceHandler(func(any, grpc.ServerStream) error {
		return status.Error(codes.PermissionDenied, "only your own school")
	}))
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	addr := lis.Addr().String()
	g := New(Options{
		Routes:    Routes,
		Upstreams: map[string]Upstream{"application": {HTTP: addr, GRPC: addr}},
		Limits:    Limits{Rate: 1e6, Burst: 1e6, MaxBodyBytes: 1 << 20},
		Registry:  prometheus.NewRegistry(),
	})
	front := httptest.NewUnstartedServer(g)
	front.Config = NewServer("", g)
	front.Start()
	defer front.Close()
	conn, err := grpc.NewClient(front.Listener.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := applicationv1.NewApplicationServiceClient(conn)
	var wg sync.WaitGroup
	errs := make(chan error, 8*50)
	for range 8 {
		wg.Go(func() {
			for range 50 {
				_, err := client.ListChanges(context.Background(), &applicationv1.ListChangesRequest{SchoolCode: "S001"})
				if status.Code(err) != codes.PermissionDenied {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	bad := 0
	for err := range errs {
		if bad == 0 {
			t.Errorf("through the gateway: %v, want PermissionDenied", err)
		}
		bad++
	}
	if bad > 0 {
		t.Errorf("%d of 400 refusals did not arrive as PermissionDenied", bad)
	}
}
