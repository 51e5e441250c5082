package domain

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// ClueKind is what a clue says is wrong.
type ClueKind string

// The kinds a comparison finds. Hand-entered clues may use these or
// KindOther.
const (
	// KindDuplicatePayment: the same person paid twice for one program and
	// term, by one school or by two.
	KindDuplicatePayment ClueKind = "duplicate_payment"
	// KindIneligible: the program requires registry membership (建档立卡)
	// and the person is not in the current registry.
	KindIneligible ClueKind = "ineligible"
	// KindKeyPerson: the person is on the key-persons list (重点对象).
	KindKeyPerson ClueKind = "key_person"
	// KindNotEnrolled: the paying school has a roster for the term and the
	// person is not on it.
	KindNotEnrolled ClueKind = "not_enrolled"
	// KindDeceased: the person died or was deregistered before the term began.
	KindDeceased ClueKind = "deceased"
	// KindAboveStandard: the amount paid exceeds the program's standard for
	// the stage (and level).
	KindAboveStandard ClueKind = "above_standard"
	// KindMissed: a registry child on a school's roster got no aid that term
	// (应助未助).
	KindMissed ClueKind = "missed"
	// KindOther: a hand-entered clue of another kind.
	KindOther ClueKind = "other"
)

// ComparedKinds are the kinds a comparison run looks for, in run order.
var ComparedKinds = []ClueKind{KindDuplicatePayment, KindIneligible, KindKeyPerson, KindNotEnrolled,
	KindDeceased, KindAboveStandard, KindMissed}

// ParseClueKind reads a kind a clue may be entered with.
func ParseClueKind(s string) (ClueKind, error) {
	k := ClueKind(s)
	if k == KindOther || slices.Contains(ComparedKinds, k) {
		return k, nil
	}
	return "", fmt.Errorf("unknown clue kind %q", s)
}

// ClueStatus is where a clue stands.
type ClueStatus string

// Clue statuses: open → assigned → verified or dismissed; an assigned clue
// may be reassigned.
const (
	ClueOpen      ClueStatus = "open"
	ClueAssigned  ClueStatus = "assigned"
	ClueVerified  ClueStatus = "verified"
	ClueDismissed ClueStatus = "dismissed"
)

// Origins of clues.
const (
	OriginComparison = "comparison"
	OriginManual     = "manual"
	// OriginBigDataOffice: returned by the city's big-data office in a clue
	// list (ImportClues).
	OriginBigDataOffice = "big_data_office"
)

// Clue is one problem clue (问题线索).
type Clue struct {
	ID              string
	Kind            ClueKind
	Origin          string
	RunID           int64
	Status          ClueStatus
	StudentIDHash   string
	StudentIDMasked string
	SchoolCode      string
	ProgramCode     string
	Term            string
	AmountFen       int64
	Detail          string
	RecordIDs       []string
	Refs            []RefRow
	Assignee        string
	Findings        string
	Evidence        string
	Ineligible      bool
	RefundID        string
	// BackPay is where the back-pay of a verified missed-student clue
	// stands; BackPayApplicationID the application that fulfils it.
	BackPay              BackPayStatus
	BackPayApplicationID string
	TrailLength          int64
	TrailHead            string
	CreatedAt            time.Time
	UpdatedAt            time.Time
}

// RefRow names one reference row behind a clue and the version it is from.
type RefRow struct {
	ImportID int64  `json:"import_id"`
	Kind     string `json:"kind"`
	Version  int    `json:"version"`
	Line     int64  `json:"line"`
}

// BackPayStatus is where a missed student's back-pay (补发) stands.
type BackPayStatus string

// Back-pay statuses: none, ordered from the school when the clue was
// verified, applied for by the school's application, paid.
const (
	BackPayNone    BackPayStatus = ""
	BackPayOpened  BackPayStatus = "opened"
	BackPayApplied BackPayStatus = "applied"
	BackPayPaid    BackPayStatus = "paid"
)

