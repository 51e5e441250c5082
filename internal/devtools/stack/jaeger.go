package stack

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

var randReader = rand.Reader

const jaegerConfig = `service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    resource:
      service.name: jaeger
    metrics:
      level: none
    logs:
      level: warn
extensions:
  healthcheckv2:
    use_v2: true
    http:
      endpoint: "127.0.0.1:${env:JAEGER_HEALTH_PORT}"
  jaeger_query:
    storage:
      traces: memstore
    enable_tracing: false
%s    http:
      endpoint: "127.0.0.1:${env:JAEGER_QUERY_PORT}"
    grpc:
      endpoint: "127.0.0.1:${env:JAEGER_QUERY_GRPC_PORT}"
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: %d
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: "127.0.0.1:${env:JAEGER_OTLP_GRPC_PORT}"
      http:
        endpoint: "127.0.0.1:${env:JAEGER_OTLP_HTTP_PORT}"
processors:
  batch:
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`

// DefaultJaegerMaxTraces is how many traces Jaeger's in-memory store keeps
// unless Options.JaegerMaxTraces says otherwise; it then drops the oldest.
const DefaultJaegerMaxTraces = 200_000

// startJaeger runs Jaeger v2 with in-memory storage, every port on
// loopback and its self-tracing off.
func (s *Stack) startJaeger(ctx context.Context) error {
	ui := ""
	if s.opts.JaegerUIAssets != "" {
		ui = "    ui:\n      assets_path: \"${env:JAEGER_UI_ASSETS}\"\n"
	}
	cfgPath := filepath.Join(s.opts.Dir, "jaeger.yaml")
	maxTraces := s.opts.JaegerMaxTraces
	if maxTraces <= 0 {
		maxTraces = DefaultJaegerMaxTraces
	}
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(jaegerConfig, ui, maxTraces)), 0o644); err != nil {
		return err
	}
	ports := map[string]int{}
	preferred := map[string]int{"JAEGER_QUERY_PORT": 16686, "JAEGER_OTLP_GRPC_PORT": 4317, "JAEGER_OTLP_HTTP_PORT": 4318}
	for _, k := range []string{"JAEGER_HEALTH_PORT", "JAEGER_QUERY_PORT", "JAEGER_QUERY_GRPC_PORT", "JAEGER_OTLP_GRPC_PORT", "JAEGER_OTLP_HTTP_PORT"} {
		p, err := s.port(ctx, preferred[k])
		if err != nil {
			return err
		}
		ports[k] = p
	}
	env := map[string]string{}
	for k, v := range ports {
		env[k] = strconv.Itoa(v)
	}
	if s.opts.JaegerUIAssets != "" {
		env["JAEGER_UI_ASSETS"] = s.opts.JaegerUIAssets
	}
	s.JaegerQuery = "http://127.0.0.1:" + env["JAEGER_QUERY_PORT"]
	s.OTLP = "http://127.0.0.1:" + env["JAEGER_OTLP_GRPC_PORT"]
	s.jaeger = s.newProcess("jaeger", s.opts.JaegerBin, env, "http://127.0.0.1:"+env["JAEGER_HEALTH_PORT"]+"/status")
	s.jaeger.Args = []string{"--config", cfgPath}
	return s.jaeger.Start(ctx)
}
