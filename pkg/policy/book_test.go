package policy_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/edubureau/studentaid/pkg/policy"
)

// policyVersion is a published programs version built from basePolicy.
func policyVersion(t *testing.T, number int64, from string, corrects int64) policy.Version {
	t.Helper()
	doc := edit(t, basePolicy, func(d map[string]any) {
		d["effective_from"] = from
		d["summary"] = "version " + from
		if corrects != 0 {
			d["corrects"] = corrects
		}
	})
	return policy.Version{Kind: policy.KindPrograms, Number: number, Document: doc, SHA256: policy.Digest(doc),
		DraftedBy: "drafter", ApprovedBy: "approver"}
}

// registerVersion is version 1 of the schools, built from baseRegister.
func registerVersion(t *testing.T, from string) policy.Version {
	t.Helper()
	doc := edit(t, baseRegister, func(d map[string]any) { d["effective_from"] = from })
	return policy.Version{Kind: policy.KindSchools, Number: 1, Document: doc, SHA256: policy.Digest(doc)}
}

// newBook builds a book or stops the test.
func newBook(t *testing.T, versions ...policy.Version) *policy.Book {
	t.Helper()
	b, err := policy.NewBook(versions)
	if err != nil {
		t.Fatalf("NewBook: %v", err)
	}
	return b
}

func TestBookInForceByTerm(t *testing.T) {
	t.Parallel()

	plain := newBook(t, policyVersion(t, 1, "2015-spring", 0), policyVersion(t, 2, "2018-spring", 0),
		registerVersion(t, "2016-autumn"))
	// Version 3 corrects version 1 from its own term.
	corrected := newBook(t, policyVersion(t, 1, "2015-spring", 0), policyVersion(t, 2, "2018-spring", 0),
		policyVersion(t, 3, "2015-spring", 1), registerVersion(t, "2016-autumn"))

	tests := []struct {
		name         string
		book         *policy.Book
		term         string
		wantPolicy   int64 // 0: none in force
		wantRegister int64
	}{
		{"before the first version", plain, "2014-autumn", 0, 0},
		{"the first version's own term", plain, "2015-spring", 1, 0},
		{"between the versions", plain, "2017-autumn", 1, 1},
		{"the second version's own term", plain, "2018-spring", 2, 1},
		{"after the last version", plain, "2030-autumn", 2, 1},
		{"the register's own term", plain, "2016-autumn", 1, 1},
		{"the term before the register", plain, "2016-spring", 1, 0},
		{"not a term", plain, "2017", 0, 0},
		{"a correction replaces version 1 from its start", corrected, "2015-spring", 3, 0},
		{"a correction replaces version 1 for its terms", corrected, "2017-autumn", 3, 1},
		{"a correction leaves the next version", corrected, "2018-spring", 2, 1},
		{"a correction does not reach back", corrected, "2014-autumn", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pv, ok := tt.book.Policy(tt.term)
			if ok != (tt.wantPolicy != 0) || pv.Number != tt.wantPolicy {
				t.Errorf("Policy(%s) = version %d, %v; want %d", tt.term, pv.Number, ok, tt.wantPolicy)
			}
			if ok && pv.Policy == nil {
				t.Errorf("Policy(%s) has no parsed policy", tt.term)
			}
			rv, ok := tt.book.Register(tt.term)
			if ok != (tt.wantRegister != 0) || rv.Number != tt.wantRegister {
				t.Errorf("Register(%s) = version %d, %v; want %d", tt.term, rv.Number, ok, tt.wantRegister)
			}
		})
	}
}

