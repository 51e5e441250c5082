// Package portalclient is a Go client of the public API for school portals:
// submissions retried with one idempotency key, so a retry never submits
// twice, and a follower of a school's change feed that resumes from its
// cursor. It speaks gRPC to the one entry point (the gateway, :8080 under
// `make run`); the typed requests and answers are the generated ones of
// proto/gen/aid/application/v1.
package portalclient

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/grpcx"
	"github.com/edubureau/studentaid/pkg/wait"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
)

// Client calls the application service for a portal.
type Client struct {
	app         applicationv1.ApplicationServiceClient
	maxAttempts int
	first, most time.Duration
	// waitSeconds is each long-poll's wait_seconds (0..30).
	waitSeconds int32
}

// Option configures a Client.
type Option func(*Client)

// WithMaxAttempts sets how many times a submission is tried (default 5).
func WithMaxAttempts(n int) Option { return func(c *Client) { c.maxAttempts = max(n, 1) } }

// WithBackoff sets the first and the longest pause between tries (default
// 200 ms doubling to 10 s; at least 1 s after a fair-use refusal).
func WithBackoff(first, most time.Duration) Option {
	return func(c *Client) { c.first, c.most = first, max(most, first) }
}

// WithFeedWait sets how long each long-poll of Follow waits for a change
// (default and at most 30 s).
func WithFeedWait(d time.Duration) Option {
	return func(c *Client) { c.waitSeconds = int32(min(max(d, 0), 30*time.Second) / time.Second) }
}

// New returns a Client over conn (from Dial, or a connection of your own).
func New(conn grpc.ClientConnInterface, opts ...Option) *Client {
	c := &Client{app: applicationv1.NewApplicationServiceClient(conn), maxAttempts: 5,
		first: 200 * time.Millisecond, most: 10 * time.Second, waitSeconds: 30}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Dial connects to the entry point at addr ("127.0.0.1:8080") with the
// bearer token sent on every call. Without options the connection is
// plain-text HTTP/2, as under `make run`; pass
// grpc.WithTransportCredentials for TLS.
func Dial(addr, token string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	return grpcx.Dial(addr, token, opts...)
}

// Applications returns the generated client, for the calls this package
// does not wrap.
func (c *Client) Applications() applicationv1.ApplicationServiceClient { return c.app }

// Submit submits a school's applications, retrying what may succeed when
// tried again (Retryable) with the same idempotency key: the request's, or
// a new random one when it has none. However many tries it takes, the
// applications are created once, and the answer is the first submission's.
// Errors that are not retryable (invalid-argument, already-exists, ...) are
// returned at once, as is the last error when the tries run out.
func (c *Client) Submit(ctx context.Context, req *applicationv1.SubmitApplicationsRequest) (*applicationv1.SubmitApplicationsResponse, error) {
	req = proto.CloneOf(req)
	if req.GetIdempotencyKey() == "" {
		req.IdempotencyKey = uuid.NewString()
	}
	pause := c.first
	for attempt := 1; ; attempt++ {
		resp, err := c.app.SubmitApplications(ctx, req)
		if err == nil || attempt >= c.maxAttempts || !Retryable(err) || ctx.Err() != nil {
			return resp, err
		}
		if !wait.For(ctx, pauseAfter(err, pause)) {
			return nil, ctx.Err()
		}
		pause = min(2*pause, c.most)
	}
}

// Handler processes one answer of a school's change feed. Follow moves its
// cursor past the answer only when the handler returns nil; store
// resp.NextCursor with what the handler did, in one transaction, to resume
// exactly there after a restart.
type Handler func(ctx context.Context, resp *applicationv1.ListChangesResponse) error

// Follow reads school's change feed from the cursor after ("" for the
// start) until ctx is done or handle fails, long-polling when it has caught
// up. Retryable errors are retried with backoff from the same cursor, so no
// change is missed or given twice; it returns handle's error, an error that
// is not retryable (permission-denied for another school, invalid-argument
// for a bad cursor), or ctx's.
func (c *Client) Follow(ctx context.Context, school, after string, handle Handler) error {
	pause := c.first
	for {
		resp, err := c.app.ListChanges(ctx, &applicationv1.ListChangesRequest{SchoolCode: school, After: after,
			WaitSeconds: c.waitSeconds})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !Retryable(err) {
				return err
			}
			if !wait.For(ctx, pauseAfter(err, pause)) {
				return ctx.Err()
			}
			pause = min(2*pause, c.most)
			continue
		}
		pause = c.first
		if len(resp.GetChanges()) > 0 {
			if err := handle(ctx, resp); err != nil {
				return err
			}
		}
		after = resp.GetNextCursor()
	}
}

// Retryable reports whether a call that failed with err may succeed when
// sent again unchanged (docs/api.md, "Retrying"): unavailable, internal,
// deadline-exceeded, and the entry point's fair-use refusal
// (resource-exhausted). The rest fail again.
func Retryable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.Internal, codes.DeadlineExceeded:
		return true
	case codes.ResourceExhausted:
		// The rate limit carries the reason; a message over the size
		// limit, refused by the transport, carries none and fails again.
		return apperr.ReasonOf(err) == apperr.ReasonResourceExhausted
	default:
		return false
	}
}

// pauseAfter is the pause before trying again after err: at least a second
// after a fair-use refusal, as the gateway asks.
func pauseAfter(err error, pause time.Duration) time.Duration {
	if status.Code(err) == codes.ResourceExhausted {
		return max(pause, time.Second)
	}
	return pause
}

// ErrStop may be returned by a Handler to end Follow; Follow returns it.
var ErrStop = errors.New("portalclient: stop following")
