package domain

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// chain builds a valid trail of n entries.
func chain(t *testing.T, n int) []TrailEntry {
	t.Helper()
	at := time.Date(2017, 9, 1, 8, 0, 0, 123456789, time.UTC)
	kinds := []Kind{KindSubmitted, KindSchoolApproved, KindNoticePassed, KindBureauApproved, KindItemBatched, KindPaymentOrdered, KindPaymentSucceeded}
	statuses := []Status{StatusSubmitted, StatusInNotice, StatusSchoolApproved, StatusBureauApproved, StatusBureauApproved, StatusConfirmed, StatusPaid}
	var out []TrailEntry
	prevPos, prevHash := int64(0), GenesisHash
	for i := range n {
		e := Chain(prevPos, prevHash, TrailEntry{
			ApplicationID: "0190f3a4-5b6c-7d8e-9f00-112233445566",
			EventID:       "0190f3a4-0000-7000-8000-00000000000" + string(rune('a'+i)),
			Type:          string(kinds[i%len(kinds)]),
			OccurredAt:    at.Add(time.Duration(i) * time.Hour),
			ActorUser:     "u1", ActorRole: "school_officer", ActorOrg: "S001",
			Status: statuses[i%len(statuses)], AmountFen: 100000, Reason: "r",
		})
		out = append(out, e)
		prevPos, prevHash = e.Position, e.Hash
	}
	return out
}

func TestChainLinksEntries(t *testing.T) {
	t.Parallel()
	tr := chain(t, 5)
	if tr[0].PrevHash != GenesisHash || tr[0].Position != 1 {
		t.Fatalf("first entry: position %d prev %s", tr[0].Position, tr[0].PrevHash)
	}
	for i := 1; i < len(tr); i++ {
		if tr[i].PrevHash != tr[i-1].Hash || tr[i].Position != int64(i+1) {
			t.Fatalf("entry %d not linked", i+1)
		}
	}
	if tr[0].OccurredAt.Nanosecond()%1000 != 0 {
		t.Fatal("Chain kept sub-microsecond time")
	}
	if len(tr[0].Hash) != 64 || strings.Trim(tr[0].Hash, "0123456789abcdef") != "" {
		t.Fatalf("hash %q is not lower-case hex SHA-256", tr[0].Hash)
	}
	if v := VerifyTrail(tr, 5); !v.OK || v.Length != 5 || v.FirstBadPosition != 0 || v.Problem != "" {
		t.Fatalf("intact trail: %+v", v)
	}
}

// TestCanonicalIsStable pins the encoding: a change to it would make every
// stored trail look tampered with.
func TestCanonicalIsStable(t *testing.T) {
	t.Parallel()
	e := TrailEntry{
		ApplicationID: "0190f3a4-5b6c-7d8e-9f00-112233445566", Position: 1,
		EventID: "0190f3a4-0000-7000-8000-000000000001", Type: "application.submitted.v1",
		OccurredAt: time.Date(2017, 9, 1, 8, 0, 0, 123456000, time.UTC),
		ActorUser:  "u1", ActorRole: "school_officer", ActorOrg: "S001",
		Status: StatusSubmitted, AmountFen: 50000,
	}
	want := "aid.application.trail.v1\n" +
		"application_id=36:0190f3a4-5b6c-7d8e-9f00-112233445566\n" +
		"position=1:1\n" +
		"event_id=36:0190f3a4-0000-7000-8000-000000000001\n" +
		"type=24:application.submitted.v1\n" +
		"occurred_at=27:2017-09-01T08:00:00.123456Z\n" +
		"actor_user_id=2:u1\n" +
		"actor_role=14:school_officer\n" +
		"actor_org=4:S001\n" +
		"status=9:SUBMITTED\n" +
		"reason=0:\n" +
		"amount_fen=5:50000\n" +
		"batch_id=0:\n"
	if got := string(e.Canonical()); got != want {
		t.Fatalf("canonical encoding changed:\n%s\nwant\n%s", got, want)
	}
	// The same instant in another zone encodes alike.
	e2 := e
	e2.OccurredAt = e.OccurredAt.In(time.FixedZone("CST", 8*3600))
	if e.ComputeHash(GenesisHash) != e2.ComputeHash(GenesisHash) {
		t.Fatal("hash depends on the time zone")
	}
}

