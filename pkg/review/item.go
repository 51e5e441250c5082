package review

import (
	"errors"
	"time"
)

// ErrSubmitterCannotReview means the reviewer submitted the application.
var ErrSubmitterCannotReview = errors.New("the submitter of an application cannot review it")

// Item is what every review item holds, whichever review it is in; S is the
// service's state type. Each service embeds it in its own Review beside the
// fields only its review has. Its Arrival's AmountFen is the amount the item
// pays as it stands.
type Item[S ~string] struct {
	Arrival
	State    S
	Reason   string
	Reviewer string
	// TraceParent and TraceState are the W3C trace context of the item's
	// arrival in the service, for span links.
	TraceParent string
	TraceState  string
	UpdatedAt   time.Time
}

// Shared returns the item itself; through the services' Review types, which
// embed an Item, it gives the shared code the fields it reads and writes.
func (it *Item[S]) Shared() *Item[S] { return it }

// Reviewed is a service's review item: its Item and the rest.
type Reviewed[S ~string] interface {
	Shared() *Item[S]
}

// Filter selects items for a list. Empty fields do not filter.
type Filter[S ~string] struct {
	SchoolCode  string
	Term        string
	ProgramCode string
	State       S
	// After is the last application ID of the previous page.
	After string
	Limit int
}

// Arrival is what the event that brings an application into a review says
// about it.
type Arrival struct {
	ApplicationID   string
	SchoolCode      string
	Term            string
	ProgramCode     string
	Stage           string
	StudentIDMasked string
	StudentIDHash   string
	AmountFen       int64
	FundingSource   string
	SubmittedBy     string
}

// Arrived is the item a arrives as, in state; traceParent and traceState
// are the W3C trace context of its arrival.
func Arrived[S ~string](a Arrival, state S, traceParent, traceState string) Item[S] {
	return Item[S]{Arrival: a, State: state, TraceParent: traceParent, TraceState: traceState}
}
