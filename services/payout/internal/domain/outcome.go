package domain

import "time"

// Outcome is what one step of a claimed payment came to: the bank's answer
// to the call, or why no call was made.
type Outcome int

// Outcomes.
const (
	// OutcomeCredited: the bank credited the payee.
	OutcomeCredited Outcome = iota + 1
	// OutcomeRejected: the bank returned the payment with a reason code.
	OutcomeRejected
	// OutcomeNotFound: the bank has no payment under the key; it never executed it.
	OutcomeNotFound
	// OutcomeInvalid: the bank refused the request as malformed and executed nothing.
	OutcomeInvalid
	// OutcomeUnknown: the bank may or may not have executed the payment
	// (a timeout, a 5xx, a key conflict, a record that does not fit the
	// payment), or the payment could not be taken up.
	OutcomeUnknown
	// OutcomePayeeUnreadable: the sealed card or name could not be opened;
	// nothing was sent.
	OutcomePayeeUnreadable
	// OutcomeNotSent: the worker stopped before the call; nothing was sent by
	// this claim.
	OutcomeNotSent
	// OutcomeContracted: the bank opened the loan contract of a loan payment.
	OutcomeContracted
)

// Answer is the outcome of a step with the bank's record, when it has one.
type Answer struct {
	Outcome Outcome
	// BankRef and Reason are the bank's reference and return code of a
	// credited or rejected payment.
	BankRef string
	Reason  string
	// ContractNumber and LoanYears are the bank's loan contract of a
	// contracted loan.
	ContractNumber string
	LoanYears      int32
}

// Next is what happens to a claimed payment after a step.
type Next int

// Nexts.
const (
	// NextSettle: record the Decision's Verdict; the payment is final.
	NextSettle Next = iota + 1
	// NextPay: the bank never executed it; send it, under the same key.
	NextPay
	// NextAskLater: the outcome is unknown; leave the payment UNKNOWN and
	// look it up at the bank after the Decision's Wait.
	NextAskLater
)

// Decision is what to do with a claimed payment after a step.
type Decision struct {
	Next Next
	// Verdict is the final answer to record when Next is NextSettle.
	Verdict Verdict
	// Wait is how long before the bank is asked again when Next is NextAskLater.
	Wait time.Duration
}

// Retry is how long to wait before asking the bank again about a payment
// whose outcome is unknown: Base after the first attempt, doubling per
// attempt up to Max.
type Retry struct {
	Base, Max time.Duration
}

// Decide is payout's policy for the bank's answers: it says what follows
// a step (StepPay or StepLookup) of a payment taken up attempts times that
// ended in a.
//
//   - Credited or rejected: settle PAID, or FAILED with the bank's reason.
//   - Contracted (a loan): settle PAID with the bank's contract, whose
//     number is also the payment's bank reference.
//   - Not found: a lookup proves the bank never executed it, so pay it under
//     the same key; from a pay call it proves nothing, so ask again later.
//   - Invalid: a refused pay request executed nothing, so the payment fails
//     (INVALID_PAYMENT); a refused lookup proves nothing, so ask again later.
//   - Payee unreadable: nothing can be sent, so the payment fails
//     (PAYEE_UNREADABLE).
//   - Unknown: never pay blind; look it up after the backoff of r.
//   - Not sent: look it up at once, at the next claim.
func Decide(step Step, a Answer, attempts int32, r Retry) Decision {
	switch a.Outcome {
	case OutcomeCredited:
		return settle(Verdict{Paid: true, BankRef: a.BankRef})
	case OutcomeRejected:
		return settle(Verdict{BankRef: a.BankRef, Reason: a.Reason})
	case OutcomeContracted:
		return settle(Verdict{Paid: true, BankRef: a.ContractNumber, ContractNumber: a.ContractNumber, LoanYears: a.LoanYears})
	case OutcomeNotFound:
		if step == StepLookup {
			return Decision{Next: NextPay}
		}
	case OutcomeInvalid:
		if step == StepPay {
			return settle(Verdict{Reason: ReasonInvalidPayment})
		}
	case OutcomePayeeUnreadable:
		return settle(Verdict{Reason: ReasonPayeeUnreadable})
	case OutcomeNotSent:
		return Decision{Next: NextAskLater}
	default:
		// OutcomeUnknown, and the answers above that prove nothing at this step.
	}
	return Decision{Next: NextAskLater, Wait: Backoff(attempts, r.Base, r.Max)}
}

func settle(v Verdict) Decision { return Decision{Next: NextSettle, Verdict: v} }

// Backoff is how long to wait before asking the bank again about a payment
// taken up attempts times whose outcome is still unknown: base, doubling per
// attempt, at most ceiling.
func Backoff(attempts int32, base, ceiling time.Duration) time.Duration {
	if base <= 0 {
		return 0
	}
	d := base
	for i := int32(1); i < attempts && d < ceiling; i++ {
		d *= 2
	}
	return min(d, ceiling)
}
