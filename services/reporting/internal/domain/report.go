// Package domain holds the reporting service's figures and the bureau's
// annual report built from them: its sections, their order and headings.
package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// TimePrecision is PostgreSQL's timestamp precision.
const TimePrecision = time.Microsecond

// Sources of funding in report order (pkg/policy.Sources).
const (
	SourceCentralProvincial = "central_provincial"
	SourceMunicipal         = "municipal"
	SourceCharity           = "charity"
	SourceBankLoan          = "bank_loan"
)

// ErrBadTerm: a term is not "<year>-spring" or "<year>-autumn".
var ErrBadTerm = errors.New("bad term")

// TermRank orders terms: year*2, plus one for autumn.
func TermRank(term string) (int, error) {
	y, season, ok := strings.Cut(term, "-")
	year, err := strconv.Atoi(y)
	if !ok || err != nil || year < 2000 || year > 2200 {
		return 0, fmt.Errorf("%w %q", ErrBadTerm, term)
	}
	switch season {
	case "spring":
		return year * 2, nil
	case "autumn":
		return year*2 + 1, nil
	}
	return 0, fmt.Errorf("%w %q", ErrBadTerm, term)
}

// ProgramFigure is one program's paid figures over a selection: grants
// paid minus refunds recovered, loans apart.
type ProgramFigure struct {
	ProgramCode     string
	GovernmentTotal bool
	Loan            bool
	// PaidFen is paid minus recovered; GrossFen before refunds.
	PaidFen, GrossFen int64
	// RecoveredFen: refunds recovered against the program's payments.
	RecoveredFen         int64
	Persons, PersonTimes int64
}

// Figures are the figures of a selection.
type Figures struct {
	AsOf                time.Time
	Programs            []ProgramFigure
	PaidFen, GrossFen   int64
	Persons             int64
	PersonTimes         int64
	Funding             map[string]int64
	RefundsOrderedFen   int64
	RefundsRecoveredFen int64
	LoansIssuedFen      int64
	LoansIssuedCount    int64
	LoansRecoveredFen   int64
	// GovernmentFen and GovernmentFunding: the programs counting toward the
	// government total; GovernmentPersons their distinct students.
	GovernmentFen     int64
	GovernmentFunding map[string]int64
	GovernmentPersons int64
	// Steps: the selected applications by the step they are at, in chain
	// order; Rejections: school and bureau rejections by reason.
	Steps      []StepFigure
	Rejections []Rejection
}

// Steps of the chain an application is at, in chain order (docs/reporting.md,
// "Steps").
const (
	StepSchoolReview   = "school_review"
	StepNotice         = "notice"
	StepBureauReview   = "bureau_review"
	StepFinance        = "awaiting_finance"
	StepBatched        = "batched"
	StepOrdered        = "ordered"
	StepPaid           = "paid"
	StepSchoolRejected = "school_rejected"
	StepBureauRejected = "bureau_rejected"
	StepPaymentFailed  = "payment_failed"
	StepWithdrawn      = "withdrawn"
)

// Steps lists the steps in chain order.
var Steps = []string{StepSchoolReview, StepNotice, StepBureauReview, StepFinance, StepBatched, StepOrdered, StepPaid,
	StepSchoolRejected, StepBureauRejected, StepPaymentFailed, StepWithdrawn}

// StepOrder is the step's place in Steps (from 1), 0 for no step.
func StepOrder(step string) int {
	for i, s := range Steps {
		if s == step {
			return i + 1
		}
	}
	return 0
}

// StepFigure is one step's figures over a selection.
type StepFigure struct {
	Step string
	// Applications are at the step now (as of the figures' instant).
	Applications int64
	// Left: the visits of the step that ended by the instant;
	// MedianSeconds the median of their durations (0 when none left).
	Left          int64
	MedianSeconds float64
}

// Rejection counts the rejections of one reason at one step.
type Rejection struct {
	// Step: StepSchoolRejected or StepBureauRejected.
	Step string
	// Reason as given, trimmed; Other: the reasons beyond the top ones.
	Reason string
	Other  bool
	Count  int64
}

// Comparison is the data office's figures of a year (section 一.(二)).
type Comparison struct {
	Runs             []Run
	CluesByKind      []Count
	CluesByOrigin    []Count
	VerifiedByProg   []Count
	Verified         int64
	Dismissed        int64
	StudentsInvolved int64
	FoundIneligible  int64
	RefundsOpened    int64
	RefundOrderedFen int64
	RefundedFen      int64
	RefundedStudents int64
	// BackPaidStudents and BackPaidFen: missed students (应助未助) paid
	// back-pay in the year, and the amount.
	BackPaidStudents int64
	BackPaidFen      int64
}

