package domain

import (
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	t.Parallel()
	retry := Retry{Base: time.Second, Max: 5 * time.Minute}
	later := func(wait time.Duration) Decision { return Decision{Next: NextAskLater, Wait: wait} }
	paid := Decision{Next: NextSettle, Verdict: Verdict{Paid: true, BankRef: "B1"}}
	returned := Decision{Next: NextSettle, Verdict: Verdict{BankRef: "B2", Reason: "ACCOUNT_CLOSED"}}
	invalid := Decision{Next: NextSettle, Verdict: Verdict{Reason: ReasonInvalidPayment}}
	unreadable := Decision{Next: NextSettle, Verdict: Verdict{Reason: ReasonPayeeUnreadable}}
	credited := Answer{Outcome: OutcomeCredited, BankRef: "B1"}
	contracted := Answer{Outcome: OutcomeContracted, ContractNumber: "C1", LoanYears: 19}
	loan := Decision{Next: NextSettle, Verdict: Verdict{Paid: true, BankRef: "C1", ContractNumber: "C1", LoanYears: 19}}
	rejected := Answer{Outcome: OutcomeRejected, BankRef: "B2", Reason: "ACCOUNT_CLOSED"}
	tests := []struct {
		name     string
		step     Step
		answer   Answer
		attempts int32
		want     Decision
	}{
		{"paid: credited", StepPay, credited, 1, paid},
		{"paid: rejected", StepPay, rejected, 1, returned},
		{"paid: not found", StepPay, Answer{Outcome: OutcomeNotFound}, 1, later(time.Second)},
		{"paid: invalid", StepPay, Answer{Outcome: OutcomeInvalid}, 1, invalid},
		{"paid: unknown", StepPay, Answer{Outcome: OutcomeUnknown}, 1, later(time.Second)},
		{"paid: unknown, third attempt", StepPay, Answer{Outcome: OutcomeUnknown}, 3, later(4 * time.Second)},
		{"paid: payee unreadable", StepPay, Answer{Outcome: OutcomePayeeUnreadable}, 1, unreadable},
		{"paid: not sent", StepPay, Answer{Outcome: OutcomeNotSent}, 1, later(0)},
		{"looked up: credited", StepLookup, credited, 2, paid},
		{"looked up: rejected", StepLookup, rejected, 2, returned},
		{"looked up: not found", StepLookup, Answer{Outcome: OutcomeNotFound}, 2, Decision{Next: NextPay}},
		{"looked up: invalid", StepLookup, Answer{Outcome: OutcomeInvalid}, 2, later(2 * time.Second)},
		{"looked up: unknown", StepLookup, Answer{Outcome: OutcomeUnknown}, 2, later(2 * time.Second)},
		{"looked up: unknown, many attempts", StepLookup, Answer{Outcome: OutcomeUnknown}, 100, later(5 * time.Minute)},
		{"looked up: payee unreadable", StepLookup, Answer{Outcome: OutcomePayeeUnreadable}, 2, unreadable},
		{"looked up: not sent", StepLookup, Answer{Outcome: OutcomeNotSent}, 2, later(0)},
		{"not taken up", 0, Answer{Outcome: OutcomeUnknown}, 1, later(time.Second)},
		{"loan: contracted", StepPay, contracted, 1, loan},
		{"loan looked up: contracted", StepLookup, contracted, 2, loan},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Decide(tt.step, tt.answer, tt.attempts, retry); got != tt.want {
				t.Errorf("Decide(%v, %+v, %d) = %+v, want %+v", tt.step, tt.answer, tt.attempts, got, tt.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	base, ceiling := time.Second, 5*time.Minute
	tests := []struct {
		attempts int32
		want     time.Duration
	}{
		{0, time.Second},
		{1, time.Second},
		{2, 2 * time.Second},
		{3, 4 * time.Second},
		{9, 256 * time.Second},
		{10, 5 * time.Minute},
		{1000, 5 * time.Minute},
	}
	for _, tt := range tests {
		if got := Backoff(tt.attempts, base, ceiling); got != tt.want {
			t.Errorf("Backoff(%d) = %v, want %v", tt.attempts, got, tt.want)
		}
	}
	if got := Backoff(3, 0, ceiling); got != 0 {
		t.Errorf("zero base: %v", got)
	}
}
