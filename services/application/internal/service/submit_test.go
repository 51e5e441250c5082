package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/idnumber"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
	commonv1 "github.com/edubureau/studentaid/proto/gen/aid/common/v1"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
)

func TestSubmitValid(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := context.Background()
	officer := e.officer("S001")
	s1, s2, s3 := newStudent(), newStudent(), newStudent()
	junior := boarding(s2)
	junior.Stage = "junior"
	students := []student{s1, s2, s3}
	got := submit(t, officer, "S001", boarding(s1), junior, hsGrant(s3))

	wantAmounts := []int64{50000, 62500, 0}
	wantPrograms := []string{"BOARDING_SUBSIDY", "BOARDING_SUBSIDY", "HS_NATIONAL_GRANT"}
	for i, a := range got {
		if _, err := uuid.Parse(a.GetApplicationId()); err != nil {
			t.Errorf("[%d] id %q: %v", i, a.GetApplicationId(), err)
		}
		if a.GetStatus() != commonv1.ApplicationStatus_APPLICATION_STATUS_SUBMITTED || a.GetAmountFen() != wantAmounts[i] ||
			a.GetProgramCode() != wantPrograms[i] || a.GetSchoolCode() != "S001" || a.GetTerm() != term {
			t.Errorf("[%d] got %v", i, a)
		}
		if a.GetStudentIdNumber() != idnumber.Mask(students[i].ID) || a.GetStudentName() != string([]rune(students[i].Name)[0])+strings.Repeat("*", len([]rune(students[i].Name))-1) {
			t.Errorf("[%d] submit response not masked: %q %q", i, a.GetStudentIdNumber(), a.GetStudentName())
		}
		if a.GetBankCardMasked() != idnumber.Mask(students[i].Card) || a.GetSubmittedBy() != "officer-S001" || a.GetSubmittedAt() == nil {
			t.Errorf("[%d] got %v", i, a)
		}
	}

	// One application.submitted per application, with sealed payee data.
	byApp := map[string]*eventsv1.Event{}
	for _, ev := range e.outputEvents(t, events.TypeApplicationSubmitted, 3, func(ev *eventsv1.Event) bool { return ev.GetSchoolCode() == "S001" }) {
		byApp[ev.GetApplicationId()] = ev
	}
	for i, a := range got {
		ev := byApp[a.GetApplicationId()]
		body := ev.GetApplicationSubmitted()
		if ev == nil || body == nil {
			t.Fatalf("[%d] no submitted event", i)
		}
		if ev.GetProgramCode() != wantPrograms[i] || ev.GetTerm() != term || ev.GetActor().GetUserId() != "officer-S001" ||
			ev.GetActor().GetRole() != "school_officer" || ev.GetActor().GetOrg() != "S001" {
			t.Errorf("[%d] envelope %v", i, ev)
		}
		if body.GetAmountFen() != wantAmounts[i] || body.GetStudentIdMasked() != idnumber.Mask(students[i].ID) ||
			len(body.GetStudentIdHash()) != 64 || body.GetFundingSource() != "government" || body.GetTiered() != (i == 2) ||
			body.GetSubmittedBy() != "officer-S001" || body.GetBankCardMasked() != idnumber.Mask(students[i].Card) {
			t.Errorf("[%d] body %v", i, body)
		}
		// The birth year and month are the ID number's digits 7-12.
		if want := students[i].ID[6:10] + "-" + students[i].ID[10:12]; body.GetBirthMonth() != want {
			t.Errorf("[%d] birth_month %q, want %q", i, body.GetBirthMonth(), want)
		}
		if card, err := e.sealer.Open(body.GetBankCardSealed(), events.BankCardBinding(ev.GetApplicationId())); err != nil || card != students[i].Card {
			t.Errorf("[%d] sealed card opens to %q, %v", i, card, err)
		}
		wantAccount := students[i].Name + "家长"
		if i == 2 {
			wantAccount = students[i].Name
		}
		if name, err := e.sealer.Open(body.GetAccountNameSealed(), events.AccountNameBinding(ev.GetApplicationId())); err != nil || name != wantAccount {
			t.Errorf("[%d] sealed account name opens to %q, %v", i, name, err)
		}
		// The first trail entry is the submission event.
		tr, err := officer.GetTrail(ctx, &applicationv1.GetTrailRequest{ApplicationId: a.GetApplicationId()})
		if err != nil {
			t.Fatal(err)
		}
		if len(tr.GetEvents()) != 1 {
			t.Fatalf("[%d] trail %v", i, tr)
		}
		first := tr.GetEvents()[0]
		if first.GetPosition() != 1 || first.GetEventId() != ev.GetEventId() || first.GetType() != events.TypeApplicationSubmitted ||
			first.GetStatus() != commonv1.ApplicationStatus_APPLICATION_STATUS_SUBMITTED || first.GetAmountFen() != wantAmounts[i] ||
			first.GetPrevHash() != strings.Repeat("0", 64) || len(first.GetHash()) != 64 || first.GetActor().GetUserId() != "officer-S001" ||
			!first.GetOccurredAt().AsTime().Equal(ev.GetOccurredAt().AsTime()) {
			t.Errorf("[%d] first trail entry %v", i, first)
		}
	}

	// Personal data: full only for data officers and auditors, and for the
	// school's own officer looking at one application.
	id0 := got[0].GetApplicationId()
	maskedName := string([]rune(s1.Name)[0]) + strings.Repeat("*", len([]rune(s1.Name))-1)
	for _, tc := range []struct {
		name string
		c    applicationv1.ApplicationServiceClient
		full bool
	}{
		{"school officer", officer, true},
		{"school reviewer", e.client("rev-1", auth.RoleSchoolReviewer, "S001"), false},
		{"bureau reviewer", e.client("bur-1", auth.RoleBureauReviewer, auth.OrgBureau), false},
		{"finance officer", e.client("fin-1", auth.RoleFinanceOfficer, auth.OrgFinance), false},
		{"data officer", e.client("data-1", auth.RoleDataOfficer, auth.OrgBureau), true},
		{"auditor", e.client("aud-1", auth.RoleAuditor, "AUDIT"), true},
	} {
		a, err := tc.c.GetApplication(ctx, &applicationv1.GetApplicationRequest{ApplicationId: id0})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		wantID, wantName := idnumber.Mask(s1.ID), maskedName
		if tc.full {
			wantID, wantName = s1.ID, s1.Name
		}
		if a.GetStudentIdNumber() != wantID || a.GetStudentName() != wantName {
			t.Errorf("%s: Get shows %q %q, want %q %q", tc.name, a.GetStudentIdNumber(), a.GetStudentName(), wantID, wantName)
		}
		list, err := tc.c.ListApplications(ctx, &applicationv1.ListApplicationsRequest{Purpose: "核查"})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		listFull := tc.full && tc.name != "school officer"
		for _, la := range list.GetApplications() {
			if la.GetApplicationId() != id0 {
				continue
			}
			wantID, wantName := idnumber.Mask(s1.ID), maskedName
			if listFull {
				wantID, wantName = s1.ID, s1.Name
			}
			if la.GetStudentIdNumber() != wantID || la.GetStudentName() != wantName {
				t.Errorf("%s: List shows %q %q, want %q %q", tc.name, la.GetStudentIdNumber(), la.GetStudentName(), wantID, wantName)
			}
		}
	}

	// The tables hold no plain ID number, name or card number.
	for _, s := range students {
		for _, secret := range []string{s.ID, s.Card, s.Name} {
			if n := e.count(t, `SELECT count(*) FROM applications a WHERE strpos(row_to_json(a)::text, $1) > 0`, secret); n != 0 {
				t.Errorf("plain personal data stored in applications")
			}
			if n := e.count(t, `SELECT count(*) FROM outbox o WHERE strpos(encode(o.payload, 'escape'), $1) > 0`, secret); n != 0 {
				t.Errorf("plain personal data in the outbox")
			}
		}
	}

	// The trail verifies.
	v, err := e.client("aud-1", auth.RoleAuditor, "AUDIT").VerifyTrail(ctx, &applicationv1.VerifyTrailRequest{ApplicationId: id0})
	if err != nil || !v.GetOk() || v.GetLength() != 1 || v.GetFirstBadPosition() != 0 {
		t.Fatalf("verify: %v %v", v, err)
	}
}

