package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/idnumber"
	"github.com/edubureau/studentaid/pkg/pii"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
	bureaureviewv1 "github.com/edubureau/studentaid/proto/gen/aid/bureaureview/v1"
	schoolreviewv1 "github.com/edubureau/studentaid/proto/gen/aid/schoolreview/v1"
)

func goodApplication(seq int) *applicationv1.NewApplication {
	return &applicationv1.NewApplication{
		StudentIdNumber: idnumber.Generate("420102", time.Date(2012, 3, 15, 0, 0, 0, 0, time.UTC).AddDate(0, 0, seq/1000), seq%1000),
		StudentName:     "王小明",
		Stage:           "preschool",
		ProgramCode:     "PRESCHOOL_AID",
		BankCardNumber:  pii.GenerateCardNumber("621700", int64(900000+seq), 19),
		AccountName:     "王大明",
	}
}

// rowCounts returns the number of rows of every table in the given schemas.
func rowCounts(t *testing.T, dbURL string, schemas ...string) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_schema || '.' || table_name FROM information_schema.tables
		WHERE table_schema = ANY($1) AND table_type = 'BASE TABLE' AND table_name <> 'schema_migrations' ORDER BY 1`, schemas)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 3 {
		t.Fatalf("found only tables %v in %v", names, schemas)
	}
	out := map[string]int64{}
	for _, n := range names {
		var c int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+n).Scan(&c); err != nil {
			t.Fatal(err)
		}
		out[n] = c
	}
	return out
}

// TestBadInputCorpus sends a corpus of bad requests and checks each gets the
// right code with a message, and that none leaves a row or event behind.
func TestBadInputCorpus(t *testing.T) {
	s := startStack(t, map[string]string{"SCHOOL_REVIEW_NOTICE_PERIOD": "1h"}, false)
	reasons := checkReasons(t)
	ctx := ctxT(t)
	officer := newUser(t, s, "officer-S001", auth.RoleSchoolOfficer, "S001")
	reviewer := newUser(t, s, "reviewer-S001", auth.RoleSchoolReviewer, "S001")
	bureau := newUser(t, s, "bureau-1", auth.RoleBureauReviewer, auth.OrgBureau)

	// One accepted application, for the duplicate and wrong-state cases.
	accepted, err := officer.app.SubmitApplications(ctx, &applicationv1.SubmitApplicationsRequest{SchoolCode: "S001", Term: "2017-autumn", Applications: []*applicationv1.NewApplication{goodApplication(1)}, IdempotencyKey: "corpus-seed-1"})
	if err != nil {
		t.Fatal(err)
	}
	appID := accepted.GetApplications()[0].GetApplicationId()
	eventually(t, "review item", 30*time.Second, func() error {
		_, err := reviewer.school.GetReview(ctx, &schoolreviewv1.GetReviewRequest{ApplicationId: appID})
		return err
	})

	with := func(mod func(a *applicationv1.NewApplication)) []*applicationv1.NewApplication {
		a := goodApplication(2)
		mod(a)
		return []*applicationv1.NewApplication{a}
	}
	validID := goodApplication(2).GetStudentIdNumber()
	wrongCheck := validID[:17] + string("0123456789X"[(strings.IndexByte("0123456789X", validID[17])+1)%11])
	many := make([]*applicationv1.NewApplication, 1001)
	for i := range many {
		many[i] = goodApplication(100 + i)
	}
	type grpcCase struct {
		name string
		req  *applicationv1.SubmitApplicationsRequest
		want codes.Code
	}
	submit := func(apps []*applicationv1.NewApplication) *applicationv1.SubmitApplicationsRequest {
		return &applicationv1.SubmitApplicationsRequest{SchoolCode: "S001", Term: "2017-autumn", Applications: apps}
	}
	cases := []grpcCase{
		{"ID number too short", submit(with(func(a *applicationv1.NewApplication) { a.StudentIdNumber = "4201022012" })), codes.InvalidArgument},
		{"ID number with letters", submit(with(func(a *applicationv1.NewApplication) { a.StudentIdNumber = "42010A201203150011" })), codes.InvalidArgument},
		{"ID number wrong checksum", submit(with(func(a *applicationv1.NewApplication) { a.StudentIdNumber = wrongCheck })), codes.InvalidArgument},
		{"impossible birth date", submit(with(func(a *applicationv1.NewApplication) {
			a.StudentIdNumber = fixCheck("42010220120230001")
		})), codes.InvalidArgument},
		{"unknown region", submit(with(func(a *applicationv1.NewApplication) { a.StudentIdNumber = fixCheck("99010220120315001") })), codes.InvalidArgument},
		{"unknown program", submit(with(func(a *applicationv1.NewApplication) { a.ProgramCode = "FREE_MONEY" })), codes.InvalidArgument},
		{"unknown term", &applicationv1.SubmitApplicationsRequest{SchoolCode: "S001", Term: "2017-winter", Applications: with(func(*applicationv1.NewApplication) {})}, codes.InvalidArgument},
		{"wrong stage for the program", submit(with(func(a *applicationv1.NewApplication) { a.Stage = "university" })), codes.InvalidArgument},
		{"boarding subsidy without boarding", submit(with(func(a *applicationv1.NewApplication) { a.ProgramCode, a.Stage = "BOARDING_SUBSIDY", "primary" })), codes.InvalidArgument},
		{"empty name", submit(with(func(a *applicationv1.NewApplication) { a.StudentName = "" })), codes.InvalidArgument},
		{"oversize name", submit(with(func(a *applicationv1.NewApplication) { a.StudentName = strings.Repeat("王", 500) })), codes.InvalidArgument},
		{"card fails Luhn", submit(with(func(a *applicationv1.NewApplication) { a.BankCardNumber = "6217000010000000001" })), codes.InvalidArgument},
		{"no applications", submit(nil), codes.InvalidArgument},
		{"more than 1000 applications", submit(many), codes.InvalidArgument},
		{"same student twice in one request", submit([]*applicationv1.NewApplication{goodApplication(3), goodApplication(3)}), codes.InvalidArgument},
		{"duplicate of an accepted application", submit([]*applicationv1.NewApplication{goodApplication(4), goodApplication(1)}), codes.AlreadyExists},
		{"idempotency key reused with another body", &applicationv1.SubmitApplicationsRequest{SchoolCode: "S001", Term: "2017-autumn", Applications: []*applicationv1.NewApplication{goodApplication(5)}, IdempotencyKey: "corpus-seed-1"}, codes.InvalidArgument},
		{"bad idempotency key", &applicationv1.SubmitApplicationsRequest{SchoolCode: "S001", Term: "2017-autumn", Applications: with(func(*applicationv1.NewApplication) {}), IdempotencyKey: "k"}, codes.InvalidArgument},
	}
	schemas := []string{"application", "school_review", "bureau_review", "finance_confirmation", "payout"}
	before := stableRowCounts(t, s.DatabaseURL, schemas...) // the seed's events have settled everywhere
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := officer.app.SubmitApplications(ctx, c.req)
			st := status.Convert(err)
			if st.Code() != c.want {
				t.Fatalf("got %s (%s), want %s", st.Code(), st.Message(), c.want)
			}
			if len(st.Message()) < 10 {
				t.Errorf("message %q does not say what to fix", st.Message())
			}
			for _, a := range c.req.GetApplications() {
				if a != nil && len(a.GetStudentIdNumber()) == 18 && strings.Contains(st.Message(), a.GetStudentIdNumber()) {
					t.Errorf("message leaks a full ID number: %q", st.Message())
				}
			}
		})
	}

	// REST: an amount the school tries to set, invalid UTF-8, malformed JSON, an oversize body.
	restCases := []struct {
		name string
		body []byte
		want int
	}{
		{"amount set by the school", []byte(`{"school_code":"S001","term":"2017-autumn","applications":[{"student_id_number":"` + goodApplication(6).GetStudentIdNumber() + `","student_name":"王","stage":"preschool","program_code":"PRESCHOOL_AID","bank_card_number":"` + goodApplication(6).GetBankCardNumber() + `","account_name":"王","amount_fen":99999999}]}`), http.StatusBadRequest},
		{"invalid UTF-8", append(append([]byte(`{"school_code":"S001","term":"2017-autumn","applications":[{"student_name":"`), 0xff, 0xfe), []byte(`"}]}`)...), http.StatusBadRequest},
		{"malformed JSON", []byte(`{"school_code":`), http.StatusBadRequest},
		{"oversize body", []byte(`{"school_code":"` + strings.Repeat("S", 2<<20) + `"}`), http.StatusRequestEntityTooLarge},
	}
	for _, c := range restCases {
		t.Run("REST "+c.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, "http://"+s.Endpoints["application"].HTTP+"/v1/applications:submit", bytes.NewReader(c.body))
			req.Header.Set("Authorization", "Bearer "+officer.token)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.want && (c.want != http.StatusRequestEntityTooLarge || resp.StatusCode != http.StatusBadRequest) {
				t.Fatalf("HTTP %d (%s), want %d", resp.StatusCode, b, c.want)
			}
			reasons.recordREST("REST "+c.name, resp.StatusCode, b)
		})
	}

	// Decisions on applications in the wrong state.
	t.Run("bureau decision before the school's", func(t *testing.T) {
		_, err := bureau.bureau.Decide(ctx, &bureaureviewv1.DecideRequest{Decisions: []*bureaureviewv1.Decision{{ApplicationId: appID, Approve: true}}})
		if c := status.Code(err); c != codes.NotFound && c != codes.FailedPrecondition {
			t.Fatalf("got %v, want NotFound or FailedPrecondition", err)
		}
	})
	t.Run("objection before any notice", func(t *testing.T) {
		_, err := officer.school.RaiseObjection(ctx, &schoolreviewv1.RaiseObjectionRequest{ApplicationId: appID, Reason: "有异议"})
		if status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("got %v, want FailedPrecondition", err)
		}
	})
	t.Run("tiered-level missing and bad reason", func(t *testing.T) {
		_, err := reviewer.school.Decide(ctx, &schoolreviewv1.DecideRequest{Decisions: []*schoolreviewv1.Decision{{ApplicationId: appID, Approve: false}}})
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("reject without a reason: got %v, want InvalidArgument", err)
		}
	})
	t.Run("bad application ID", func(t *testing.T) {
		_, err := officer.app.GetApplication(ctx, &applicationv1.GetApplicationRequest{ApplicationId: "not-a-uuid"})
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("got %v, want InvalidArgument", err)
		}
	})
	t.Run("page size out of range", func(t *testing.T) {
		_, err := officer.app.ListApplications(ctx, &applicationv1.ListApplicationsRequest{PageSize: 100000})
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("got %v, want InvalidArgument", err)
		}
		_, err = officer.app.ListApplications(ctx, &applicationv1.ListApplicationsRequest{PageToken: "garbage!"})
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("bad page token: got %v, want InvalidArgument", err)
		}
	})

	// The payee correction, withdrawal and purpose fields of the new requests.
	auditor := newUser(t, s, "auditor-1", auth.RoleAuditor, auth.OrgBureau)
	card := pii.GenerateCardNumber("621700", 4242, 19)
	newCases := []struct {
		name string
		call func() error
	}{
		{"correct payee: bad application ID", func() error {
			_, err := officer.app.CorrectPayee(ctx, &applicationv1.CorrectPayeeRequest{ApplicationId: "x", BankCardNumber: card, AccountName: "王大明"})
			return err
		}},
		{"correct payee: card fails Luhn", func() error {
			_, err := officer.app.CorrectPayee(ctx, &applicationv1.CorrectPayeeRequest{ApplicationId: appID, BankCardNumber: card[:18] + "0", AccountName: "王大明"})
			if card[18] == '0' {
				_, err = officer.app.CorrectPayee(ctx, &applicationv1.CorrectPayeeRequest{ApplicationId: appID, BankCardNumber: card[:18] + "1", AccountName: "王大明"})
			}
			return err
		}},
		{"correct payee: no account name", func() error {
			_, err := officer.app.CorrectPayee(ctx, &applicationv1.CorrectPayeeRequest{ApplicationId: appID, BankCardNumber: card})
			return err
		}},
		{"approve payee: bad application ID", func() error {
			_, err := reviewer.app.ApprovePayeeCorrection(ctx, &applicationv1.ApprovePayeeCorrectionRequest{ApplicationId: "not-a-uuid", CorrectionId: appID})
			return err
		}},
		{"approve payee: no correction ID", func() error {
			_, err := reviewer.app.ApprovePayeeCorrection(ctx, &applicationv1.ApprovePayeeCorrectionRequest{ApplicationId: appID})
			return err
		}},
		{"reject payee: no reason", func() error {
			_, err := reviewer.app.RejectPayeeCorrection(ctx, &applicationv1.RejectPayeeCorrectionRequest{ApplicationId: appID, CorrectionId: appID, Reason: " "})
			return err
		}},
		{"reject payee: oversize reason", func() error {
			_, err := reviewer.app.RejectPayeeCorrection(ctx, &applicationv1.RejectPayeeCorrectionRequest{ApplicationId: appID, CorrectionId: appID, Reason: strings.Repeat("不", 501)})
			return err
		}},
		{"withdraw: bad application ID", func() error {
			_, err := officer.school.WithdrawApplication(ctx, &schoolreviewv1.WithdrawApplicationRequest{ApplicationId: "123", Reason: "学生转学"})
			return err
		}},
		{"withdraw: no reason", func() error {
			_, err := officer.school.WithdrawApplication(ctx, &schoolreviewv1.WithdrawApplicationRequest{ApplicationId: appID})
			return err
		}},
		{"list in full without a purpose", func() error {
			_, err := auditor.app.ListApplications(ctx, &applicationv1.ListApplicationsRequest{})
			if errorReason(err) != "purpose-required" {
				t.Errorf("list without a purpose: reason %q, want purpose-required", errorReason(err))
			}
			return err
		}},
		{"list with an oversize purpose", func() error {
			_, err := auditor.app.ListApplications(ctx, &applicationv1.ListApplicationsRequest{Purpose: strings.Repeat("查", 201)})
			return err
		}},
		{"get with a purpose of control characters", func() error {
			_, err := auditor.app.GetApplication(ctx, &applicationv1.GetApplicationRequest{ApplicationId: appID, Purpose: "audit\x00\x07"})
			return err
		}},
	}
	for _, c := range newCases {
		t.Run(c.name, func(t *testing.T) {
			st := status.Convert(c.call())
			if st.Code() != codes.InvalidArgument || len(st.Message()) < 10 {
				t.Fatalf("got %s (%s), want InvalidArgument with a message", st.Code(), st.Message())
			}
		})
	}

	reasons.must(t, "invalid-argument", "already-exists", "idempotency-key-reused", "purpose-required")

	after := stableRowCounts(t, s.DatabaseURL, schemas...) // anything wrongly written has been relayed and consumed
	for table, n := range after {
		if strings.HasSuffix(table, ".audit_log") {
			continue // refusals that name a rule are audited, by design
		}
		if before[table] != n {
			t.Errorf("%s: %d rows before the bad requests, %d after", table, before[table], n)
		}
	}
	if t.Failed() {
		t.Log(fmt.Sprint(after))
	}
}

// stableRowCounts waits until the row counts stop changing (every event
// relayed and consumed) and returns them.
func stableRowCounts(t *testing.T, dbURL string, schemas ...string) map[string]int64 {
	t.Helper()
	prev := rowCounts(t, dbURL, schemas...)
	deadline := time.Now().Add(20 * time.Second)
	for stable := 0; stable < 3; {
		if time.Now().After(deadline) {
			t.Fatalf("row counts still changing after 20s: %v", prev)
		}
		time.Sleep(250 * time.Millisecond)
		cur := rowCounts(t, dbURL, schemas...)
		if fmt.Sprint(cur) == fmt.Sprint(prev) {
			stable++
		} else {
			stable = 0
		}
		prev = cur
	}
	return prev
}

// fixCheck appends the correct MOD 11-2 check character to 17 digits.
func fixCheck(first17 string) string {
	return first17 + string(idnumber.CheckChar(first17))
}
