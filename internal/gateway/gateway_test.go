package gateway

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"gopkg.in/yaml.v3"

	"github.com/edubureau/studentaid/pkg/auth"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestRoutes(t *testing.T) {
	tests := []struct {
		name, path, want string
		grpc             bool
	}{
		{"submit", "/v1/applications:submit", "application", false},
		{"one application", "/v1/applications/0b6e/trail", "application", false},
		{"programs", "/v1/programs", "application", false},
		{"policy", "/v1/policy/amounts/versions", "application", false},
		{"school review", "/v1/school-reviews:decide", "school-review", false},
		{"calendar", "/v1/working-calendars/2026", "school-review", false},
		{"bureau", "/v1/bureau-reviews/x", "bureau-review", false},
		{"batches", "/v1/batches/b1/items/a1:return", "finance-confirmation", false},
		{"loans totals", "/v1/loans:totals", "payout", false},
		{"payments", "/v1/payments", "payout", false},
		{"clues", "/v1/datacomparison/clues:assign", "data-comparison", false},
		{"prefix is not a word prefix", "/v1/applicationsx", "", false},
		{"unknown", "/v1/nothing", "", false},
		{"grpc application", "/aid.application.v1.ApplicationService/Submit", "application", true},
		{"grpc policy", "/aid.application.v1.PolicyService/ListVersions", "application", true},
		{"grpc finance", "/aid.finance.v1.FinanceConfirmationService/ListBatches", "finance-confirmation", true},
		{"grpc unknown", "/grpc.health.v1.Health/Check", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Route
			var ok bool
			if tt.grpc {
				r, ok = routeGRPC(Routes, tt.path)
			} else {
				r, ok = routeREST(Routes, tt.path)
			}
			if got := map[bool]string{true: r.Service}[ok]; got != tt.want {
				t.Errorf("route %s = %q, want %q", tt.path, got, tt.want)
			}
		})
	}
}

// TestIngressMatchesRoutes keeps deploy/k8s/ingress.yaml in step with Routes.
func TestIngressMatchesRoutes(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/k8s/ingress.yaml")
	if err != nil {
		t.Fatal(err)
	}
	type path struct {
		Path    string `yaml:"path"`
		Backend struct {
			Service struct {
				Name string `yaml:"name"`
				Port struct {
					Name string `yaml:"name"`
				} `yaml:"port"`
			} `yaml:"service"`
		} `yaml:"backend"`
	}
	got := map[string]string{} // path → service/port
	for doc := range strings.SplitSeq(string(raw), "\n---\n") {
		var ing struct {
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
			Spec struct {
				Rules []struct {
					HTTP struct {
						Paths []path `yaml:"paths"`
					} `yaml:"http"`
				} `yaml:"rules"`
			} `yaml:"spec"`
		}
		if err := yaml.Unmarshal([]byte(doc), &ing); err != nil {
			t.Fatal(err)
		}
		if ing.Metadata.Name == "console" {
			continue // the console's own host, not the public API
		}
		for _, r := range ing.Spec.Rules {
			for _, p := range r.HTTP.Paths {
				got[p.Path] = p.Backend.Service.Name + "/" + p.Backend.Service.Port.Name
			}
		}
	}
	want := map[string]string{}
	for _, r := range Routes {
		for _, p := range r.REST {
			want[p] = r.Service + "/http"
		}
		want["/"+r.GRPCPackage+"."] = r.Service + "/grpc"
	}
	for p, w := range want {
		if got[p] != w {
			t.Errorf("ingress path %s → %q, want %q", p, got[p], w)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("ingress path %s is not in gateway.Routes", p)
		}
	}
}

