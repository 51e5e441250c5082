package domain

import "time"

// Application is one student's application for one program in one term, as
// the service keeps it. Personal data is held sealed (encrypted with the
// data key) and masked; the keyed hash of the ID number finds duplicates.
type Application struct {
	ID            string
	SchoolCode    string
	Term          string
	ProgramCode   string
	Stage         string
	FundingSource string
	Tiered        bool

	Boarding       bool
	Rural          bool
	RegisteredPoor bool

	StudentIDHash string
	// StudentIDHashKey is the ID of the hashing key StudentIDHash was
	// computed under.
	StudentIDHashKey  string
	StudentIDMasked   string
	StudentIDSealed   []byte
	StudentNameMasked string
	StudentNameSealed []byte
	BankCardMasked    string
	BankCardSealed    []byte
	AccountNameSealed []byte

	State

	// PolicyVersion and RegisterVersion are the policy and school-register
	// versions the amount was computed under (0: before the policy store).
	PolicyVersion   int64
	RegisterVersion int64

	// BackPayClueID is set for back-pay (补发): the verified missed-student
	// clue whose back-pay order the application fulfils.
	BackPayClueID string

	SubmittedBy string
	SubmittedAt time.Time
	UpdatedAt   time.Time

	// TrailLength and TrailHead are the trail's number of entries and the
	// hash of its last one.
	TrailLength int64
	TrailHead   string
}
