package sim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/cmd/banksim/sim"
	"github.com/edubureau/studentaid/cmd/banksim/sim/simtest"
	"github.com/edubureau/studentaid/pkg/db"
)

type paymentResponse struct {
	IdempotencyKey string `json:"idempotency_key"`
	BankRef        string `json:"bank_ref"`
	Status         string `json:"status"`
	Reason         string `json:"reason"`
	AmountFen      int64  `json:"amount_fen"`
}

type ledgerResponse struct {
	Credits []struct {
		IdempotencyKey string    `json:"idempotency_key"`
		BankRef        string    `json:"bank_ref"`
		CardMasked     string    `json:"card_masked"`
		AmountFen      int64     `json:"amount_fen"`
		Status         string    `json:"status"`
		Reason         string    `json:"reason"`
		CreatedAt      time.Time `json:"created_at"`
	} `json:"credits"`
	NextAfter string `json:"next_after"`
	Totals    struct {
		CreditedCount  int64 `json:"credited_count"`
		CreditedSumFen int64 `json:"credited_sum_fen"`
		RejectedCount  int64 `json:"rejected_count"`
	} `json:"totals"`
}

const (
	card = "6222021234567890123"
	name = "张三"
)

func payment(key string) sim.Payment {
	return sim.Payment{IdempotencyKey: key, CardNumber: card, AccountName: name, AmountFen: 50000}
}

// do sends a request and decodes a JSON body into out, returning the status.
func do(t *testing.T, client *http.Client, method, url string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", method, url, ct)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: decode: %v", method, url, err)
		}
	}
	return resp.StatusCode
}

func pay(t *testing.T, env *simtest.Env, p any) (int, paymentResponse) {
	t.Helper()
	var out paymentResponse
	return do(t, env.Server.Client(), http.MethodPost, env.Server.URL+"/v1/payments", p, &out), out
}

func countRows(t *testing.T, env *simtest.Env, key string) int {
	t.Helper()
	var n int
	q := "SELECT count(*) FROM " + pgx.Identifier{env.Schema, "credits"}.Sanitize() + " WHERE idempotency_key = $1"
	if err := env.Pool.QueryRow(context.Background(), q, key).Scan(&n); err != nil {
		t.Fatalf("count: %v", err)
	}
	return n
}

