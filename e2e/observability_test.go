package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/natsx"

	"github.com/edubureau/studentaid/internal/devtools/stack"
)

// TestTracesMetricsAndPrivacy runs the chain with a real Jaeger, then checks
// the traces ops rely on, the metrics, and that no full ID or card number
// reached any log or span.
func TestTracesMetricsAndPrivacy(t *testing.T) {
	s := startStack(t, map[string]string{"SCHOOL_REVIEW_NOTICE_PERIOD": "3s"}, true)
	res := runChain(t, s)
	apps := res.apps

	// Spans are exported in batches; wait until every service has reported.
	eventually(t, "all five services in Jaeger", 60*time.Second, func() error {
		var svc struct{ Data []string }
		if err := getJSON(s.JaegerQuery+"/api/services", &svc); err != nil {
			return err
		}
		for _, name := range stack.Services {
			if !contains(svc.Data, name) {
				return fmt.Errorf("services %v lack %s", svc.Data, name)
			}
		}
		return nil
	})

	t.Run("batch confirmation is one connected trace down to the application's update", func(t *testing.T) {
		b := res.batches[0]
		var tr jaegerTrace
		eventually(t, "confirmation trace complete", 60*time.Second, func() error {
			traces, err := findTraces(s.JaegerQuery, "finance-confirmation", map[string]string{"batch.id": b.GetBatchId()}, "aid.finance.v1.FinanceConfirmationService/ConfirmBatch")
			if err != nil {
				return err
			}
			// The refused confirmation (wrong sum) has its own trace; look
			// for the one that went on to pay.
			var missing error
			for _, c := range traces {
				if !c.hasSpan("finance-confirmation", "aid.finance.v1.FinanceConfirmationService/ConfirmBatch") {
					continue
				}
				full, err := getTrace(s.JaegerQuery, c.TraceID)
				if err != nil {
					return err
				}
				if missing = full.lacks([][2]string{
					{"finance-confirmation", "send aid.finance.payment_ordered.v1"},
					{"payout", "process aid.finance.payment_ordered.v1"},
					{"payout", "bank pay"},
					{"payout", "send aid.payout.payment_succeeded.v1"},
					{"application", "process aid.payout.payment_succeeded.v1"},
				}); missing == nil {
					tr = full
					return nil
				}
			}
			return fmt.Errorf("%d ConfirmBatch traces for the batch, none complete: %w", len(traces), missing)
		})
		if orphans := tr.orphans(); len(orphans) > 0 {
			t.Errorf("trace %s: %d spans whose parent is not in the trace, e.g. %s", tr.TraceID, len(orphans), orphans[0])
		}
		// The decision is on the span that made it, as a span event; the
		// payment's result carries its payout.id.
		for _, sp := range tr.Spans {
			switch {
			case sp.OperationName == "aid.finance.v1.FinanceConfirmationService/ConfirmBatch":
				found := false
				for _, l := range sp.Logs {
					found = found || (tag(l.Fields, "event.type") == events.TypeBatchConfirmed && tag(l.Fields, "batch.id") == b.GetBatchId())
				}
				if !found {
					t.Errorf("ConfirmBatch span has no %s span event for batch %s: %v", events.TypeBatchConfirmed, b.GetBatchId(), sp.Logs)
				}
			case strings.HasPrefix(sp.OperationName, "send aid.payout.payment_succeeded.v1"):
				if tag(sp.Tags, "payout.id") == "" {
					t.Errorf("%s has no payout.id: %v", sp.OperationName, sp.Tags)
				}
			}
		}
	})

	t.Run("REST calls are named by route and show once; the resource names the replica", func(t *testing.T) {
		var tr jaegerTrace
		eventually(t, "the REST submission's trace", 60*time.Second, func() error {
			traces, err := findTraces(s.JaegerQuery, "application", nil, "POST /v1/applications:submit")
			if err != nil {
				return err
			}
			if len(traces) == 0 {
				var ops struct{ Data []string }
				_ = getJSON(s.JaegerQuery+"/api/services/application/operations", &ops)
				return errf("no trace with a span named %q; the application's operations: %q", "POST /v1/applications:submit", ops.Data)
			}
			tr, err = getTrace(s.JaegerQuery, traces[0].TraceID)
			return err
		})
		var rest, grpcSpans []jaegerSpan
		for _, sp := range tr.Spans {
			switch sp.OperationName {
			case "POST /v1/applications:submit":
				rest = append(rest, sp)
			case "aid.application.v1.ApplicationService/SubmitApplications":
				grpcSpans = append(grpcSpans, sp)
			}
		}
		if len(rest) != 1 || tag(rest[0].Tags, "http.route") != "/v1/applications:submit" {
			t.Fatalf("REST spans %v, want one with http.route /v1/applications:submit", rest)
		}
		// The gRPC server span is the REST span's child: no client span of
		// the gateway's loopback call in between.
		if len(grpcSpans) != 1 || len(grpcSpans[0].References) == 0 || grpcSpans[0].References[0].SpanID != rest[0].SpanID {
			t.Errorf("gRPC spans of the REST submission: %v, want one, the REST span's child", grpcSpans)
		}
		proc := tr.Processes[rest[0].ProcessID]
		for _, key := range []string{"service.instance.id", "service.version", "host.name", "deployment.environment.name"} {
			if tag(proc.Tags, key) == "" {
				t.Errorf("the application's resource has no %s: %v", key, proc.Tags)
			}
		}
	})

	t.Run("a consumer's SQL sits under its process span", func(t *testing.T) {
		eventually(t, "a process span with children", 60*time.Second, func() error {
			traces, err := findTraces(s.JaegerQuery, "application", nil, "process aid.payout.payment_succeeded.v1")
			if err != nil {
				return err
			}
			for _, c := range traces {
				full, err := getTrace(s.JaegerQuery, c.TraceID)
				if err != nil {
					return err
				}
				for _, sp := range full.Spans {
					if sp.OperationName == "process aid.payout.payment_succeeded.v1" && len(full.children(sp.SpanID)) > 0 {
						return nil
					}
				}
			}
			return errf("%d traces, no application process span with a child (its inbox insert, SQL, commit)", len(traces))
		})
	})

	t.Run("a review decision links to the submission's trace", func(t *testing.T) {
		p := apps[0]
		eventually(t, "decision trace with a link", 60*time.Second, func() error {
			traces, err := findTraces(s.JaegerQuery, "school-review", nil, "aid.schoolreview.v1.SchoolReviewService/Decide")
			if err != nil {
				return err
			}
			subs, err := findTraces(s.JaegerQuery, "application", map[string]string{"application.id": p.id}, "")
			if err != nil {
				return err
			}
			submission := map[string]bool{}
			for _, st := range subs {
				if st.hasSpan("application", "aid.application.v1.ApplicationService/SubmitApplications") || st.hasSpanPrefix("application", "POST") {
					submission[st.TraceID] = true
				}
			}
			if len(submission) == 0 {
				return fmt.Errorf("no submission trace found for application.id=%s", p.id)
			}
			for _, dt := range traces {
				for _, sp := range dt.Spans {
					for _, ref := range sp.References {
						if ref.TraceID != dt.TraceID && submission[ref.TraceID] {
							return nil
						}
					}
				}
			}
			return fmt.Errorf("%d decision traces, none links to the submission traces %v", len(traces), submission)
		})
	})

	t.Run("searching by application.id finds the application's traces", func(t *testing.T) {
		for _, p := range []*planned{apps[0], apps[5], apps[160]} {
			traces, err := findTraces(s.JaegerQuery, "application", map[string]string{"application.id": p.id}, "")
			if err != nil {
				t.Fatal(err)
			}
			if len(traces) < 2 {
				t.Errorf("application %s: %d traces found by tag", p.id, len(traces))
			}
		}
	})

	t.Run("metrics moved by the expected amounts", func(t *testing.T) {
		paid := countWhere(apps, (*planned).paid)
		var paidSum int64
		for _, p := range apps {
			if p.paid() {
				paidSum += p.amount
			}
		}
		app := scrape(t, s.Endpoints["application"].HTTP)
		// 6 submissions (one over REST) and one idempotent retry succeed; one duplicate is refused.
		expectMetric(t, app, `aid_grpc_requests_total{code="OK",method="SubmitApplications"}`, 7)
		expectMetric(t, app, `aid_grpc_requests_total{code="AlreadyExists",method="SubmitApplications"}`, 1)
		eventually(t, "applications by status", 15*time.Second, func() error {
			m := scrape(t, s.Endpoints["application"].HTTP)
			if got := m[`aid_applications_by_status{status="PAID"}`]; got != float64(paid) {
				return fmt.Errorf("aid_applications_by_status{status=PAID} = %v, want %d", got, paid)
			}
			return nil
		})
		pay := scrape(t, s.Endpoints["payout"].HTTP)
		expectMetric(t, pay, `aid_payouts_total{result="paid"}`, float64(paid))
		expectMetric(t, pay, `aid_payouts_total{result="failed"}`, 1)
		expectMetric(t, pay, `aid_payout_amount_fen_total{result="paid"}`, float64(paidSum))
		for _, name := range stack.Services {
			m := scrape(t, s.Endpoints[name].HTTP)
			// data-comparison publishes only when an officer imports or
			// compares, which this run does not do; a read-only service
			// (reporting) never publishes.
			if sumMetric(m, "aid_outbox_published_total") <= 0 && name != "data-comparison" && !slices.Contains(natsx.ReadOnlyServices, name) {
				t.Errorf("%s: no events published", name)
			}
			if v := sumMetric(m, "aid_outbox_backlog"); v != 0 {
				t.Errorf("%s: outbox backlog %v after the run", name, v)
			}
			if sumMetric(m, "aid_events_consumed_total") <= 0 {
				t.Errorf("%s: consumed no events", name)
			}
		}
	})

	t.Run("no full ID number, name or card number in logs or spans", func(t *testing.T) {
		var secrets []string
		for _, p := range apps {
			secrets = append(secrets, p.req.GetStudentIdNumber(), p.req.GetBankCardNumber(), p.req.GetStudentName())
		}
		logs, _ := filepath.Glob(filepath.Join(s.KeyDir, "..", "logs", "*.log"))
		if len(logs) < 6 {
			t.Fatalf("expected the processes' logs, found %v", logs)
		}
		for _, f := range logs {
			switch filepath.Base(f) {
			case "banksim.log": // the bank holds card numbers by nature; its own log is checked by its tests
				continue
			case "nats.log", "jaeger.log": // they carry no request data
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) == 0 {
				t.Errorf("%s is empty: the capture would prove nothing", f)
			}
			for _, sec := range secrets {
				if strings.Contains(string(b), sec) {
					t.Errorf("%s contains personal data %s", filepath.Base(f), maskForReport(sec))
					break
				}
			}
		}
		for _, name := range stack.Services {
			raw, err := getRaw(s.JaegerQuery + "/api/traces?service=" + name + "&limit=2000&lookback=1h")
			if err != nil {
				t.Fatal(err)
			}
			if len(raw) < 1000 {
				t.Errorf("%s: only %d bytes of traces", name, len(raw))
			}
			for _, sec := range secrets {
				if strings.Contains(raw, sec) {
					t.Errorf("%s spans contain personal data %s", name, maskForReport(sec))
					break
				}
			}
		}
	})
}

