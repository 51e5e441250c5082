package idnumber

import (
	"errors"
	"testing"
)

func TestUpgrade(t *testing.T) {
	// GB 11643-1999's own example: 340524800101001 became 34052419800101001X.
	tests := []struct {
		name, in, want string
		err            error
	}{
		{"standard example", "340524800101001", "34052419800101001X", nil},
		{"18 digits passed through ParseAny", "34052419800101001X", "34052419800101001X", nil},
		{"letters", "34052480010100A", "", ErrFormat},
		{"bad date", "340524801301001", "", ErrBirthDate},
		{"too short", "3405248001010", "", ErrLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := ParseAny(tt.in)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("ParseAny: %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil || id.String() != tt.want {
				t.Fatalf("ParseAny = %q, %v; want %q", id.String(), err, tt.want)
			}
		})
	}
}
