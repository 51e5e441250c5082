package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"

	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/idnumber"
	"github.com/edubureau/studentaid/pkg/pii"
	"github.com/edubureau/studentaid/pkg/service/servicetest"
	dcv1 "github.com/edubureau/studentaid/proto/gen/aid/datacomparison/v1"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
)

// application is one application under way: submitted, approved by the
// school when level is set, and paid or rejected when asked. born is the
// birth month the submission carries (the application service reads it off
// the ID number; here it is given), empty as in events written before it.
type application struct {
	person                 int
	school, program, stage string
	term                   string
	level                  string
	fen                    int64
	paid, rejected         bool
	born                   string
}

func applicationEvents(h *pii.Hasher, a application) (string, []*eventsv1.Event) {
	id := uuid.NewString()
	keys := events.Keys{ApplicationID: id, SchoolCode: a.school, ProgramCode: a.program, Term: a.term}
	actor := events.Actor("officer-"+a.school, string(auth.RoleSchoolOfficer), a.school)
	at := time.Date(2017, time.March, 10, 0, 0, 0, 0, time.UTC)
	num := person(a.person)
	evs := []*eventsv1.Event{events.MustNew(at, actor, keys, &eventsv1.ApplicationSubmitted{StudentIdHash: h.Hash(num),
		StudentIdMasked: idnumber.Mask(num), Stage: a.stage, AmountFen: a.fen, SubmittedBy: "officer-" + a.school, BirthMonth: a.born})}
	switch {
	case a.rejected:
		evs = append(evs, events.MustNew(at.Add(time.Hour), actor, keys, &eventsv1.SchoolReviewRejected{Reason: "材料不全"}))
	case a.level != "":
		evs = append(evs, events.MustNew(at.Add(time.Hour), actor, keys, &eventsv1.SchoolReviewApproved{HardshipLevel: a.level, AmountFen: a.fen}))
	}
	if a.paid {
		evs = append(evs, events.MustNew(at.Add(48*time.Hour), events.Actor("system:payout", "service", "FINANCE"), keys,
			&eventsv1.PaymentSucceeded{PaymentId: uuid.NewString(), AmountFen: a.fen, BankRef: "B" + id[:8]}))
	}
	return id, evs
}

// flagLine is a flag as the test compares it: kind, detail and references.
func flagLine(f *dcv1.Flag) string {
	var refs []string
	for _, r := range f.GetReferences() {
		refs = append(refs, fmt.Sprintf("%s v%d line %d", strings.TrimPrefix(r.GetKind().String(), "REFERENCE_KIND_"), r.GetVersion(), r.GetLine()))
	}
	return f.GetKind() + ": " + f.GetDetail() + " [" + strings.Join(refs, ", ") + "]"
}

