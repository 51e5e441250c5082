package sim

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/edubureau/studentaid/pkg/wait"
)

// Limits of GET /v1/ledger.
const (
	DefaultLedgerLimit = 100
	MaxLedgerLimit     = 1000
)

// Bank serves the simulated bank's HTTP JSON API over a Ledger.
type Bank struct {
	ledger *Ledger
	faults Faults
	logger *slog.Logger
	now    func() time.Time

	mu  sync.Mutex
	rng *rand.Rand
}

// Option configures a Bank.
type Option func(*Bank)

// WithClock sets the clock that stamps new credits.
func WithClock(now func() time.Time) Option { return func(b *Bank) { b.now = now } }

// NewBank serves ledger, misbehaving as faults say.
func NewBank(ledger *Ledger, faults Faults, logger *slog.Logger, opts ...Option) *Bank {
	b := &Bank{
		ledger: ledger,
		faults: faults,
		logger: logger,
		now:    time.Now,
		rng:    rand.New(rand.NewPCG(faults.Seed, faults.Seed^0x9e3779b97f4a7c15)),
	}
	for _, opt := range opts {
		opt(b)
	}
	return b
}

// Handler routes the API:
//
//	POST /v1/payments                       execute a payment once per idempotency key
//	GET  /v1/payments/{idempotency_key}     the bank's record, or 404
//	POST /v1/loans                          open a loan contract once per idempotency key
//	GET  /v1/loans/{idempotency_key}        the bank's loan contract, or 404
//	GET  /v1/ledger?after=<key>&limit=N     credits in key order, masked, with totals
//	GET  /healthz                           liveness and database reachability
//
// The loan calls misbehave as the payment calls do (Faults).
func (b *Bank) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/payments", b.handlePay)
	mux.HandleFunc("GET /v1/payments/{key}", b.handleGet)
	mux.HandleFunc("POST /v1/loans", b.handleOpenLoan)
	mux.HandleFunc("GET /v1/loans/{key}", b.handleGetLoan)
	mux.HandleFunc("GET /v1/ledger", b.handleLedger)
	mux.HandleFunc("GET /healthz", b.handleHealth)
	return b.logRequests(mux)
}

type paymentResponse struct {
	IdempotencyKey string `json:"idempotency_key"`
	BankRef        string `json:"bank_ref"`
	Status         Status `json:"status"`
	Reason         string `json:"reason"`
	AmountFen      int64  `json:"amount_fen"`
}

func toPaymentResponse(c Credit) paymentResponse {
	return paymentResponse{
		IdempotencyKey: c.IdempotencyKey,
		BankRef:        c.BankRef,
		Status:         c.Status,
		Reason:         c.Reason,
		AmountFen:      c.AmountFen,
	}
}

func (b *Bank) handlePay(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if !wait.For(ctx, b.faults.Latency) {
		return // the caller gave up before anything happened
	}
	if b.roll(b.faults.FailureRate) {
		b.logger.InfoContext(ctx, "injected failure", "path", r.URL.Path)
		writeError(w, http.StatusServiceUnavailable, "service unavailable")
		return
	}
	var p Payment
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		writeError(w, http.StatusBadRequest, "malformed JSON body")
		return
	}
	c, created, err := b.ledger.Pay(ctx, p, b.now().UTC())
	switch {
	case errors.Is(err, ErrInvalidPayment):
		writeError(w, http.StatusBadRequest, err.Error())
		return
	case errors.Is(err, ErrKeyReused):
		b.logger.WarnContext(ctx, "idempotency key reused for a different payment", "idempotency_key", p.IdempotencyKey)
		writeError(w, http.StatusConflict, err.Error())
		return
	case err != nil:
		b.logger.ErrorContext(ctx, "pay", "idempotency_key", p.IdempotencyKey, "err", err)
		writeError(w, http.StatusInternalServerError, "internal error")
		return
	}
	// Card tail only: the bank logs neither full card numbers nor names.
	b.logger.InfoContext(ctx, "payment",
		"idempotency_key", c.IdempotencyKey, "bank_ref", c.BankRef, "status", c.Status,
		"reason", c.Reason, "amount_fen", c.AmountFen, "card_last4", cardTail(c.CardNumber), "replay", !created)
	if b.roll(b.faults.TimeoutRate) {
		b.logger.InfoContext(ctx, "injected timeout: holding response", "idempotency_key", c.IdempotencyKey, "delay", b.faults.TimeoutDelay)
		if !wait.For(ctx, b.faults.TimeoutDelay) {
			return // the caller gave up; the credit stands
		}
	}
	writeJSON(w, http.StatusOK, toPaymentResponse(c))
}

