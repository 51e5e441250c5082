package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// TrailGenesis is the prev_hash of a clue trail's first entry.
var TrailGenesis = strings.Repeat("0", 64)

// TimePrecision is the precision times are kept at (PostgreSQL's), so a
// stored entry hashes as it did when written.
const TimePrecision = time.Microsecond

// Step is one entry of a clue's trail: an event that changed the clue.
type Step struct {
	ClueID     string
	Position   int64
	EventID    string
	Type       string
	OccurredAt time.Time
	ActorUser  string
	ActorRole  string
	ActorOrg   string
	// Status is the clue's status after the step.
	Status ClueStatus
	// Note is what the step recorded: the assignee, the findings and
	// evidence, the refund opened, the receipt.
	Note     string
	PrevHash string
	Hash     string
}

const stepEncoding = "aid.datacomparison.clue_trail.v1"

// canonical is the step's content in a fixed, length-prefixed encoding.
func (s Step) canonical() []byte {
	var b strings.Builder
	b.WriteString(stepEncoding)
	for _, f := range []string{s.ClueID, strconv.FormatInt(s.Position, 10), s.EventID, s.Type,
		s.OccurredAt.UTC().Truncate(TimePrecision).Format("2006-01-02T15:04:05.000000Z"),
		s.ActorUser, s.ActorRole, s.ActorOrg, string(s.Status), s.Note} {
		b.WriteByte('\n')
		b.WriteString(strconv.Itoa(len(f)))
		b.WriteByte(':')
		b.WriteString(f)
	}
	return []byte(b.String())
}

func (s Step) hash(prev string) string {
	h := sha256.New()
	h.Write([]byte(prev))
	h.Write(s.canonical())
	return hex.EncodeToString(h.Sum(nil))
}

// Chain places s after the trail's head (length entries, head hash; 0 and
// anything for an empty trail).
func Chain(length int64, head string, s Step) Step {
	if length == 0 {
		head = TrailGenesis
	}
	s.Position, s.PrevHash = length+1, head
	s.OccurredAt = s.OccurredAt.UTC().Truncate(TimePrecision)
	s.Hash = s.hash(head)
	return s
}

// VerifyChain recomputes steps (in position order) against the length the
// clue records and returns 0 when intact, else the first bad position.
func VerifyChain(steps []Step, recordedLength int64) int64 {
	prev := TrailGenesis
	for i, s := range steps {
		pos := int64(i) + 1
		if s.Position != pos || s.PrevHash != prev || s.hash(prev) != s.Hash {
			return pos
		}
		prev = s.Hash
	}
	if n := int64(len(steps)); n != recordedLength || n == 0 {
		return min(n, recordedLength) + 1
	}
	return 0
}
