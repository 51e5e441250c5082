package bank

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
)

// maxResponseBytes bounds how much of a bank response is read.
const maxResponseBytes = 1 << 20

// HTTPGateway is a Gateway over the bank's HTTP JSON API
// (POST /v1/payments, GET /v1/payments/{key}; POST /v1/loans,
// GET /v1/loans/{key}). Bank calls appear as
// OpenTelemetry client spans. It sets no timeout of its own: bound each call
// with the caller's context.
type HTTPGateway struct {
	baseURL string
	client  *http.Client
}

var _ Gateway = (*HTTPGateway)(nil)

// NewHTTPGateway calls the bank at baseURL through a copy of client (a zero
// client when nil) whose Transport is wrapped with otelhttp.
func NewHTTPGateway(baseURL string, client *http.Client) *HTTPGateway {
	c := &http.Client{}
	if client != nil {
		copied := *client
		c = &copied
	}
	rt := c.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	if _, traced := rt.(*otelhttp.Transport); !traced {
		rt = otelhttp.NewTransport(rt, otelhttp.WithSpanNameFormatter(spanName))
	}
	c.Transport = rt
	return &HTTPGateway{baseURL: strings.TrimRight(baseURL, "/"), client: c}
}

// spanName keeps span names low-cardinality: the lookup path holds the key.
func spanName(_ string, r *http.Request) string {
	loan := strings.HasPrefix(r.URL.Path, "/v1/loans")
	switch {
	case r.Method == http.MethodPost && loan:
		return "bank open loan"
	case r.Method == http.MethodPost:
		return "bank pay"
	case loan:
		return "bank lookup loan"
	}
	return "bank lookup"
}

type payRequest struct {
	IdempotencyKey string `json:"idempotency_key"`
	CardNumber     string `json:"card_number"`
	AccountName    string `json:"account_name"`
	AmountFen      int64  `json:"amount_fen"`
}

type paymentResponse struct {
	IdempotencyKey string `json:"idempotency_key"`
	BankRef        string `json:"bank_ref"`
	Status         Status `json:"status"`
	Reason         string `json:"reason"`
	AmountFen      int64  `json:"amount_fen"`
}

type loanRequest struct {
	IdempotencyKey string `json:"idempotency_key"`
	BorrowerName   string `json:"borrower_name"`
	CardNumber     string `json:"card_number"`
	AmountFen      int64  `json:"amount_fen"`
}

type loanResponse struct {
	IdempotencyKey string `json:"idempotency_key"`
	ContractNumber string `json:"contract_number"`
	Status         string `json:"status"`
	AmountFen      int64  `json:"amount_fen"`
	Years          int32  `json:"years"`
}

// loanOpened is the status of a loan contract in the bank's answers.
const loanOpened = "opened"

type errorResponse struct {
	Error string `json:"error"`
}