func maskForReport(s string) string {
	r := []rune(s)
	if len(r) <= 4 {
		return "**"
	}
	return string(r[:2]) + "…" + string(r[len(r)-2:])
}

type jaegerSpan struct {
	TraceID       string      `json:"traceID"`
	SpanID        string      `json:"spanID"`
	OperationName string      `json:"operationName"`
	ProcessID     string      `json:"processID"`
	Tags          []jaegerTag `json:"tags"`
	Logs          []struct {
		Fields []jaegerTag `json:"fields"`
	} `json:"logs"`
	References []struct {
		RefType string `json:"refType"`
		TraceID string `json:"traceID"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
}

type jaegerTrace struct {
	TraceID   string       `json:"traceID"`
	Spans     []jaegerSpan `json:"spans"`
	Processes map[string]struct {
		ServiceName string      `json:"serviceName"`
		Tags        []jaegerTag `json:"tags"`
	} `json:"processes"`
}

type jaegerTag struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
}

// tag returns the value of key among tags, or "".
func tag(tags []jaegerTag, key string) string {
	for _, t := range tags {
		if t.Key == key {
			return fmt.Sprint(t.Value)
		}
	}
	return ""
}

// children returns the spans of the trace whose parent is span id.
func (tr jaegerTrace) children(id string) []jaegerSpan {
	var out []jaegerSpan
	for _, sp := range tr.Spans {
		for _, ref := range sp.References {
			if ref.RefType == "CHILD_OF" && ref.SpanID == id {
				out = append(out, sp)
			}
		}
	}
	return out
}

func (tr jaegerTrace) hasSpan(service, op string) bool {
	for _, sp := range tr.Spans {
		if sp.OperationName == op && tr.Processes[sp.ProcessID].ServiceName == service {
			return true
		}
	}
	return false
}

func (tr jaegerTrace) hasSpanPrefix(service, prefix string) bool {
	for _, sp := range tr.Spans {
		if strings.HasPrefix(sp.OperationName, prefix) && tr.Processes[sp.ProcessID].ServiceName == service {
			return true
		}
	}
	return false
}

// lacks reports the first (service, operation prefix) the trace has no span for.
func (tr jaegerTrace) lacks(want [][2]string) error {
	for _, w := range want {
		if !tr.hasSpanPrefix(w[0], w[1]) {
			return fmt.Errorf("trace %s has no %s span %q", tr.TraceID, w[0], w[1])
		}
	}
	return nil
}

// orphans lists spans whose CHILD_OF parent is missing from the trace.
func (tr jaegerTrace) orphans() []string {
	ids := map[string]bool{}
	for _, sp := range tr.Spans {
		ids[sp.SpanID] = true
	}
	var out []string
	for _, sp := range tr.Spans {
		for _, ref := range sp.References {
			if ref.RefType == "CHILD_OF" && ref.TraceID == tr.TraceID && !ids[ref.SpanID] {
				out = append(out, tr.Processes[sp.ProcessID].ServiceName+": "+sp.OperationName)
			}
		}
	}
	return out
}

func findTraces(base, service string, tags map[string]string, operation string) ([]jaegerTrace, error) {
	q := url.Values{"service": {service}, "limit": {"200"}, "lookback": {"1h"}}
	if len(tags) > 0 {
		b, _ := json.Marshal(tags)
		q.Set("tags", string(b))
	}
	if operation != "" {
		q.Set("operation", operation)
	}
	var resp struct{ Data []jaegerTrace }
	if err := getJSON(base+"/api/traces?"+q.Encode(), &resp); err != nil {
		return nil, err
	}
	return resp.Data, nil
}

func getTrace(base, id string) (jaegerTrace, error) {
	var resp struct{ Data []jaegerTrace }
	if err := getJSON(base+"/api/traces/"+id, &resp); err != nil {
		return jaegerTrace{}, err
	}
	if len(resp.Data) != 1 {
		return jaegerTrace{}, fmt.Errorf("trace %s: %d results", id, len(resp.Data))
	}
	return resp.Data[0], nil
}

func getRaw(u string) (string, error) {
	resp, err := http.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: HTTP %d: %s", u, resp.StatusCode, b)
	}
	return string(b), err
}

func getJSON(u string, out any) error {
	raw, err := getRaw(u)
	if err != nil {
		return err
	}
	return json.Unmarshal([]byte(raw), out)
}

func contains(xs []string, x string) bool {
	return slices.Contains(xs, x)
}

// scrape reads a service's Prometheus metrics as "name{labels}" → value,
// with labels sorted as the exposition format prints them.
func scrape(t *testing.T, httpAddr string) map[string]float64 {
	t.Helper()
	raw, err := getRaw("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[stripConstLabels(line[:i])] = v
	}
	return out
}

// stripConstLabels drops the service const label so tests can name series simply.
func stripConstLabels(series string) string {
	open := strings.IndexByte(series, '{')
	if open < 0 {
		return series
	}
	var keep []string
	for kv := range strings.SplitSeq(series[open+1:len(series)-1], ",") {
		if !strings.HasPrefix(kv, "service=") {
			keep = append(keep, kv)
		}
	}
	if len(keep) == 0 {
		return series[:open]
	}
	return series[:open] + "{" + strings.Join(keep, ",") + "}"
}

func sumMetric(m map[string]float64, name string) float64 {
	var sum float64
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			sum += v
		}
	}
	return sum
}

func expectMetric(t *testing.T, m map[string]float64, series string, want float64) {
	t.Helper()
	if got, ok := m[series]; !ok || got != want {
		t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
	}
}