func (b *Bank) handleGet(w http.ResponseWriter, r *http.Request) {
	b.serveRecord(w, r, "get payment", func(ctx context.Context, key string) (any, error) {
		c, err := b.ledger.Get(ctx, key)
		return toPaymentResponse(c), err
	})
}

// serveRecord answers a lookup of the record under the path's key: get's
// answer, the bank's own 404 when it has none, or an injected failure.
func (b *Bank) serveRecord(w http.ResponseWriter, r *http.Request, what string, get func(ctx context.Context, key string) (any, error)) {
	ctx := r.Context()
	if b.roll(b.faults.FailureRate) {
		b.logger.InfoContext(ctx, "injected failure", "path", r.URL.Path)
		writeError(w, http.StatusServiceUnavailable, "service unavailable")
		return
	}
	key := r.PathValue("key")
	if err := ValidateKey(key); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	resp, err := get(ctx, key)
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "not found")
	case err != nil:
		b.logger.ErrorContext(ctx, what, "idempotency_key", key, "err", err)
		writeError(w, http.StatusInternalServerError, "internal error")
	default:
		writeJSON(w, http.StatusOK, resp)
	}
}

type loanResponse struct {
	IdempotencyKey string `json:"idempotency_key"`
	ContractNumber string `json:"contract_number"`
	Status         string `json:"status"`
	AmountFen      int64  `json:"amount_fen"`
	Years          int    `json:"years"`
}

// LoanOpened is the status of every loan contract the bank answers with.
const LoanOpened = "opened"

func toLoanResponse(l Loan) loanResponse {
	return loanResponse{IdempotencyKey: l.IdempotencyKey, ContractNumber: l.ContractNumber, Status: LoanOpened, AmountFen: l.AmountFen, Years: l.Years}
}

func (b *Bank) handleOpenLoan(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if !wait.For(ctx, b.faults.Latency) {
		return
	}
	if b.roll(b.faults.FailureRate) {
		b.logger.InfoContext(ctx, "injected failure", "path", r.URL.Path)
		writeError(w, http.StatusServiceUnavailable, "service unavailable")
		return
	}
	var req LoanRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "malformed JSON body")
		return
	}
	loan, created, err := b.ledger.OpenLoan(ctx, req, b.now().UTC())
	switch {
	case errors.Is(err, ErrInvalidPayment):
		writeError(w, http.StatusBadRequest, err.Error())
		return
	case errors.Is(err, ErrKeyReused):
		b.logger.WarnContext(ctx, "idempotency key reused for a different loan", "idempotency_key", req.IdempotencyKey)
		writeError(w, http.StatusConflict, err.Error())
		return
	case err != nil:
		b.logger.ErrorContext(ctx, "open loan", "idempotency_key", req.IdempotencyKey, "err", err)
		writeError(w, http.StatusInternalServerError, "internal error")
		return
	}
	b.logger.InfoContext(ctx, "loan",
		"idempotency_key", loan.IdempotencyKey, "contract_number", loan.ContractNumber, "amount_fen", loan.AmountFen,
		"years", loan.Years, "card_last4", cardTail(loan.CardNumber), "replay", !created)
	if b.roll(b.faults.TimeoutRate) {
		b.logger.InfoContext(ctx, "injected timeout: holding response", "idempotency_key", loan.IdempotencyKey, "delay", b.faults.TimeoutDelay)
		if !wait.For(ctx, b.faults.TimeoutDelay) {
			return // the caller gave up; the contract stands
		}
	}
	writeJSON(w, http.StatusOK, toLoanResponse(loan))
}

