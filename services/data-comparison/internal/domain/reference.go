package domain

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/edubureau/studentaid/pkg/catalog"
	"github.com/edubureau/studentaid/pkg/idnumber"
	"github.com/edubureau/studentaid/pkg/policy/seed"
)

// RefKind is what an imported file holds.
type RefKind string

// The kinds of file the data office imports.
const (
	RefRegistry   RefKind = "poverty_registry" // 建档立卡 poverty household registry
	RefKeyPersons RefKind = "key_persons"      // 重点对象
	RefRoster     RefKind = "roster"           // enrolment roster of one school and term
	RefDeaths     RefKind = "deaths"           // deaths and household deregistrations
	RefHistory    RefKind = "history"          // aid paid before the system
)

// Column names. A header may use the English name or the Chinese one.
const (
	ColHouseholdID = "household_id"
	ColIDNumber    = "id_number"
	ColName        = "name"
	ColTownship    = "township"
	ColRelation    = "relation"
	ColUnit        = "unit"
	ColStage       = "stage"
	ColDate        = "date"
	ColEventKind   = "kind"
	ColSchoolCode  = "school_code"
	ColProgramCode = "program_code"
	ColTerm        = "term"
	ColAmountYuan  = "amount_yuan"
)

// chineseNames are the headers Chinese government exports use.
var chineseNames = map[string]string{
	"户编号": ColHouseholdID, "身份证号": ColIDNumber, "身份证号码": ColIDNumber, "姓名": ColName, "乡镇": ColTownship,
	"关系": ColRelation, "单位": ColUnit, "学段": ColStage, "日期": ColDate, "类型": ColEventKind,
	"学校代码": ColSchoolCode, "项目代码": ColProgramCode, "学期": ColTerm, "金额": ColAmountYuan,
}

// RefColumns are the columns each kind of file must have.
var RefColumns = map[RefKind][]string{
	RefRegistry:   {ColHouseholdID, ColIDNumber, ColName, ColTownship},
	RefKeyPersons: {ColIDNumber, ColName, ColRelation, ColUnit},
	RefRoster:     {ColIDNumber, ColName, ColStage},
	RefDeaths:     {ColIDNumber, ColName, ColDate, ColEventKind},
	RefHistory:    {ColIDNumber, ColName, ColSchoolCode, ColProgramCode, ColTerm, ColStage, ColAmountYuan},
}

// ParseRefKind reads a kind.
func ParseRefKind(s string) (RefKind, bool) {
	k := RefKind(s)
	_, ok := RefColumns[k]
	return k, ok
}

// Scope is what one import covers: "" for the city-wide kinds, the school and
// term for a roster, the source for history. A re-import of the same kind and
// scope is the next version and replaces the previous one in comparisons.
type Scope struct {
	SchoolCode string
	Term       Term
	Source     string
}

// Key is the scope as stored.
func (s Scope) Key(kind RefKind) string {
	switch kind {
	case RefRoster:
		return s.SchoolCode + "/" + s.Term.Name
	case RefHistory:
		return s.Source
	default:
		return ""
	}
}

// BadRow is one problem with one row of a file.
type BadRow struct {
	Line   int64
	Column string
	Reason string
}

// Row is one valid row, normalised.
type Row struct {
	Line int64
	// ID is the 18-character number (a 15-digit one upgraded).
	ID idnumber.ID
	// Name is NormalizeName of the name.
	Name        string
	HouseholdID string
	Township    string
	Relation    string
	Unit        string
	Stage       catalog.Stage
	Date        time.Time
	EventKind   string
	SchoolCode  string
	ProgramCode string
	Term        Term
	AmountFen   int64
}

// Header maps the columns of a kind to their positions in the file.
type Header struct {
	kind RefKind
	pos  map[string]int
}