// TestReviewTimeFlags plants one case of every flag kind the service
// computes (and look-alikes that are no problem) in a small city and checks
// that each application carries exactly the flags written here, against the
// current reference versions, and that an application not consumed yet is
// answered as unknown.
func TestReviewTimeFlags(t *testing.T) {
	e, h, publish := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const term = "2017-spring"
	boarding := func(p int, school string) application {
		return application{person: p, school: school, program: "BOARDING_SUBSIDY", stage: "primary", term: term, fen: 50000}
	}
	extension := func(p int) application {
		return application{person: p, school: "S1", program: "POVERTY_EXTENSION", stage: "primary", term: term, fen: 50000}
	}
	paidS2 := boarding(103, "S2")
	paidS2.paid = true
	rejectedS2 := boarding(104, "S2")
	rejectedS2.rejected = true
	otherTerm := boarding(110, "S2")
	otherTerm.term, otherTerm.paid = "2016-autumn", true
	// Primary pupils are usually 6 to 13 at term start (1 March here); the
	// chain accepts 5 to 15 (docs/policy.md).
	born := func(a application, month string) application {
		a.born = month
		return a
	}
	several := extension(111)
	several.born = "2002-01"
	// Under review (the names the test asks about), and the rest of the
	// chain's records they are compared with.
	review := map[string]application{
		"clean":                           boarding(100, "S1"),
		"clean registry":                  extension(101),
		"not in registry":                 extension(102),
		"paid by S2":                      boarding(103, "S1"),
		"paid at S2":                      paidS2,
		"rejected by S2":                  boarding(104, "S1"),
		"key person":                      boarding(105, "S1"),
		"not on roster":                   boarding(106, "S1"),
		"deceased":                        boarding(107, "S1"),
		"died after start":                boarding(108, "S1"),
		"above standard":                  {person: 109, school: "S1", program: "HS_NATIONAL_GRANT", stage: "high_school", term: term, level: "difficult", fen: 150000},
		"other term at S2":                boarding(110, "S1"),
		"history at S3":                   boarding(112, "S1"),
		"tier at standard":                {person: 113, school: "S1", program: "HS_NATIONAL_GRANT", stage: "high_school", term: term, level: "difficult", fen: 100000},
		"age 13, the oldest usual":        born(boarding(114, "S1"), "2003-04"),
		"age 14":                          born(boarding(115, "S1"), "2003-02"),
		"age 13 or 14, born in March":     born(boarding(116, "S1"), "2003-03"),
		"age 5":                           born(boarding(117, "S1"), "2011-04"),
		"age 6, the youngest usual":       born(boarding(118, "S1"), "2011-02"),
		"age 18 at high school, in range": {person: 119, school: "S1", program: "HS_NATIONAL_GRANT", stage: "high_school", term: term, level: "difficult", fen: 100000, born: "1998-06"},
		"several":                         several,
	}
	ids := map[string]string{}
	var evs []*eventsv1.Event
	for name, a := range review {
		id, ev := applicationEvents(h, a)
		ids[name] = id
		evs = append(evs, ev...)
	}
	for _, a := range []application{rejectedS2, otherTerm} {
		_, ev := applicationEvents(h, a)
		evs = append(evs, ev...)
	}
	publish(evs...)
	names := make([]string, 0, len(ids))
	asked := make([]string, 0, len(ids)+1)
	for name := range ids {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		asked = append(asked, ids[name])
	}
	unknown := uuid.NewString()
	asked = append(asked, unknown)

	reviewer := e.client("br1", auth.RoleBureauReviewer)
	flagsOf := func() map[string]*dcv1.ApplicationFlags {
		t.Helper()
		res, err := reviewer.ListFlags(ctx, &dcv1.ListFlagsRequest{ApplicationIds: asked})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.GetApplications()) != len(asked) {
			t.Fatalf("%d answers for %d applications", len(res.GetApplications()), len(asked))
		}
		out := map[string]*dcv1.ApplicationFlags{}
		for i, a := range res.GetApplications() {
			if a.GetApplicationId() != asked[i] {
				t.Fatalf("answer %d is for %s, want %s (request order)", i, a.GetApplicationId(), asked[i])
			}
			out[a.GetApplicationId()] = a
		}
		return out
	}
	servicetest.Eventually(t, func() error {
		for id, a := range flagsOf() {
			if id != unknown && !a.GetKnown() {
				return fmt.Errorf("application %s not known yet", id)
			}
		}
		return nil
	})

	t.Run("before any reference data", func(t *testing.T) {
		got := flagsOf()
		if a := got[unknown]; a.GetKnown() || len(a.GetFlags()) != 0 || len(a.GetUncheckedKinds()) != 0 {
			t.Errorf("unknown application: %v, want known=false and nothing else", a)
		}
		want := map[string][]string{
			"clean":           {"key_person_relative", "not_on_roster", "deceased", "age_stage_mismatch"},
			"not in registry": {"not_in_registry", "key_person_relative", "not_on_roster", "deceased", "age_stage_mismatch"},
			"age 14":          {"key_person_relative", "not_on_roster", "deceased"},
		}
		for name, kinds := range want {
			if u := got[ids[name]].GetUncheckedKinds(); !slices.Equal(u, kinds) {
				t.Errorf("%s: unchecked %q, want %q", name, u, kinds)
			}
		}
	})

	var reg []string
	for i := 100; i < 130; i++ {
		if i != 102 && i != 111 {
			reg = append(reg, fmt.Sprintf("H%03d,%s,%s,城关镇", i/3, person(i), name(i)))
		}
	}
	e.importFile(ctx, &dcv1.ImportReferenceRequest{Kind: dcv1.ReferenceKind_REFERENCE_KIND_POVERTY_REGISTRY, FileName: "registry.csv",
		Content: csvOf("户编号,身份证号,姓名,乡镇", reg...)})
	var s1 []string
	for _, i := range []int{100, 101, 102, 103, 104, 105, 107, 108, 110, 112, 114, 115, 116, 117, 118} {
		s1 = append(s1, fmt.Sprintf("%s,%s,primary", person(i), name(i)))
	}
	s1 = append(s1, fmt.Sprintf("%s,%s,high_school", person(109), name(109)), fmt.Sprintf("%s,%s,high_school", person(113), name(113)),
		fmt.Sprintf("%s,%s,high_school", person(119), name(119)))
	e.importFile(ctx, &dcv1.ImportReferenceRequest{Kind: dcv1.ReferenceKind_REFERENCE_KIND_ROSTER, SchoolCode: "S1", Term: term,
		Content: csvOf("id_number,name,stage", s1...)})
	e.importFile(ctx, &dcv1.ImportReferenceRequest{Kind: dcv1.ReferenceKind_REFERENCE_KIND_KEY_PERSONS,
		Content: csvOf("id_number,name,relation,unit", person(105)+","+name(105)+",子女,市某局", person(111)+","+name(111)+",配偶,")})
	e.importFile(ctx, &dcv1.ImportReferenceRequest{Kind: dcv1.ReferenceKind_REFERENCE_KIND_DEATHS,
		Content: csvOf("id_number,name,date,kind", person(107)+","+name(107)+",2016-12-01,死亡", person(108)+","+name(108)+",2017-06-01,deregistration")})
	e.importFile(ctx, &dcv1.ImportReferenceRequest{Kind: dcv1.ReferenceKind_REFERENCE_KIND_HISTORY, Source: "bureau 2017",
		Content: csvOf("id_number,name,school_code,program_code,term,stage,amount_yuan", person(112)+","+name(112)+",S3,BOARDING_SUBSIDY,2017-spring,primary,500")})

	notInRegistry := func(version int) string {
		return fmt.Sprintf("not_in_registry: POVERTY_EXTENSION is for registered poor households (建档立卡); the student is not in the poverty registry (version %d) [POVERTY_REGISTRY v%d line 0]", version, version)
	}
	const notOnRoster = "not_on_roster: not on the enrolment roster of S1 for 2017-spring (version 1) [ROSTER v1 line 0]"
	const age15 = "age_stage_mismatch: age 15 at the start of 2017-spring; primary students are usually 6 to 13 []"
	want := map[string][]string{
		"clean":                           nil,
		"clean registry":                  nil,
		"not in registry":                 {notInRegistry(1)},
		"paid by S2":                      {"other_school_same_term: in 2017-spring also paid at S2 (BOARDING_SUBSIDY) []"},
		"paid at S2":                      {"other_school_same_term: in 2017-spring also applied for at S1 (BOARDING_SUBSIDY) []"},
		"rejected by S2":                  nil,
		"key person":                      {"key_person_relative: on the key-persons list (重点对象): 子女, 市某局 [KEY_PERSONS v1 line 2]"},
		"not on roster":                   {notOnRoster},
		"deceased":                        {"deceased: recorded as death before 2017-spring began [DEATHS v1 line 2]"},
		"died after start":                {"deceased: recorded as deregistration after 2017-spring began [DEATHS v1 line 3]"},
		"above standard":                  {"above_standard: applies for 150000 fen; the standard of HS_NATIONAL_GRANT for high_school at level difficult is 100000 fen []"},
		"several":                         {notInRegistry(1), "key_person_relative: on the key-persons list (重点对象): 配偶 [KEY_PERSONS v1 line 3]", notOnRoster, age15},
		"other term at S2":                nil,
		"history at S3":                   {"other_school_same_term: in 2017-spring also paid by S3 (BOARDING_SUBSIDY, imported history) []"},
		"tier at standard":                nil,
		"age 13, the oldest usual":        nil,
		"age 14":                          {"age_stage_mismatch: age 14 at the start of 2017-spring; primary students are usually 6 to 13 []"},
		"age 13 or 14, born in March":     nil,
		"age 5":                           {"age_stage_mismatch: age 5 at the start of 2017-spring; primary students are usually 6 to 13 []"},
		"age 6, the youngest usual":       nil,
		"age 18 at high school, in range": nil,
	}
	check := func(t *testing.T, want map[string][]string) {
		t.Helper()
		got := flagsOf()
		for _, name := range names {
			a := got[ids[name]]
			var lines []string
			for _, f := range a.GetFlags() {
				lines = append(lines, flagLine(f))
			}
			if !slices.Equal(lines, want[name]) {
				t.Errorf("%s: flags\n got %q\nwant %q", name, lines, want[name])
			}
		}
		if a := got[unknown]; a.GetKnown() || len(a.GetFlags()) != 0 {
			t.Errorf("unknown application: %v, want known=false", a)
		}
	}
	t.Run("planted cases", func(t *testing.T) {
		check(t, want)
		got := flagsOf()
		if u := got[ids["clean"]].GetUncheckedKinds(); !slices.Equal(u, []string{"age_stage_mismatch"}) {
			t.Errorf("clean at S1: unchecked %q, want only age_stage_mismatch", u)
		}
		if u := got[ids["paid at S2"]].GetUncheckedKinds(); !slices.Equal(u, []string{"not_on_roster", "age_stage_mismatch"}) {
			t.Errorf("S2 has no roster: unchecked %q, want not_on_roster and age_stage_mismatch", u)
		}
		for _, name := range []string{"age 13, the oldest usual", "age 14", "age 13 or 14, born in March"} {
			if u := got[ids[name]].GetUncheckedKinds(); len(u) != 0 {
				t.Errorf("%s: unchecked %q, want none (the birth month is known)", name, u)
			}
		}
	})

	t.Run("a new registry version applies at once", func(t *testing.T) {
		e.importFile(ctx, &dcv1.ImportReferenceRequest{Kind: dcv1.ReferenceKind_REFERENCE_KIND_POVERTY_REGISTRY, FileName: "registry-2.csv",
			Content: csvOf("户编号,身份证号,姓名,乡镇", append(slices.Clone(reg), "H999,"+person(102)+","+name(102)+",城关镇")...)})
		// The list marks the new version current and the first no longer.
		ims, err := e.aud.ListImports(ctx, &dcv1.ListImportsRequest{Kind: dcv1.ReferenceKind_REFERENCE_KIND_POVERTY_REGISTRY})
		if err != nil {
			t.Fatal(err)
		}
		var marks []string
		for _, im := range ims.GetImports() {
			marks = append(marks, fmt.Sprintf("v%d %t", im.GetVersion(), im.GetCurrent()))
		}
		if want := []string{"v2 true", "v1 false"}; !slices.Equal(marks, want) {
			t.Errorf("registry versions listed %q, want %q", marks, want)
		}
		next := maps.Clone(want)
		next["not in registry"] = nil
		next["several"] = []string{notInRegistry(2), "key_person_relative: on the key-persons list (重点对象): 配偶 [KEY_PERSONS v1 line 3]", notOnRoster, age15}
		check(t, next)
	})

	t.Run("REST", func(t *testing.T) {
		url := fmt.Sprintf("http://%s/v1/datacomparison/flags?application_ids=%s&application_ids=%s", e.httpAddr, ids["not on roster"], unknown)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+e.keys.Token(t, "br1", auth.RoleBureauReviewer, auth.OrgBureau))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		var body struct {
			Applications []struct {
				ApplicationID string `json:"applicationId"`
				Known         bool   `json:"known"`
				Flags         []struct {
					Kind string `json:"kind"`
				} `json:"flags"`
			} `json:"applications"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET flags: %d, %v", resp.StatusCode, err)
		}
		if len(body.Applications) != 2 || !body.Applications[0].Known || len(body.Applications[0].Flags) != 1 ||
			body.Applications[0].Flags[0].Kind != "not_on_roster" || body.Applications[1].Known {
			t.Fatalf("GET flags: %+v", body)
		}
	})

	t.Run("refused", func(t *testing.T) {
		_, err := e.client("pa1", auth.RolePolicyAdmin).ListFlags(ctx, &dcv1.ListFlagsRequest{ApplicationIds: asked[:1]})
		servicetest.WantCode(t, err, codes.PermissionDenied)
		_, err = reviewer.ListFlags(ctx, &dcv1.ListFlagsRequest{})
		servicetest.WantCode(t, err, codes.InvalidArgument, "application_ids")
		_, err = reviewer.ListFlags(ctx, &dcv1.ListFlagsRequest{ApplicationIds: []string{"not-a-uuid"}})
		servicetest.WantCode(t, err, codes.InvalidArgument, "application_ids[0]")
		many := make([]string, 101)
		for i := range many {
			many[i] = uuid.NewString()
		}
		_, err = reviewer.ListFlags(ctx, &dcv1.ListFlagsRequest{ApplicationIds: many})
		servicetest.WantCode(t, err, codes.InvalidArgument, "application_ids")
	})
}
