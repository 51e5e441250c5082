package reviewdb

import "testing"

func TestArrayLiteral(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []string
		want string
	}{
		{"nil", nil, `{}`},
		{"one", []string{"deceased"}, `{"deceased"}`},
		{"two", []string{"not_on_roster", "deceased"}, `{"not_on_roster","deceased"}`},
		{"quote, backslash, comma, brace", []string{`a"b`, `c\d`, "e,f", "{g}"}, `{"a\"b","c\\d","e,f","{g}"}`},
		{"empty element", []string{""}, `{""}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := arrayLiteral(tc.in); got != tc.want {
				t.Fatalf("arrayLiteral(%q) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}
