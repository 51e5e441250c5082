package policy_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/edubureau/studentaid/pkg/policy"
)

// basePolicy is a small valid policy: one program of each rule but tuition.
const basePolicy = `{
  "effective_from": "2015-spring",
  "summary": "test policy",
  "age_ranges": {
    "preschool": {"min": 2, "max": 7}, "primary": {"min": 5, "max": 15}, "junior": {"min": 10, "max": 18},
    "high_school": {"min": 13, "max": 21}, "vocational": {"min": 13, "max": 25}, "university": {"min": 15, "max": 35}
  },
  "programs": [
    {
      "code": "BOARDING_SUBSIDY", "name": "寄宿生生活补助", "name_en": "Boarding subsidy",
      "stages": ["primary", "junior"], "funding": "government",
      "shares_bp": {"central_provincial": 8000, "municipal": 2000}, "government_total": true,
      "rule": "fixed", "standard_fen": {"primary": 50000, "junior": 62500}, "frequency": "once_per_term",
      "requires_boarding": true, "requires_rural": true
    },
    {
      "code": "HS_NATIONAL_GRANT", "name": "普通高中国家助学金", "name_en": "High-school grant",
      "stages": ["high_school"], "funding": "government",
      "shares_bp": {"central_provincial": 10000}, "government_total": true,
      "rule": "tiered", "tier_fen": {"especially_difficult": 125000, "difficult": 100000, "generally_difficult": 75000},
      "frequency": "once_per_term"
    },
    {
      "code": "STUDENT_LOAN", "name": "助学贷款", "name_en": "Student loan",
      "stages": ["university"], "funding": "bank_loan", "shares_bp": {"bank_loan": 10000},
      "rule": "requested", "max_fen": 1200000, "frequency": "once_per_term"
    }
  ]
}`

// baseRegister is a small valid register.
const baseRegister = `{
  "effective_from": "2015-spring",
  "summary": "test register",
  "schools": [
    {"code": "S001", "name": "一中", "region": "420281", "stages": ["junior", "high_school"],
     "rural": true, "boarding": true, "submitting_org": "S001", "tuition_fen": {"high_school": 85000}},
    {"code": "S002", "name": "二小", "region": "420222", "stages": ["primary"],
     "rural": false, "boarding": false, "submitting_org": "S002"}
  ]
}`

// edit decodes doc, applies change to it and encodes it again.
func edit(t *testing.T, doc string, change func(d map[string]any)) []byte {
	t.Helper()
	var d map[string]any
	if err := json.Unmarshal([]byte(doc), &d); err != nil {
		t.Fatalf("test document: %v", err)
	}
	change(d)
	out, err := json.Marshal(d)
	if err != nil {
		t.Fatalf("encode test document: %v", err)
	}
	return out
}

// item returns d[list][i] as an object.
func item(d map[string]any, list string, i int) map[string]any {
	return d[list].([]any)[i].(map[string]any)
}

// object returns m[key] as an object.
func object(m map[string]any, key string) map[string]any { return m[key].(map[string]any) }

// problem is what one refused document must say: the place it starts with
// and words of what to do.
type problem struct {
	place string
	words []string
}

