package domain

import (
	"errors"
	"fmt"
	"testing"

	"github.com/edubureau/studentaid/pkg/events"
)

// states are every state the machine distinguishes: each status, and the
// bureau-approved status with and without a batch.
var testStates = []struct {
	name  string
	state State
}{
	{"new", State{}},
	{"SUBMITTED", State{Status: StatusSubmitted, AmountFen: 50000}},
	{"IN_NOTICE", State{Status: StatusInNotice, HardshipLevel: "difficult", AmountFen: 100000}},
	{"SCHOOL_REJECTED", State{Status: StatusSchoolRejected, Reason: "not eligible"}},
	{"SCHOOL_APPROVED", State{Status: StatusSchoolApproved, AmountFen: 100000}},
	{"BUREAU_REJECTED", State{Status: StatusBureauRejected, Reason: "duplicate"}},
	{"BUREAU_APPROVED", State{Status: StatusBureauApproved, AmountFen: 100000}},
	{"BUREAU_APPROVED+batch", State{Status: StatusBureauApproved, AmountFen: 100000, BatchID: "b1"}},
	{"CONFIRMED", State{Status: StatusConfirmed, AmountFen: 100000, BatchID: "b1", PaymentID: "p1"}},
	{"PAID", State{Status: StatusPaid, AmountFen: 100000, BatchID: "b1", PaymentID: "p1"}},
	{"PAYMENT_FAILED", State{Status: StatusPaymentFailed, AmountFen: 100000, BatchID: "b1", PaymentID: "p1", Reason: "ACCOUNT_CLOSED"}},
	{"WITHDRAWN", State{Status: StatusWithdrawn, AmountFen: 50000, Reason: "the family moved away"}},
}

// legal lists, per state name, the kinds allowed and the status they lead to.
var legal = map[string]map[Kind]Status{
	"new":                   {KindSubmitted: StatusSubmitted},
	"SUBMITTED":             {KindSchoolApproved: StatusInNotice, KindSchoolRejected: StatusSchoolRejected, KindWithdrawn: StatusWithdrawn},
	"IN_NOTICE":             {KindNoticeObjected: StatusSubmitted, KindNoticePassed: StatusSchoolApproved},
	"SCHOOL_APPROVED":       {KindBureauApproved: StatusBureauApproved, KindBureauRejected: StatusBureauRejected},
	"BUREAU_APPROVED":       {KindItemBatched: StatusBureauApproved},
	"BUREAU_APPROVED+batch": {KindItemReturned: StatusSchoolApproved, KindPaymentOrdered: StatusConfirmed},
	"CONFIRMED":             {KindPaymentSucceeded: StatusPaid, KindPaymentFailed: StatusPaymentFailed},
	"PAYMENT_FAILED": {KindPaymentOrdered: StatusConfirmed, KindPayeeCorrected: StatusPaymentFailed,
		KindPayeeCorrectionEntered: StatusPaymentFailed, KindPayeeCorrectionRejected: StatusPaymentFailed},
}

