// Package telemetry sets up a process's traces (OpenTelemetry, exported over
// OTLP when the configuration names an endpoint), structured JSON logs that
// carry trace and span IDs, and a Prometheus registry.
package telemetry

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/edubureau/studentaid/pkg/config"
)

// Telemetry holds a process's tracer provider, logger and metrics registry.
type Telemetry struct {
	Log      *slog.Logger
	Tracer   trace.Tracer
	Provider *sdktrace.TracerProvider
	Registry *prometheus.Registry
}

// Setup builds the process's telemetry and installs the tracer provider and
// the W3C trace-context + baggage propagator as the OpenTelemetry globals,
// which the gRPC, HTTP and pgx instrumentation read. cfg decides whether
// traces are exported over OTLP.
func Setup(ctx context.Context, service, logLevel string, cfg config.Telemetry) (*Telemetry, error) {
	log := NewLogger(service, logLevel)
	// One instance ID per process: replicas of a service tell apart in a
	// trace by it (and by host.name).
	instance := make([]byte, 8)
	_, _ = rand.Read(instance)
	res, err := resource.New(ctx,
		resource.WithFromEnv(),
		resource.WithHost(),
		resource.WithAttributes(
			attribute.String("service.name", service),
			attribute.String("service.version", Version()),
			attribute.String("service.instance.id", fmt.Sprintf("%s-%x", service, instance)),
			attribute.String("deployment.environment.name", cfg.Environment),
		),
	)
	if err != nil {
		return nil, err
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if exporting(cfg) {
		exp, err := otlptracegrpc.New(ctx)
		if err != nil {
			return nil, err
		}
		opts = append(opts, sdktrace.WithBatcher(exp, sdktrace.WithMaxQueueSize(8192), sdktrace.WithMaxExportBatchSize(1024)))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("opentelemetry", "err", err) }))

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Telemetry{Log: log, Tracer: tp.Tracer("github.com/edubureau/studentaid/" + service), Provider: tp, Registry: reg}, nil
}

// Shutdown flushes pending spans.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	return t.Provider.Shutdown(ctx)
}

// exporting reports whether the OpenTelemetry settings ask for an OTLP exporter.
func exporting(cfg config.Telemetry) bool {
	if strings.EqualFold(cfg.TracesExporter, "none") || cfg.SDKDisabled {
		return false
	}
	return cfg.OTLPEndpoint != "" || cfg.OTLPTracesEndpoint != ""
}

// NewLogger returns a JSON logger that adds trace_id and span_id to every
// record logged with a context holding a span.
func NewLogger(service, level string) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		lv = slog.LevelInfo
	}
	h := slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lv})
	return slog.New(traceHandler{h}).With("service", service)
}

type traceHandler struct{ slog.Handler }

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(attrs)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}

// ErrorOf joins the shutdown errors of several components.
func ErrorOf(errs ...error) error { return errors.Join(errs...) }

// Version is the build's version: the module version of a released build,
// else the VCS revision it was built from (with "+dirty" for uncommitted
// changes), else "devel".
func Version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	rev, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "+dirty"
	}
	return rev
}
