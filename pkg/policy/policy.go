// Package policy is the bureau's aid policy as data: the programs with their
// stages, eligibility conditions, amount rules, funding shares and frequency
// limits (a [Policy]), and the school register beside it (a [Register]).
// Both are documents the bureau publishes as numbered versions, each in
// force from an effective term; a [Book] holds the published versions and
// answers which one is in force for a term.
//
// The documents are JSON (see [ParsePolicy], [ParseRegister] and the
// seed files of package seed; docs/policy.md describes the layout).
// Amounts are integer fen per student per term; funding shares are basis
// points (1/10000) that sum to 10000.
package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/edubureau/studentaid/pkg/catalog"
)

// AmountRule says how a program's amount is found.
type AmountRule string

// Amount rules.
const (
	// RuleFixed pays a standard per stage (StandardFen).
	RuleFixed AmountRule = "fixed"
	// RuleTiered pays by the hardship level the school determines (TierFen).
	RuleTiered AmountRule = "tiered"
	// RuleTuition pays the school's own tuition for the term and stage, as
	// the school register records it (tuition waivers).
	RuleTuition AmountRule = "tuition"
	// RuleRequested pays the amount the student asks for, up to MaxFen per
	// application (loans).
	RuleRequested AmountRule = "requested"
)

// Frequency limits how often one student may receive a program.
type Frequency string

// Frequencies.
const (
	// OncePerTerm: at most one application per student, program and term.
	OncePerTerm Frequency = "once_per_term"
	// OncePerStudent: a one-off grant, once in a student's life.
	OncePerStudent Frequency = "once_per_student"
)

// Source is a funding source of a program's shares.
type Source string

// Funding sources of shares.
const (
	SourceCentralProvincial Source = "central_provincial" // 中央和省级资金
	SourceMunicipal         Source = "municipal"          // 市级配套资金
	SourceCharity           Source = "charity"            // 社会资金
	SourceBankLoan          Source = "bank_loan"          // 银行贷款
)

// Sources lists the funding sources in report order.
var Sources = []Source{SourceCentralProvincial, SourceMunicipal, SourceCharity, SourceBankLoan}

// FullShare is 100 % in basis points.
const FullShare = 10000

// Levels lists the hardship levels a tiered program must price, from the
// highest.
var Levels = []catalog.HardshipLevel{catalog.LevelEspeciallyDifficult, catalog.LevelDifficult, catalog.LevelGenerallyDifficult}

// Stages lists every stage in schooling order.
var Stages = []catalog.Stage{catalog.StagePreschool, catalog.StagePrimary, catalog.StageJunior,
	catalog.StageHighSchool, catalog.StageVocational, catalog.StageUniversity}

// Errors returned, wrapped with detail, by this package. Compare with errors.Is.
var (
	// ErrInvalid means a document breaks a rule; the error lists every problem.
	ErrInvalid = errors.New("invalid policy document")
	// ErrAge means the student's age does not fit the stage.
	ErrAge = errors.New("age does not fit the stage")
	// ErrSchoolStage means the school does not teach the stage.
	ErrSchoolStage = errors.New("the school does not teach the stage")
	// ErrSchoolFacts means the application's rural or boarding flag
	// contradicts the school register.
	ErrSchoolFacts = errors.New("contradicts the school register")
	// ErrNoTuition means the register has no tuition for the school and stage.
	ErrNoTuition = errors.New("no tuition in the register")
	// ErrRequested means a requested amount is missing or above the limit.
	ErrRequested = errors.New("requested amount out of range")
)