func (b *Bank) handleGetLoan(w http.ResponseWriter, r *http.Request) {
	b.serveRecord(w, r, "get loan", func(ctx context.Context, key string) (any, error) {
		loan, err := b.ledger.GetLoan(ctx, key)
		return toLoanResponse(loan), err
	})
}

type ledgerEntry struct {
	IdempotencyKey string    `json:"idempotency_key"`
	BankRef        string    `json:"bank_ref"`
	CardMasked     string    `json:"card_masked"`
	AmountFen      int64     `json:"amount_fen"`
	Status         Status    `json:"status"`
	Reason         string    `json:"reason"`
	CreatedAt      time.Time `json:"created_at"`
}

type ledgerTotals struct {
	CreditedCount  int64 `json:"credited_count"`
	CreditedSumFen int64 `json:"credited_sum_fen"`
	RejectedCount  int64 `json:"rejected_count"`
}

type ledgerResponse struct {
	Credits   []ledgerEntry `json:"credits"`
	NextAfter string        `json:"next_after"`
	Totals    ledgerTotals  `json:"totals"`
}

func (b *Bank) handleLedger(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	after := q.Get("after")
	limit := DefaultLedgerLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > MaxLedgerLimit {
			writeError(w, http.StatusBadRequest, "limit must be an integer in 1.."+strconv.Itoa(MaxLedgerLimit))
			return
		}
		limit = n
	}
	page, err := b.ledger.List(ctx, after, limit)
	if err != nil {
		b.logger.ErrorContext(ctx, "list ledger", "err", err)
		writeError(w, http.StatusInternalServerError, "internal error")
		return
	}
	resp := ledgerResponse{
		Credits:   make([]ledgerEntry, 0, len(page.Credits)),
		NextAfter: page.NextAfter,
		Totals: ledgerTotals{
			CreditedCount:  page.Totals.CreditedCount,
			CreditedSumFen: page.Totals.CreditedSumFen,
			RejectedCount:  page.Totals.RejectedCount,
		},
	}
	for _, c := range page.Credits {
		resp.Credits = append(resp.Credits, ledgerEntry{
			IdempotencyKey: c.IdempotencyKey,
			BankRef:        c.BankRef,
			CardMasked:     MaskCard(c.CardNumber),
			AmountFen:      c.AmountFen,
			Status:         c.Status,
			Reason:         c.Reason,
			CreatedAt:      c.CreatedAt.UTC(),
		})
	}
	writeJSON(w, http.StatusOK, resp)
}

func (b *Bank) handleHealth(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := b.ledger.Ping(ctx); err != nil {
		b.logger.WarnContext(ctx, "health: database unreachable", "err", err)
		writeError(w, http.StatusServiceUnavailable, "database unreachable")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// roll reports true with probability p, drawing from the seeded source.
func (b *Bank) roll(p float64) bool {
	if p <= 0 {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rng.Float64() < p
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// v is a response struct or a map of strings, which always encode; the
	// one possible error is the client hanging up after the status was
	// sent, and there is no one left to tell.
	_ = json.NewEncoder(w).Encode(v) //nolint:errchkjson // see above: only a write to a departed client can fail
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// logRequests logs method, path, status and duration; bodies, which hold card
// numbers and names, are never logged.
func (b *Bank) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		status := rec.status
		if status == 0 {
			status = 499 // handler wrote nothing: the caller went away first
		}
		b.logger.InfoContext(r.Context(), "http request",
			"method", r.Method, "path", r.URL.Path, "status", status, "duration", time.Since(start))
	})
}