func TestPayCreditsExactlyOnceUnderConcurrentDuplicates(t *testing.T) {
	t.Parallel()
	env := simtest.Start(t, sim.Faults{})
	p := payment("dup-1")

	const n = 20
	var wg sync.WaitGroup
	results := make([]paymentResponse, n)
	statuses := make([]int, n)
	errs := make([]error, n)
	body, _ := json.Marshal(p)
	for i := range n {
		wg.Go(func() {
			resp, err := env.Server.Client().Post(env.Server.URL+"/v1/payments", "application/json", bytes.NewReader(body))
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			statuses[i] = resp.StatusCode
			errs[i] = json.NewDecoder(resp.Body).Decode(&results[i])
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		if statuses[i] != http.StatusOK {
			t.Fatalf("request %d: status %d", i, statuses[i])
		}
		if results[i] != results[0] {
			t.Errorf("request %d: %+v, want %+v", i, results[i], results[0])
		}
	}
	if results[0].Status != "credited" || results[0].BankRef == "" || results[0].AmountFen != p.AmountFen || results[0].IdempotencyKey != p.IdempotencyKey {
		t.Errorf("result %+v", results[0])
	}
	if got := countRows(t, env, p.IdempotencyKey); got != 1 {
		t.Errorf("%d ledger rows for the key, want 1", got)
	}
	page, err := env.Ledger.List(context.Background(), "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if page.Totals.CreditedCount != 1 || page.Totals.CreditedSumFen != p.AmountFen {
		t.Errorf("totals %+v, want one credit of %d", page.Totals, p.AmountFen)
	}
}

func TestPayRejectionRules(t *testing.T) {
	t.Parallel()
	env := simtest.Start(t, sim.Faults{})
	tests := []struct {
		name       string
		card, acct string
		wantStatus string
		wantReason string
	}{
		{name: "credited", card: "6222021234567891", acct: "李四", wantStatus: "credited"},
		{name: "closed account", card: "6222021234560000", acct: "李四", wantStatus: "rejected", wantReason: "ACCOUNT_CLOSED"},
		{name: "name mismatch", card: "6222021234567891", acct: "错名", wantStatus: "rejected", wantReason: "NAME_MISMATCH"},
		{name: "closed wins over mismatch", card: "6222021234560000", acct: "错名", wantStatus: "rejected", wantReason: "ACCOUNT_CLOSED"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := sim.Payment{IdempotencyKey: fmt.Sprintf("rule-%d", i), CardNumber: tt.card, AccountName: tt.acct, AmountFen: 1000}
			code, got := pay(t, env, p)
			if code != http.StatusOK {
				t.Fatalf("status %d", code)
			}
			if got.Status != tt.wantStatus || got.Reason != tt.wantReason || got.BankRef == "" {
				t.Fatalf("got %+v, want %s %q", got, tt.wantStatus, tt.wantReason)
			}
			// A replay returns the stored verdict, not a new one.
			code, again := pay(t, env, p)
			if code != http.StatusOK || again != got {
				t.Errorf("replay: %d %+v, want %+v", code, again, got)
			}
			c, err := env.Ledger.Get(context.Background(), p.IdempotencyKey)
			if err != nil {
				t.Fatal(err)
			}
			if string(c.Status) != tt.wantStatus || c.Reason != tt.wantReason || c.BankRef != got.BankRef {
				t.Errorf("stored %+v", c)
			}
		})
	}
}

func TestPayRefusesBadInput(t *testing.T) {
	t.Parallel()
	env := simtest.Start(t, sim.Faults{})
	valid := payment("bad-input")
	tests := []struct {
		name string
		body any
	}{
		{name: "missing key", body: sim.Payment{CardNumber: card, AccountName: name, AmountFen: 1}},
		{name: "key with slash", body: sim.Payment{IdempotencyKey: "a/b", CardNumber: card, AccountName: name, AmountFen: 1}},
		{name: "non-digit card", body: sim.Payment{IdempotencyKey: "k", CardNumber: "6222-0212-3456-7890", AccountName: name, AmountFen: 1}},
		{name: "short card", body: sim.Payment{IdempotencyKey: "k", CardNumber: "1234", AccountName: name, AmountFen: 1}},
		{name: "missing name", body: sim.Payment{IdempotencyKey: "k", CardNumber: card, AmountFen: 1}},
		{name: "zero amount", body: sim.Payment{IdempotencyKey: "k", CardNumber: card, AccountName: name}},
		{name: "negative amount", body: sim.Payment{IdempotencyKey: "k", CardNumber: card, AccountName: name, AmountFen: -5}},
		{name: "unknown field", body: map[string]any{"idempotency_key": "k", "card_number": card, "account_name": name, "amount_fen": 1, "amount_yuan": 1}},
		{name: "amount as string", body: map[string]any{"idempotency_key": "k", "card_number": card, "account_name": name, "amount_fen": "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out map[string]string
			code := do(t, env.Server.Client(), http.MethodPost, env.Server.URL+"/v1/payments", tt.body, &out)
			if code != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", code)
			}
			if out["error"] == "" {
				t.Errorf("no error message: %v", out)
			}
			if strings.Contains(out["error"], card) {
				t.Errorf("error message leaks the card number: %q", out["error"])
			}
		})
	}
	if code, _ := pay(t, env, valid); code != http.StatusOK {
		t.Errorf("valid payment after bad ones: %d", code)
	}
	if got := countRows(t, env, "k"); got != 0 {
		t.Errorf("bad input left %d rows", got)
	}
}

func TestPayRefusesKeyReusedForDifferentPayment(t *testing.T) {
	t.Parallel()
	env := simtest.Start(t, sim.Faults{})
	orig := payment("reuse-1")
	code, first := pay(t, env, orig)
	if code != http.StatusOK {
		t.Fatalf("first: %d", code)
	}
	tests := []struct {
		name   string
		change func(p *sim.Payment)
	}{
		{name: "other card", change: func(p *sim.Payment) { p.CardNumber = "6222021234567899" }},
		{name: "other amount", change: func(p *sim.Payment) { p.AmountFen++ }},
		{name: "other name", change: func(p *sim.Payment) { p.AccountName = "王五" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := orig
			tt.change(&p)
			var out map[string]string
			code := do(t, env.Server.Client(), http.MethodPost, env.Server.URL+"/v1/payments", p, &out)
			if code != http.StatusConflict || out["error"] == "" {
				t.Errorf("got %d %v, want 409 with an error", code, out)
			}
		})
	}
	c, err := env.Ledger.Get(context.Background(), orig.IdempotencyKey)
	if err != nil {
		t.Fatal(err)
	}
	if c.BankRef != first.BankRef || c.CardNumber != orig.CardNumber || c.AmountFen != orig.AmountFen {
		t.Errorf("original changed: %+v", c)
	}
}

