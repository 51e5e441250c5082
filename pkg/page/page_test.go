package page

import (
	"testing"

	"github.com/edubureau/studentaid/pkg/apperr"
)

type cursor struct {
	ID string `json:"id"`
	At int64  `json:"at"`
}

func TestTokenRoundTripAndRefusals(t *testing.T) {
	t.Parallel()
	tok := Encode(cursor{ID: "x", At: 42})
	var v apperr.Violations
	var got cursor
	if !Decode(&v, tok, &got) || got != (cursor{ID: "x", At: 42}) || v.Err() != nil {
		t.Fatalf("round trip: %v %v", got, v)
	}
	for name, bad := range map[string]string{
		"not base64":    "%%%",
		"not json":      "bm90IGpzb24",
		"unknown field": Encode(map[string]any{"id": "x", "evil": 1}),
		"too long":      string(make([]byte, 600)),
	} {
		t.Run(name, func(t *testing.T) {
			var v apperr.Violations
			var c cursor
			if Decode(&v, bad, &c) || v.Err() == nil {
				t.Fatalf("accepted %q", bad)
			}
		})
	}
	var empty apperr.Violations
	if Decode(&empty, "", &got) || empty.Err() != nil {
		t.Fatal("empty token must mean the first page, without a violation")
	}
}

func TestSize(t *testing.T) {
	t.Parallel()
	for in, want := range map[int32]int{0: DefaultSize, 1: 1, 500: 500, 501: 0, -1: 0} {
		var v apperr.Violations
		if got := Size(&v, in); got != want || (want == 0) != (v.Err() != nil) {
			t.Errorf("Size(%d) = %d, %v", in, got, v)
		}
	}
}

func TestTrim(t *testing.T) {
	rows := []int{1, 2, 3}
	if got, more := Trim(rows, 2); len(got) != 2 || !more {
		t.Fatalf("Trim(3 rows, 2) = %v, %v", got, more)
	}
	if got, more := Trim(rows, 3); len(got) != 3 || more {
		t.Fatalf("Trim(3 rows, 3) = %v, %v", got, more)
	}
}