// ParseHeader reads the first line of a file of kind.
func ParseHeader(kind RefKind, record []string) (Header, []BadRow) {
	h := Header{kind: kind, pos: make(map[string]int, len(record))}
	var bad []BadRow
	for i, name := range record {
		name = strings.TrimSpace(strings.TrimPrefix(name, "\uFEFF"))
		if en, ok := chineseNames[name]; ok {
			name = en
		}
		if _, dup := h.pos[name]; dup {
			bad = append(bad, BadRow{Line: 1, Column: name, Reason: "column appears twice"})
		}
		h.pos[name] = i
	}
	for _, c := range RefColumns[kind] {
		if _, ok := h.pos[c]; !ok {
			bad = append(bad, BadRow{Line: 1, Column: c, Reason: fmt.Sprintf("missing column %s (a %s file has %s)", c, kind, strings.Join(RefColumns[kind], ", "))})
		}
	}
	return h, bad
}

// Limits on free text in reference rows.
const (
	maxText = 100
	maxCode = 32
)

// Row validates one record (line is its 1-based line in the file) and
// returns it normalised, or every problem it has.
func (h Header) Row(line int64, record []string) (Row, []BadRow) {
	r := Row{Line: line}
	var bad []BadRow
	fail := func(col, format string, args ...any) {
		bad = append(bad, BadRow{Line: line, Column: col, Reason: fmt.Sprintf(format, args...)})
	}
	get := func(col string) string {
		i, ok := h.pos[col]
		if !ok || i >= len(record) {
			return ""
		}
		return strings.TrimSpace(record[i])
	}
	text := func(col string, required bool) string {
		v := get(col)
		switch {
		case !utf8.ValidString(v):
			fail(col, "is not valid text in the file's encoding")
		case v == "" && required:
			fail(col, "is empty")
		case utf8.RuneCountInString(v) > maxText:
			fail(col, "is longer than %d characters", maxText)
		}
		return v
	}
	id, err := idnumber.ParseAny(NormalizeIDNumber(get(ColIDNumber)))
	switch {
	case err != nil && strings.ContainsAny(get(ColIDNumber), "Ee") && strings.Contains(get(ColIDNumber), "+"):
		fail(ColIDNumber, "%q is a number the spreadsheet rounded: store ID numbers as text", get(ColIDNumber))
	case err != nil:
		fail(ColIDNumber, "%v", err)
	}
	r.ID = id
	if r.Name = NormalizeName(text(ColName, true)); r.Name == "" && get(ColName) != "" {
		fail(ColName, "has no letters")
	}
	switch h.kind {
	case RefRegistry:
		r.HouseholdID, r.Township = text(ColHouseholdID, true), text(ColTownship, false)
	case RefKeyPersons:
		r.Relation, r.Unit = text(ColRelation, true), text(ColUnit, false)
	case RefRoster:
		r.Stage = stageOf(get(ColStage), fail)
	case RefDeaths:
		r.Date = dateOf(get(ColDate), fail)
		r.EventKind = eventKindOf(get(ColEventKind), fail)
	case RefHistory:
		r.SchoolCode = code(get(ColSchoolCode), ColSchoolCode, fail)
		r.Stage = stageOf(get(ColStage), fail)
		r.ProgramCode = code(get(ColProgramCode), ColProgramCode, fail)
		if p, ok := seed.Program(r.ProgramCode); r.ProgramCode != "" && !ok {
			fail(ColProgramCode, "%s is not a program of the aid policy", r.ProgramCode)
		} else if ok && r.Stage != "" && !p.Covers(r.Stage) {
			fail(ColStage, "program %s does not cover %s", r.ProgramCode, r.Stage)
		}
		t, err := ParseTerm(get(ColTerm))
		if err != nil {
			fail(ColTerm, "%v", err)
		}
		r.Term = t
		fen, err := ParseYuan(get(ColAmountYuan))
		if err != nil {
			fail(ColAmountYuan, "%v", err)
		}
		r.AmountFen = fen
	}
	return r, bad
}