func TestBookVersionsCarryTheDocumentsHeader(t *testing.T) {
	t.Parallel()

	v3 := policyVersion(t, 3, "2015-spring", 1)
	v3.Header = policy.Header{EffectiveFrom: "2099-autumn", Summary: "not what the document says"}
	b := newBook(t, policyVersion(t, 2, "2018-spring", 0), v3, policyVersion(t, 1, "2015-spring", 0))
	got := b.Versions(policy.KindPrograms)
	var numbers []int64
	for _, v := range got {
		numbers = append(numbers, v.Number)
	}
	if !slices.Equal(numbers, []int64{1, 2, 3}) {
		t.Fatalf("Versions = %v, want 1, 2, 3", numbers)
	}
	if h := got[2].Header; h.EffectiveFrom != "2015-spring" || h.Corrects != 1 || h.Summary != "version 2015-spring" {
		t.Errorf("version 3 header = %+v, want the document's", h)
	}
	if n := len(b.Versions(policy.KindSchools)); n != 0 {
		t.Errorf("Versions(schools) = %d, want 0", n)
	}
}

func TestNewBookRefusesABadDocument(t *testing.T) {
	t.Parallel()

	bad := policyVersion(t, 2, "2018-spring", 0)
	bad.Document = []byte(`{"effective_from": "2018-spring"}`)
	_, err := policy.NewBook([]policy.Version{policyVersion(t, 1, "2015-spring", 0), bad})
	if !errors.Is(err, policy.ErrInvalid) || !strings.Contains(err.Error(), "policy version 2") {
		t.Errorf("NewBook = %v, want ErrInvalid naming policy version 2", err)
	}
	_, err = policy.NewBook([]policy.Version{{Kind: "budget", Number: 1}})
	if err == nil || !strings.Contains(err.Error(), `unknown kind "budget"`) {
		t.Errorf("NewBook(kind budget) = %v, want unknown kind", err)
	}
}

func TestCheckPlacement(t *testing.T) {
	t.Parallel()

	// Version 1 from 2015-spring, corrected by version 3; version 2 from
	// 2018-spring; register version 1 from 2015-spring.
	b := newBook(t, policyVersion(t, 1, "2015-spring", 0), policyVersion(t, 2, "2018-spring", 0),
		policyVersion(t, 3, "2015-spring", 1), registerVersion(t, "2015-spring"))

	tests := []struct {
		name      string
		kind      policy.Kind
		header    policy.Header
		wantWords []string // none: accepted
	}{
		{name: "a new version at a new term", kind: policy.KindPrograms,
			header: policy.Header{EffectiveFrom: "2019-spring"}},
		{name: "a new version between two others", kind: policy.KindPrograms,
			header: policy.Header{EffectiveFrom: "2016-autumn"}},
		{name: "a correction of the latest version at a term", kind: policy.KindPrograms,
			header: policy.Header{EffectiveFrom: "2015-spring", Corrects: 3}},
		{name: "a correction of a version never corrected", kind: policy.KindPrograms,
			header: policy.Header{EffectiveFrom: "2018-spring", Corrects: 2}},
		{name: "a register version at a term only programs use", kind: policy.KindSchools,
			header: policy.Header{EffectiveFrom: "2018-spring"}},
		{name: "an overlapping version", kind: policy.KindPrograms,
			header:    policy.Header{EffectiveFrom: "2018-spring"},
			wantWords: []string{"version 2 already takes effect from 2018-spring", "draft a correction of version 2 (corrects: 2)", "another term"}},
		{name: "an overlapping version where a correction is in force", kind: policy.KindPrograms,
			header:    policy.Header{EffectiveFrom: "2015-spring"},
			wantWords: []string{"version 3 already takes effect from 2015-spring", "corrects: 3"}},
		{name: "an overlapping register version", kind: policy.KindSchools,
			header:    policy.Header{EffectiveFrom: "2015-spring"},
			wantWords: []string{"version 1 already takes effect", "corrects: 1"}},
		{name: "a correction with another effective_from", kind: policy.KindPrograms,
			header:    policy.Header{EffectiveFrom: "2018-autumn", Corrects: 2},
			wantWords: []string{"correction of version 2 must take effect from 2018-spring", "not 2018-autumn"}},
		{name: "a correction of an unpublished version", kind: policy.KindPrograms,
			header:    policy.Header{EffectiveFrom: "2015-spring", Corrects: 9},
			wantWords: []string{"version 9", "not published"}},
		{name: "a correction of a register version that is only a programs version", kind: policy.KindSchools,
			header:    policy.Header{EffectiveFrom: "2018-spring", Corrects: 2},
			wantWords: []string{"version 2 of the schools is not published"}},
		{name: "a correction of a version already corrected", kind: policy.KindPrograms,
			header:    policy.Header{EffectiveFrom: "2015-spring", Corrects: 1},
			wantWords: []string{"version 1 was already corrected by version 3", "correct version 3 instead"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.header.Summary = "test"
			err := b.CheckPlacement(tt.kind, tt.header)
			if len(tt.wantWords) == 0 {
				if err != nil {
					t.Errorf("CheckPlacement(%+v) = %v, want accepted", tt.header, err)
				}
				return
			}
			if !errors.Is(err, policy.ErrInvalid) {
				t.Fatalf("CheckPlacement(%+v) = %v, want ErrInvalid", tt.header, err)
			}
			for _, w := range tt.wantWords {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("CheckPlacement(%+v) = %q, want it to say %q", tt.header, err, w)
				}
			}
		})
	}
}