func TestGetPayment(t *testing.T) {
	t.Parallel()
	env := simtest.Start(t, sim.Faults{})
	p := payment("get-1")
	_, paid := pay(t, env, p)

	var got paymentResponse
	if code := do(t, env.Server.Client(), http.MethodGet, env.Server.URL+"/v1/payments/get-1", nil, &got); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	if got != paid {
		t.Errorf("got %+v, want %+v", got, paid)
	}

	var missing map[string]string
	if code := do(t, env.Server.Client(), http.MethodGet, env.Server.URL+"/v1/payments/never-seen", nil, &missing); code != http.StatusNotFound {
		t.Fatalf("missing: status %d", code)
	}
	if missing["error"] != "not found" {
		t.Errorf("missing: body %v", missing)
	}
}

func TestLedgerPaginatesInKeyOrderWithTotals(t *testing.T) {
	t.Parallel()
	env := simtest.Start(t, sim.Faults{})
	var wantSum int64
	// Inserted out of order; rejected ones count apart.
	for _, i := range []int{5, 2, 7, 1, 4, 3, 6} {
		p := sim.Payment{IdempotencyKey: fmt.Sprintf("k%02d", i), CardNumber: fmt.Sprintf("62220212345678%02d", i), AccountName: name, AmountFen: int64(i) * 100}
		if i == 4 {
			p.CardNumber = "6222021234560000"
		}
		if i == 6 {
			p.AccountName = sim.MismatchedName
		}
		if i != 4 && i != 6 {
			wantSum += p.AmountFen
		}
		if code, _ := pay(t, env, p); code != http.StatusOK {
			t.Fatalf("pay %s: %d", p.IdempotencyKey, code)
		}
	}

	var keys []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		var page ledgerResponse
		url := env.Server.URL + "/v1/ledger?limit=3&after=" + after
		if code := do(t, env.Server.Client(), http.MethodGet, url, nil, &page); code != http.StatusOK {
			t.Fatalf("ledger: %d", code)
		}
		if page.Totals.CreditedCount != 5 || page.Totals.CreditedSumFen != wantSum || page.Totals.RejectedCount != 2 {
			t.Errorf("totals %+v, want 5 credited summing %d and 2 rejected", page.Totals, wantSum)
		}
		if len(page.Credits) > 3 {
			t.Fatalf("page of %d, limit 3", len(page.Credits))
		}
		for _, c := range page.Credits {
			keys = append(keys, c.IdempotencyKey)
			if strings.Count(c.CardMasked, "*") != 8 || !strings.HasPrefix(c.CardMasked, "6222") || strings.Contains(c.CardMasked, "02123456") {
				t.Errorf("card not masked: %q", c.CardMasked)
			}
			if c.CreatedAt.IsZero() || c.BankRef == "" {
				t.Errorf("entry %+v", c)
			}
		}
		if page.NextAfter == "" {
			break
		}
		after = page.NextAfter
	}
	want := []string{"k01", "k02", "k03", "k04", "k05", "k06", "k07"}
	if strings.Join(keys, ",") != strings.Join(want, ",") {
		t.Errorf("keys %v, want %v", keys, want)
	}

	for _, bad := range []string{"0", "-1", "x", "1001"} {
		if code := do(t, env.Server.Client(), http.MethodGet, env.Server.URL+"/v1/ledger?limit="+bad, nil, nil); code != http.StatusBadRequest {
			t.Errorf("limit=%s: status %d, want 400", bad, code)
		}
	}
}

func TestTimeoutInjectionCreditsButRespondsLate(t *testing.T) {
	t.Parallel()
	const delay = 500 * time.Millisecond
	env := simtest.Start(t, sim.Faults{TimeoutRate: 1, TimeoutDelay: delay})
	p := payment("slow-1")
	body, _ := json.Marshal(p)

	// A caller with a short deadline gives up without an answer...
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, env.Server.URL+"/v1/payments", bytes.NewReader(body))
	resp, err := env.Server.Client().Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got status %d before the injected delay", resp.StatusCode)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want deadline exceeded", err)
	}
	// ...yet the bank has credited it.
	var got paymentResponse
	if code := do(t, env.Server.Client(), http.MethodGet, env.Server.URL+"/v1/payments/slow-1", nil, &got); code != http.StatusOK {
		t.Fatalf("lookup: %d", code)
	}
	if got.Status != "credited" {
		t.Errorf("lookup %+v", got)
	}

	// A patient caller gets the same result, late.
	start := time.Now()
	code, again := pay(t, env, p)
	if elapsed := time.Since(start); elapsed < delay {
		t.Errorf("response after %s, want at least %s", elapsed, delay)
	}
	if code != http.StatusOK || again != got {
		t.Errorf("retry: %d %+v, want %+v", code, again, got)
	}
	if n := countRows(t, env, p.IdempotencyKey); n != 1 {
		t.Errorf("%d rows, want 1", n)
	}
}