// Pay implements Gateway. Errors carry the key, never the card number or name.
func (g *HTTPGateway) Pay(ctx context.Context, p Payment) (Result, error) {
	if err := ctx.Err(); err != nil {
		// Nothing was sent, so the outcome is known: not executed.
		return Result{}, fmt.Errorf("pay %s: %w", p.Key, err)
	}
	body, err := json.Marshal(payRequest{IdempotencyKey: p.Key, CardNumber: p.CardNumber, AccountName: p.AccountName, AmountFen: p.AmountFen})
	if err != nil {
		return Result{}, fmt.Errorf("pay %s: encode: %w", p.Key, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.baseURL+"/v1/payments", bytes.NewReader(body))
	if err != nil {
		return Result{}, fmt.Errorf("pay %s: build request: %w", p.Key, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	status, respBody, err := g.do(req)
	if err != nil {
		// Sent, or maybe sent: the bank may have executed it.
		return Result{}, fmt.Errorf("pay %s: %w: %w", p.Key, ErrUnknownOutcome, err)
	}
	switch status {
	case http.StatusOK, http.StatusCreated:
		res, err := decodeResult(respBody, p.Key)
		if err != nil {
			return Result{}, fmt.Errorf("pay %s: %w: %w", p.Key, ErrUnknownOutcome, err)
		}
		if res.AmountFen != p.AmountFen {
			return Result{}, fmt.Errorf("pay %s: %w: bank answered amount %d fen, sent %d", p.Key, ErrUnknownOutcome, res.AmountFen, p.AmountFen)
		}
		return res, nil
	case http.StatusBadRequest:
		if !fromBank(respBody) {
			// A 400 from a proxy or a gateway in between proves nothing
			// about whether the bank executed the payment.
			return Result{}, fmt.Errorf("pay %s: %w: status 400 not from the bank", p.Key, ErrUnknownOutcome)
		}
		return Result{}, fmt.Errorf("pay %s: %w: %s", p.Key, ErrInvalidPayment, bankMessage(respBody, p))
	case http.StatusConflict:
		return Result{}, fmt.Errorf("pay %s: %w: %s", p.Key, ErrKeyConflict, bankMessage(respBody, p))
	default:
		// 5xx, and anything unexpected: assume it may have been executed.
		return Result{}, fmt.Errorf("pay %s: %w: status %d: %s", p.Key, ErrUnknownOutcome, status, bankMessage(respBody, p))
	}
}

// Lookup implements Gateway.
func (g *HTTPGateway) Lookup(ctx context.Context, key string) (Result, error) {
	var res Result
	err := g.lookup(ctx, "lookup", "/v1/payments/", key, func(body []byte) (err error) {
		res, err = decodeResult(body, key)
		return err
	})
	return res, err
}

// lookup asks the bank for its record of key under path and decodes a found
// one with decode. Only the bank's own "not found" is ErrNotFound; anything
// else that is not the record wraps ErrUnknownOutcome (or ErrInvalidPayment
// for the bank's own 400).
func (g *HTTPGateway) lookup(ctx context.Context, call, path, key string, decode func(body []byte) error) error {
	if key == "" {
		return fmt.Errorf("%s: %w: empty key", call, ErrInvalidPayment)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.baseURL+path+url.PathEscape(key), nil)
	if err != nil {
		return fmt.Errorf("%s %s: build request: %w", call, key, err)
	}
	req.Header.Set("Accept", "application/json")
	status, respBody, err := g.do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w: %w", call, key, ErrUnknownOutcome, err)
	}
	switch status {
	case http.StatusOK:
		if err := decode(respBody); err != nil {
			return fmt.Errorf("%s %s: %w: %w", call, key, ErrUnknownOutcome, err)
		}
		return nil
	case http.StatusNotFound:
		// Only the bank's own "not found" proves it never executed the
		// payment; a 404 from a proxy or a wrong base URL proves nothing.
		var e errorResponse
		if json.Unmarshal(respBody, &e) == nil && e.Error == "not found" {
			return fmt.Errorf("%s %s: %w", call, key, ErrNotFound)
		}
		return fmt.Errorf("%s %s: %w: status 404 not from the bank", call, key, ErrUnknownOutcome)
	case http.StatusBadRequest:
		if !fromBank(respBody) {
			return fmt.Errorf("%s %s: %w: status 400 not from the bank", call, key, ErrUnknownOutcome)
		}
		return fmt.Errorf("%s %s: %w: %s", call, key, ErrInvalidPayment, bankMessage(respBody, Payment{}))
	default:
		return fmt.Errorf("%s %s: %w: status %d: %s", call, key, ErrUnknownOutcome, status, bankMessage(respBody, Payment{}))
	}
}

// OpenLoan implements Gateway. Errors carry the key, never the card number or name.
func (g *HTTPGateway) OpenLoan(ctx context.Context, r LoanRequest) (Loan, error) {
	if err := ctx.Err(); err != nil {
		return Loan{}, fmt.Errorf("open loan %s: %w", r.Key, err)
	}
	body, err := json.Marshal(loanRequest{IdempotencyKey: r.Key, BorrowerName: r.BorrowerName, CardNumber: r.CardNumber, AmountFen: r.AmountFen})
	if err != nil {
		return Loan{}, fmt.Errorf("open loan %s: encode: %w", r.Key, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.baseURL+"/v1/loans", bytes.NewReader(body))
	if err != nil {
		return Loan{}, fmt.Errorf("open loan %s: build request: %w", r.Key, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	status, respBody, err := g.do(req)
	if err != nil {
		return Loan{}, fmt.Errorf("open loan %s: %w: %w", r.Key, ErrUnknownOutcome, err)
	}
	payee := Payment{CardNumber: r.CardNumber, AccountName: r.BorrowerName}
	switch status {
	case http.StatusOK, http.StatusCreated:
		loan, err := decodeLoan(respBody, r.Key)
		if err != nil {
			return Loan{}, fmt.Errorf("open loan %s: %w: %w", r.Key, ErrUnknownOutcome, err)
		}
		if loan.AmountFen != r.AmountFen {
			return Loan{}, fmt.Errorf("open loan %s: %w: bank answered amount %d fen, sent %d", r.Key, ErrUnknownOutcome, loan.AmountFen, r.AmountFen)
		}
		return loan, nil
	case http.StatusBadRequest:
		if !fromBank(respBody) {
			return Loan{}, fmt.Errorf("open loan %s: %w: status 400 not from the bank", r.Key, ErrUnknownOutcome)
		}
		return Loan{}, fmt.Errorf("open loan %s: %w: %s", r.Key, ErrInvalidPayment, bankMessage(respBody, payee))
	case http.StatusConflict:
		return Loan{}, fmt.Errorf("open loan %s: %w: %s", r.Key, ErrKeyConflict, bankMessage(respBody, payee))
	default:
		return Loan{}, fmt.Errorf("open loan %s: %w: status %d: %s", r.Key, ErrUnknownOutcome, status, bankMessage(respBody, payee))
	}
}

// LookupLoan implements Gateway.
func (g *HTTPGateway) LookupLoan(ctx context.Context, key string) (Loan, error) {
	var loan Loan
	err := g.lookup(ctx, "lookup loan", "/v1/loans/", key, func(body []byte) (err error) {
		loan, err = decodeLoan(body, key)
		return err
	})
	return loan, err
}

func decodeLoan(body []byte, key string) (Loan, error) {
	var r loanResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return Loan{}, fmt.Errorf("decode bank response: %w", err)
	}
	switch {
	case r.IdempotencyKey != key:
		return Loan{}, fmt.Errorf("bank answered for key %q", r.IdempotencyKey)
	case r.Status != loanOpened:
		return Loan{}, fmt.Errorf("bank answered loan status %q", r.Status)
	case r.ContractNumber == "" || len(r.ContractNumber) > 64:
		return Loan{}, errors.New("bank answered without a contract number, or with one longer than 64")
	case r.Years < 1 || r.Years > 30:
		return Loan{}, fmt.Errorf("bank answered a term of %d years", r.Years)
	}
	return Loan{Key: r.IdempotencyKey, ContractNumber: r.ContractNumber, AmountFen: r.AmountFen, Years: r.Years}, nil
}

// do sends req and reads the whole response, so that a connection dropped
// mid-body counts as a failed call.
func (g *HTTPGateway) do(req *http.Request) (int, []byte, error) {
	resp, err := g.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return 0, nil, fmt.Errorf("read response: %w", err)
	}
	return resp.StatusCode, body, nil
}

func decodeResult(body []byte, key string) (Result, error) {
	var r paymentResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return Result{}, fmt.Errorf("decode bank response: %w", err)
	}
	if r.IdempotencyKey != key {
		return Result{}, fmt.Errorf("bank answered for key %q", r.IdempotencyKey)
	}
	switch {
	case r.Status == StatusCredited && r.Reason == "":
	case r.Status == StatusRejected && r.Reason != "":
	default:
		return Result{}, fmt.Errorf("bank answered status %q reason %q", r.Status, r.Reason)
	}
	if r.BankRef == "" {
		return Result{}, errors.New("bank answered without a bank_ref")
	}
	return Result{Key: r.IdempotencyKey, BankRef: r.BankRef, Status: r.Status, Reason: r.Reason, AmountFen: r.AmountFen}, nil
}

// bankMessage is the bank's error text for an error value: only the JSON
// error field, shortened, with the payee's card number and name struck out
// in case the bank echoed them.
// fromBank reports whether body is the bank's own error answer: a JSON
// object holding a non-empty "error" and nothing else. Only that proves the
// bank refused a request without executing it.
func fromBank(body []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var e errorResponse
	if dec.Decode(&e) != nil || e.Error == "" {
		return false
	}
	var rest json.RawMessage
	return errors.Is(dec.Decode(&rest), io.EOF)
}

func bankMessage(body []byte, p Payment) string {
	var e errorResponse
	if json.Unmarshal(body, &e) != nil || e.Error == "" {
		return "no error message"
	}
	msg := e.Error
	if p.CardNumber != "" {
		msg = strings.ReplaceAll(msg, p.CardNumber, "[card]")
	}
	if p.AccountName != "" {
		msg = strings.ReplaceAll(msg, p.AccountName, "[name]")
	}
	const maxLen = 200
	if len(msg) > maxLen {
		msg = strings.ToValidUTF8(msg[:maxLen], "") + "…"
	}
	return msg
}
