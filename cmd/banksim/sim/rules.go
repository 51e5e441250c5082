// Package sim is a simulated bank: it credits bank cards exactly once per
// idempotency key, keeps its own ledger in PostgreSQL, models bank returns as
// rejections, and injects latency, failures and lost responses on demand. The
// banksim command serves it; tests elsewhere serve it through httptest.
package sim

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Status is the outcome the bank records for a payment.
type Status string

// Outcomes of a payment.
const (
	StatusCredited Status = "credited"
	StatusRejected Status = "rejected"
)

// Reason codes of rejected payments, modelled on bank returns.
const (
	ReasonAccountClosed = "ACCOUNT_CLOSED"
	ReasonNameMismatch  = "NAME_MISMATCH"
)

// Inputs that trigger rejections.
const (
	// ClosedCardSuffix ends the card numbers of closed accounts.
	ClosedCardSuffix = "0000"
	// MismatchedName is the account name that never matches the card.
	MismatchedName = "错名"
)

// Limits on payment fields.
const (
	MaxKeyLen         = 128
	MinCardLen        = 12
	MaxCardLen        = 19
	MaxAccountNameLen = 100 // characters
)

// Errors of the ledger.
var (
	// ErrInvalidPayment: the request is malformed; nothing was executed.
	ErrInvalidPayment = errors.New("invalid payment")
	// ErrKeyReused: the key was already used for a different payment.
	ErrKeyReused = errors.New("idempotency key already used for a different payment")
	// ErrNotFound: the bank has no payment under that key.
	ErrNotFound = errors.New("not found")
)

// Payment asks the bank to credit AmountFen to a card.
type Payment struct {
	IdempotencyKey string `json:"idempotency_key"`
	CardNumber     string `json:"card_number"`
	AccountName    string `json:"account_name"`
	AmountFen      int64  `json:"amount_fen"`
}

// Credit is the bank's record of a payment, credited or rejected.
type Credit struct {
	IdempotencyKey string
	BankRef        string
	CardNumber     string
	AccountName    string
	AmountFen      int64
	Status         Status
	Reason         string
	CreatedAt      time.Time
}

// Validate reports, wrapping ErrInvalidPayment, what is wrong with p. Its
// messages never contain the card number or the name.
func (p Payment) Validate() error {
	if err := ValidateKey(p.IdempotencyKey); err != nil {
		return err
	}
	n := len(p.CardNumber)
	if n < MinCardLen || n > MaxCardLen || !allDigits(p.CardNumber) {
		return fmt.Errorf("%w: card_number must be %d to %d digits", ErrInvalidPayment, MinCardLen, MaxCardLen)
	}
	if strings.TrimSpace(p.AccountName) == "" {
		return fmt.Errorf("%w: account_name is required", ErrInvalidPayment)
	}
	if !utf8.ValidString(p.AccountName) || utf8.RuneCountInString(p.AccountName) > MaxAccountNameLen {
		return fmt.Errorf("%w: account_name must be valid UTF-8 of at most %d characters", ErrInvalidPayment, MaxAccountNameLen)
	}
	if p.AmountFen <= 0 {
		return fmt.Errorf("%w: amount_fen must be positive", ErrInvalidPayment)
	}
	return nil
}

// ValidateKey checks an idempotency key: 1 to MaxKeyLen characters from
// A-Z a-z 0-9 - _ . : so that it is safe in a URL path segment.
func ValidateKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: idempotency_key is required", ErrInvalidPayment)
	}
	if len(key) > MaxKeyLen {
		return fmt.Errorf("%w: idempotency_key longer than %d", ErrInvalidPayment, MaxKeyLen)
	}
	for _, r := range key {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9',
			r == '-', r == '_', r == '.', r == ':':
		default:
			return fmt.Errorf("%w: idempotency_key may hold only letters, digits and the characters %q", ErrInvalidPayment, "-_.:")
		}
	}
	return nil
}

// Decide returns the bank's verdict on a valid payment: credited, or
// rejected with a reason code.
func Decide(p Payment) (Status, string) {
	switch {
	case strings.HasSuffix(p.CardNumber, ClosedCardSuffix):
		return StatusRejected, ReasonAccountClosed
	case p.AccountName == MismatchedName:
		return StatusRejected, ReasonNameMismatch
	default:
		return StatusCredited, ""
	}
}

// MaskCard keeps the first and last four digits of a card number and stars
// the rest; numbers too short to keep anything hidden are starred entirely.
func MaskCard(card string) string {
	if len(card) <= 8 {
		return strings.Repeat("*", len(card))
	}
	return card[:4] + strings.Repeat("*", len(card)-8) + card[len(card)-4:]
}

// cardTail is what logs may show of a card.
func cardTail(card string) string {
	if len(card) <= 8 {
		return ""
	}
	return card[len(card)-4:]
}

func allDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