// Program is one aid program as a policy version defines it. Values handed
// out by a [Policy] are copies.
type Program struct {
	Code   string          `json:"code"`
	Name   string          `json:"name"`
	NameEN string          `json:"name_en"`
	Stages []catalog.Stage `json:"stages"`
	// Funding is the program's kind of money, as the chain routes it:
	// bank_loan programs are contracted with the bank, not paid to the card.
	Funding catalog.FundingSource `json:"funding"`
	// SharesBP splits each payment between sources, in basis points summing to 10000.
	SharesBP map[Source]int32 `json:"shares_bp"`
	// GovernmentTotal: the program counts toward the bureau's government total.
	GovernmentTotal bool       `json:"government_total"`
	Rule            AmountRule `json:"rule"`
	// StandardFen is the amount per term by stage (RuleFixed).
	StandardFen map[catalog.Stage]int64 `json:"standard_fen,omitempty"`
	// TierFen is the amount per term by hardship level (RuleTiered).
	TierFen map[catalog.HardshipLevel]int64 `json:"tier_fen,omitempty"`
	// MaxFen is the most one application may request (RuleRequested).
	MaxFen int64 `json:"max_fen,omitempty"`
	// YearlyMaxFen, when set, caps what one student receives from the
	// program in a calendar year (spring and autumn terms).
	YearlyMaxFen int64     `json:"yearly_max_fen,omitempty"`
	Frequency    Frequency `json:"frequency"`

	RequiresBoarding       bool `json:"requires_boarding,omitempty"`
	RequiresRural          bool `json:"requires_rural,omitempty"`
	RequiresRegisteredPoor bool `json:"requires_registered_poor,omitempty"`
}

// AgeRange is the age in completed years (周岁) at term start a stage's
// students may have, both ends included: a submission outside it is
// refused ([ErrAge]).
type AgeRange struct {
	Min int `json:"min"`
	Max int `json:"max"`
	// Usual, when given, is the narrower range inside Min..Max the stage's
	// students are usually in (the stage's ages with a tolerance for late
	// entry or a repeated year). An age outside it is not refused: the data
	// office flags it to the bureau's reviewer (data-comparison ListFlags,
	// age_stage_mismatch).
	Usual *Ages `json:"usual,omitempty"`
}

// Ages are ages in completed years (周岁) at term start, both ends included.
type Ages struct {
	Min int `json:"min"`
	Max int `json:"max"`
}

// Header is what every published document carries beside its content.
type Header struct {
	// EffectiveFrom is the first term the version is in force for.
	EffectiveFrom string `json:"effective_from"`
	// Corrects, when not 0, is the version this one corrects: it must start
	// at the same term, and replaces it for submissions from now on.
	Corrects int64 `json:"corrects,omitempty"`
	// Summary says what the version is and why, for the history.
	Summary string `json:"summary"`
}

// Policy is one version of the program catalog.
type Policy struct {
	Header
	AgeRanges map[catalog.Stage]AgeRange `json:"age_ranges"`
	Programs  []Program                  `json:"programs"`

	byCode map[string]int
}

// Program returns the program with code.
func (p *Policy) Program(code string) (Program, bool) {
	i, ok := p.byCode[code]
	if !ok {
		return Program{}, false
	}
	return p.Programs[i].clone(), true
}

// All returns every program, sorted by code, as copies.
func (p *Policy) All() []Program {
	out := make([]Program, 0, len(p.Programs))
	for _, code := range slices.Sorted(maps.Keys(p.byCode)) {
		out = append(out, p.Programs[p.byCode[code]].clone())
	}
	return out
}

func (p Program) clone() Program {
	p.Stages = slices.Clone(p.Stages)
	p.SharesBP = maps.Clone(p.SharesBP)
	p.StandardFen = maps.Clone(p.StandardFen)
	p.TierFen = maps.Clone(p.TierFen)
	return p
}

// Covers reports whether the program is open to students at stage s.
func (p Program) Covers(s catalog.Stage) bool { return slices.Contains(p.Stages, s) }

// Tiered reports whether the program pays by hardship level.
func (p Program) Tiered() bool { return p.Rule == RuleTiered }

// Problems collects every problem of a document, so that the bureau sees
// them all at once. Each names the place in the document.
type Problems []string //nolint:recvcheck // Addf appends, so it takes a pointer; Err only reads

