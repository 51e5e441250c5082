package bank_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/edubureau/studentaid/cmd/banksim/sim"
	"github.com/edubureau/studentaid/cmd/banksim/sim/simtest"
	"github.com/edubureau/studentaid/services/payout/internal/bank"
)

const (
	card = "6217001234567890123"
	name = "王小明"
)

func payment(key string) bank.Payment {
	return bank.Payment{Key: key, CardNumber: card, AccountName: name, AmountFen: 62500}
}

func gateway(t *testing.T, faults sim.Faults) (*bank.HTTPGateway, *simtest.Env) {
	t.Helper()
	env := simtest.Start(t, faults)
	return bank.NewHTTPGateway(env.Server.URL, env.Server.Client()), env
}

// assertNoSecrets fails when err mentions the card number or the name.
func assertNoSecrets(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if strings.Contains(err.Error(), card) || strings.Contains(err.Error(), name) {
		t.Errorf("error leaks the payee: %v", err)
	}
}

func TestPayCredited(t *testing.T) {
	t.Parallel()
	gw, _ := gateway(t, sim.Faults{})
	ctx := context.Background()
	p := payment("payout-credited-1")

	got, err := gw.Pay(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != bank.StatusCredited || got.Reason != "" || got.BankRef == "" || got.Key != p.Key || got.AmountFen != p.AmountFen {
		t.Fatalf("got %+v", got)
	}
	again, err := gw.Pay(ctx, p)
	if err != nil || again != got {
		t.Errorf("repeat: %+v %v, want %+v", again, err, got)
	}
	looked, err := gw.Lookup(ctx, p.Key)
	if err != nil || looked != got {
		t.Errorf("lookup: %+v %v, want %+v", looked, err, got)
	}
}

func TestPayRejected(t *testing.T) {
	t.Parallel()
	gw, _ := gateway(t, sim.Faults{})
	tests := []struct {
		name       string
		card, acct string
		wantReason string
	}{
		{name: "closed account", card: "6217001234560000", acct: name, wantReason: bank.ReasonAccountClosed},
		{name: "name mismatch", card: card, acct: "错名", wantReason: bank.ReasonNameMismatch},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := bank.Payment{Key: fmt.Sprintf("payout-rejected-%d", i), CardNumber: tt.card, AccountName: tt.acct, AmountFen: 100}
			got, err := gw.Pay(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != bank.StatusRejected || got.Reason != tt.wantReason || got.BankRef == "" {
				t.Errorf("got %+v, want rejected %s", got, tt.wantReason)
			}
		})
	}
}

func TestPayServiceUnavailableIsUnknownOutcome(t *testing.T) {
	t.Parallel()
	gw, env := gateway(t, sim.Faults{FailureRate: 1})
	_, err := gw.Pay(context.Background(), payment("payout-503"))
	if !errors.Is(err, bank.ErrUnknownOutcome) {
		t.Fatalf("err %v, want ErrUnknownOutcome", err)
	}
	assertNoSecrets(t, err)
	if _, err := env.Ledger.Get(context.Background(), "payout-503"); !errors.Is(err, sim.ErrNotFound) {
		t.Errorf("bank ledger: %v, want nothing", err)
	}
}

func TestPayTimeoutIsUnknownOutcomeThenLookupFindsCredit(t *testing.T) {
	t.Parallel()
	gw, _ := gateway(t, sim.Faults{TimeoutRate: 1, TimeoutDelay: 3 * time.Second})
	p := payment("payout-timeout")

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := gw.Pay(ctx, p)
	if !errors.Is(err, bank.ErrUnknownOutcome) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want ErrUnknownOutcome and deadline exceeded", err)
	}
	assertNoSecrets(t, err)

	got, err := gw.Lookup(context.Background(), p.Key)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != bank.StatusCredited || got.AmountFen != p.AmountFen || got.Key != p.Key || got.BankRef == "" {
		t.Errorf("lookup %+v, want credited", got)
	}
}

