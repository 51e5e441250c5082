package domain_test

import (
	"testing"

	"github.com/edubureau/studentaid/services/data-comparison/internal/domain"
)

// NormalizeName returns a name of Han characters only as it is (the fast
// path) and rewrites everything else as before.
func TestNormalizeName(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{"李四", "李四"},
		{"张 三", "张三"},
		{"王·小明", "王小明"},
		{"阿依古丽.买买提", "阿依古丽买买提"},
		{"ｚｈａｎｇ　Ｓａｎ", "ZHANGSAN"},
		{"li si", "LISI"},
		{"LI\tSI", "LISI"},
		{"李四\u00a0", "李四"},
		{"", ""},
	} {
		if got := domain.NormalizeName(c.in); got != c.want {
			t.Errorf("NormalizeName(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// NormalizeIDNumber returns ASCII digits and X as they are (the fast path)
// and rewrites full-width digits, lower-case x and spaces as before.
func TestNormalizeIDNumber(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{"42108119990101123X", "42108119990101123X"},
		{"421081990101123", "421081990101123"},
		{"42108119990101123x", "42108119990101123X"},
		{"４２１０８１１９９９０１０１１２３Ｘ", "42108119990101123X"},
		{"421081 19990101 123ｘ", "42108119990101123X"},
		{"", ""},
	} {
		if got := domain.NormalizeIDNumber(c.in); got != c.want {
			t.Errorf("NormalizeIDNumber(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
