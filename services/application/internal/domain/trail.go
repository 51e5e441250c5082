package domain

import (
	"fmt"
	"strings"
	"time"

	"github.com/edubureau/studentaid/services/application/anchor"
)

// GenesisHash is the prev_hash of a trail's first entry.
var GenesisHash = strings.Repeat("0", 64)

// TrailEntry is one entry of an application's trail: an event that changed
// it, the status it led to, and the entry's place in the hash chain.
type TrailEntry struct {
	ApplicationID string
	// Position is 1-based.
	Position   int64
	EventID    string
	Type       string
	OccurredAt time.Time
	ActorUser  string
	ActorRole  string
	ActorOrg   string
	Status     Status
	Reason     string
	AmountFen  int64
	BatchID    string
	// PrevHash is the previous entry's Hash (GenesisHash for position 1).
	PrevHash string
	// Hash is hex(SHA-256(PrevHash || Canonical())).
	Hash string
}

// TimePrecision is the precision trail times are kept at, the precision of a
// PostgreSQL timestamptz, so that a stored entry hashes as it did when written.
const TimePrecision = time.Microsecond

// anchorEntry is e's content as the anchor package hashes it.
func (e TrailEntry) anchorEntry() anchor.Entry {
	return anchor.Entry{ApplicationID: e.ApplicationID, Position: e.Position, EventID: e.EventID, Type: e.Type,
		OccurredAt: e.OccurredAt, ActorUser: e.ActorUser, ActorRole: e.ActorRole, ActorOrg: e.ActorOrg,
		Status: string(e.Status), Reason: e.Reason, AmountFen: e.AmountFen, BatchID: e.BatchID}
}

// Canonical returns the entry's content in a fixed, unambiguous encoding
// (anchor.Entry.Canonical). The hashes are not part of it.
func (e TrailEntry) Canonical() []byte { return e.anchorEntry().Canonical() }

// ComputeHash returns hex(SHA-256(prevHash || e.Canonical())), where
// prevHash is taken as its 64 hex characters (anchor.EntryHash).
func (e TrailEntry) ComputeHash(prevHash string) string {
	return anchor.EntryHash(prevHash, e.anchorEntry())
}

// Chain places e after the entry at position prevPosition with hash
// prevHash (0 and GenesisHash for the first entry): it sets the position,
// rounds the time to TimePrecision, and sets PrevHash and Hash.
func Chain(prevPosition int64, prevHash string, e TrailEntry) TrailEntry {
	if prevPosition == 0 {
		prevHash = GenesisHash
	}
	e.Position = prevPosition + 1
	e.OccurredAt = e.OccurredAt.UTC().Truncate(TimePrecision)
	e.PrevHash = prevHash
	e.Hash = e.ComputeHash(prevHash)
	return e
}

// Verification is the result of checking a trail's hash chain.
type Verification struct {
	OK bool
	// Length is the number of entries found.
	Length int64
	// FirstBadPosition is the first position found wrong; 0 when OK.
	FirstBadPosition int64
	// Problem says what is wrong at FirstBadPosition.
	Problem string
}

// VerifyTrail recomputes the hash chain of entries, which must be in stored
// position order, and reports the first position where it breaks and why:
// a missing position (an entry was deleted), a link to the wrong entry (the
// entries were reordered), a link to no entry (an earlier entry was deleted
// or rewritten), or content that no longer matches its hash (changed).
// recordedLength is the trail length kept with the application, which catches
// entries deleted from the end; a negative value skips that check.
func VerifyTrail(entries []TrailEntry, recordedLength int64) Verification {
	n := int64(len(entries))
	bad := func(pos int64, format string, args ...any) Verification {
		return Verification{Length: n, FirstBadPosition: pos, Problem: fmt.Sprintf(format, args...)}
	}
	byHash := make(map[string]int64, len(entries))
	for _, e := range entries {
		byHash[e.Hash] = e.Position
	}
	prevHash := GenesisHash
	for i, e := range entries {
		want := int64(i) + 1
		if e.Position != want {
			if e.Position > want {
				return bad(want, "entry at position %d is missing (deleted): the next stored entry is at position %d", want, e.Position)
			}
			return bad(want, "position %d appears out of sequence after position %d", e.Position, want-1)
		}
		if e.PrevHash != prevHash {
			if q, ok := byHash[e.PrevHash]; ok && q != want-1 {
				return bad(want, "entries reordered: the entry at position %d was chained after position %d, not %d", want, q, want-1)
			}
			if want == 1 {
				return bad(want, "the first entry does not start the chain: its prev_hash is not the genesis hash (entries before it deleted or it was rewritten)")
			}
			return bad(want, "chain broken: the prev_hash at position %d matches no entry (an entry before it was deleted or rewritten)", want)
		}
		if got := e.ComputeHash(e.PrevHash); got != e.Hash {
			return bad(want, "content changed: the entry at position %d no longer matches its hash", want)
		}
		prevHash = e.Hash
	}
	if recordedLength >= 0 && recordedLength != n {
		if recordedLength > n {
			return bad(n+1, "entries missing at the end: %d recorded, %d found (deleted)", recordedLength, n)
		}
		return bad(recordedLength+1, "unexpected entries: %d recorded, %d found (inserted)", recordedLength, n)
	}
	if n == 0 {
		return bad(1, "the trail is empty")
	}
	return Verification{OK: true, Length: n}
}
