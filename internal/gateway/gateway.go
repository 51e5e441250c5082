package gateway

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/auth"
)

// Upstream is where one service listens.
type Upstream struct {
	GRPC, HTTP string
}

// Options configure a Gateway.
type Options struct {
	Routes    []Route
	Upstreams map[string]Upstream
	Limits    Limits
	// Verifier checks bearer tokens (the services' public keys): the org
	// of a verified token names its bucket. Requests without a valid token
	// share a bucket per client address; the services refuse them anyway.
	Verifier *auth.Verifier
	Registry *prometheus.Registry
	Now      func() time.Time
}

// Gateway is the entry point's handler.
type Gateway struct {
	opts     Options
	limiter  *orgLimiter
	rest     map[string]*httputil.ReverseProxy
	grpc     map[string]*httputil.ReverseProxy
	rejected *prometheus.CounterVec
	requests *prometheus.CounterVec
	held     prometheus.Gauge
	holds    chan struct{} // a slot per refusal held (Limits.MaxHeld)
	mux      *http.ServeMux
	orgs     *orgCache
}

// New returns the gateway's handler. It serves h2c, so the server must allow
// unencrypted HTTP/2 (NewServer does).
func New(opts Options) *Gateway {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	g := &Gateway{
		opts:    opts,
		limiter: newOrgLimiter(opts.Limits, opts.Now),
		orgs:    newOrgCache(opts.Now),
		rest:    map[string]*httputil.ReverseProxy{},
		grpc:    map[string]*httputil.ReverseProxy{},
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aid_gateway_rejected_requests_total",
			Help: "Requests the entry point refused, by organisation and reason (rate, size).",
		}, []string{"org", "reason"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aid_gateway_requests_total",
			Help: "Requests the entry point passed on, by service and protocol (rest, grpc).",
		}, []string{"service", "protocol"}),
		held: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "aid_gateway_held_refusals",
			Help: "Requests refused for their rate whose answer is being held (AID_GATEWAY_REFUSAL_HOLD).",
		}),
		holds: make(chan struct{}, max(opts.Limits.MaxHeld, 0)),
	}
	opts.Registry.MustRegister(g.rejected, g.requests, g.held)
	h2c := &http.Transport{Protocols: new(http.Protocols)}
	h2c.Protocols.SetUnencryptedHTTP2(true)
	h2c.MaxIdleConnsPerHost = 64
	h1 := &http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second, TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}}
	for _, r := range opts.Routes {
		up := opts.Upstreams[r.Service]
		g.rest[r.Service] = proxy(up.HTTP, h1)
		g.grpc[r.Service] = proxy(up.GRPC, h2c)
	}
	g.mux = http.NewServeMux()
	g.mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{}))
	g.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	g.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ready\n")) })
	if len(opts.Routes) > 0 {
		// The API document is the same on every service; the first serves it.
		g.mux.Handle("GET /openapi.json", g.rest[opts.Routes[0].Service])
	}
	return g
}

func proxy(addr string, t http.RoundTripper) *httputil.ReverseProxy {
	target := &url.URL{Scheme: "http", Host: addr}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
		},
		Transport:     t,
		FlushInterval: -1, // gRPC streams and long polls pass through as they come
	}
}

// ServeHTTP routes a request, after the fair-use checks.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	isGRPC := r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc")
	var route Route
	var ok bool
	if isGRPC {
		route, ok = routeGRPC(g.opts.Routes, r.URL.Path)
	} else {
		route, ok = routeREST(g.opts.Routes, r.URL.Path)
	}
	if !ok {
		if isGRPC {
			// What a gRPC server answers for a method it does not have.
			writeGRPCError(w, codes.Unimplemented, "no service serves "+r.URL.Path)
			return
		}
		g.mux.ServeHTTP(w, r)
		return
	}
	org := g.org(r)
	if r.ContentLength > g.opts.Limits.MaxBodyBytes {
		g.rejected.WithLabelValues(org, "size").Inc()
		msg := "the request body is larger than " + strconv.FormatInt(g.opts.Limits.MaxBodyBytes, 10) + " bytes"
		if isGRPC {
			writeGRPCError(w, codes.ResourceExhausted, msg)
		} else {
			writeRESTError(w, http.StatusRequestEntityTooLarge, codes.ResourceExhausted, msg)
		}
		return
	}
	if allowed, wait := g.limiter.allow(org); !allowed {
		g.rejected.WithLabelValues(org, "rate").Inc()
		secs := retryAfterSeconds(wait)
		msg := "too many requests from " + org + ": retry after " + strconv.Itoa(secs) + "s"
		g.hold(r.Context(), time.Duration(secs)*time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		if isGRPC {
			writeGRPCError(w, codes.ResourceExhausted, msg)
		} else {
			writeRESTError(w, http.StatusTooManyRequests, codes.ResourceExhausted, msg)
		}
		return
	}
	if isGRPC {
		g.requests.WithLabelValues(route.Service, "grpc").Inc()
		g.grpc[route.Service].ServeHTTP(&grpcWriter{ResponseWriter: w}, r)
		return
	}
	g.requests.WithLabelValues(route.Service, "rest").Inc()
	r.Body = http.MaxBytesReader(w, r.Body, g.opts.Limits.MaxBodyBytes)
	g.rest[route.Service].ServeHTTP(w, r)
}