// Addf records a problem at place.
func (ps *Problems) Addf(place, format string, args ...any) {
	*ps = append(*ps, place+": "+fmt.Sprintf(format, args...))
}

// Err returns nil without problems, else an error wrapping [ErrInvalid]
// that lists them; [ProblemsOf] gets them back.
func (ps Problems) Err() error {
	if len(ps) == 0 {
		return nil
	}
	return &invalidError{problems: slices.Clone(ps)}
}

type invalidError struct{ problems Problems }

func (e *invalidError) Error() string {
	return fmt.Sprintf("%v: %s", ErrInvalid, strings.Join(e.problems, "; "))
}

func (e *invalidError) Unwrap() error { return ErrInvalid }

// ProblemsOf returns the problems listed by an error of [Problems.Err].
func ProblemsOf(err error) Problems {
	if ie, ok := errors.AsType[*invalidError](err); ok {
		return slices.Clone(ie.problems)
	}
	return nil
}

// maxDocument bounds a document's size; the city's register is far below it.
const maxDocument = 4 << 20

// decodeStrict decodes one JSON value into v, refusing unknown fields and
// trailing data. Its errors are [Problems] like the validation's.
func decodeStrict(doc []byte, v any) error {
	var ps Problems
	if len(doc) > maxDocument {
		ps.Addf("document", "%d bytes, at most %d; split it or leave out what it does not need", len(doc), maxDocument)
		return ps.Err()
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		var syntaxErr *json.SyntaxError
		switch {
		case errors.Is(err, io.EOF):
			ps.Addf("document", "empty; send one JSON object (docs/policy.md describes it)")
		case errors.Is(err, io.ErrUnexpectedEOF):
			ps.Addf("document", "ends inside the JSON object; it looks cut off, send all of it")
		case errors.As(err, &typeErr) && typeErr.Field != "":
			ps.Addf(typeErr.Field, "must be JSON of type %s, got %s (at byte %d)", typeErr.Type, typeErr.Value, typeErr.Offset)
		case errors.As(err, &syntaxErr):
			ps.Addf("document", "not valid JSON at byte %d (%v); check the brackets, commas and quotes there", syntaxErr.Offset, err)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			ps.Addf("document", "%s is not a field of the layout; remove it or correct its spelling (docs/policy.md lists the fields)",
				strings.TrimPrefix(err.Error(), "json: unknown field "))
		default:
			ps.Addf("document", "not valid JSON of the expected layout (%v); docs/policy.md describes it", err)
		}
		return ps.Err()
	}
	// More stops at a closing bracket, so ask for the next token: only the
	// end of the input may follow the object.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		ps.Addf("document", "unexpected data after the JSON object; a document is exactly one object, remove what follows it")
		return ps.Err()
	}
	return nil
}