func TestLookupNeverExecuted(t *testing.T) {
	t.Parallel()
	gw, _ := gateway(t, sim.Faults{})
	_, err := gw.Lookup(context.Background(), "payout-never")
	if !errors.Is(err, bank.ErrNotFound) {
		t.Fatalf("err %v, want ErrNotFound", err)
	}
}

func TestPayRefusals(t *testing.T) {
	t.Parallel()
	gw, _ := gateway(t, sim.Faults{})
	ctx := context.Background()

	bad := payment("payout-bad")
	bad.AmountFen = 0
	_, err := gw.Pay(ctx, bad)
	if !errors.Is(err, bank.ErrInvalidPayment) {
		t.Errorf("zero amount: %v, want ErrInvalidPayment", err)
	}
	assertNoSecrets(t, err)

	p := payment("payout-conflict")
	if _, err := gw.Pay(ctx, p); err != nil {
		t.Fatal(err)
	}
	p.AmountFen++
	_, err = gw.Pay(ctx, p)
	if !errors.Is(err, bank.ErrKeyConflict) {
		t.Errorf("reuse: %v, want ErrKeyConflict", err)
	}
	assertNoSecrets(t, err)
}

func TestPayWithDoneContextSendsNothing(t *testing.T) {
	t.Parallel()
	gw, env := gateway(t, sim.Faults{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := gw.Pay(ctx, payment("payout-cancelled"))
	if !errors.Is(err, context.Canceled) || errors.Is(err, bank.ErrUnknownOutcome) {
		t.Errorf("err %v, want a known not-sent cancellation", err)
	}
	if _, err := env.Ledger.Get(context.Background(), "payout-cancelled"); !errors.Is(err, sim.ErrNotFound) {
		t.Errorf("bank ledger: %v, want nothing", err)
	}
}

// TestUnexpectedAnswersAreUnknown covers answers the simulator never gives
// but a real network or bank can.
func TestUnexpectedAnswersAreUnknown(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{name: "plain 404 from a proxy", handler: func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }},
		{name: "garbage 200", handler: func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("<html>ok</html>")) }},
		{name: "answer for another key", handler: func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(`{"idempotency_key":"other","bank_ref":"B1","status":"credited","reason":"","amount_fen":62500}`))
		}},
		{name: "unknown status", handler: func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(`{"idempotency_key":"payout-odd","bank_ref":"B1","status":"pending","reason":"","amount_fen":62500}`))
		}},
		{name: "502 echoing the card", handler: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte(`{"error":"upstream choked on ` + card + ` for ` + name + `"}`))
		}},
		{name: "400 page from a proxy", handler: func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "400 Bad Request: request header too large", http.StatusBadRequest)
		}},
		{name: "400 JSON that is not the bank's error", handler: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"bad request","gateway":"edge-7"}`))
		}},
		{name: "400 with an empty error", handler: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":""}`))
		}},
		{name: "connection dropped", handler: func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_ = conn.Close()
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(tt.handler)
			t.Cleanup(srv.Close)
			gw := bank.NewHTTPGateway(srv.URL, nil)
			_, err := gw.Pay(context.Background(), payment("payout-odd"))
			if !errors.Is(err, bank.ErrUnknownOutcome) {
				t.Errorf("pay: %v, want ErrUnknownOutcome", err)
			}
			assertNoSecrets(t, err)
			_, err = gw.Lookup(context.Background(), "payout-odd")
			if !errors.Is(err, bank.ErrUnknownOutcome) || errors.Is(err, bank.ErrNotFound) {
				t.Errorf("lookup: %v, want ErrUnknownOutcome", err)
			}
			_, err = gw.OpenLoan(context.Background(), loanRequest("payout-odd"))
			if !errors.Is(err, bank.ErrUnknownOutcome) {
				t.Errorf("open loan: %v, want ErrUnknownOutcome", err)
			}
			assertNoSecrets(t, err)
			_, err = gw.LookupLoan(context.Background(), "payout-odd")
			if !errors.Is(err, bank.ErrUnknownOutcome) || errors.Is(err, bank.ErrNotFound) {
				t.Errorf("lookup loan: %v, want ErrUnknownOutcome", err)
			}
		})
	}

	t.Run("bank down", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		_, err := bank.NewHTTPGateway(url, nil).Pay(context.Background(), payment("payout-down"))
		if !errors.Is(err, bank.ErrUnknownOutcome) {
			t.Errorf("pay: %v, want ErrUnknownOutcome", err)
		}
	})
}