func TestWithPreviewsADraftWithoutChangingTheBook(t *testing.T) {
	t.Parallel()

	b := newBook(t, policyVersion(t, 1, "2015-spring", 0), policyVersion(t, 2, "2018-spring", 0),
		registerVersion(t, "2015-spring"))
	draft := policyVersion(t, 3, "2017-autumn", 0)
	draft.ApprovedBy = ""

	preview, err := b.With(draft)
	if err != nil {
		t.Fatalf("With(draft) = %v", err)
	}
	tests := []struct {
		name        string
		book        *policy.Book
		term        string
		wantVersion int64
		wantCount   int
	}{
		{"the preview puts the draft in force", preview, "2017-autumn", 3, 3},
		{"the preview keeps the next version", preview, "2018-spring", 2, 3},
		{"the preview keeps the earlier version", preview, "2017-spring", 1, 3},
		{"the original is unchanged", b, "2017-autumn", 1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pv, ok := tt.book.Policy(tt.term)
			if !ok || pv.Number != tt.wantVersion {
				t.Errorf("Policy(%s) = version %d, %v; want %d", tt.term, pv.Number, ok, tt.wantVersion)
			}
			if n := len(tt.book.Versions(policy.KindPrograms)); n != tt.wantCount {
				t.Errorf("Versions(programs) = %d, want %d", n, tt.wantCount)
			}
			if rv, ok := tt.book.Register(tt.term); !ok || rv.Number != 1 {
				t.Errorf("Register(%s) = version %d, %v; want 1", tt.term, rv.Number, ok)
			}
		})
	}

	bad := policyVersion(t, 3, "2017-autumn", 0)
	bad.Document = []byte(basePolicy + "}")
	if _, err := b.With(bad); !errors.Is(err, policy.ErrInvalid) {
		t.Errorf("With(a bad draft) = %v, want ErrInvalid", err)
	}
}

func TestTermRank(t *testing.T) {
	t.Parallel()

	ordered := []string{"2014-autumn", "2015-spring", "2015-autumn", "2017-autumn", "2018-spring"}
	for i := 1; i < len(ordered); i++ {
		if a, b := policy.TermRank(ordered[i-1]), policy.TermRank(ordered[i]); a >= b {
			t.Errorf("TermRank(%s) = %d, not below TermRank(%s) = %d", ordered[i-1], a, ordered[i], b)
		}
	}
	for _, bad := range []string{"", "2017", "2017-summer", "17-spring"} {
		if r := policy.TermRank(bad); r != -1 {
			t.Errorf("TermRank(%q) = %d, want -1", bad, r)
		}
	}
}

func TestParseKind(t *testing.T) {
	t.Parallel()

	for _, k := range []policy.Kind{policy.KindPrograms, policy.KindSchools} {
		if got, err := policy.ParseKind(string(k)); err != nil || got != k {
			t.Errorf("ParseKind(%s) = %q, %v", k, got, err)
		}
	}
	if _, err := policy.ParseKind("budget"); err == nil || !strings.Contains(err.Error(), "want programs or schools") {
		t.Errorf("ParseKind(budget) = %v, want an error naming the kinds", err)
	}
}