// Errors of working a clue; each names the rule in its message.
var (
	// ErrMissedClueIncomplete: a missed-student clue orders back-pay from a
	// school for a program and term, so it must name all three.
	ErrMissedClueIncomplete = errors.New("missed-clue-incomplete")
	// ErrClueClosed: a verified or dismissed clue is not worked again.
	ErrClueClosed = errors.New("clue-closed")
	// ErrNotAssignee: only the officer a clue is assigned to may verify or dismiss it.
	ErrNotAssignee = errors.New("clue-not-assigned-to-caller")
	// ErrNotAssigned: a clue must be assigned before it is verified or dismissed.
	ErrNotAssigned = errors.New("clue-not-assigned")
)

// Assign assigns c to assignee.
func (c *Clue) Assign(assignee string) error {
	if c.Status == ClueVerified || c.Status == ClueDismissed {
		return fmt.Errorf("%w: clue %s is %s", ErrClueClosed, c.ID, c.Status)
	}
	c.Status, c.Assignee = ClueAssigned, assignee
	return nil
}

// checkWorker is the rule for who may close a clue: its assignee.
func (c *Clue) checkWorker(by string) error {
	switch {
	case c.Status == ClueVerified || c.Status == ClueDismissed:
		return fmt.Errorf("%w: clue %s is already %s", ErrClueClosed, c.ID, c.Status)
	case c.Status != ClueAssigned:
		return fmt.Errorf("%w: assign clue %s before closing it", ErrNotAssigned, c.ID)
	case c.Assignee != by:
		return fmt.Errorf("%w: clue %s is assigned to %s", ErrNotAssignee, c.ID, c.Assignee)
	}
	return nil
}

// Verify records that c was found true by its assignee.
func (c *Clue) Verify(by, findings, evidence string, ineligible bool) error {
	if err := c.checkWorker(by); err != nil {
		return err
	}
	c.Status, c.Findings, c.Evidence, c.Ineligible = ClueVerified, findings, evidence, ineligible
	return nil
}

// OpenBackPay orders the back-pay of a verified missed-student clue.
func (c *Clue) OpenBackPay() error {
	if c.SchoolCode == "" || c.ProgramCode == "" || c.Term == "" {
		return fmt.Errorf("%w: clue %s must name the school, program and term the student was missed at to order back-pay; raise a clue that names them", ErrMissedClueIncomplete, c.ID)
	}
	c.BackPay = BackPayOpened
	return nil
}

// Dismiss records that c was found unfounded by its assignee.
func (c *Clue) Dismiss(by, findings, evidence string) error {
	if err := c.checkWorker(by); err != nil {
		return err
	}
	c.Status, c.Findings, c.Evidence = ClueDismissed, findings, evidence
	return nil
}

// ErrNothingToRecover: the refund's amount must be positive and at most what
// the clue's records paid.
var ErrNothingToRecover = errors.New("refund-amount-out-of-range")

// RefundAmount is what a verified ineligible clue recovers: recoverFen when
// given, otherwise the clue's amount; it must be positive and at most paid,
// what the record to recover from paid.
func RefundAmount(c Clue, recoverFen, paid int64) (int64, error) {
	amount := recoverFen
	if amount == 0 {
		amount = c.AmountFen
	}
	if amount <= 0 || amount > paid {
		return 0, fmt.Errorf("%w: clue %s: %d fen to recover from a payment of %d fen", ErrNothingToRecover, c.ID, amount, paid)
	}
	return amount, nil
}

// Rules are the rule errors of this package: an error wrapping one of them
// is an officer's refusal naming that rule.
var Rules = []error{ErrClueClosed, ErrNotAssignee, ErrNotAssigned, ErrNothingToRecover, ErrWrongAccount, ErrOverReceipt, ErrRefundClosed, ErrNotRefundable, ErrMissedClueIncomplete}

// ErrNotRefundable: a refund is opened for a clue with a payment to recover.
var ErrNotRefundable = errors.New("clue-has-no-payment-to-recover")
