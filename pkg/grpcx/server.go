// Package grpcx builds the gRPC servers and REST gateways of the services:
// OpenTelemetry stats handlers, authentication and authorization of every
// call, error mapping, request metrics and input size limits.
package grpcx

import (
	"context"
	"errors"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/audit"
	"github.com/edubureau/studentaid/pkg/auth"
)

// MaxRequestBytes caps one request message.
const MaxRequestBytes = 4 << 20

// Policy maps a full gRPC method name ("/aid.application.v1.ApplicationService/SubmitApplications")
// to the roles allowed to call it. Methods not listed are refused.
type Policy map[string][]auth.Role

// Allows reports whether role may call method.
func (p Policy) Allows(method string, role auth.Role) bool {
	return slices.Contains(p[method], role)
}

// openMethods need no token.
func openMethod(method string) bool {
	return strings.HasPrefix(method, "/grpc.health.v1.Health/")
}

// ServerDeps are what the server's interceptors use.
type ServerDeps struct {
	Log      *slog.Logger
	Verifier *auth.Verifier
	Policy   Policy
	// Audit receives refused attempts; nil skips auditing.
	Audit    audit.Execer
	Registry prometheus.Registerer
}

// NewServer returns a gRPC server with the platform's interceptors.
func NewServer(d ServerDeps, opts ...grpc.ServerOption) *grpc.Server {
	m := newServerMetrics(d.Registry)
	all := make([]grpc.ServerOption, 0, 3+len(opts))
	unary := []grpc.UnaryServerInterceptor{
		recoverInterceptor(d.Log),
		m.interceptor(),
		authInterceptor(d),
		errorInterceptor(d),
	}
	all = append(all,
		grpc.StatsHandler(otelgrpc.NewServerHandler()),
		grpc.MaxRecvMsgSize(MaxRequestBytes),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.StreamInterceptor(streamInterceptor(unary)),
	)
	return grpc.NewServer(append(all, opts...)...)
}

// streamInterceptor runs a streaming call through the same recovery,
// metrics, authentication, policy and error mapping as a unary call: the
// unary interceptors in order, with the stream's handler (seeing their
// context, the caller's identity in it) as the innermost handler.
func streamInterceptor(unary []grpc.UnaryServerInterceptor) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		uinfo := &grpc.UnaryServerInfo{Server: srv, FullMethod: info.FullMethod}
		h := grpc.UnaryHandler(func(ctx context.Context, _ any) (any, error) {
			return nil, handler(srv, &contextStream{ServerStream: ss, ctx: ctx})
		})
		for _, ic := range slices.Backward(unary) {
			next := h
			h = func(ctx context.Context, req any) (any, error) { return ic(ctx, req, uinfo, next) }
		}
		_, err := h(ss.Context(), nil)
		return err
	}
}

// contextStream is a server stream with the interceptors' context.
type contextStream struct {
	grpc.ServerStream
	ctx context.Context //nolint:containedctx // the stream's context, as grpc.ServerStream.Context returns it
}

func (s *contextStream) Context() context.Context { return s.ctx }

func recoverInterceptor(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				log.ErrorContext(ctx, "panic in handler", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
				err = apperr.WithReason(codes.Internal, "internal error")
			}
		}()
		return handler(ctx, req)
	}
}

// errorInterceptor maps application errors to statuses and audits refusals.
func errorInterceptor(d ServerDeps) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		if err == nil {
			return resp, nil
		}
		var ae *apperr.Error
		if errors.As(err, &ae) && (ae.Code == apperr.PermissionDenied || ae.Rule != "") {
			// Refusals that name a rule (a FailedPrecondition or
			// InvalidArgument of a four-eyes or purpose rule) are audited
			// like denials.
			recordDenial(ctx, d, info.FullMethod, ae)
		}
		return nil, apperr.ToStatus(ctx, d.Log, info.FullMethod, err)
	}
}

// recordDenial writes a refused attempt to the audit trail.
func recordDenial(ctx context.Context, d ServerDeps, method string, ae *apperr.Error) {
	if d.Audit == nil {
		return
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	outcome := "denied"
	if ae.Code != apperr.PermissionDenied {
		outcome = "refused"
	}
	if err := audit.Record(actx, d.Audit, audit.Entry{Method: method, Outcome: outcome, Rule: string(ae.Rule), Detail: ae.Message}); err != nil {
		d.Log.ErrorContext(ctx, "audit write failed", "err", err)
	}
}

// authInterceptor verifies the bearer token and checks the method's policy.
func authInterceptor(d ServerDeps) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if openMethod(info.FullMethod) {
			return handler(ctx, req)
		}
		raw := bearer(ctx)
		if raw == "" {
			return nil, apperr.WithReason(codes.Unauthenticated, "missing bearer token: send 'authorization: Bearer <token>'")
		}
		id, err := d.Verifier.Verify(raw)
		if err != nil {
			d.Log.InfoContext(ctx, "token refused", "method", info.FullMethod, "err", err)
			return nil, apperr.WithReason(codes.Unauthenticated, "invalid or expired token")
		}
		ctx = auth.WithIdentity(ctx, id)
		trace.SpanFromContext(ctx).SetAttributes(
			attribute.String("enduser.id", id.UserID),
			attribute.String("enduser.role", string(id.Role)),
			attribute.String("enduser.org", id.Org),
		)
		if !d.Policy.Allows(info.FullMethod, id.Role) {
			ae := apperr.Denied(apperr.ReasonRoleNotPermitted, "role %s may not call %s", id.Role, methodName(info.FullMethod))
			recordDenial(ctx, d, info.FullMethod, ae)
			return nil, apperr.ToStatus(ctx, d.Log, info.FullMethod, ae)
		}
		return handler(ctx, req)
	}
}

func bearer(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		if token, ok := strings.CutPrefix(v, "Bearer "); ok {
			return strings.TrimSpace(token)
		}
	}
	return ""
}

func methodName(full string) string {
	if i := strings.LastIndex(full, "/"); i >= 0 {
		return full[i+1:]
	}
	return full
}

type serverMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	// uncatalogued counts answers whose reason the catalog lacks; the
	// catalog tests keep it at zero.
	uncatalogued *prometheus.CounterVec
}

func newServerMetrics(reg prometheus.Registerer) *serverMetrics {
	m := &serverMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aid_grpc_requests_total",
			Help: "gRPC requests by method and status code."}, []string{"method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "aid_grpc_request_duration_seconds",
			Help: "gRPC request latency by method.", Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}, []string{"method"}),
		uncatalogued: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aid_grpc_uncatalogued_reasons_total",
			Help: "Failed gRPC requests whose ErrorInfo reason is not in the error catalog (pkg/apperr), by method and reason."}, []string{"method", "reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.latency, m.uncatalogued)
	}
	return m
}

func (m *serverMetrics) interceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		method := methodName(info.FullMethod)
		m.latency.WithLabelValues(method).Observe(time.Since(start).Seconds())
		m.requests.WithLabelValues(method, status.Code(err).String()).Inc()
		if err != nil {
			if r := apperr.ReasonOf(err); r != "" {
				if _, ok := apperr.Lookup(r); !ok {
					m.uncatalogued.WithLabelValues(method, string(r)).Inc()
				}
			}
		}
		return resp, err
	}
}

// Caller returns the authenticated caller of an RPC; the auth interceptor
// put it there, so its absence is a wiring error reported as Unauthenticated.
func Caller(ctx context.Context) (auth.Identity, error) {
	id, ok := auth.FromContext(ctx)
	if !ok {
		return auth.Identity{}, apperr.New(apperr.Unauthenticated, "not signed in")
	}
	return id, nil
}