func TestListPrograms(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := context.Background()
	for _, role := range auth.Roles {
		c := e.client("u-"+string(role), role, role.OrgIn("S001"))
		resp, err := c.ListPrograms(ctx, &applicationv1.ListProgramsRequest{})
		if role == auth.RoleOps || role == auth.RoleService {
			wantCode(t, err, codes.PermissionDenied)
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", role, err)
		}
		if len(resp.GetPrograms()) != 11 {
			t.Fatalf("%s: %d programs", role, len(resp.GetPrograms()))
		}
		for _, p := range resp.GetPrograms() {
			switch p.GetCode() {
			case "BOARDING_SUBSIDY":
				if p.GetStandardFen()["primary"] != 50000 || p.GetStandardFen()["junior"] != 62500 || !p.GetRequiresBoarding() || !p.GetRequiresRural() {
					t.Errorf("boarding subsidy %v", p)
				}
			case "HS_NATIONAL_GRANT":
				if !p.GetTiered() || p.GetTierFen()["difficult"] != 100000 || len(p.GetStages()) != 1 || p.GetStages()[0] != "high_school" {
					t.Errorf("high-school grant %v", p)
				}
			}
		}
	}
}

func TestSubmitInvalid(t *testing.T) {
	t.Parallel()
	e := start(t)
	s0 := newStudent()
	s1 := newStudent()
	badChecksum := s1.ID[:17] + string("0123456789X"[(strings.IndexByte("0123456789X", s1.ID[17])+1)%11])
	fullWidth := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r - '0' + '０'
		}
		return r
	}, s1.ID)
	badCard := s1.Card[:18] + string('0'+(s1.Card[18]-'0'+1)%10)
	tests := []struct {
		name   string
		mutate func(r *applicationv1.SubmitApplicationsRequest)
		field  string
	}{
		{"missing term", func(r *applicationv1.SubmitApplicationsRequest) { r.Term = "" }, "term"},
		{"bad term", func(r *applicationv1.SubmitApplicationsRequest) { r.Term = "2017-winter" }, "term"},
		{"no applications", func(r *applicationv1.SubmitApplicationsRequest) { r.Applications = nil }, "applications"},
		{"too many applications", func(r *applicationv1.SubmitApplicationsRequest) {
			for range 1000 {
				r.Applications = append(r.Applications, boarding(newStudent()))
			}
		}, "applications"},
		{"bad ID checksum", func(r *applicationv1.SubmitApplicationsRequest) { r.Applications[1].StudentIdNumber = badChecksum }, "applications[1].student_id_number"},
		{"full-width ID", func(r *applicationv1.SubmitApplicationsRequest) { r.Applications[1].StudentIdNumber = fullWidth }, "applications[1].student_id_number"},
		{"short ID", func(r *applicationv1.SubmitApplicationsRequest) { r.Applications[1].StudentIdNumber = s1.ID[:17] }, "applications[1].student_id_number"},
		{"missing name", func(r *applicationv1.SubmitApplicationsRequest) { r.Applications[1].StudentName = " " }, "applications[1].student_name"},
		{"long name", func(r *applicationv1.SubmitApplicationsRequest) {
			r.Applications[1].StudentName = strings.Repeat("张", 51)
		}, "applications[1].student_name"},
		{"control character in name", func(r *applicationv1.SubmitApplicationsRequest) { r.Applications[1].StudentName = "张\x00三" }, "applications[1].student_name"},
		{"unknown stage", func(r *applicationv1.SubmitApplicationsRequest) { r.Applications[1].Stage = "kindergarten" }, "applications[1].stage"},
		{"unknown program", func(r *applicationv1.SubmitApplicationsRequest) { r.Applications[1].ProgramCode = "NO_SUCH_PROGRAM" }, "applications[1].program_code"},
		{"missing program", func(r *applicationv1.SubmitApplicationsRequest) { r.Applications[1].ProgramCode = "" }, "applications[1].program_code"},
		{"wrong stage for program", func(r *applicationv1.SubmitApplicationsRequest) { r.Applications[1].Stage = "high_school" }, "applications[1].stage"},
		{"not boarding", func(r *applicationv1.SubmitApplicationsRequest) { r.Applications[1].Boarding = false }, "applications[1].boarding"},
		// Rural comes from the school register (TestPlausibility).
		{"not registered poor", func(r *applicationv1.SubmitApplicationsRequest) {
			r.Applications[1].ProgramCode = "POVERTY_EXTENSION"
		}, "applications[1].registered_poor"},
		{"bad card checksum", func(r *applicationv1.SubmitApplicationsRequest) { r.Applications[1].BankCardNumber = badCard }, "applications[1].bank_card_number"},
		{"short card", func(r *applicationv1.SubmitApplicationsRequest) { r.Applications[1].BankCardNumber = "622848123" }, "applications[1].bank_card_number"},
		{"missing account name", func(r *applicationv1.SubmitApplicationsRequest) { r.Applications[1].AccountName = "" }, "applications[1].account_name"},
		{"long account name", func(r *applicationv1.SubmitApplicationsRequest) {
			r.Applications[1].AccountName = strings.Repeat("a", 51)
		}, "applications[1].account_name"},
		{"same student and program twice", func(r *applicationv1.SubmitApplicationsRequest) {
			r.Applications[1] = proto.Clone(r.GetApplications()[0]).(*applicationv1.NewApplication)
		}, "applications[1].student_id_number"},
		{"short idempotency key", func(r *applicationv1.SubmitApplicationsRequest) { r.IdempotencyKey = "short" }, "idempotency_key"},
		{"idempotency key with spaces", func(r *applicationv1.SubmitApplicationsRequest) { r.IdempotencyKey = "key with spaces" }, "idempotency_key"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			school := fmt.Sprintf("SINV%02d", i)
			req := &applicationv1.SubmitApplicationsRequest{SchoolCode: school, Term: term,
				Applications: []*applicationv1.NewApplication{boarding(s0), boarding(s1)}}
			tt.mutate(req)
			_, err := e.officer(school).SubmitApplications(context.Background(), req)
			st := wantCode(t, err, codes.InvalidArgument)
			vs := violations(st)
			if _, ok := vs[tt.field]; !ok {
				t.Fatalf("no violation of %s in %v", tt.field, vs)
			}
			for _, secret := range []string{s0.ID, s1.ID, s0.Card, s1.Card, badCard, badChecksum, s0.Name, s1.Name} {
				text := st.Message() + fmt.Sprint(vs)
				if strings.Contains(text, secret) {
					t.Fatalf("error shows personal data: %s", text)
				}
			}
			if f := e.footprint(t, school); f.Applications+f.Trail+f.IdempotencyKeys+f.OutboxEvents != 0 {
				t.Fatalf("bad request wrote %+v", f)
			}
		})
	}
}

