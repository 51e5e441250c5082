package app

import (
	"testing"

	"github.com/edubureau/studentaid/pkg/idnumber"
)

func TestBirthMonth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, number, want string
	}{
		{"18 digits", "420102201203150015", "2012-03"},
		{"check character X", "11010519491231002X", "1949-12"},
		{"15 digits upgraded", "110105491231002", "1949-12"},
		{"leap day", "420106201202290011", "2012-02"},
		{"first of January", "420106200301010017", "2003-01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, err := idnumber.ParseAny(tt.number)
			if err != nil {
				t.Fatalf("ParseAny: %v", err)
			}
			if got := birthMonth(id); got != tt.want {
				t.Errorf("birthMonth = %q, want %q", got, tt.want)
			}
		})
	}
}