func TestVerifyTrailDetectsTampering(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		tamper   func(tr []TrailEntry) ([]TrailEntry, int64)
		firstBad int64
		problem  string
	}{
		{"changed reason", func(tr []TrailEntry) ([]TrailEntry, int64) {
			tr[2].Reason = "approved by the director"
			return tr, 5
		}, 3, "content changed"},
		{"changed amount", func(tr []TrailEntry) ([]TrailEntry, int64) {
			tr[3].AmountFen = 9900000
			return tr, 5
		}, 4, "content changed"},
		{"changed status of the first entry", func(tr []TrailEntry) ([]TrailEntry, int64) {
			tr[0].Status = StatusPaid
			return tr, 5
		}, 1, "content changed"},
		{"changed and rehashed", func(tr []TrailEntry) ([]TrailEntry, int64) {
			tr[1].AmountFen = 1
			tr[1].Hash = tr[1].ComputeHash(tr[1].PrevHash)
			return tr, 5
		}, 3, "chain broken"},
		{"deleted middle entry", func(tr []TrailEntry) ([]TrailEntry, int64) {
			return slices.Delete(tr, 2, 3), 5
		}, 3, "missing (deleted)"},
		{"deleted first entry", func(tr []TrailEntry) ([]TrailEntry, int64) {
			return tr[1:], 5
		}, 1, "missing (deleted)"},
		{"deleted last entry", func(tr []TrailEntry) ([]TrailEntry, int64) {
			return tr[:4], 5
		}, 5, "missing at the end"},
		{"deleted and renumbered", func(tr []TrailEntry) ([]TrailEntry, int64) {
			tr = slices.Delete(tr, 1, 2)
			for i := range tr {
				tr[i].Position = int64(i + 1)
			}
			return tr, 4
		}, 2, "chain broken"},
		{"reordered by swapping positions", func(tr []TrailEntry) ([]TrailEntry, int64) {
			tr[1].Position, tr[2].Position = tr[2].Position, tr[1].Position
			slices.SortFunc(tr, func(a, b TrailEntry) int { return int(a.Position - b.Position) })
			return tr, 5
		}, 2, "reordered"},
		{"first two swapped", func(tr []TrailEntry) ([]TrailEntry, int64) {
			tr[0], tr[1] = tr[1], tr[0]
			tr[0].Position, tr[1].Position = 1, 2
			return tr, 5
		}, 1, "reordered"},
		{"forged entry appended", func(tr []TrailEntry) ([]TrailEntry, int64) {
			last := tr[len(tr)-1]
			forged := Chain(last.Position, last.Hash, TrailEntry{ApplicationID: last.ApplicationID, Type: string(KindPaymentSucceeded), Status: StatusPaid})
			return append(tr, forged), 5
		}, 6, "unexpected entries"},
		{"empty", func([]TrailEntry) ([]TrailEntry, int64) { return nil, 0 }, 1, "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tr, recorded := tt.tamper(chain(t, 5))
			v := VerifyTrail(tr, recorded)
			if v.OK {
				t.Fatalf("tampering not detected: %+v", v)
			}
			if v.FirstBadPosition != tt.firstBad {
				t.Errorf("first bad position %d, want %d (%s)", v.FirstBadPosition, tt.firstBad, v.Problem)
			}
			if !strings.Contains(v.Problem, tt.problem) {
				t.Errorf("problem %q does not say %q", v.Problem, tt.problem)
			}
		})
	}
}