func TestFailureInjectionDoesNothing(t *testing.T) {
	t.Parallel()
	env := simtest.Start(t, sim.Faults{FailureRate: 1})
	var out map[string]string
	if code := do(t, env.Server.Client(), http.MethodPost, env.Server.URL+"/v1/payments", payment("fail-1"), &out); code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", code)
	}
	if out["error"] == "" {
		t.Errorf("no error message")
	}
	if _, err := env.Ledger.Get(context.Background(), "fail-1"); !errors.Is(err, sim.ErrNotFound) {
		t.Errorf("ledger: %v, want not found", err)
	}
	if code := do(t, env.Server.Client(), http.MethodGet, env.Server.URL+"/healthz", nil, nil); code != http.StatusOK {
		t.Errorf("healthz: %d", code)
	}
}

func TestLatencyDelaysPayments(t *testing.T) {
	t.Parallel()
	const latency = 200 * time.Millisecond
	env := simtest.Start(t, sim.Faults{Latency: latency})
	start := time.Now()
	if code, _ := pay(t, env, payment("lat-1")); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	if elapsed := time.Since(start); elapsed < latency {
		t.Errorf("answered after %s, want at least %s", elapsed, latency)
	}
}

func TestSeedMakesFailuresReproducible(t *testing.T) {
	t.Parallel()
	sequence := func(seed uint64) string {
		env := simtest.Start(t, sim.Faults{FailureRate: 0.5, Seed: seed})
		var b strings.Builder
		for i := range 24 {
			code, _ := pay(t, env, payment(fmt.Sprintf("seed-%d", i)))
			if code == http.StatusOK {
				b.WriteByte('.')
			} else {
				b.WriteByte('x')
			}
		}
		return b.String()
	}
	a, b := sequence(42), sequence(42)
	if a != b {
		t.Errorf("same seed, different outcomes: %s vs %s", a, b)
	}
	if !strings.Contains(a, ".") || !strings.Contains(a, "x") {
		t.Errorf("rate 0.5 gave %s", a)
	}
}

func TestLogsHoldNoCardNumbersOrNames(t *testing.T) {
	t.Parallel()
	env := simtest.Start(t, sim.Faults{})
	p := payment("log-1")
	pay(t, env, p)
	pay(t, env, p)
	bad := p
	bad.AmountFen = 1
	pay(t, env, bad)
	closed := sim.Payment{IdempotencyKey: "log-2", CardNumber: "6222021234560000", AccountName: sim.MismatchedName, AmountFen: 1}
	pay(t, env, closed)
	do(t, env.Server.Client(), http.MethodGet, env.Server.URL+"/v1/ledger", nil, nil)

	logs := env.Logs.String()
	if !strings.Contains(logs, "log-1") {
		t.Fatalf("payments were not logged: %s", logs)
	}
	for _, secret := range []string{p.CardNumber, p.AccountName, closed.CardNumber, closed.AccountName} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain %q", secret)
		}
	}
}

func TestRunServesUntilCancelled(t *testing.T) {
	t.Parallel()
	schema := fmt.Sprintf("banksim_test_run_%d", time.Now().UnixNano())
	t.Cleanup(func() {
		pool, err := db.Connect(context.Background(), simtest.DatabaseURL(), db.Options{})
		if err != nil {
			t.Errorf("connect: %v", err)
			return
		}
		defer pool.Close()
		if _, err := pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Errorf("drop %s: %v", schema, err)
		}
	})
	cfg := sim.Config{Addr: "127.0.0.1:0", DatabaseURL: simtest.DatabaseURL(), Schema: schema}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- sim.Run(ctx, cfg, slog.New(slog.NewJSONHandler(t.Output(), nil)), func(a net.Addr) { addrs <- a })
	}()
	var addr net.Addr
	select {
	case addr = <-addrs:
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("not ready")
	}
	resp, err := http.Get("http://" + addr.String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("healthz: %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run returned %v", err)
		}
	case <-time.After(sim.ShutdownTimeout + time.Second):
		t.Fatal("no graceful stop")
	}
}