// later lists, per state name, the kinds refused now but allowed after
// changes that may still arrive. Every other refused kind is impossible.
var later = map[string][]Kind{
	"new": {KindSchoolApproved, KindSchoolRejected, KindNoticeObjected, KindNoticePassed, KindBureauApproved,
		KindBureauRejected, KindItemBatched, KindItemReturned, KindPaymentOrdered, KindPaymentSucceeded, KindPaymentFailed, KindPayeeCorrected, KindPayeeCorrectionEntered, KindPayeeCorrectionRejected, KindWithdrawn},
	"SUBMITTED": {KindNoticeObjected, KindNoticePassed, KindBureauApproved, KindBureauRejected, KindItemBatched,
		KindItemReturned, KindPaymentOrdered, KindPaymentSucceeded, KindPaymentFailed, KindPayeeCorrected, KindPayeeCorrectionEntered, KindPayeeCorrectionRejected},
	"IN_NOTICE": {KindSchoolApproved, KindSchoolRejected, KindBureauApproved, KindBureauRejected, KindItemBatched,
		KindItemReturned, KindPaymentOrdered, KindPaymentSucceeded, KindPaymentFailed, KindPayeeCorrected, KindPayeeCorrectionEntered, KindPayeeCorrectionRejected, KindWithdrawn},
	"SCHOOL_APPROVED": {KindItemBatched, KindItemReturned, KindPaymentOrdered, KindPaymentSucceeded, KindPaymentFailed, KindPayeeCorrected, KindPayeeCorrectionEntered, KindPayeeCorrectionRejected},
	"BUREAU_APPROVED": {KindBureauApproved, KindBureauRejected, KindItemReturned, KindPaymentOrdered, KindPaymentSucceeded,
		KindPaymentFailed, KindPayeeCorrected, KindPayeeCorrectionEntered, KindPayeeCorrectionRejected},
	"BUREAU_APPROVED+batch": {KindBureauApproved, KindBureauRejected, KindItemBatched, KindPaymentSucceeded,
		KindPaymentFailed, KindPayeeCorrected, KindPayeeCorrectionEntered, KindPayeeCorrectionRejected},
	"CONFIRMED":      {KindPaymentOrdered, KindPayeeCorrected, KindPayeeCorrectionEntered, KindPayeeCorrectionRejected},
	"PAYMENT_FAILED": {KindPaymentSucceeded, KindPaymentFailed},
}

func change(k Kind) Change {
	c := Change{Kind: k}
	switch k {
	case KindItemBatched:
		c.BatchID = "b1"
	case KindPaymentOrdered:
		c.BatchID, c.PaymentID = "b1", "p1"
	case KindPaymentSucceeded, KindPaymentFailed:
		c.PaymentID = "p1"
	default:
	}
	return c
}

func TestApplyEveryStateAndKind(t *testing.T) {
	t.Parallel()
	for _, st := range testStates {
		for _, k := range append(append([]Kind(nil), Kinds...), TrailOnlyKinds...) {
			t.Run(fmt.Sprintf("%s/%s", st.name, k), func(t *testing.T) {
				t.Parallel()
				next, err := Apply(st.state, change(k))
				if want, ok := legal[st.name][k]; ok {
					if err != nil {
						t.Fatalf("Apply: %v, want %s", err, want)
					}
					if next.Status != want {
						t.Fatalf("status %s, want %s", next.Status, want)
					}
					return
				}
				wantErr := ErrImpossible
				for _, l := range later[st.name] {
					if l == k {
						wantErr = ErrNotYet
					}
				}
				if !errors.Is(err, wantErr) {
					t.Fatalf("Apply: err %v, want %v", err, wantErr)
				}
				if next != st.state {
					t.Fatalf("a refused change altered the state: %+v", next)
				}
			})
		}
	}
}

