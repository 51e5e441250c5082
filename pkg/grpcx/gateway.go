package grpcx

import (
	"context"
	"fmt"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/proto/gen/openapi"
)

// MaxHTTPBodyBytes caps a REST request body.
const MaxHTTPBodyBytes = 1 << 20

// GatewayRegistrar registers one service's REST handlers; the generated
// Register<Service>HandlerFromEndpoint functions have this shape.
type GatewayRegistrar func(ctx context.Context, mux *runtime.ServeMux, endpoint string, opts []grpc.DialOption) error

// HTTPDeps are what the HTTP side of a service serves.
type HTTPDeps struct {
	// GRPCAddr is the service's own gRPC address the gateway forwards to.
	GRPCAddr string
	Gatherer prometheus.Gatherer
	// Ready reports whether the service can take traffic.
	Ready      func(ctx context.Context) error
	Registrars []GatewayRegistrar
	// Routes are plain HTTP handlers served beside the gateway (e.g. file
	// exports), each given the gRPC address and dial options to call the
	// service's own API through, so authentication and the policy stay in
	// gRPC.
	Routes []HTTPRoute
}

// HTTPRoute is a plain HTTP handler for one ServeMux pattern, made once the
// gRPC address is known.
type HTTPRoute struct {
	Pattern string
	New     func(grpcAddr string, opts []grpc.DialOption) (http.Handler, error)
}

// NewHTTPHandler serves the REST gateway under /v1/, the OpenAPI document at
// /openapi.json, Prometheus metrics at /metrics and health at /healthz and
// /readyz. The Authorization header is forwarded to gRPC, where it is checked.
func NewHTTPHandler(ctx context.Context, d HTTPDeps) (http.Handler, error) {
	gw := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}),
		// The gateway's own refusals (a malformed body) carry a reason too.
		runtime.WithErrorHandler(func(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
			runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, apperr.EnsureReason(err))
		}),
		runtime.WithMetadata(routeAndPropagate),
	)
	// No client span on the loopback call: the REST server span is the
	// gRPC server span's parent directly (routeAndPropagate carries the
	// trace), so a REST call shows once in a trace, not twice.
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	for _, reg := range d.Registrars {
		if err := reg(ctx, gw, d.GRPCAddr, opts); err != nil {
			return nil, fmt.Errorf("register gateway: %w", err)
		}
	}
	mux := http.NewServeMux()
	for _, rt := range d.Routes {
		h, err := rt.New(d.GRPCAddr, opts)
		if err != nil {
			return nil, fmt.Errorf("route %s: %w", rt.Pattern, err)
		}
		// Named by the route's own pattern ("GET /v1/reporting/annual/{year}/export").
		pattern := rt.Pattern
		mux.Handle(rt.Pattern, otelhttp.NewHandler(h, "http",
			otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
				if r.Pattern != "" {
					return r.Pattern
				}
				return pattern
			})))
	}
	rest := otelhttp.NewHandler(gw, "rest",
		// Renamed "{method} {route}" once the gateway matched the route
		// (routeAndPropagate); a path no route matches keeps the method.
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method }),
	)
	mux.Handle("/v1/", http.MaxBytesHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The mux's own pattern ("/v1/") is no route: hidden from otelhttp,
		// which would otherwise name the span and set http.route after it.
		r = r.WithContext(r.Context())
		r.Pattern = ""
		rest.ServeHTTP(w, r)
	}), MaxHTTPBodyBytes))
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openapi.Spec)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.Gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if d.Ready != nil {
			if err := d.Ready(r.Context()); err != nil {
				http.Error(w, "not ready", http.StatusServiceUnavailable)
				return
			}
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return mux, nil
}

// routeAndPropagate runs as the gateway matched a route: it names the REST
// server span after the route pattern, as the OpenTelemetry HTTP
// conventions ask ("POST /v1/batches/{batch_id}:confirm", one name per RPC,
// no IDs in it), sets http.route, and puts the span's trace context into the
// gRPC call's metadata, where the gRPC server's instrumentation continues it.
func routeAndPropagate(ctx context.Context, r *http.Request) metadata.MD {
	span := trace.SpanFromContext(ctx)
	if pattern, ok := runtime.HTTPPathPattern(ctx); ok {
		span.SetName(r.Method + " " + pattern)
		span.SetAttributes(attribute.String("http.route", pattern))
	}
	md := metadata.MD{}
	otel.GetTextMapPropagator().Inject(ctx, mdCarrier(md))
	return md
}

// mdCarrier lets a propagator write gRPC metadata.
type mdCarrier metadata.MD

func (c mdCarrier) Get(key string) string {
	if v := metadata.MD(c).Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c mdCarrier) Set(key, value string) { metadata.MD(c).Set(key, value) }

func (c mdCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
