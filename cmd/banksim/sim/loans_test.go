package sim_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/edubureau/studentaid/cmd/banksim/sim"
	"github.com/edubureau/studentaid/cmd/banksim/sim/simtest"
)

type loanResponse struct {
	IdempotencyKey string `json:"idempotency_key"`
	ContractNumber string `json:"contract_number"`
	Status         string `json:"status"`
	AmountFen      int64  `json:"amount_fen"`
	Years          int    `json:"years"`
}

func TestLoanYears(t *testing.T) {
	t.Parallel()
	tests := []struct {
		left, want int
	}{
		{0, 19}, // not given: a four-year course just begun
		{1, 16},
		{3, 18},
		{4, 19},
		{7, 22},
		{8, 22}, // capped
	}
	for _, tt := range tests {
		if got := sim.LoanYears(tt.left); got != tt.want {
			t.Errorf("LoanYears(%d) = %d, want %d", tt.left, got, tt.want)
		}
	}
}

func TestOpenLoanOnceUnderConcurrentDuplicatesAndNoCredit(t *testing.T) {
	t.Parallel()
	env := simtest.Start(t, sim.Faults{})
	req := sim.LoanRequest{IdempotencyKey: "loan-1", BorrowerName: name, CardNumber: card, AmountFen: 800000, StudyYearsLeft: 3}
	var wg sync.WaitGroup
	answers := make([]loanResponse, 8)
	for i := range answers {
		wg.Go(func() {
			if status := do(t, env.Server.Client(), http.MethodPost, env.Server.URL+"/v1/loans", req, &answers[i]); status != http.StatusOK {
				t.Errorf("status %d", status)
			}
		})
	}
	wg.Wait()
	for _, a := range answers {
		if a != answers[0] || a.IdempotencyKey != "loan-1" || a.Status != "opened" || a.AmountFen != 800000 || a.Years != 18 ||
			!strings.HasPrefix(a.ContractNumber, "BSIM-L") {
			t.Fatalf("answers %+v", answers)
		}
	}
	var got loanResponse
	if status := do(t, env.Server.Client(), http.MethodGet, env.Server.URL+"/v1/loans/loan-1", nil, &got); status != http.StatusOK || got != answers[0] {
		t.Errorf("lookup %d %+v", status, got)
	}
	var missing map[string]string
	if status := do(t, env.Server.Client(), http.MethodGet, env.Server.URL+"/v1/loans/loan-2", nil, &missing); status != http.StatusNotFound || missing["error"] != "not found" {
		t.Errorf("lookup of an unknown key %d %v", status, missing)
	}
	other := req
	other.AmountFen = 800001
	if status := do(t, env.Server.Client(), http.MethodPost, env.Server.URL+"/v1/loans", other, nil); status != http.StatusConflict {
		t.Errorf("key reused for another amount: status %d", status)
	}
	bad := req
	bad.IdempotencyKey, bad.AmountFen = "loan-3", 0
	if status := do(t, env.Server.Client(), http.MethodPost, env.Server.URL+"/v1/loans", bad, nil); status != http.StatusBadRequest {
		t.Errorf("zero amount: status %d", status)
	}
	totals, err := env.Ledger.LoanTotals(t.Context())
	if err != nil || totals != (sim.LoanTotals{Count: 1, SumFen: 800000}) {
		t.Errorf("loan totals %+v %v", totals, err)
	}
	if n := countRows(t, env, "loan-1"); n != 0 {
		t.Errorf("a loan credited a card: %d credits", n)
	}
	if strings.Contains(env.Logs.String(), card) || strings.Contains(env.Logs.String(), name) {
		t.Error("the card number or the borrower's name reached a log")
	}
}