func TestBankCallsAreClientSpans(t *testing.T) {
	t.Parallel()
	gw, _ := gateway(t, sim.Faults{})
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	ctx, parent := tp.Tracer("test").Start(context.Background(), "payout")
	if _, err := gw.Pay(ctx, payment("payout-traced")); err != nil {
		t.Fatal(err)
	}
	if _, err := gw.Lookup(ctx, "payout-traced"); err != nil {
		t.Fatal(err)
	}
	parent.End()

	var names []string
	for _, s := range rec.Ended() {
		if s.SpanKind() == trace.SpanKindClient {
			names = append(names, s.Name())
			if s.Parent().SpanID() != parent.SpanContext().SpanID() {
				t.Errorf("span %s not a child of the caller's span", s.Name())
			}
		}
	}
	if strings.Join(names, ",") != "bank pay,bank lookup" {
		t.Errorf("client spans %v, want bank pay and bank lookup", names)
	}
}

func loanRequest(key string) bank.LoanRequest {
	return bank.LoanRequest{Key: key, BorrowerName: name, CardNumber: card, AmountFen: 800000}
}

func TestOpenLoan(t *testing.T) {
	t.Parallel()
	gw, env := gateway(t, sim.Faults{})
	ctx := context.Background()
	r := loanRequest("payout-loan-1")

	if _, err := gw.LookupLoan(ctx, r.Key); !errors.Is(err, bank.ErrNotFound) {
		t.Fatalf("lookup before: %v, want ErrNotFound", err)
	}
	got, err := gw.OpenLoan(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if got.Key != r.Key || got.ContractNumber == "" || got.AmountFen != 800000 || got.Years != 19 {
		t.Fatalf("loan %+v", got)
	}
	again, err := gw.OpenLoan(ctx, r)
	if err != nil || again != got {
		t.Errorf("repeat: %+v %v, want %+v", again, err, got)
	}
	looked, err := gw.LookupLoan(ctx, r.Key)
	if err != nil || looked != got {
		t.Errorf("lookup: %+v %v, want %+v", looked, err, got)
	}
	other := r
	other.AmountFen++
	if _, err := gw.OpenLoan(ctx, other); !errors.Is(err, bank.ErrKeyConflict) {
		t.Errorf("key reused: %v, want ErrKeyConflict", err)
	}
	bad := loanRequest("payout-loan-2")
	bad.AmountFen = 0
	_, err = gw.OpenLoan(ctx, bad)
	if !errors.Is(err, bank.ErrInvalidPayment) {
		t.Errorf("zero amount: %v, want ErrInvalidPayment", err)
	}
	assertNoSecrets(t, err)
	if totals, err := env.Ledger.List(ctx, "", 10); err != nil || len(totals.Credits) != 0 {
		t.Errorf("a loan credited a card: %+v %v", totals, err)
	}
}

func TestLoanAnswersThatDoNotFitAreUnknown(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{
		"no contract number": `{"idempotency_key":"payout-loan","contract_number":"","status":"opened","amount_fen":800000,"years":19}`,
		"no years":           `{"idempotency_key":"payout-loan","contract_number":"C1","status":"opened","amount_fen":800000,"years":0}`,
		"another amount":     `{"idempotency_key":"payout-loan","contract_number":"C1","status":"opened","amount_fen":800001,"years":19}`,
		"a credit's answer":  `{"idempotency_key":"payout-loan","bank_ref":"B1","status":"credited","reason":"","amount_fen":800000}`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(body)) }))
			t.Cleanup(srv.Close)
			if _, err := bank.NewHTTPGateway(srv.URL, nil).OpenLoan(context.Background(), loanRequest("payout-loan")); !errors.Is(err, bank.ErrUnknownOutcome) {
				t.Errorf("open loan: %v, want ErrUnknownOutcome", err)
			}
		})
	}
}