// Run is one comparison run.
type Run struct {
	FromTerm, ToTerm string
	Records          int64
	NewClues         int64
}

// Count is a count by key.
type Count struct {
	Key string
	N   int64
}

// Line is one line of a report section.
type Line struct {
	Key       string `json:"key"`
	Label     string `json:"label"`
	AmountFen int64  `json:"amount_fen"`
	Count     int64  `json:"count"`
	Unit      string `json:"unit"`
	Total     bool   `json:"total,omitempty"`
}

// Section is one section of the report.
type Section struct {
	Key   string `json:"key"`
	Title string `json:"title"`
	Lines []Line `json:"lines"`
}

// Report is a year's annual report.
type Report struct {
	Year                 int       `json:"year"`
	Language             string    `json:"language"`
	AsOf                 time.Time `json:"as_of"`
	GovernmentTotalFen   int64     `json:"government_total_fen"`
	CentralProvincialFen int64     `json:"central_provincial_fen"`
	MunicipalFen         int64     `json:"municipal_fen"`
	Students             int64     `json:"students"`
	Sections             []Section `json:"sections"`
}

// Hash is the hex SHA-256 of the report's canonical JSON.
func (r Report) Hash() string {
	b, err := json.Marshal(r)
	if err != nil {
		panic(err) // a Report always marshals
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// program is a program's place and names in the bureau's report.
type program struct {
	code, zh, en string
	// persons: the report counts persons (人), else person-times (人次).
	persons bool
}

// reportOrder is the order of section 一.(一) of the bureau's 2017 report.
var reportOrder = []program{
	{"PRESCHOOL_AID", "学前教育政府资助", "Preschool government aid", true},
	{"BOARDING_SUBSIDY", "农村义务教育寄宿生生活补助", "Rural boarding-student living subsidy", false},
	{"HS_NATIONAL_GRANT", "普通高中国家助学金", "High-school national grant", false},
	{"HS_TUITION_WAIVER", "普通高中免学费", "High-school tuition waiver", false},
	{"VOC_NATIONAL_GRANT", "中等职业教育国家助学金", "Vocational national grant", true},
	{"VOC_TUITION_WAIVER", "中等职业教育免学费", "Vocational tuition waiver", true},
	{"STUDENT_LOAN", "生源地信用助学贷款", "Home-county credit student loan", true},
	{"POVERTY_EXTENSION", "建档立卡扩面资助", "Extension for registered poor households", true},
	{"FANHAI_FRESHMAN", "泛海助学行动", "Fanhai freshman grant", true},
	{"RCB_FRESHMAN", "农商行助学行动", "Rural commercial bank freshman grant", true},
	{"ZIHUI_AWARD", "滋蕙计划", "Zihui award", true},
}

func rank(code string) (int, program) {
	for i, p := range reportOrder {
		if p.code == code {
			return i, p
		}
	}
	return len(reportOrder), program{code: code, zh: code, en: code}
}

// words are the report's headings and units by language.
var words = map[string]map[string]string{
	"zh": {
		"summary": "资助资金总体情况", "programs": "各项目资助情况（政府资金）", "loans": "生源地信用助学贷款",
		"charity": "社会资助项目（不计入政府资金总额）", "comparison_records": "大数据比对：比对记录",
		"clues": "大数据比对：问题线索", "verified": "大数据比对：查实问题（按项目）", "refunds": "大数据比对：整改与退款",
		"total": "政府资金合计", "central_provincial": "其中：中央、省级资金", "municipal": "其中：市级财政配套资金",
		"students": "惠及家庭经济困难学生", "loans_issued": "办理贷款", "loans_recovered": "回收贷款本息",
		"kind": "线索类型", "origin": "线索来源", "verified_total": "查实", "dismissed": "排除",
		"students_involved": "线索涉及学生", "eligible": "符合领取条件", "ineligible": "不符合领取条件",
		"refunds_opened": "责令退款", "refunded": "已退还资助款", "refunded_students": "退款学生",
		"back_paid":   "应助未助学生补发",
		"clues_total": "问题线索合计", "runs": "比对", "refund_note": "退款冲减原发放学期的发放数",
		"persons": "人", "person_times": "人次", "items": "条",
	},
	"en": {
		"summary": "Aid paid: overview", "programs": "Programs (government funds)", "loans": "Home-county credit student loans",
		"charity": "Charity programs (not in the government total)", "comparison_records": "Data comparison: records compared",
		"clues": "Data comparison: problem clues", "verified": "Data comparison: verified, by program", "refunds": "Data comparison: rectification and refunds",
		"total": "Government total", "central_provincial": "of which central and provincial funds", "municipal": "of which municipal matching funds",
		"students": "Students helped", "loans_issued": "Loans issued", "loans_recovered": "Loans recovered (principal and interest)",
		"kind": "Clue kind", "origin": "Clue source", "verified_total": "Verified", "dismissed": "Dismissed",
		"students_involved": "Students concerned", "eligible": "Found eligible", "ineligible": "Found not eligible",
		"refunds_opened": "Refunds ordered", "refunded": "Refunded", "refunded_students": "Students who refunded",
		"back_paid":   "Missed students back-paid",
		"clues_total": "Problem clues, total", "runs": "Comparison", "refund_note": "refunds lower the term of the original payment",
		"persons": "persons", "person_times": "person-times", "items": "clues",
	},
}

// Language normalises a requested language: "en" or else "zh".
func Language(l string) string {
	if strings.EqualFold(l, "en") {
		return "en"
	}
	return "zh"
}

// BuildAnnual builds the year's report from its figures, in the order of
// the bureau's report.
func BuildAnnual(year int, lang string, f Figures, c Comparison) Report {
	lang = Language(lang)
	w := words[lang]
	name := func(p program) string {
		if lang == "en" {
			return p.en
		}
		return p.zh
	}
	r := Report{Year: year, Language: lang, AsOf: f.AsOf.UTC(), GovernmentTotalFen: f.GovernmentFen,
		CentralProvincialFen: f.GovernmentFunding[SourceCentralProvincial], MunicipalFen: f.GovernmentFunding[SourceMunicipal],
		Students: f.GovernmentPersons}
	r.Sections = append(r.Sections, Section{Key: "summary", Title: w["summary"], Lines: []Line{
		{Key: "total", Label: w["total"], AmountFen: f.GovernmentFen, Count: f.GovernmentPersons, Unit: w["persons"], Total: true},
		{Key: SourceCentralProvincial, Label: w["central_provincial"], AmountFen: r.CentralProvincialFen},
		{Key: SourceMunicipal, Label: w["municipal"], AmountFen: r.MunicipalFen},
		{Key: "students", Label: w["students"], Count: f.GovernmentPersons, Unit: w["persons"]},
	}})
	progs := append([]ProgramFigure(nil), f.Programs...)
	sort.SliceStable(progs, func(i, j int) bool {
		ri, _ := rank(progs[i].ProgramCode)
		rj, _ := rank(progs[j].ProgramCode)
		if ri != rj {
			return ri < rj
		}
		return progs[i].ProgramCode < progs[j].ProgramCode
	})
	gov := Section{Key: "programs", Title: w["programs"]}
	charity := Section{Key: "charity", Title: w["charity"]}
	var charityFen, charityN int64
	for _, pf := range progs {
		if pf.Loan {
			continue
		}
		_, p := rank(pf.ProgramCode)
		l := Line{Key: pf.ProgramCode, Label: name(p), AmountFen: pf.PaidFen, Count: pf.PersonTimes, Unit: w["person_times"]}
		if p.persons {
			l.Count, l.Unit = pf.Persons, w["persons"]
		}
		if pf.GovernmentTotal {
			gov.Lines = append(gov.Lines, l)
		} else {
			charity.Lines = append(charity.Lines, l)
			charityFen += l.AmountFen
			charityN += pf.Persons
		}
	}
	gov.Lines = append(gov.Lines, Line{Key: "total", Label: w["total"], AmountFen: f.GovernmentFen, Count: f.GovernmentPersons, Unit: w["persons"], Total: true})
	charity.Lines = append(charity.Lines, Line{Key: "total", Label: w["total"], AmountFen: charityFen, Count: charityN, Unit: w["persons"], Total: true})
	r.Sections = append(r.Sections, gov, Section{Key: "loans", Title: w["loans"], Lines: []Line{
		{Key: "loans_issued", Label: w["loans_issued"], AmountFen: f.LoansIssuedFen, Count: f.LoansIssuedCount, Unit: w["persons"]},
		{Key: "loans_recovered", Label: w["loans_recovered"], AmountFen: f.LoansRecoveredFen},
	}}, charity)

	recs := Section{Key: "comparison_records", Title: w["comparison_records"]}
	var recN int64
	for _, run := range c.Runs {
		recs.Lines = append(recs.Lines, Line{Key: run.FromTerm + ".." + run.ToTerm, Label: w["runs"] + " " + run.FromTerm + " – " + run.ToTerm,
			Count: run.Records, Unit: w["person_times"]})
		recN += run.Records
	}
	recs.Lines = append(recs.Lines, Line{Key: "total", Label: w["total"], Count: recN, Unit: w["person_times"], Total: true})
	clues := Section{Key: "clues", Title: w["clues"]}
	var clueN int64
	for _, k := range c.CluesByKind {
		clues.Lines = append(clues.Lines, Line{Key: "kind:" + k.Key, Label: w["kind"] + ": " + k.Key, Count: k.N, Unit: w["items"]})
		clueN += k.N
	}
	for _, o := range c.CluesByOrigin {
		clues.Lines = append(clues.Lines, Line{Key: "origin:" + o.Key, Label: w["origin"] + ": " + o.Key, Count: o.N, Unit: w["items"]})
	}
	clues.Lines = append(clues.Lines, Line{Key: "total", Label: w["clues_total"], Count: clueN, Unit: w["items"], Total: true})
	ver := Section{Key: "verified", Title: w["verified"]}
	for _, v := range c.VerifiedByProg {
		_, p := rank(v.Key)
		ver.Lines = append(ver.Lines, Line{Key: v.Key, Label: name(p), Count: v.N, Unit: w["items"]})
	}
	ver.Lines = append(ver.Lines,
		Line{Key: "total", Label: w["verified_total"], Count: c.Verified, Unit: w["items"], Total: true},
		Line{Key: "dismissed", Label: w["dismissed"], Count: c.Dismissed, Unit: w["items"]})
	ref := Section{Key: "refunds", Title: w["refunds"], Lines: []Line{
		{Key: "students_involved", Label: w["students_involved"], Count: c.StudentsInvolved, Unit: w["persons"]},
		{Key: "eligible", Label: w["eligible"], Count: c.StudentsInvolved - c.FoundIneligible, Unit: w["persons"]},
		{Key: "ineligible", Label: w["ineligible"], Count: c.FoundIneligible, Unit: w["persons"]},
		{Key: "refunds_opened", Label: w["refunds_opened"], AmountFen: c.RefundOrderedFen, Count: c.RefundsOpened, Unit: w["items"]},
		{Key: "refunded", Label: w["refunded"] + " (" + w["refund_note"] + ")", AmountFen: c.RefundedFen, Count: c.RefundedStudents, Unit: w["persons"]},
		{Key: "back_paid", Label: w["back_paid"], AmountFen: c.BackPaidFen, Count: c.BackPaidStudents, Unit: w["persons"]},
	}}
	r.Sections = append(r.Sections, recs, clues, ver, ref)
	return r
}

// Changes lists what differs between two versions of a report, line by
// line: "programs/HS_NATIONAL_GRANT amount 100000 → 90000 (-10000)".
func Changes(prev, next Report) []string {
	type key struct{ s, l string }
	old := map[key]Line{}
	for _, s := range prev.Sections {
		for _, l := range s.Lines {
			old[key{s.Key, l.Key}] = l
		}
	}
	var out []string
	seen := map[key]bool{}
	for _, s := range next.Sections {
		for _, l := range s.Lines {
			k := key{s.Key, l.Key}
			seen[k] = true
			o, ok := old[k]
			if !ok {
				out = append(out, fmt.Sprintf("%s/%s new: amount %d fen, count %d", s.Key, l.Key, l.AmountFen, l.Count))
				continue
			}
			if o.AmountFen != l.AmountFen {
				out = append(out, fmt.Sprintf("%s/%s amount %d → %d fen (%+d)", s.Key, l.Key, o.AmountFen, l.AmountFen, l.AmountFen-o.AmountFen))
			}
			if o.Count != l.Count {
				out = append(out, fmt.Sprintf("%s/%s count %d → %d (%+d)", s.Key, l.Key, o.Count, l.Count, l.Count-o.Count))
			}
		}
	}
	for _, s := range prev.Sections {
		for _, l := range s.Lines {
			if !seen[key{s.Key, l.Key}] {
				out = append(out, fmt.Sprintf("%s/%s removed", s.Key, l.Key))
			}
		}
	}
	return out
}
