package policy

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/edubureau/studentaid/pkg/catalog"
)

// Kind names the two kinds of policy document.
type Kind string

// Document kinds.
const (
	KindPrograms Kind = "programs" // a Policy
	KindSchools  Kind = "schools"  // a Register
)

// ParseKind returns the Kind named s.
func ParseKind(s string) (Kind, error) {
	switch k := Kind(s); k {
	case KindPrograms, KindSchools:
		return k, nil
	}
	return "", fmt.Errorf("unknown policy document kind %q (want programs or schools)", s)
}

// Version is one numbered version of a document, as the store keeps it.
type Version struct {
	Kind   Kind
	Number int64
	Header Header
	// Document is the JSON the bureau published, byte for byte; SHA256 is
	// its digest.
	Document []byte
	SHA256   string

	DraftedBy  string
	DraftedAt  time.Time
	ApprovedBy string // empty while a draft
	ApprovedAt time.Time
}

// Digest returns the hex SHA-256 of a document.
func Digest(doc []byte) string {
	sum := sha256.Sum256(doc)
	return hex.EncodeToString(sum[:])
}

// PolicyVersion is a published policy with its version.
type PolicyVersion struct { //nolint:revive // Version is the stored version of either kind; this is one with its parsed policy
	Version
	Policy *Policy
}

// RegisterVersion is a published register with its version.
type RegisterVersion struct {
	Version
	Register *Register
}

// Book is every published version of both documents. It is immutable once
// built; build a new one when a version is published.
type Book struct {
	policies  []PolicyVersion   // by effective term, then number
	registers []RegisterVersion // likewise
}

// NewBook builds a book from published versions, parsing each document.
func NewBook(versions []Version) (*Book, error) {
	b := &Book{}
	for _, v := range versions {
		switch v.Kind {
		case KindPrograms:
			p, err := ParsePolicy(v.Document)
			if err != nil {
				return nil, fmt.Errorf("policy version %d: %w", v.Number, err)
			}
			v.Header = p.Header
			b.policies = append(b.policies, PolicyVersion{Version: v, Policy: p})
		case KindSchools:
			r, err := ParseRegister(v.Document)
			if err != nil {
				return nil, fmt.Errorf("register version %d: %w", v.Number, err)
			}
			v.Header = r.Header
			b.registers = append(b.registers, RegisterVersion{Version: v, Register: r})
		default:
			return nil, fmt.Errorf("version %d: unknown kind %q", v.Number, v.Kind)
		}
	}
	order := func(a, c Version) int {
		return cmp.Or(cmp.Compare(TermRank(a.Header.EffectiveFrom), TermRank(c.Header.EffectiveFrom)), cmp.Compare(a.Number, c.Number))
	}
	slices.SortFunc(b.policies, func(a, c PolicyVersion) int { return order(a.Version, c.Version) })
	slices.SortFunc(b.registers, func(a, c RegisterVersion) int { return order(a.Version, c.Version) })
	return b, nil
}

// TermRank orders terms: 2017-spring < 2017-autumn < 2018-spring. It is -1
// for a string that is not a term.
func TermRank(term string) int {
	t, err := catalog.ParseTerm(term)
	if err != nil {
		return -1
	}
	r := t.Year * 2
	if t.Season == catalog.SeasonAutumn {
		r++
	}
	return r
}

// inForce returns the index of the version in force for term: the last
// one, in (effective term, number) order, that starts at or before it.
func inForce(n int, from func(i int) string, term string) int {
	rank := TermRank(term)
	if rank < 0 {
		return -1
	}
	for i := n - 1; i >= 0; i-- {
		if TermRank(from(i)) <= rank {
			return i
		}
	}
	return -1
}

// Policy returns the policy in force for term.
func (b *Book) Policy(term string) (PolicyVersion, bool) {
	i := inForce(len(b.policies), func(i int) string { return b.policies[i].Header.EffectiveFrom }, term)
	if i < 0 {
		return PolicyVersion{}, false
	}
	return b.policies[i], true
}

// Register returns the school register in force for term.
func (b *Book) Register(term string) (RegisterVersion, bool) {
	i := inForce(len(b.registers), func(i int) string { return b.registers[i].Header.EffectiveFrom }, term)
	if i < 0 {
		return RegisterVersion{}, false
	}
	return b.registers[i], true
}

// Versions returns the published versions of kind, oldest number first.
func (b *Book) Versions(kind Kind) []Version {
	var out []Version
	switch kind {
	case KindPrograms:
		for _, v := range b.policies {
			out = append(out, v.Version)
		}
	case KindSchools:
		for _, v := range b.registers {
			out = append(out, v.Version)
		}
	}
	slices.SortFunc(out, func(a, c Version) int { return cmp.Compare(a.Number, c.Number) })
	return out
}

// CheckPlacement says whether a draft with header h may be published beside
// the published versions of its kind: a correction must correct the
// version in force from its own effective term, and a version that is not a
// correction must start at a term no published version starts at. The
// error says what to do instead.
func (b *Book) CheckPlacement(kind Kind, h Header) error {
	published := b.Versions(kind)
	var atSameStart *Version
	for i := range published {
		v := &published[i]
		if v.Header.EffectiveFrom == h.EffectiveFrom && (atSameStart == nil || v.Number > atSameStart.Number) {
			atSameStart = v
		}
	}
	if h.Corrects == 0 {
		if atSameStart != nil {
			return fmt.Errorf("%w: version %d already takes effect from %s; to change it, draft a correction of version %d (corrects: %d), or start the new version at another term",
				ErrInvalid, atSameStart.Number, h.EffectiveFrom, atSameStart.Number, atSameStart.Number)
		}
		return nil
	}
	var corrected *Version
	for i := range published {
		if published[i].Number == h.Corrects {
			corrected = &published[i]
		}
	}
	switch {
	case corrected == nil:
		return fmt.Errorf("%w: corrects: version %d of the %s is not published", ErrInvalid, h.Corrects, kind)
	case corrected.Header.EffectiveFrom != h.EffectiveFrom:
		return fmt.Errorf("%w: a correction of version %d must take effect from %s as it does, not %s",
			ErrInvalid, h.Corrects, corrected.Header.EffectiveFrom, h.EffectiveFrom)
	case atSameStart.Number != h.Corrects:
		return fmt.Errorf("%w: version %d was already corrected by version %d; correct version %d instead",
			ErrInvalid, h.Corrects, atSameStart.Number, atSameStart.Number)
	}
	return nil
}

// With returns a copy of the book with v added as published, e.g. to
// preview a draft. v must carry the number it would be published as: a
// correction without one would sort before the version it corrects.
func (b *Book) With(v Version) (*Book, error) {
	all := append(b.Versions(KindPrograms), b.Versions(KindSchools)...)
	return NewBook(append(all, v))
}

// Policies returns the published policies, parsed, in (effective term,
// number) order.
func (b *Book) Policies() []PolicyVersion { return slices.Clone(b.policies) }
