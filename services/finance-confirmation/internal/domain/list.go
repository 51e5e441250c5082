package domain

import "time"

// BatchFilter narrows a list of batches; empty fields match everything.
type BatchFilter struct {
	Term        string
	ProgramCode string
	Status      BatchStatus
}

// BatchCursor is the position after the last batch of a page (newest first).
type BatchCursor struct {
	CreatedAt time.Time
	BatchID   string
}