func code(v, col string, fail func(col, format string, args ...any)) string {
	switch {
	case v == "":
		fail(col, "is empty")
	case len(v) > maxCode:
		fail(col, "is longer than %d characters", maxCode)
	}
	return v
}

func stageOf(v string, fail func(col, format string, args ...any)) catalog.Stage {
	st, err := catalog.ParseStage(v)
	if err != nil {
		fail(ColStage, "%v", err)
	}
	return st
}

func dateOf(v string, fail func(col, format string, args ...any)) time.Time {
	for _, layout := range []string{"2006-01-02", "20060102", "2006/01/02", "2006-1-2", "2006/1/2"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t
		}
	}
	fail(ColDate, "%q is not a date such as 2016-05-31", v)
	return time.Time{}
}

func eventKindOf(v string, fail func(col, format string, args ...any)) string {
	switch v {
	case "death", "死亡":
		return "death"
	case "deregistration", "注销", "户籍注销":
		return "deregistration"
	}
	fail(ColEventKind, "must be death (死亡) or deregistration (注销)")
	return ""
}

// NormalizeIDNumber turns full-width digits and X (common from Chinese input
// methods) into ASCII, drops spaces, and upper-cases x.
func NormalizeIDNumber(s string) string {
	if idIsNormal(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, c := range s {
		switch {
		case c >= '０' && c <= '９':
			b.WriteRune('0' + c - '０')
		case c == 'x' || c == 'Ｘ' || c == 'ｘ':
			b.WriteRune('X')
		case unicode.IsSpace(c):
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}

// idIsNormal says whether NormalizeIDNumber would leave s as it is (ASCII
// digits and X only, as most files have them), so that it need not build a
// copy.
func idIsNormal(s string) bool {
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && c != 'X' {
			return false
		}
	}
	return true
}

// NormalizeName is how names are compared: spaces and the separator dots of
// transliterated names (·•・.) are dropped, full-width Latin letters and
// digits become ASCII, and Latin letters are upper-cased. Names are never
// matched on their own (the ID number is the key); the name's keyed hash
// confirms a match.
func NormalizeName(s string) string {
	if nameIsNormal(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, c := range s {
		switch {
		case unicode.IsSpace(c), c == '·', c == '•', c == '・', c == '.', c == '．':
		case c >= '！' && c <= '～':
			b.WriteRune(unicode.ToUpper(c - '！' + '!'))
		default:
			b.WriteRune(unicode.ToUpper(c))
		}
	}
	return b.String()
}

// nameIsNormal says whether NormalizeName would leave s as it is (most
// names: Han characters only), so that it need not build a copy.
func nameIsNormal(s string) bool {
	for _, c := range s {
		switch {
		case c < 0x80:
			if c <= ' ' || c == '.' || c >= 'a' && c <= 'z' || c == 0x7f {
				return false
			}
		case c >= 0x4e00 && c <= 0x9fff: // CJK unified ideographs: no case, no space
		default:
			return false
		}
	}
	return true
}

// ParseYuan reads an amount in yuan, such as 500, 1,250.50 or ¥625, as
// exact fen. It must be positive with at most two decimals.
func ParseYuan(s string) (int64, error) {
	v := strings.NewReplacer(",", "", "，", "", "¥", "", "￥", "", " ", "").Replace(s)
	whole, frac, _ := strings.Cut(v, ".")
	if whole == "" || len(frac) > 2 || len(whole) > 12 {
		return 0, fmt.Errorf("%q is not an amount in yuan such as 500 or 1250.50", s)
	}
	var fen int64
	for _, c := range whole + (frac + "00")[:2] {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not an amount in yuan such as 500 or 1250.50", s)
		}
		fen = fen*10 + int64(c-'0')
	}
	if fen <= 0 {
		return 0, fmt.Errorf("amount must be positive, got %q", s)
	}
	return fen, nil
}
