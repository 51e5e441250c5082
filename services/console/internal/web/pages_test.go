package web

import (
	"bytes"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
	datacomparisonv1 "github.com/edubureau/studentaid/proto/gen/aid/datacomparison/v1"
)

// TestPolicyAndExchangePagesRender renders the policy and exchange pages
// with the answers the services give, in both languages, and checks what
// an officer must see on each.
func TestPolicyAndExchangePagesRender(t *testing.T) {
	pages, err := parsePages()
	if err != nil {
		t.Fatal(err)
	}
	drafted := timestamppb.New(timestamppb.Now().AsTime())
	version := &applicationv1.PolicyVersion{Kind: "programs", Number: 2, Status: "DRAFT", EffectiveFrom: "2018-spring", Summary: "学前资助提高到 600 元",
		Sha256: strings.Repeat("ab", 32), DraftedBy: "policy1", DraftedAt: drafted}
	preschool := &applicationv1.Program{Code: "PRESCHOOL_AID", Name: "学前教育政府资助", NameEn: "Preschool government aid", Rule: "fixed",
		Frequency: "once_per_term", FundingSource: "government", StandardFen: map[string]int64{"preschool": 50000}}
	tiered := &applicationv1.Program{Code: "HS_NATIONAL_GRANT", Name: "普通高中国家助学金", Rule: "tiered", Frequency: "once_per_term",
		TierFen: map[string]int64{"difficult": 100000, "especially_difficult": 150000}}
	cases := []struct {
		name, page string
		data       any
		want       []string
	}{
		{"policy", "policy.html", map[string]any{"Term": "2017-autumn",
			"InForce":         &applicationv1.ListProgramsResponse{PolicyVersion: 1, EffectiveFrom: "2015-spring", Term: "2017-autumn"},
			"Programs":        []programRow{{P: preschool, Name: preschool.GetName(), Standards: ordered(preschool.GetStandardFen(), stageOrder)}, {P: tiered, Name: tiered.GetName(), Tiers: ordered(tiered.GetTierFen(), levels)}},
			"ProgramVersions": []*applicationv1.PolicyVersion{version}, "SchoolVersions": []*applicationv1.PolicyVersion{}, "Admin": true},
			[]string{`id="programs"`, "PRESCHOOL_AID", "500.00", "1,500.00", `href="/policy/programs/versions/2"`, `id="draft-programs"`}},
		{"version", "policy_version.html", policyVersionView{V: version, Document: `{"effective_from": "2018-spring"}`, Admin: true,
			Preview: &applicationv1.PreviewPolicyVersionResponse{ApplicationsConsidered: 7, ApplicationsAffected: 3, Changes: []*applicationv1.PolicyChange{
				{Term: "2018-spring", SchoolCode: "S001", ProgramCode: "PRESCHOOL_AID", Stage: "preschool", Applications: 3, AmountFen: 50000, DraftAmountFen: 60000}}},
			Problem: "sha256: does not match the draft", Details: []string{"sha256: does not match the draft"}},
			[]string{`id="approve-form"`, `for="sha256"`, strings.Repeat("ab", 32), "600.00", `id="problem"`, "2018-spring"}},
		{"draft", "policy_draft.html", policyDraftView{Kind: "programs", Document: `{"effective_from": "2015-spring"}`, Base: 1,
			Problem: "the document has problems", Details: []string{"programs[0].standard_fen: must not be negative"}},
			[]string{`for="document"`, "programs[0].standard_fen", `action="/policy/programs/draft"`}},
		{"exchange", "exchange.html", exchangeView{From: "2017-spring", To: "2017-autumn", Formats: exportFormats, Encodings: clueListEncodings,
			Export: &datacomparisonv1.ExportRecordsResponse{FileName: "records.csv", ServerPath: "records-2017.csv", Records: 2, AmountFen: 100000,
				Stages: []*datacomparisonv1.StageTotal{{Stage: "preschool", PersonTimes: 2, AmountFen: 100000}}},
			Clues: &datacomparisonv1.ImportCluesResponse{BadRowCount: 1, BadRows: []*datacomparisonv1.BadRow{{Line: 3, Column: "kind", Reason: "unknown kind"}}}},
			[]string{`for="from_term"`, `for="clue-file"`, "records-2017.csv", "1,000.00", `id="clues-bad"`, "unknown kind"}},
	}
	for _, c := range cases {
		for _, lang := range []string{"zh", "en"} {
			t.Run(c.name+"/"+lang, func(t *testing.T) {
				var buf bytes.Buffer
				p := page{Title: "t", Lang: lang, Path: "/policy", CSRF: "token", Data: c.data}
				if err := pages[c.page].ExecuteTemplate(&buf, "layout", p); err != nil {
					t.Fatal(err)
				}
				out := buf.String()
				for _, w := range c.want {
					if !strings.Contains(out, w) {
						t.Errorf("%s lacks %q", c.page, w)
					}
				}
				// Every word comes from the dictionary: no key shows as itself.
				for _, prefix := range []string{"policy.", "exchange.", "stage.", "rule.", "frequency.", "level."} {
					if i := strings.Index(out, ">"+prefix); i >= 0 {
						t.Errorf("%s shows an untranslated key at %q", c.page, out[i:min(len(out), i+40)])
					}
				}
				if lang == "en" && strings.Contains(out, "资助政策") {
					t.Errorf("%s in English shows Chinese words of the console", c.page)
				}
			})
		}
	}
}