// TestFloodFromOneSchool: one school past its burst is refused with 429 and
// Retry-After; another school's requests pass.
func TestFloodFromOneSchool(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("{}")) }))
	defer upstream.Close()
	pub, priv, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	signer := auth.NewSigner(priv, "iss", "aud")
	token := func(org string) string {
		tok, err := signer.Mint(auth.Identity{UserID: "u-" + org, Role: auth.RoleSchoolOfficer, Org: org}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	clock := &fakeClock{t: time.Now()}
	reg := prometheus.NewRegistry()
	addr := strings.TrimPrefix(upstream.URL, "http://")
	g := New(Options{
		Routes:    Routes,
		Upstreams: map[string]Upstream{"application": {HTTP: addr, GRPC: addr}},
		Limits:    Limits{Rate: 2, Burst: 5, MaxBodyBytes: 100},
		Verifier:  auth.NewVerifier(auth.TokenPolicy{Audience: "aud", Issuer: "iss", MaxLifetime: 2 * time.Hour}, pub),
		Registry:  reg,
		Now:       clock.now,
	})
	do := func(org string, body []byte) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/v1/applications:submit", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token(org))
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, req)
		return rec
	}
	for i := range 5 {
		if rec := do("S001", nil); rec.Code != http.StatusOK {
			t.Fatalf("S001 request %d within the burst: %d %s", i, rec.Code, rec.Body)
		}
	}
	rec := do("S001", nil)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("S001 past the burst: %d Retry-After %q, want 429 and 1", rec.Code, rec.Header().Get("Retry-After"))
	}
	var st struct {
		Code    int `json:"code"`
		Details []struct {
			Reason string `json:"reason"`
		} `json:"details"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil || st.Code != 8 || len(st.Details) != 1 || st.Details[0].Reason != "resource-exhausted" {
		t.Errorf("429 body %s: want code 8 (ResourceExhausted) with reason resource-exhausted", rec.Body)
	}
	for i := range 5 {
		if rec := do("S002", nil); rec.Code != http.StatusOK {
			t.Fatalf("S002 request %d during S001's flood: %d", i, rec.Code)
		}
	}
	clock.t = clock.t.Add(time.Second) // two tokens back at 2/s
	for i := range 2 {
		if rec := do("S001", nil); rec.Code != http.StatusOK {
			t.Fatalf("S001 request %d a second later: %d", i, rec.Code)
		}
	}
	if rec := do("S002", bytes.Repeat([]byte("x"), 101)); rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("body over the limit: %d, want 413", rec.Code)
	}
	if got := testutil.ToFloat64(g.rejected.WithLabelValues("S001", "rate")); got != 1 {
		t.Errorf("rejected{org=S001,reason=rate} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(g.rejected.WithLabelValues("S002", "size")); got != 1 {
		t.Errorf("rejected{org=S002,reason=size} = %v, want 1", got)
	}
}

// TestRefusalHold: a refusal is answered after the hold, never later than
// its wait, and at once when every hold slot is taken.
func TestRefusalHold(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("{}")) }))
	defer upstream.Close()
	addr := strings.TrimPrefix(upstream.URL, "http://")
	const hold = 200 * time.Millisecond
	g := New(Options{
		Routes:    Routes,
		Upstreams: map[string]Upstream{"application": {HTTP: addr, GRPC: addr}},
		// Callers without a token share a bucket per address: one request,
		// then one every 10 s.
		Limits:   Limits{Rate: 0.1, Burst: 1, MaxBodyBytes: 100, RefusalHold: hold, MaxHeld: 1},
		Registry: prometheus.NewRegistry(),
	})
	do := func() (int, time.Duration) {
		req := httptest.NewRequest(http.MethodGet, "/v1/programs", http.NoBody)
		rec := httptest.NewRecorder()
		start := time.Now()
		g.ServeHTTP(rec, req)
		return rec.Code, time.Since(start)
	}
	if code, _ := do(); code != http.StatusOK {
		t.Fatalf("first request: %d", code)
	}
	held := make(chan time.Duration)
	go func() {
		code, d := do()
		if code != http.StatusTooManyRequests {
			t.Errorf("second request: %d, want 429", code)
		}
		held <- d
	}()
	// While the second is held (its slot the only one), a third is answered at once.
	deadline := time.Now().Add(hold / 2)
	for testutil.ToFloat64(g.held) != 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := testutil.ToFloat64(g.held); got != 1 {
		t.Fatalf("aid_gateway_held_refusals = %v while one refusal waits, want 1", got)
	}
	code, d := do()
	if code != http.StatusTooManyRequests || d >= hold/2 {
		t.Errorf("third request with every slot taken: %d after %v, want 429 at once", code, d)
	}
	if d := <-held; d < hold {
		t.Errorf("held refusal answered after %v, want at least %v", d, hold)
	}
	if got := testutil.ToFloat64(g.held); got != 0 {
		t.Errorf("aid_gateway_held_refusals = %v after the answer, want 0", got)
	}
}