// ParsePolicy reads and validates a policy document.
func ParsePolicy(doc []byte) (*Policy, error) {
	var p Policy
	if err := decodeStrict(doc, &p); err != nil {
		return nil, err
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

func (h Header) validate(ps *Problems) {
	if _, err := catalog.ParseTerm(h.EffectiveFrom); err != nil {
		ps.Addf("effective_from", "must be a term such as 2018-spring, got %q", h.EffectiveFrom)
	}
	if h.Corrects < 0 {
		ps.Addf("corrects", "must be a version number, got %d", h.Corrects)
	}
	if strings.TrimSpace(h.Summary) == "" || utf8.RuneCountInString(h.Summary) > 500 || !utf8.ValidString(h.Summary) {
		ps.Addf("summary", "say in 1 to 500 characters what this version changes and why")
	}
}

// validate checks the whole policy and indexes its programs.
func (p *Policy) validate() error {
	var ps Problems
	p.Header.validate(&ps)
	for _, st := range Stages {
		r, ok := p.AgeRanges[st]
		switch {
		case !ok:
			ps.Addf("age_ranges."+string(st), "missing: give the youngest and oldest age (周岁) at term start")
		case r.Min < 0 || r.Max > 80 || r.Min > r.Max:
			ps.Addf("age_ranges."+string(st), "min %d and max %d must satisfy 0 ≤ min ≤ max ≤ 80", r.Min, r.Max)
		case r.Usual != nil && (r.Usual.Min < r.Min || r.Usual.Max > r.Max || r.Usual.Min > r.Usual.Max):
			ps.Addf("age_ranges."+string(st)+".usual", "min %d and max %d must satisfy %d ≤ min ≤ max ≤ %d (inside the stage's range)",
				r.Usual.Min, r.Usual.Max, r.Min, r.Max)
		}
	}
	for _, st := range slices.Sorted(maps.Keys(p.AgeRanges)) {
		if !slices.Contains(Stages, st) {
			ps.Addf("age_ranges", "%q is not a stage", st)
		}
	}
	if len(p.Programs) == 0 {
		ps.Addf("programs", "at least one program is required")
	}
	p.byCode = make(map[string]int, len(p.Programs))
	for i, prog := range p.Programs {
		place := fmt.Sprintf("programs[%d]", i)
		if prog.Code != "" {
			place = fmt.Sprintf("programs[%d] (%s)", i, prog.Code)
		}
		prog.validate(place, &ps)
		if j, dup := p.byCode[prog.Code]; dup && prog.Code != "" {
			ps.Addf(place+".code", "code %s is already programs[%d]'s; give each program its own code, or merge the two", prog.Code, j)
		}
		p.byCode[prog.Code] = i
	}
	return ps.Err()
}

func (prog Program) validate(place string, ps *Problems) {
	if !validCode(prog.Code) {
		ps.Addf(place+".code", "must be 2 to 32 characters of A-Z, 0-9 and _")
	}
	if strings.TrimSpace(prog.Name) == "" || utf8.RuneCountInString(prog.Name) > 64 {
		ps.Addf(place+".name", "the Chinese name is required (at most 64 characters)")
	}
	if strings.TrimSpace(prog.NameEN) == "" || len(prog.NameEN) > 128 {
		ps.Addf(place+".name_en", "the English name is required (at most 128 characters)")
	}
	if len(prog.Stages) == 0 {
		ps.Addf(place+".stages", "at least one stage is required")
	}
	for _, st := range prog.Stages {
		if !slices.Contains(Stages, st) {
			ps.Addf(place+".stages", "%q is not a stage (want one of %s)", st, stageList())
		}
	}
	switch prog.Funding {
	case catalog.FundingGovernment, catalog.FundingMunicipal, catalog.FundingBankLoan, catalog.FundingCharity:
	default:
		ps.Addf(place+".funding", "must be government, municipal, bank_loan or charity, got %q", prog.Funding)
	}
	var sum int64
	// Sorted, so that a document lists its problems in the same order every time.
	for _, src := range slices.Sorted(maps.Keys(prog.SharesBP)) {
		bp := prog.SharesBP[src]
		if !slices.Contains(Sources, src) {
			ps.Addf(place+".shares_bp", "%q is not a funding source (want central_provincial, municipal, charity or bank_loan)", src)
		}
		if bp <= 0 || bp > FullShare {
			ps.Addf(place+".shares_bp."+string(src), "must be 1 to 10000 basis points, got %d", bp)
		}
		sum += int64(bp)
	}
	if sum != FullShare {
		ps.Addf(place+".shares_bp", "shares sum to %d basis points (%s %%); they must sum to 10000 (100 %%)", sum, percent(sum))
	}
	if prog.Funding == catalog.FundingBankLoan && prog.GovernmentTotal {
		ps.Addf(place+".government_total", "a loan is repaid and does not count toward the government total")
	}
	prog.validateAmount(place, ps)
	switch prog.Frequency {
	case OncePerTerm, OncePerStudent:
	default:
		ps.Addf(place+".frequency", "must be once_per_term or once_per_student, got %q", prog.Frequency)
	}
	if prog.YearlyMaxFen < 0 {
		ps.Addf(place+".yearly_max_fen", "must not be negative")
	}
	if prog.RequiresBoarding && !slices.ContainsFunc(prog.Stages, func(s catalog.Stage) bool { return s != catalog.StageUniversity }) {
		ps.Addf(place+".requires_boarding", "no stage of the program has boarding schools")
	}
}

func (prog Program) validateAmount(place string, ps *Problems) {
	positive := func(field string, fen int64) {
		if fen <= 0 || fen > 100_000_000 {
			ps.Addf(place+"."+field, "must be a positive amount in fen up to 1,000,000 yuan, got %d", fen)
		}
	}
	extra := func(field string, set bool) {
		if set {
			ps.Addf(place+"."+field, "does not apply to rule %s; remove it", prog.Rule)
		}
	}
	switch prog.Rule {
	case RuleFixed:
		for _, st := range prog.Stages {
			fen, ok := prog.StandardFen[st]
			if !ok {
				ps.Addf(place+".standard_fen", "no standard for stage %s: give standard_fen.%s in fen per term, or remove the stage", st, st)
				continue
			}
			positive("standard_fen."+string(st), fen)
		}
		for _, st := range slices.Sorted(maps.Keys(prog.StandardFen)) {
			if !prog.Covers(st) {
				ps.Addf(place+".standard_fen", "a standard for %s, which the program does not cover; add the stage to stages or remove the standard", st)
			}
		}
		extra("tier_fen", len(prog.TierFen) > 0)
		extra("max_fen", prog.MaxFen != 0)
	case RuleTiered:
		for _, lvl := range Levels {
			fen, ok := prog.TierFen[lvl]
			if !ok {
				ps.Addf(place+".tier_fen", "tier %s is missing: a tiered program prices all three levels; give tier_fen.%s in fen per term", lvl, lvl)
				continue
			}
			positive("tier_fen."+string(lvl), fen)
		}
		for _, lvl := range slices.Sorted(maps.Keys(prog.TierFen)) {
			if !slices.Contains(Levels, lvl) {
				ps.Addf(place+".tier_fen", "%q is not a hardship level", lvl)
			}
		}
		// A missing tier is reported above; comparing its zero would add a
		// second, misleading problem.
		a, okA := prog.TierFen[Levels[0]]
		b, okB := prog.TierFen[Levels[1]]
		c, okC := prog.TierFen[Levels[2]]
		if okA && okB && okC && (a < b || b < c) {
			ps.Addf(place+".tier_fen", "a higher level of hardship must not pay less (%s %d, %s %d, %s %d fen); raise the higher level or lower the lower one",
				Levels[0], a, Levels[1], b, Levels[2], c)
		}
		extra("standard_fen", len(prog.StandardFen) > 0)
		extra("max_fen", prog.MaxFen != 0)
	case RuleTuition:
		extra("standard_fen", len(prog.StandardFen) > 0)
		extra("tier_fen", len(prog.TierFen) > 0)
		extra("max_fen", prog.MaxFen != 0)
	case RuleRequested:
		positive("max_fen", prog.MaxFen)
		extra("standard_fen", len(prog.StandardFen) > 0)
		extra("tier_fen", len(prog.TierFen) > 0)
	default:
		ps.Addf(place+".rule", "must be fixed, tiered, tuition or requested, got %q", prog.Rule)
	}
}

func validCode(s string) bool {
	if len(s) < 2 || len(s) > 32 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

func stageList() string {
	names := make([]string, len(Stages))
	for i, s := range Stages {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// percent renders basis points as a percentage, e.g. 9950 → 99.5.
func percent(bp int64) string {
	sign := ""
	if bp < 0 {
		sign, bp = "-", -bp
	}
	s := fmt.Sprintf("%s%d.%02d", sign, bp/100, bp%100)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}
