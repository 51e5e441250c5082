package app

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/services/application/internal/adapters"
)

func TestCheckName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
		ok             bool
	}{
		{"plain", "张三", "张三", true},
		{"trimmed", "  张三\u3000", "张三", true},
		{"fifty runes", strings.Repeat("张", 50), strings.Repeat("张", 50), true},
		{"fifty-one runes", strings.Repeat("张", 51), "", false},
		{"empty", "", "", false},
		{"blank", " \t ", "", false},
		{"invalid UTF-8", "张\xff", "", false},
		{"control character", "张\n三", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var v apperr.Violations
			got := checkName(&v, "student_name", tt.in)
			if (len(v) == 0) != tt.ok {
				t.Fatalf("violations %v, want ok=%v", v, tt.ok)
			}
			if tt.ok && got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestValidIdempotencyKey(t *testing.T) {
	t.Parallel()
	for k, want := range map[string]bool{
		"abcd1234": true, "A_b-C_d-0123": true, strings.Repeat("k", 64): true,
		"abc1234": false, strings.Repeat("k", 65): false, "abcd 1234": false, "abcd/1234": false, "键键键键键键键键": false,
	} {
		if got := validIdempotencyKey(k); got != want {
			t.Errorf("validIdempotencyKey(%q) = %v, want %v", k, got, want)
		}
	}
}

func TestPageToken(t *testing.T) {
	t.Parallel()
	f := adapters.Filter{SchoolCode: "S001", Term: "2017-autumn"}
	c := adapters.Cursor{SubmittedAt: time.Date(2017, 9, 1, 8, 0, 0, 123456000, time.UTC), ID: uuid.NewString()}
	tok := encodePageToken(c, f)
	got, ok := decodePageToken(tok, f)
	if !ok || !got.SubmittedAt.Equal(c.SubmittedAt) || got.ID != c.ID {
		t.Fatalf("round trip: %v %v", got, ok)
	}
	if _, ok := decodePageToken(tok, adapters.Filter{SchoolCode: "S002", Term: "2017-autumn"}); ok {
		t.Fatal("token accepted for another filter")
	}
	for _, bad := range []string{"x", tok[:len(tok)-3], "e30", strings.Repeat("A", 600)} {
		if _, ok := decodePageToken(bad, f); ok {
			t.Errorf("bad token %q accepted", bad)
		}
	}
}

func TestRequestHashIgnoresKey(t *testing.T) {
	t.Parallel()
	r := SubmitRequest{SchoolCode: "S001", Term: "2017-autumn", IdempotencyKey: "key-00001",
		Applications: []NewApplication{{StudentIDNumber: "x", ProgramCode: "P"}}}
	h1, _ := r.requestHash()
	r.IdempotencyKey = "key-00002"
	h2, _ := r.requestHash()
	r.Applications[0].Boarding = true
	h3, _ := r.requestHash()
	if h1 != h2 || h1 == h3 || len(h1) != 64 {
		t.Fatalf("hashes %s %s %s", h1, h2, h3)
	}
}