func TestSubmitDuplicate(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := context.Background()
	s1, s2, s3 := newStudent(), newStudent(), newStudent()
	submit(t, e.officer("SA"), "SA", boarding(s1), boarding(s2))
	beforeA, beforeB := e.footprint(t, "SA"), e.footprint(t, "SB")

	// The same student applies for the same program in the same term at another school.
	_, err := e.officer("SB").SubmitApplications(ctx, &applicationv1.SubmitApplicationsRequest{
		SchoolCode: "SB", Term: term, IdempotencyKey: "dup-check-0001",
		Applications: []*applicationv1.NewApplication{boarding(s3), boarding(s1)},
	})
	st := wantCode(t, err, codes.AlreadyExists)
	if !strings.Contains(st.Message(), idnumber.Mask(s1.ID)) || !strings.Contains(st.Message(), "BOARDING_SUBSIDY") || strings.Contains(st.Message(), s1.ID) {
		t.Fatalf("message %q should name the masked ID and the program only", st.Message())
	}
	if _, ok := violations(st)["applications[1].student_id_number"]; !ok {
		t.Fatalf("violations %v", violations(st))
	}
	if got := e.footprint(t, "SA"); got != beforeA {
		t.Fatalf("school A changed: %+v, was %+v", got, beforeA)
	}
	if got := e.footprint(t, "SB"); got != beforeB || got.Applications+got.Trail+got.IdempotencyKeys+got.OutboxEvents != 0 {
		t.Fatalf("school B wrote %+v", got)
	}

	// The same school again, in one request with a new student.
	_, err = e.officer("SA").SubmitApplications(ctx, &applicationv1.SubmitApplicationsRequest{
		SchoolCode: "SA", Term: term, Applications: []*applicationv1.NewApplication{boarding(newStudent()), boarding(s2)},
	})
	wantCode(t, err, codes.AlreadyExists)
	if got := e.footprint(t, "SA"); got != beforeA {
		t.Fatalf("school A changed: %+v, was %+v", got, beforeA)
	}

	// Another program or another term is not a duplicate.
	poor := boarding(s1)
	poor.ProgramCode, poor.RegisteredPoor = "POVERTY_EXTENSION", true
	submit(t, e.officer("SB"), "SB", poor)
	resp, err := e.officer("SA").SubmitApplications(ctx, &applicationv1.SubmitApplicationsRequest{
		SchoolCode: "SA", Term: "2018-spring", Applications: []*applicationv1.NewApplication{boarding(s1)}})
	if err != nil || len(resp.GetApplications()) != 1 {
		t.Fatalf("next term: %v", err)
	}

	// Two schools racing to submit the same student: exactly one wins.
	s4 := newStudent()
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Go(func() {
			school := fmt.Sprintf("SR%d", i)
			_, errs[i] = e.officer(school).SubmitApplications(ctx, &applicationv1.SubmitApplicationsRequest{
				SchoolCode: school, Term: term, Applications: []*applicationv1.NewApplication{boarding(newStudent()), boarding(s4)}})
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		if err == nil {
			won++
		} else {
			wantCode(t, err, codes.AlreadyExists)
		}
	}
	if won != 1 {
		t.Fatalf("%d submissions of the same student won", won)
	}
	if n := e.count(t, `SELECT count(*) FROM applications WHERE school_code LIKE 'SR%'`); n != 2 {
		t.Fatalf("racing schools wrote %d applications, want 2", n)
	}
}

func TestSubmitIdempotency(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := context.Background()
	officer := e.officer("SI")
	s1, s2 := newStudent(), newStudent()
	req := &applicationv1.SubmitApplicationsRequest{SchoolCode: "SI", Term: term, IdempotencyKey: "sub-2017-autumn_01",
		Applications: []*applicationv1.NewApplication{boarding(s1), hsGrant(s2)}}
	first, err := officer.SubmitApplications(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	after := e.footprint(t, "SI")

	// A retry with the same key and body gets the same applications.
	again, err := officer.SubmitApplications(ctx, proto.Clone(req).(*applicationv1.SubmitApplicationsRequest))
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if len(again.GetApplications()) != 2 {
		t.Fatalf("retry returned %d applications", len(again.GetApplications()))
	}
	for i := range first.GetApplications() {
		if again.GetApplications()[i].GetApplicationId() != first.GetApplications()[i].GetApplicationId() ||
			again.GetApplications()[i].GetAmountFen() != first.GetApplications()[i].GetAmountFen() {
			t.Fatalf("retry [%d]: %v, first %v", i, again.GetApplications()[i], first.GetApplications()[i])
		}
	}
	if got := e.footprint(t, "SI"); got != after {
		t.Fatalf("retry wrote: %+v, was %+v", got, after)
	}

	// The same key with another body is refused.
	other := proto.Clone(req).(*applicationv1.SubmitApplicationsRequest)
	other.Applications[1] = hsGrant(newStudent())
	_, err = officer.SubmitApplications(ctx, other)
	st := wantCode(t, err, codes.InvalidArgument)
	if !strings.Contains(st.Message(), "idempotency key reused with a different request") {
		t.Fatalf("message %q", st.Message())
	}
	if got := e.footprint(t, "SI"); got != after {
		t.Fatalf("refused request wrote: %+v, was %+v", got, after)
	}

	// Keys are per school: another school may use the same key.
	otherSchool := proto.Clone(req).(*applicationv1.SubmitApplicationsRequest)
	otherSchool.SchoolCode = "SJ"
	otherSchool.Applications = []*applicationv1.NewApplication{boarding(newStudent())}
	if _, err := e.officer("SJ").SubmitApplications(ctx, otherSchool); err != nil {
		t.Fatalf("same key at another school: %v", err)
	}

	// Concurrent retries insert once and all get the same answer.
	conc := &applicationv1.SubmitApplicationsRequest{SchoolCode: "SK", Term: term, IdempotencyKey: "concurrent-retry-1",
		Applications: []*applicationv1.NewApplication{boarding(newStudent()), boarding(newStudent()), boarding(newStudent())}}
	const n = 8
	results := make([]*applicationv1.SubmitApplicationsResponse, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			results[i], errs[i] = e.officer("SK").SubmitApplications(ctx, proto.Clone(conc).(*applicationv1.SubmitApplicationsRequest))
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("concurrent retry %d: %v", i, errs[i])
		}
		for j, a := range results[i].GetApplications() {
			if a.GetApplicationId() != results[0].GetApplications()[j].GetApplicationId() {
				t.Fatalf("concurrent retries got different applications")
			}
		}
	}
	if f := e.footprint(t, "SK"); f.Applications != 3 || f.Trail != 3 || f.OutboxEvents != 3 || f.IdempotencyKeys != 1 {
		t.Fatalf("concurrent retries wrote %+v", f)
	}
}

func TestAuthorization(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := context.Background()
	req := &applicationv1.SubmitApplicationsRequest{SchoolCode: "S002", Term: term,
		Applications: []*applicationv1.NewApplication{boarding(newStudent())}}

	_, err := e.officer("S001").SubmitApplications(ctx, req)
	st := wantCode(t, err, codes.PermissionDenied)
	if rule(st) != "own-school-only" {
		t.Fatalf("rule %q", rule(st))
	}
	if f := e.footprint(t, "S002"); f.Applications+f.OutboxEvents != 0 {
		t.Fatalf("refused submission wrote %+v", f)
	}
	if n := e.count(t, `SELECT count(*) FROM audit_log WHERE rule = 'own-school-only' AND user_id = 'officer-S001' AND outcome = 'denied'`); n != 1 {
		t.Fatalf("%d audit entries for the refusal", n)
	}

	a := submit(t, e.officer("S002"), "S002", boarding(newStudent()))[0]
	id := a.GetApplicationId()
	calls := []struct {
		name string
		role auth.Role
		call func(c applicationv1.ApplicationServiceClient) error
		want codes.Code
	}{
		{"bureau submits", auth.RoleBureauReviewer, func(c applicationv1.ApplicationServiceClient) error {
			_, err := c.SubmitApplications(ctx, req)
			return err
		}, codes.PermissionDenied},
		{"reviewer submits", auth.RoleSchoolReviewer, func(c applicationv1.ApplicationServiceClient) error {
			_, err := c.SubmitApplications(ctx, req)
			return err
		}, codes.PermissionDenied},
		{"ops reads", auth.RoleOps, func(c applicationv1.ApplicationServiceClient) error {
			_, err := c.GetApplication(ctx, &applicationv1.GetApplicationRequest{ApplicationId: id})
			return err
		}, codes.PermissionDenied},
		{"ops lists", auth.RoleOps, func(c applicationv1.ApplicationServiceClient) error {
			_, err := c.ListApplications(ctx, &applicationv1.ListApplicationsRequest{})
			return err
		}, codes.PermissionDenied},
		{"school officer verifies", auth.RoleSchoolOfficer, func(c applicationv1.ApplicationServiceClient) error {
			_, err := c.VerifyTrail(ctx, &applicationv1.VerifyTrailRequest{ApplicationId: id})
			return err
		}, codes.PermissionDenied},
		{"finance corrects payee", auth.RoleFinanceOfficer, func(c applicationv1.ApplicationServiceClient) error {
			_, err := c.CorrectPayee(ctx, &applicationv1.CorrectPayeeRequest{ApplicationId: id, BankCardNumber: newStudent().Card, AccountName: "x"})
			return err
		}, codes.PermissionDenied},
		{"malformed id", auth.RoleBureauReviewer, func(c applicationv1.ApplicationServiceClient) error {
			_, err := c.GetApplication(ctx, &applicationv1.GetApplicationRequest{ApplicationId: "not-a-uuid"})
			return err
		}, codes.InvalidArgument},
		{"unknown id", auth.RoleBureauReviewer, func(c applicationv1.ApplicationServiceClient) error {
			_, err := c.GetApplication(ctx, &applicationv1.GetApplicationRequest{ApplicationId: uuid.NewString()})
			return err
		}, codes.NotFound},
		{"other school's officer corrects payee", auth.RoleSchoolOfficer, func(c applicationv1.ApplicationServiceClient) error {
			_, err := c.CorrectPayee(ctx, &applicationv1.CorrectPayeeRequest{ApplicationId: id, BankCardNumber: newStudent().Card, AccountName: "x"})
			return err
		}, codes.NotFound},
		{"payee of an unpaid application", auth.RoleSchoolOfficer, func(applicationv1.ApplicationServiceClient) error {
			_, err := e.officer("S002").CorrectPayee(ctx, &applicationv1.CorrectPayeeRequest{ApplicationId: id, BankCardNumber: newStudent().Card, AccountName: "x"})
			return err
		}, codes.FailedPrecondition},
	}
	for _, tc := range calls {
		org := "S001"
		switch tc.role {
		case auth.RoleBureauReviewer:
			org = auth.OrgBureau
		case auth.RoleFinanceOfficer:
			org = auth.OrgFinance
		case auth.RoleOps:
			org = auth.OrgIT
		default:
		}
		err := tc.call(e.client("u-"+string(tc.role), tc.role, org))
		if msg := wantCodeOK(err, tc.want); msg != "" {
			t.Errorf("%s: %s", tc.name, msg)
		}
	}
}

// wantCodeOK returns "" when err has code, else a description.
func wantCodeOK(err error, code codes.Code) string {
	if got := status.Code(err); got != code {
		return fmt.Sprintf("got %v, want %s", err, code)
	}
	return ""
}

func TestSubmitThousand(t *testing.T) {
	t.Parallel()
	e := start(t)
	apps := make([]*applicationv1.NewApplication, 1000)
	for i := range apps {
		apps[i] = boarding(newStudent())
	}
	begin := time.Now()
	got := submit(t, e.officer("SBIG"), "SBIG", apps...)
	took := time.Since(begin)
	t.Logf("1000 applications submitted in %v", took)
	if took > 10*time.Second {
		t.Errorf("submitting 1000 applications took %v", took)
	}
	if f := e.footprint(t, "SBIG"); f.Applications != 1000 || f.Trail != 1000 || f.OutboxEvents != 1000 {
		t.Fatalf("footprint %+v", f)
	}
	for _, a := range got {
		if a.GetAmountFen() != 50000 {
			t.Fatalf("amount %d", a.GetAmountFen())
		}
	}
}

// TestREST drives the service through its REST gateway.
func TestREST(t *testing.T) {
	t.Parallel()
	e := start(t)
	s := newStudent()
	token := e.keys.Token(t, "officer-S001", auth.RoleSchoolOfficer, "S001")
	do := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequest(method, "http://"+e.run.HTTPAddr+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, out
	}
	body := fmt.Sprintf(`{"school_code":"S001","term":%q,"idempotency_key":"rest-submit-1","applications":[
		{"student_id_number":%q,"student_name":%q,"stage":"junior","program_code":"BOARDING_SUBSIDY","boarding":true,"rural":true,
		 "bank_card_number":%q,"account_name":%q}]}`, term, s.ID, s.Name, s.Card, s.Name)
	code, out := do(http.MethodPost, "/v1/applications:submit", body)
	if code != http.StatusOK {
		t.Fatalf("submit: %d %v", code, out)
	}
	apps := out["applications"].([]any)
	a := apps[0].(map[string]any)
	if a["amount_fen"] != "62500" || a["status"] != "APPLICATION_STATUS_SUBMITTED" || a["student_id_number"] != idnumber.Mask(s.ID) {
		t.Fatalf("submitted %v", a)
	}
	id := a["application_id"].(string)
	code, got := do(http.MethodGet, "/v1/applications/"+id, "")
	if code != http.StatusOK || got["application_id"] != id || got["student_id_number"] != s.ID {
		t.Fatalf("get: %d %v", code, got)
	}
	code, tr := do(http.MethodGet, "/v1/applications/"+id+"/trail", "")
	if code != http.StatusOK || len(tr["events"].([]any)) != 1 {
		t.Fatalf("trail: %d %v", code, tr)
	}
	code, _ = do(http.MethodGet, "/v1/applications/"+id+"/trail:verify", "")
	if code != http.StatusForbidden {
		t.Fatalf("verify as school officer: %d", code)
	}
	code, list := do(http.MethodGet, "/v1/applications?page_size=10&status=APPLICATION_STATUS_SUBMITTED", "")
	if code != http.StatusOK || len(list["applications"].([]any)) != 1 {
		t.Fatalf("list: %d %v", code, list)
	}
	code, progs := do(http.MethodGet, "/v1/programs", "")
	if code != http.StatusOK || len(progs["programs"].([]any)) != 11 {
		t.Fatalf("programs: %d", code)
	}
	code, bad := do(http.MethodPost, "/v1/applications:submit", `{"school_code":"S001","term":"2017-summer","applications":[]}`)
	if code != http.StatusBadRequest {
		t.Fatalf("bad submit: %d %v", code, bad)
	}
}

// TestSubmitValidateOnly: a validate-only submission answers what a
// submission would — the applications, or the same refusals — and writes
// nothing.
func TestSubmitValidateOnly(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := context.Background()
	s1, s2 := newStudent(), newStudent()
	submit(t, e.officer("SA"), "SA", boarding(s1))
	before := e.footprint(t, "SA")

	resp, err := e.officer("SA").SubmitApplications(ctx, &applicationv1.SubmitApplicationsRequest{
		SchoolCode: "SA", Term: term, ValidateOnly: true, Applications: []*applicationv1.NewApplication{boarding(s2)}})
	if err != nil || len(resp.GetApplications()) != 1 || resp.GetApplications()[0].GetAmountFen() != 50000 {
		t.Fatalf("validate-only of a good list: %v %v", resp, err)
	}
	// A student already recorded is refused as a submission would be.
	_, err = e.officer("SA").SubmitApplications(ctx, &applicationv1.SubmitApplicationsRequest{
		SchoolCode: "SA", Term: term, ValidateOnly: true, Applications: []*applicationv1.NewApplication{boarding(s2), boarding(s1)}})
	st := wantCode(t, err, codes.AlreadyExists)
	if _, ok := violations(st)["applications[1].student_id_number"]; !ok {
		t.Fatalf("violations %v", violations(st))
	}
	bad := boarding(newStudent())
	bad.StudentIdNumber = "110101200001011234"
	_, err = e.officer("SA").SubmitApplications(ctx, &applicationv1.SubmitApplicationsRequest{
		SchoolCode: "SA", Term: term, ValidateOnly: true, Applications: []*applicationv1.NewApplication{bad}})
	wantCode(t, err, codes.InvalidArgument)
	// Another school's officer is refused before anything is checked.
	_, err = e.officer("SB").SubmitApplications(ctx, &applicationv1.SubmitApplicationsRequest{
		SchoolCode: "SA", Term: term, ValidateOnly: true, Applications: []*applicationv1.NewApplication{boarding(newStudent())}})
	wantCode(t, err, codes.PermissionDenied)
	if got := e.footprint(t, "SA"); got != before {
		t.Fatalf("validate-only wrote: %+v, was %+v", got, before)
	}
	// The student validated above can still be submitted for real.
	submit(t, e.officer("SA"), "SA", boarding(s2))
}
