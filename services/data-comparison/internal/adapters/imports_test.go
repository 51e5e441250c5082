package adapters

import "testing"

// appendCopyText escapes exactly the bytes COPY's text format gives a
// meaning to.
func TestAppendCopyText(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{"城关镇", "城关镇"},
		{"H12", "H12"},
		{`a\b`, `a\\b`},
		{"a\tb", `a\tb`},
		{"a\nb\r", `a\nb\r`},
		{`\N`, `\\N`},
		{"", ""},
	} {
		if got := string(appendCopyText([]byte("x|"), c.in)); got != "x|"+c.want {
			t.Errorf("appendCopyText(%q) = %q, want %q", c.in, got, "x|"+c.want)
		}
	}
}