// hold delays a rate refusal's answer by Limits.RefusalHold, at most the
// Retry-After it gives (whole seconds), while a slot is free; a caller that
// goes away ends it early.
func (g *Gateway) hold(ctx context.Context, wait time.Duration) {
	d := min(g.opts.Limits.RefusalHold, wait)
	if d <= 0 {
		return
	}
	select {
	case g.holds <- struct{}{}:
	default:
		return // as many held as allowed: answer at once
	}
	g.held.Inc()
	t := time.NewTimer(d)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
	}
	g.held.Dec()
	<-g.holds
}

// grpcWriter passes a gRPC answer on, keeping a trailers-only one whole.
// gRPC refuses a call at once with the status in the response headers and
// the stream ended by that same HEADERS frame. The reverse proxy flushes the
// headers as soon as it has them (FlushInterval -1, for streams); flushed
// before the handler returns, they leave in a frame of their own and the
// stream ends with an empty DATA frame, which a gRPC client reads as
// Internal "server closed the stream without sending trailers" instead of
// the status. So while the headers carry a status and no body has been
// written, a flush waits for the handler's end, which sends them with the
// end of the stream.
type grpcWriter struct {
	http.ResponseWriter
	body bool
}

func (w *grpcWriter) Write(p []byte) (int, error) {
	w.body = true
	return w.ResponseWriter.Write(p)
}

func (w *grpcWriter) Flush() {
	if !w.body && w.Header().Get("Grpc-Status") != "" {
		return
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *grpcWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// org names the caller's bucket: the organisation of a verified bearer
// token, else the client address.
func (g *Gateway) org(r *http.Request) string {
	if raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && g.opts.Verifier != nil {
		if org, ok := g.orgs.get(raw); ok {
			return org
		}
		if id, err := g.opts.Verifier.Verify(raw); err == nil {
			g.orgs.put(raw, id.Org)
			return id.Org
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "unauthenticated:" + host
}

// writeRESTError answers as the services' REST gateway does: a
// google.rpc.Status in JSON carrying the catalog reason.
func writeRESTError(w http.ResponseWriter, httpStatus int, code codes.Code, msg string) {
	st, _ := status.FromError(apperr.WithReason(code, msg))
	body, err := protojson.Marshal(st.Proto())
	if err != nil {
		body = []byte(`{"code":` + strconv.Itoa(int(code)) + `,"message":"too many requests"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(httpStatus)
	_, _ = w.Write(body)
}

// writeGRPCError answers a gRPC call with a trailers-only status carrying
// the catalog reason of code (resource-exhausted for ResourceExhausted) in
// its ErrorInfo.
func writeGRPCError(w http.ResponseWriter, code codes.Code, msg string) {
	st, _ := status.FromError(apperr.WithReason(code, msg))
	h := w.Header()
	h.Set("Content-Type", "application/grpc")
	h.Set("Grpc-Status", strconv.Itoa(int(code)))
	h.Set("Grpc-Message", encodeGRPCMessage(msg))
	if b, err := proto.Marshal(st.Proto()); err == nil {
		h.Set("Grpc-Status-Details-Bin", base64Raw(b))
	}
	w.WriteHeader(http.StatusOK)
}

// NewServer serves g on addr with HTTP/1.1 and unencrypted HTTP/2 (gRPC).
func NewServer(addr string, g http.Handler) *http.Server {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return &http.Server{Addr: addr, Handler: g, Protocols: p, ReadHeaderTimeout: 10 * time.Second}
}

// Shutdown stops srv, waiting up to grace for requests in flight.
func Shutdown(srv *http.Server, grace time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	return srv.Shutdown(ctx)
}
