package anchor

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// Entry is the content of one trail entry as it is hashed: the fields of
// the service's trail table without the hashes.
type Entry struct {
	ApplicationID string    `json:"application_id"`
	Position      int64     `json:"position"`
	EventID       string    `json:"event_id"`
	Type          string    `json:"type"`
	OccurredAt    time.Time `json:"occurred_at"`
	ActorUser     string    `json:"actor_user_id"`
	ActorRole     string    `json:"actor_role"`
	ActorOrg      string    `json:"actor_org"`
	Status        string    `json:"status"`
	Reason        string    `json:"reason"`
	AmountFen     int64     `json:"amount_fen"`
	BatchID       string    `json:"batch_id"`
}

// CanonicalVersion prefixes the canonical encoding of an entry, so that a
// later change to the encoding can be told apart from tampering.
const CanonicalVersion = "aid.application.trail.v1"

// Canonical returns the entry's content in a fixed, unambiguous encoding:
// a version line, then each field as "name=<byte length>:value\n" in a fixed
// order. Times are UTC with microseconds.
func (e Entry) Canonical() []byte {
	var b strings.Builder
	b.WriteString(CanonicalVersion)
	b.WriteByte('\n')
	field := func(name, value string) {
		b.WriteString(name)
		b.WriteByte('=')
		b.WriteString(strconv.Itoa(len(value)))
		b.WriteByte(':')
		b.WriteString(value)
		b.WriteByte('\n')
	}
	field("application_id", e.ApplicationID)
	field("position", strconv.FormatInt(e.Position, 10))
	field("event_id", e.EventID)
	field("type", e.Type)
	field("occurred_at", e.OccurredAt.UTC().Truncate(time.Microsecond).Format("2006-01-02T15:04:05.000000Z"))
	field("actor_user_id", e.ActorUser)
	field("actor_role", e.ActorRole)
	field("actor_org", e.ActorOrg)
	field("status", e.Status)
	field("reason", e.Reason)
	field("amount_fen", strconv.FormatInt(e.AmountFen, 10))
	field("batch_id", e.BatchID)
	return []byte(b.String())
}

// EntryHash is a trail entry's hash as the service stores it:
// hex(SHA-256(prevHash || e.Canonical())), prevHash taken as its 64 hex
// characters (64 zeros for the first entry). A test or tool that rewrites an
// entry "consistently", as a database owner could, recomputes the chain with
// it.
func EntryHash(prevHash string, e Entry) string {
	h := sha256.New()
	h.Write([]byte(prevHash))
	h.Write(e.Canonical())
	return hex.EncodeToString(h.Sum(nil))
}

// EntryLeaf is the tree leaf of an entry whose stored hash is entryHash (64
// hex characters): RFC 6962's leaf hash of the 32 bytes of that hash.
func EntryLeaf(entryHash string) (Hash, error) {
	h, err := ParseHash(entryHash)
	if err != nil {
		return Hash{}, err
	}
	return LeafHash(h[:]), nil
}
