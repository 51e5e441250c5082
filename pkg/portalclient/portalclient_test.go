package portalclient_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/portalclient"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
)

// fake is an application service that fails as told.
type fake struct {
	applicationv1.UnimplementedApplicationServiceServer
	mu sync.Mutex
	// submitErrs are the answers of the first submissions, in order.
	submitErrs []error
	keys       []string
	// changes are the feed's changes; their cursors are their 1-based
	// positions. feedErrs are the answers of the first reads.
	changes  []string
	feedErrs []error
	afters   []string
}

func (f *fake) SubmitApplications(_ context.Context, req *applicationv1.SubmitApplicationsRequest) (*applicationv1.SubmitApplicationsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys = append(f.keys, req.GetIdempotencyKey())
	if len(f.submitErrs) > 0 {
		err := f.submitErrs[0]
		f.submitErrs = f.submitErrs[1:]
		return nil, err
	}
	return &applicationv1.SubmitApplicationsResponse{}, nil
}

func (f *fake) ListChanges(_ context.Context, req *applicationv1.ListChangesRequest) (*applicationv1.ListChangesResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.afters = append(f.afters, req.GetAfter())
	if len(f.feedErrs) > 0 {
		err := f.feedErrs[0]
		f.feedErrs = f.feedErrs[1:]
		return nil, err
	}
	from := 0
	if req.GetAfter() != "" {
		from, _ = strconv.Atoi(req.GetAfter())
	}
	out := &applicationv1.ListChangesResponse{NextCursor: req.GetAfter()}
	for i := from; i < len(f.changes) && i < from+2; i++ {
		out.Changes = append(out.Changes, &applicationv1.Change{ApplicationId: f.changes[i], Cursor: strconv.Itoa(i + 1)})
		out.NextCursor = strconv.Itoa(i + 1)
	}
	return out, nil
}

func serve(t *testing.T, f *fake) *portalclient.Client {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	applicationv1.RegisterApplicationServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("passthrough:///fake", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return portalclient.New(conn, portalclient.WithBackoff(time.Millisecond, 2*time.Millisecond), portalclient.WithMaxAttempts(4))
}

func TestSubmitRetries(t *testing.T) {
	t.Parallel()
	unavailable := status.Error(codes.Unavailable, "down")
	limited := apperr.WithReason(codes.ResourceExhausted, "slow down") // as the gateway refuses
	cases := []struct {
		name     string
		errs     []error
		key      string
		wantCode codes.Code
		wantKeys int
	}{
		{"retried until it succeeds, one generated key", []error{unavailable, status.Error(codes.Internal, "x")}, "", codes.OK, 3},
		{"the caller's key kept", []error{unavailable}, "portal-key-1", codes.OK, 2},
		{"the rate limit is retried", []error{limited}, "", codes.OK, 2},
		{"invalid input is not retried", []error{status.Error(codes.InvalidArgument, "bad")}, "", codes.InvalidArgument, 1},
		{"a transport size refusal is not retried", []error{status.Error(codes.ResourceExhausted, "too big")}, "", codes.ResourceExhausted, 1},
		{"tries run out", []error{unavailable, unavailable, unavailable, unavailable, unavailable}, "", codes.Unavailable, 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := &fake{submitErrs: tc.errs}
			c := serve(t, f)
			req := &applicationv1.SubmitApplicationsRequest{SchoolCode: "S001", IdempotencyKey: tc.key}
			_, err := c.Submit(context.Background(), req)
			if status.Code(err) != tc.wantCode {
				t.Fatalf("got %v, want %s", err, tc.wantCode)
			}
			if len(f.keys) != tc.wantKeys {
				t.Fatalf("%d tries, want %d", len(f.keys), tc.wantKeys)
			}
			for _, k := range f.keys {
				if k == "" || k != f.keys[0] || (tc.key != "" && k != tc.key) {
					t.Fatalf("keys %q: want one non-empty key for every try (the caller's %q if set)", f.keys, tc.key)
				}
			}
			if req.GetIdempotencyKey() != tc.key {
				t.Fatalf("the caller's request was changed: key %q", req.GetIdempotencyKey())
			}
		})
	}
}

func TestFollowResumes(t *testing.T) {
	t.Parallel()
	f := &fake{changes: []string{"a", "b", "c", "d", "e"}, feedErrs: []error{status.Error(codes.Unavailable, "down")}}
	c := serve(t, f)
	ctx := context.Background()
	var got []string
	cursor := ""
	failOnce := errors.New("the portal's database is down")
	handle := func(_ context.Context, resp *applicationv1.ListChangesResponse) error {
		if resp.GetChanges()[0].GetApplicationId() == "c" && failOnce != nil {
			err := failOnce
			failOnce = nil
			return err
		}
		for _, ch := range resp.GetChanges() {
			got = append(got, ch.GetApplicationId())
		}
		cursor = resp.GetNextCursor()
		if cursor == "5" {
			return portalclient.ErrStop
		}
		return nil
	}
	// The handler fails on the second page: Follow stops there, and a new
	// Follow from the stored cursor takes it again.
	if err := c.Follow(ctx, "S001", cursor, handle); err == nil || err.Error() != "the portal's database is down" {
		t.Fatalf("first follow: %v", err)
	}
	if err := c.Follow(ctx, "S001", cursor, handle); !errors.Is(err, portalclient.ErrStop) {
		t.Fatalf("second follow: %v", err)
	}
	if want := []string{"a", "b", "c", "d", "e"}; !slicesEqual(got, want) {
		t.Fatalf("changes %v, want %v once each", got, want)
	}
	// The unavailable first read was retried from the start; then the
	// cursor moved only past handled pages.
	if want := []string{"", "", "2", "2", "4"}; !slicesEqual(f.afters, want) {
		t.Fatalf("reads after %q, want %q", f.afters, want)
	}
}

func TestFollowStopsOnRefusal(t *testing.T) {
	t.Parallel()
	f := &fake{feedErrs: []error{status.Error(codes.PermissionDenied, "another school")}}
	c := serve(t, f)
	err := c.Follow(context.Background(), "S002", "", func(context.Context, *applicationv1.ListChangesResponse) error { return nil })
	if status.Code(err) != codes.PermissionDenied || len(f.afters) != 1 {
		t.Fatalf("got %v after %d reads, want PermissionDenied after one", err, len(f.afters))
	}
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
