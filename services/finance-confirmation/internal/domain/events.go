package domain

// ApprovedItem is a bureau-approved application to gather into the OPEN
// batch of its term, program and funding source.
type ApprovedItem struct {
	ApplicationID string
	SchoolCode    string
	AmountFen     int64
	Term          string
	ProgramCode   string
	FundingSource string
	Reviewers
}

// PaymentResult is payout's verdict on one payment.
type PaymentResult struct {
	PaymentID string
	AmountFen int64
	Paid      bool
	// Reason is the bank's reason code of a failed payment.
	Reason string
}
