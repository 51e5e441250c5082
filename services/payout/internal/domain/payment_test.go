package domain

import (
	"errors"
	"testing"
)

func TestClaim(t *testing.T) {
	t.Parallel()
	tests := []struct {
		from     Status
		wantStep Step
		wantErr  error
		to       Status
		attempts int32
	}{
		{Pending, StepPay, nil, Unknown, 1},
		{Unknown, StepLookup, nil, Unknown, 1},
		{Paid, 0, ErrIllegalTransition, Paid, 0},
		{Failed, 0, ErrIllegalTransition, Failed, 0},
	}
	for _, tt := range tests {
		t.Run(string(tt.from), func(t *testing.T) {
			t.Parallel()
			p := &Payment{Status: tt.from}
			step, err := p.Claim()
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if step != tt.wantStep || p.Status != tt.to || p.Attempts != tt.attempts {
				t.Errorf("step %v status %s attempts %d; want %v %s %d", step, p.Status, p.Attempts, tt.wantStep, tt.to, tt.attempts)
			}
		})
	}
}

func TestSettle(t *testing.T) {
	t.Parallel()
	credited := Verdict{Paid: true, BankRef: "B1"}
	closed := Verdict{BankRef: "B2", Reason: "ACCOUNT_CLOSED"}
	tests := []struct {
		name    string
		from    Status
		v       Verdict
		wantErr error
		to      Status
	}{
		{"credited", Unknown, credited, nil, Paid},
		{"returned", Unknown, closed, nil, Failed},
		{"credit without reference", Unknown, Verdict{Paid: true}, ErrIllegalTransition, Unknown},
		{"failure without reason", Unknown, Verdict{}, ErrIllegalTransition, Unknown},
		{"pending never sent", Pending, credited, ErrIllegalTransition, Pending},
		{"paid twice", Paid, credited, ErrIllegalTransition, Paid},
		{"paid then failed", Paid, closed, ErrIllegalTransition, Paid},
		{"failed then paid", Failed, credited, ErrIllegalTransition, Failed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := &Payment{Status: tt.from}
			err := p.Settle(tt.v)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if p.Status != tt.to {
				t.Errorf("status %s, want %s", p.Status, tt.to)
			}
		})
	}
	p := &Payment{Status: Unknown}
	if err := p.Settle(closed); err != nil || p.Reason != "ACCOUNT_CLOSED" || p.BankRef != "B2" {
		t.Errorf("failed payment %+v %v", p, err)
	}
	if !Paid.Final() || !Failed.Final() || Pending.Final() || Unknown.Final() {
		t.Error("Final")
	}
}

func TestSettleLoan(t *testing.T) {
	t.Parallel()
	contract := Verdict{Paid: true, BankRef: "C1", ContractNumber: "C1", LoanYears: 19}
	tests := []struct {
		name    string
		funding string
		v       Verdict
		wantErr bool
	}{
		{"a loan with its contract", FundingBankLoan, contract, false},
		{"a loan credited without a contract", FundingBankLoan, Verdict{Paid: true, BankRef: "B1"}, true},
		{"a loan contract without years", FundingBankLoan, Verdict{Paid: true, BankRef: "C1", ContractNumber: "C1"}, true},
		{"a grant with a loan contract", "government", contract, true},
		{"a loan refused", FundingBankLoan, Verdict{Reason: ReasonInvalidPayment}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := &Payment{Status: Unknown, FundingSource: tt.funding}
			err := p.Settle(tt.v)
			if (err != nil) != tt.wantErr || (err != nil && !errors.Is(err, ErrIllegalTransition)) {
				t.Fatalf("Settle() = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && tt.v.Paid && p.LoanContractNumber != "C1" {
				t.Errorf("paid loan %+v lacks its contract", p)
			}
		})
	}
}
