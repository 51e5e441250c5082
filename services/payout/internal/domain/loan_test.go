package domain

import (
	"errors"
	"testing"
	"time"
)

func TestLoanContractApply(t *testing.T) {
	t.Parallel()
	open := LoanContract{ContractNumber: "C1", AmountFen: 800000}
	tests := []struct {
		name             string
		start            LoanContract
		r                Repayment
		wantErr          error
		repaid, recovery int64
		status           LoanStatus
	}{
		{"part repaid", open, Repayment{Kind: KindRepayment, AmountFen: 300000}, nil, 300000, 0, LoanOpen},
		{"part recovered", open, Repayment{Kind: KindRecovery, AmountFen: 100000}, nil, 0, 100000, LoanOpen},
		{"repaid in full", open, Repayment{Kind: KindRepayment, AmountFen: 800000}, nil, 800000, 0, LoanRepaid},
		{"the rest recovered", LoanContract{ContractNumber: "C1", AmountFen: 800000, RepaidFen: 500000}, Repayment{Kind: KindRecovery, AmountFen: 300000}, nil, 500000, 300000, LoanRepaid},
		{"one fen too many", LoanContract{ContractNumber: "C1", AmountFen: 800000, RepaidFen: 500000}, Repayment{Kind: KindRecovery, AmountFen: 300001}, ErrExceedsOutstanding, 500000, 0, LoanOpen},
		{"nothing outstanding", LoanContract{ContractNumber: "C1", AmountFen: 800000, RepaidFen: 800000}, Repayment{Kind: KindRepayment, AmountFen: 1}, ErrExceedsOutstanding, 800000, 0, LoanRepaid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := tt.start.Apply(tt.r)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("Apply() = %v, want %v", err, tt.wantErr)
			}
			if c.RepaidFen != tt.repaid || c.RecoveredFen != tt.recovery || c.Status() != tt.status {
				t.Errorf("contract %+v status %s; want repaid %d recovered %d %s", c, c.Status(), tt.repaid, tt.recovery, tt.status)
			}
		})
	}
	if _, err := open.Apply(Repayment{Kind: KindRepayment}); err == nil {
		t.Error("a zero repayment applied")
	}
}

func TestRepaymentSameAs(t *testing.T) {
	t.Parallel()
	day := time.Date(2018, time.September, 3, 0, 0, 0, 0, time.UTC)
	r := Repayment{ContractNumber: "C1", Kind: KindRecovery, AmountFen: 100, BankReference: "B1", PaidOn: day, Reason: "overdue"}
	other := r
	other.ID, other.RecordedBy = "another id", "someone else"
	if !r.SameAs(other) {
		t.Error("the same money under the same reference is not the same")
	}
	for name, change := range map[string]func(*Repayment){
		"amount": func(o *Repayment) { o.AmountFen++ },
		"kind":   func(o *Repayment) { o.Kind = KindRepayment },
		"day":    func(o *Repayment) { o.PaidOn = day.AddDate(0, 0, 1) },
		"reason": func(o *Repayment) { o.Reason = "" },
		"loan":   func(o *Repayment) { o.ContractNumber = "C2" },
	} {
		o := r
		change(&o)
		if r.SameAs(o) {
			t.Errorf("another %s is the same", name)
		}
	}
}