func TestApplyEffects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		from State
		c    Change
		want State
	}{
		{"submitted sets the amount", State{}, Change{Kind: KindSubmitted, AmountFen: 62500},
			State{Status: StatusSubmitted, AmountFen: 62500}},
		{"school approval sets level and amount", State{Status: StatusSubmitted},
			Change{Kind: KindSchoolApproved, HardshipLevel: "especially_difficult", AmountFen: 150000, Reason: "meets the standard"},
			State{Status: StatusInNotice, HardshipLevel: "especially_difficult", AmountFen: 150000}},
		{"school rejection keeps the reason", State{Status: StatusSubmitted, AmountFen: 50000},
			Change{Kind: KindSchoolRejected, Reason: "household income above the line"},
			State{Status: StatusSchoolRejected, AmountFen: 50000, Reason: "household income above the line"}},
		{"objection sends it back to review", State{Status: StatusInNotice, HardshipLevel: "difficult", AmountFen: 100000},
			Change{Kind: KindNoticeObjected, Reason: "objection"},
			State{Status: StatusSubmitted, HardshipLevel: "difficult", AmountFen: 100000, Reason: "objection"}},
		{"notice passed clears the reason", State{Status: StatusInNotice, AmountFen: 100000, Reason: "x"},
			Change{Kind: KindNoticePassed}, State{Status: StatusSchoolApproved, AmountFen: 100000}},
		{"bureau rejection", State{Status: StatusSchoolApproved, AmountFen: 100000},
			Change{Kind: KindBureauRejected, Reason: "paid twice"},
			State{Status: StatusBureauRejected, AmountFen: 100000, Reason: "paid twice"}},
		{"batched keeps the status and sets the batch", State{Status: StatusBureauApproved, AmountFen: 100000},
			Change{Kind: KindItemBatched, BatchID: "b1", AmountFen: 100000},
			State{Status: StatusBureauApproved, AmountFen: 100000, BatchID: "b1"}},
		{"returned clears the batch", State{Status: StatusBureauApproved, AmountFen: 100000, BatchID: "b1"},
			Change{Kind: KindItemReturned, Reason: "check the level"},
			State{Status: StatusSchoolApproved, AmountFen: 100000, Reason: "check the level"}},
		{"payment ordered", State{Status: StatusBureauApproved, AmountFen: 100000, BatchID: "b1"},
			Change{Kind: KindPaymentOrdered, BatchID: "b1", PaymentID: "p1", AmountFen: 100000},
			State{Status: StatusConfirmed, AmountFen: 100000, BatchID: "b1", PaymentID: "p1"}},
		{"payment failed", State{Status: StatusConfirmed, AmountFen: 100000, BatchID: "b1", PaymentID: "p1"},
			Change{Kind: KindPaymentFailed, PaymentID: "p1", Reason: "ACCOUNT_CLOSED"},
			State{Status: StatusPaymentFailed, AmountFen: 100000, BatchID: "b1", PaymentID: "p1", Reason: "ACCOUNT_CLOSED"}},
		{"payee corrected stays failed", State{Status: StatusPaymentFailed, AmountFen: 100000, BatchID: "b1", PaymentID: "p1", Reason: "ACCOUNT_CLOSED"},
			Change{Kind: KindPayeeCorrected},
			State{Status: StatusPaymentFailed, AmountFen: 100000, BatchID: "b1", PaymentID: "p1", Reason: "ACCOUNT_CLOSED"}},
		{"reissue after correction", State{Status: StatusPaymentFailed, AmountFen: 100000, BatchID: "b1", PaymentID: "p1", Reason: "ACCOUNT_CLOSED"},
			Change{Kind: KindPaymentOrdered, BatchID: "b1", PaymentID: "p2", AmountFen: 100000},
			State{Status: StatusConfirmed, AmountFen: 100000, BatchID: "b1", PaymentID: "p2"}},
		{"withdrawn keeps the reason", State{Status: StatusSubmitted, AmountFen: 50000},
			Change{Kind: KindWithdrawn, Reason: "the family moved away"},
			State{Status: StatusWithdrawn, AmountFen: 50000, Reason: "the family moved away"}},
		{"a correction entered or rejected stays failed", State{Status: StatusPaymentFailed, AmountFen: 100000, BatchID: "b1", PaymentID: "p1", Reason: "ACCOUNT_CLOSED"},
			Change{Kind: KindPayeeCorrectionEntered},
			State{Status: StatusPaymentFailed, AmountFen: 100000, BatchID: "b1", PaymentID: "p1", Reason: "ACCOUNT_CLOSED"}},
		{"paid", State{Status: StatusConfirmed, AmountFen: 100000, BatchID: "b1", PaymentID: "p2"},
			Change{Kind: KindPaymentSucceeded, PaymentID: "p2", AmountFen: 100000},
			State{Status: StatusPaid, AmountFen: 100000, BatchID: "b1", PaymentID: "p2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Apply(tt.from, tt.c)
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if got != tt.want {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestApplyChecksBatchAndPayment(t *testing.T) {
	t.Parallel()
	batched := State{Status: StatusBureauApproved, AmountFen: 100000, BatchID: "b1"}
	confirmed := State{Status: StatusConfirmed, AmountFen: 100000, BatchID: "b1", PaymentID: "p1"}
	tests := []struct {
		name string
		from State
		c    Change
		want error
	}{
		{"batched without a batch", State{Status: StatusBureauApproved}, Change{Kind: KindItemBatched}, ErrImpossible},
		{"ordered from another batch", batched, Change{Kind: KindPaymentOrdered, BatchID: "b2", PaymentID: "p1"}, ErrNotYet},
		{"ordered without a batch key", batched, Change{Kind: KindPaymentOrdered, PaymentID: "p1"}, nil},
		{"success of a later payment", confirmed, Change{Kind: KindPaymentSucceeded, PaymentID: "p2"}, ErrNotYet},
		{"failure of a later payment", confirmed, Change{Kind: KindPaymentFailed, PaymentID: "p2"}, ErrNotYet},
		{"success of the ordered payment", confirmed, Change{Kind: KindPaymentSucceeded, PaymentID: "p1"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Apply(tt.from, tt.c)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Apply: err %v, want %v", err, tt.want)
			}
		})
	}
}

func TestHappyPathToPaid(t *testing.T) {
	t.Parallel()
	steps := []Change{
		{Kind: KindSubmitted},
		{Kind: KindSchoolApproved, HardshipLevel: "difficult", AmountFen: 100000},
		{Kind: KindNoticeObjected, Reason: "objection"},
		{Kind: KindSchoolApproved, HardshipLevel: "generally_difficult", AmountFen: 50000},
		{Kind: KindNoticePassed},
		{Kind: KindBureauApproved},
		{Kind: KindItemBatched, BatchID: "b1"},
		{Kind: KindItemReturned, Reason: "check"},
		{Kind: KindBureauApproved},
		{Kind: KindItemBatched, BatchID: "b2"},
		{Kind: KindPaymentOrdered, BatchID: "b2", PaymentID: "p1"},
		{Kind: KindPaymentFailed, PaymentID: "p1", Reason: "ACCOUNT_CLOSED"},
		{Kind: KindPayeeCorrected},
		{Kind: KindPaymentOrdered, BatchID: "b2", PaymentID: "p2"},
		{Kind: KindPaymentSucceeded, PaymentID: "p2"},
	}
	var s State
	for i, c := range steps {
		var err error
		if s, err = Apply(s, c); err != nil {
			t.Fatalf("step %d %s: %v", i, c.Kind, err)
		}
	}
	want := State{Status: StatusPaid, HardshipLevel: "generally_difficult", AmountFen: 50000, BatchID: "b2", PaymentID: "p2"}
	if s != want {
		t.Fatalf("got %+v, want %+v", s, want)
	}
	if !StatusPaid.Terminal() || !StatusSchoolRejected.Terminal() || !StatusBureauRejected.Terminal() || StatusConfirmed.Terminal() ||
		!StatusWithdrawn.Terminal() {
		t.Fatal("Terminal is wrong")
	}
}

func TestKindsAreEventTypes(t *testing.T) {
	t.Parallel()
	want := []string{events.TypeApplicationSubmitted, events.TypePayeeCorrected, events.TypeSchoolReviewApproved,
		events.TypeSchoolReviewRejected, events.TypeNoticeObjected, events.TypeNoticePassed, events.TypeBureauApproved,
		events.TypeBureauRejected, events.TypeItemBatched, events.TypeItemReturnedToBureau, events.TypePaymentOrdered,
		events.TypePaymentSucceeded, events.TypePaymentFailed, events.TypeSchoolReviewWithdrawn}
	if len(want) != len(Kinds) {
		t.Fatalf("%d kinds, %d event types", len(Kinds), len(want))
	}
	for i, k := range Kinds {
		if string(k) != want[i] {
			t.Errorf("kind %s, event type %s", k, want[i])
		}
	}
}

// TestLive: exactly the rejections and the withdrawal stop counting against
// the student, and each of them is final.
func TestLive(t *testing.T) {
	t.Parallel()
	dead := map[Status]bool{StatusSchoolRejected: true, StatusBureauRejected: true, StatusWithdrawn: true}
	for _, s := range Statuses {
		if s.Live() == dead[s] {
			t.Errorf("%s: Live() = %v", s, s.Live())
		}
		if dead[s] && !s.Terminal() {
			t.Errorf("%s is not live but not final: an application could come back to life", s)
		}
	}
}

func TestMaskName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"张三丰": "张**", "李四": "李*", "王": "*", "": "*", "Ann Lee": "A******"} {
		if got := MaskName(in); got != want {
			t.Errorf("MaskName(%q) = %q, want %q", in, got, want)
		}
	}
}