// checkProblems asserts err lists exactly want, in order.
func checkProblems(t *testing.T, err error, want []problem) {
	t.Helper()
	if !errors.Is(err, policy.ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	got := policy.ProblemsOf(err)
	if len(got) != len(want) {
		t.Fatalf("ProblemsOf = %d problems %q, want %d", len(got), got, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w.place+": ") {
			t.Errorf("problem %d = %q, want it to start with %q", i, got[i], w.place+": ")
		}
		for _, word := range w.words {
			if !strings.Contains(got[i], word) {
				t.Errorf("problem %d = %q, want it to say %q", i, got[i], word)
			}
		}
		if !strings.Contains(err.Error(), got[i]) {
			t.Errorf("Error() = %q does not list problem %q", err.Error(), got[i])
		}
	}
}

func TestParsePolicyAcceptsBase(t *testing.T) {
	t.Parallel()

	p, err := policy.ParsePolicy([]byte(basePolicy))
	if err != nil {
		t.Fatalf("ParsePolicy(base) = %v", err)
	}
	if got := len(p.All()); got != 3 {
		t.Errorf("All() = %d programs, want 3", got)
	}
}

func TestParsePolicyRefuses(t *testing.T) {
	t.Parallel()

	const boarding, grant, loan = "programs[0] (BOARDING_SUBSIDY)", "programs[1] (HS_NATIONAL_GRANT)", "programs[2] (STUDENT_LOAN)"
	tests := []struct {
		name   string
		change func(d map[string]any) // applied to basePolicy
		raw    string                 // the document instead, when set
		want   []problem
	}{
		{
			name: "shares not summing to 10000",
			change: func(d map[string]any) {
				object(item(d, "programs", 0), "shares_bp")["municipal"] = 1500
			},
			want: []problem{{boarding + ".shares_bp", []string{"9500", "95 %", "must sum to 10000"}}},
		},
		{
			name: "a share for an unknown source",
			change: func(d map[string]any) {
				shares := object(item(d, "programs", 0), "shares_bp")
				delete(shares, "municipal")
				shares["county"] = 2000
			},
			want: []problem{{boarding + ".shares_bp", []string{`"county"`, "not a funding source", "central_provincial, municipal, charity or bank_loan"}}},
		},
		{
			name: "a tiered program missing a tier",
			change: func(d map[string]any) {
				delete(object(item(d, "programs", 1), "tier_fen"), "difficult")
			},
			want: []problem{{grant + ".tier_fen", []string{"tier difficult is missing", "give tier_fen.difficult"}}},
		},
		{
			name: "a tier paying more at a lower level",
			change: func(d map[string]any) {
				object(item(d, "programs", 1), "tier_fen")["difficult"] = 130000
			},
			want: []problem{{grant + ".tier_fen", []string{"must not pay less", "difficult 130000", "raise the higher level"}}},
		},
		{
			name: "a fixed program without a standard for one of its stages",
			change: func(d map[string]any) {
				delete(object(item(d, "programs", 0), "standard_fen"), "junior")
			},
			want: []problem{{boarding + ".standard_fen", []string{"no standard for stage junior", "give standard_fen.junior", "remove the stage"}}},
		},
		{
			name: "an unknown stage",
			change: func(d map[string]any) {
				item(d, "programs", 1)["stages"] = []string{"high_school", "senior"}
			},
			want: []problem{{grant + ".stages", []string{`"senior" is not a stage`, "want one of preschool, primary"}}},
		},
		{
			name:   "an unknown rule",
			change: func(d map[string]any) { item(d, "programs", 1)["rule"] = "graduated" },
			want:   []problem{{grant + ".rule", []string{"fixed, tiered, tuition or requested", `"graduated"`}}},
		},
		{
			name:   "a bad effective_from",
			change: func(d map[string]any) { d["effective_from"] = "2018-summer" },
			want:   []problem{{"effective_from", []string{"must be a term such as 2018-spring", `"2018-summer"`}}},
		},
		{
			name:   "a missing summary",
			change: func(d map[string]any) { delete(d, "summary") },
			want:   []problem{{"summary", []string{"say in 1 to 500 characters what this version changes"}}},
		},
		{
			name:   "a blank summary",
			change: func(d map[string]any) { d["summary"] = "   " },
			want:   []problem{{"summary", []string{"what this version changes and why"}}},
		},
		{
			name:   "an unknown JSON field",
			change: func(d map[string]any) { item(d, "programs", 0)["amount_yuan"] = 500 },
			want:   []problem{{"document", []string{`"amount_yuan"`, "remove it or correct its spelling"}}},
		},
		{
			name:   "a field of the wrong type",
			change: func(d map[string]any) { item(d, "programs", 2)["max_fen"] = "12000" },
			want:   []problem{{"programs.max_fen", []string{"must be JSON of type int64", "string"}}},
		},
		{
			name: "not JSON",
			raw:  `{"effective_from": "2015-spring",}`,
			want: []problem{{"document", []string{"not valid JSON at byte", "check the brackets, commas and quotes"}}},
		},
		{
			name: "a second object after the document",
			raw:  basePolicy + "\n{}",
			want: []problem{{"document", []string{"unexpected data after the JSON object", "remove what follows it"}}},
		},
		{
			name: "a stray closing brace after the document",
			raw:  basePolicy + "}",
			want: []problem{{"document", []string{"unexpected data after the JSON object", "remove what follows it"}}},
		},
		{
			name: "a stray closing bracket after the document",
			raw:  basePolicy + " ]",
			want: []problem{{"document", []string{"unexpected data after the JSON object"}}},
		},
		{
			name: "an empty document",
			raw:  " \n",
			want: []problem{{"document", []string{"empty", "send one JSON object"}}},
		},
		{
			name: "a cut-off document",
			raw:  basePolicy[:200],
			want: []problem{{"document", []string{"cut off", "send all of it"}}},
		},
		{
			name: "a negative share",
			change: func(d map[string]any) {
				item(d, "programs", 1)["shares_bp"] = map[string]any{"central_provincial": -550}
			},
			want: []problem{
				{grant + ".shares_bp.central_provincial", []string{"must be 1 to 10000 basis points, got -550"}},
				{grant + ".shares_bp", []string{"sum to -550 basis points (-5.5 %)", "must sum to 10000"}},
			},
		},
		{
			name: "unknown sources, listed in order",
			change: func(d map[string]any) {
				item(d, "programs", 1)["shares_bp"] = map[string]any{"county": 5000, "bank": 5000}
			},
			want: []problem{
				{grant + ".shares_bp", []string{`"bank" is not a funding source`}},
				{grant + ".shares_bp", []string{`"county" is not a funding source`}},
			},
		},
		{
			name:   "a duplicate program code",
			change: func(d map[string]any) { item(d, "programs", 2)["code"] = "BOARDING_SUBSIDY" },
			want:   []problem{{"programs[2] (BOARDING_SUBSIDY).code", []string{"already programs[0]", "give each program its own code"}}},
		},
		{
			name:   "a missing age range",
			change: func(d map[string]any) { delete(object(d, "age_ranges"), "university") },
			want:   []problem{{"age_ranges.university", []string{"missing", "give the youngest and oldest age"}}},
		},
		{
			name:   "no age ranges at all",
			change: func(d map[string]any) { delete(d, "age_ranges") },
			want: []problem{
				{"age_ranges.preschool", []string{"missing", "youngest and oldest"}},
				{"age_ranges.primary", []string{"missing"}},
				{"age_ranges.junior", []string{"missing"}},
				{"age_ranges.high_school", []string{"missing"}},
				{"age_ranges.vocational", []string{"missing"}},
				{"age_ranges.university", []string{"missing"}},
			},
		},
		{
			name: "an age range upside down",
			change: func(d map[string]any) {
				object(d, "age_ranges")["junior"] = map[string]any{"min": 18, "max": 10}
			},
			want: []problem{{"age_ranges.junior", []string{"min 18 and max 10", "0 ≤ min ≤ max ≤ 80"}}},
		},
		{
			name: "a usual age range outside the stage's range",
			change: func(d map[string]any) {
				object(d, "age_ranges")["primary"] = map[string]any{"min": 5, "max": 15, "usual": map[string]any{"min": 6, "max": 16}}
			},
			want: []problem{{"age_ranges.primary.usual", []string{"min 6 and max 16", "5 ≤ min ≤ max ≤ 15"}}},
		},
		{
			name: "a usual age range upside down",
			change: func(d map[string]any) {
				object(d, "age_ranges")["junior"] = map[string]any{"min": 10, "max": 18, "usual": map[string]any{"min": 16, "max": 12}}
			},
			want: []problem{{"age_ranges.junior.usual", []string{"min 16 and max 12", "10 ≤ min ≤ max ≤ 18"}}},
		},
		{
			name:   "a loan counted toward the government total",
			change: func(d map[string]any) { item(d, "programs", 2)["government_total"] = true },
			want:   []problem{{loan + ".government_total", []string{"does not count toward the government total"}}},
		},
		{
			name: "a tier on a fixed program",
			change: func(d map[string]any) {
				item(d, "programs", 0)["tier_fen"] = map[string]any{"difficult": 1}
			},
			want: []problem{{boarding + ".tier_fen", []string{"does not apply to rule fixed", "remove it"}}},
		},
		{
			name:   "a requested program without a maximum",
			change: func(d map[string]any) { delete(item(d, "programs", 2), "max_fen") },
			want:   []problem{{loan + ".max_fen", []string{"must be a positive amount in fen"}}},
		},
		{
			name:   "an unknown frequency",
			change: func(d map[string]any) { item(d, "programs", 2)["frequency"] = "yearly" },
			want:   []problem{{loan + ".frequency", []string{"once_per_term or once_per_student"}}},
		},
		{
			name:   "no programs",
			change: func(d map[string]any) { d["programs"] = []any{} },
			want:   []problem{{"programs", []string{"at least one program is required"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			doc := []byte(tt.raw)
			if tt.raw == "" {
				doc = edit(t, basePolicy, tt.change)
			}
			p, err := policy.ParsePolicy(doc)
			if p != nil {
				t.Errorf("ParsePolicy returned a policy beside the error")
			}
			checkProblems(t, err, tt.want)
		})
	}
}

func TestParsePolicyListsEveryProblemAtOnce(t *testing.T) {
	t.Parallel()

	doc := edit(t, basePolicy, func(d map[string]any) {
		d["effective_from"] = "spring 2018"
		delete(d, "summary")
		object(item(d, "programs", 0), "shares_bp")["municipal"] = 1500
	})
	_, err := policy.ParsePolicy(doc)
	checkProblems(t, err, []problem{
		{"effective_from", []string{"2018-spring"}},
		{"summary", []string{"say in 1 to 500 characters"}},
		{"programs[0] (BOARDING_SUBSIDY).shares_bp", []string{"must sum to 10000"}},
	})
}

func TestParseRegisterAcceptsBase(t *testing.T) {
	t.Parallel()

	r, err := policy.ParseRegister([]byte(baseRegister))
	if err != nil {
		t.Fatalf("ParseRegister(base) = %v", err)
	}
	s, ok := r.School("S001")
	if !ok || !s.Rural || !s.Boarding || s.TuitionFen["high_school"] != 85000 {
		t.Errorf("School(S001) = %+v, %v", s, ok)
	}
}

func TestParseRegisterRefuses(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name   string
		change func(d map[string]any)
		want   []problem
	}{
		{
			name:   "a duplicate school",
			change: func(d map[string]any) { item(d, "schools", 1)["code"] = "S001" },
			want:   []problem{{"schools[1] (S001).code", []string{"already schools[0]", "give each school its own code"}}},
		},
		{
			name: "tuition for a stage the school does not teach",
			change: func(d map[string]any) {
				item(d, "schools", 1)["tuition_fen"] = map[string]any{"vocational": 107500}
			},
			want: []problem{{"schools[1] (S002).tuition_fen", []string{"tuition for vocational", "does not teach", "add the stage to stages or remove the tuition"}}},
		},
		{
			name:   "a bad region",
			change: func(d map[string]any) { item(d, "schools", 0)["region"] = "42028" },
			want:   []problem{{"schools[0] (S001).region", []string{"6-digit region code", `"42028"`}}},
		},
		{
			name:   "a missing submitting_org",
			change: func(d map[string]any) { delete(item(d, "schools", 1), "submitting_org") },
			want:   []problem{{"schools[1] (S002).submitting_org", []string{"name the organisation whose officers submit"}}},
		},
		{
			name:   "an unknown stage",
			change: func(d map[string]any) { item(d, "schools", 1)["stages"] = []string{"primary", "middle"} },
			want:   []problem{{"schools[1] (S002).stages", []string{`"middle" is not a stage`}}},
		},
		{
			name:   "a missing name",
			change: func(d map[string]any) { item(d, "schools", 1)["name"] = "" },
			want:   []problem{{"schools[1] (S002).name", []string{"the school's name is required"}}},
		},
		{
			name:   "no schools",
			change: func(d map[string]any) { d["schools"] = []any{} },
			want:   []problem{{"schools", []string{"at least one school is required"}}},
		},
		{
			name: "three problems at once",
			change: func(d map[string]any) {
				d["effective_from"] = "2015"
				item(d, "schools", 0)["region"] = "4202810"
				delete(item(d, "schools", 1), "submitting_org")
			},
			want: []problem{
				{"effective_from", []string{"must be a term"}},
				{"schools[0] (S001).region", []string{"6-digit"}},
				{"schools[1] (S002).submitting_org", []string{"name the organisation"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := policy.ParseRegister(edit(t, baseRegister, tt.change))
			if r != nil {
				t.Errorf("ParseRegister returned a register beside the error")
			}
			checkProblems(t, err, tt.want)
		})
	}
}

func TestParseRegisterRefusesTrailingData(t *testing.T) {
	t.Parallel()

	_, err := policy.ParseRegister([]byte(baseRegister + "}"))
	checkProblems(t, err, []problem{{"document", []string{"unexpected data after the JSON object"}}})
}

func TestProgramsAreCopies(t *testing.T) {
	t.Parallel()

	p, err := policy.ParsePolicy([]byte(basePolicy))
	if err != nil {
		t.Fatal(err)
	}
	prog, _ := p.Program("BOARDING_SUBSIDY")
	prog.StandardFen["primary"] = 1
	prog.SharesBP[policy.SourceMunicipal] = 1
	prog.Stages[0] = "university"
	again, _ := p.Program("BOARDING_SUBSIDY")
	if again.StandardFen["primary"] != 50000 || again.SharesBP[policy.SourceMunicipal] != 2000 || again.Stages[0] != "primary" {
		t.Errorf("changing a returned program changed the policy: %+v", again)
	}
	if _, ok := p.Program("NO_SUCH"); ok {
		t.Errorf("Program(NO_SUCH) found")
	}
}
