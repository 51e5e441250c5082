package service_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/xuri/excelize/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/edubureau/studentaid/internal/devtools/testenv"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/grpcx"
	"github.com/edubureau/studentaid/pkg/natsx"
	"github.com/edubureau/studentaid/pkg/service/servicetest"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	reportingv1 "github.com/edubureau/studentaid/proto/gen/aid/reporting/v1"
	rpservice "github.com/edubureau/studentaid/services/reporting/internal/service"
)

// The programs' shares and whether they count toward the government total,
// as the seed policy has them (pkg/policy/seed/programs-2015-spring.json).
var programs = map[string]struct {
	shares map[string]int32
	gov    bool
	stage  string
}{
	"PRESCHOOL_AID":      {map[string]int32{"central_provincial": 8000, "municipal": 2000}, true, "preschool"},
	"BOARDING_SUBSIDY":   {map[string]int32{"central_provincial": 8000, "municipal": 2000}, true, "primary"},
	"HS_NATIONAL_GRANT":  {map[string]int32{"central_provincial": 10000}, true, "high_school"},
	"HS_TUITION_WAIVER":  {map[string]int32{"central_provincial": 8000, "municipal": 2000}, true, "high_school"},
	"VOC_TUITION_WAIVER": {map[string]int32{"central_provincial": 7300, "municipal": 2700}, true, "vocational"},
	"POVERTY_EXTENSION":  {map[string]int32{"municipal": 10000}, true, "preschool"},
	"STUDENT_LOAN":       {map[string]int32{"bank_loan": 10000}, false, "university"},
	"FANHAI_FRESHMAN":    {map[string]int32{"charity": 10000}, false, "university"},
}

// paid is one paid application of the city.
type paid struct {
	student         string
	school, program string
	term            string
	fen             int64
	loanContract    string
	applicationID   string
	paymentID       string
}

// city is a small city mirroring lines of the bureau's report: preschool
// at 500 yuan, boarding 3 × 500 + 2 × 625 (one student in both terms), one
// high-school grant at each tier, waivers at 850 and 865, a vocational
// waiver whose split leaves a remainder, a preschool child also paid by the
// poverty extension, a loan of 8,000 and a charity grant.
func city() []*paid {
	return []*paid{
		{student: "P1", school: "K01", program: "PRESCHOOL_AID", term: "2017-autumn", fen: 50_000},
		{student: "P2", school: "K01", program: "PRESCHOOL_AID", term: "2017-autumn", fen: 50_000},
		{student: "P3", school: "K02", program: "PRESCHOOL_AID", term: "2017-autumn", fen: 50_000},
		{student: "P4", school: "K02", program: "PRESCHOOL_AID", term: "2017-autumn", fen: 50_000},
		{student: "P1", school: "K01", program: "POVERTY_EXTENSION", term: "2017-autumn", fen: 50_000},
		{student: "P5", school: "S01", program: "BOARDING_SUBSIDY", term: "2017-spring", fen: 50_000},
		{student: "P5", school: "S01", program: "BOARDING_SUBSIDY", term: "2017-autumn", fen: 50_000},
		{student: "P6", school: "S01", program: "BOARDING_SUBSIDY", term: "2017-autumn", fen: 50_000},
		{student: "P7", school: "J01", program: "BOARDING_SUBSIDY", term: "2017-spring", fen: 62_500},
		{student: "P8", school: "J01", program: "BOARDING_SUBSIDY", term: "2017-autumn", fen: 62_500},
		{student: "P9", school: "H01", program: "HS_NATIONAL_GRANT", term: "2017-autumn", fen: 125_000},
		{student: "P10", school: "H01", program: "HS_NATIONAL_GRANT", term: "2017-autumn", fen: 100_000},
		{student: "P11", school: "H01", program: "HS_NATIONAL_GRANT", term: "2017-autumn", fen: 75_000},
		{student: "P12", school: "H01", program: "HS_TUITION_WAIVER", term: "2017-autumn", fen: 85_000},
		{student: "P13", school: "H08", program: "HS_TUITION_WAIVER", term: "2017-autumn", fen: 86_500},
		{student: "P14", school: "V01", program: "VOC_TUITION_WAIVER", term: "2017-autumn", fen: 100_001},
		{student: "P15", school: "U00", program: "STUDENT_LOAN", term: "2017-autumn", fen: 800_000, loanContract: "LOAN-2017-0001"},
		{student: "P16", school: "U00", program: "FANHAI_FRESHMAN", term: "2017-autumn", fen: 500_000},
		// 2016: outside the year.
		{student: "P1", school: "K01", program: "PRESCHOOL_AID", term: "2016-autumn", fen: 50_000},
	}
}

func paidAt(term string) time.Time {
	if strings.HasSuffix(term, "spring") {
		return time.Date(2017, time.April, 10, 2, 0, 0, 0, time.UTC).AddDate(0, 0, 0).AddDate(termYear(term)-2017, 0, 0)
	}
	return time.Date(2017, time.October, 20, 2, 0, 0, 0, time.UTC).AddDate(termYear(term)-2017, 0, 0)
}

func termYear(term string) int {
	var y int
	_, _ = fmt.Sscanf(term, "%d-", &y)
	return y
}

func chainEvents(p *paid) []*eventsv1.Event {
	p.applicationID, p.paymentID = uuid.NewString(), uuid.NewString()
	prog := programs[p.program]
	keys := events.Keys{ApplicationID: p.applicationID, SchoolCode: p.school, ProgramCode: p.program, Term: p.term}
	at := paidAt(p.term)
	funding := "government"
	if !prog.gov {
		funding = "charity"
	}
	if p.loanContract != "" {
		funding = "bank_loan"
	}
	return []*eventsv1.Event{
		events.MustNew(at.Add(-30*24*time.Hour), events.Actor("officer-"+p.school, string(auth.RoleSchoolOfficer), p.school), keys,
			&eventsv1.ApplicationSubmitted{StudentIdHash: "hash-" + p.student, StudentIdMasked: "4210**********" + p.student,
				Stage: prog.stage, FundingSource: funding, AmountFen: p.fen, SubmittedBy: "officer-" + p.school,
				PolicyVersion: 1, FundingSharesBp: prog.shares, GovernmentTotal: prog.gov}),
		events.MustNew(at, events.Actor("system:payout", "service", "FINANCE"), keys,
			&eventsv1.PaymentSucceeded{PaymentId: p.paymentID, AmountFen: p.fen, BankRef: "B" + p.paymentID[:8], LoanContractNumber: p.loanContract}),
	}
}

type env struct {
	t                            *testing.T
	reviewer, data, finance, aud reportingv1.ReportingServiceClient
	school                       reportingv1.ReportingServiceClient
	publish                      func(...*eventsv1.Event)
	dbURL                        string
	httpAddr                     string
	token                        func(user string, role auth.Role, org string) string
}

func start(t *testing.T) *env {
	t.Helper()
	dbURL := testenv.DatabaseURL(t)
	natsURL := testenv.NATS(t)
	keys := testenv.NewKeys(t)
	run := servicetest.Start(t, servicetest.Env{DatabaseURL: dbURL, NATSURL: natsURL, PublicKeyPath: keys.PublicKeyPath}, rpservice.Spec())
	nc, js, err := natsx.Connect(natsURL, "reporting-test", natsx.WithNKeySeed(testenv.NATSSeed(t, natsx.AdminIdentity)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	client := func(user string, role auth.Role, org string) reportingv1.ReportingServiceClient {
		conn, err := grpcx.Dial(run.GRPCAddr, keys.Token(t, user, role, org))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		return reportingv1.NewReportingServiceClient(conn)
	}
	return &env{t: t, dbURL: dbURL, httpAddr: run.HTTPAddr,
		token:    func(user string, role auth.Role, org string) string { return keys.Token(t, user, role, org) },
		reviewer: client("br1", auth.RoleBureauReviewer, auth.OrgBureau), data: client("dc1", auth.RoleDataOfficer, auth.OrgBureau),
		finance: client("fo1", auth.RoleFinanceOfficer, auth.OrgFinance), aud: client("aud1", auth.RoleAuditor, auth.OrgBureau),
		school:  client("so1", auth.RoleSchoolOfficer, "K01"),
		publish: func(evs ...*eventsv1.Event) { servicetest.Publish(t, js, evs...) }}
}

func line(t *testing.T, r *reportingv1.AnnualReport, section, key string) *reportingv1.Line {
	t.Helper()
	for _, s := range r.GetSections() {
		if s.GetKey() != section {
			continue
		}
		for _, l := range s.GetLines() {
			if l.GetKey() == key {
				return l
			}
		}
	}
	t.Fatalf("report has no line %s/%s", section, key)
	return nil
}

func funding(s *reportingv1.Statistics) map[string]int64 {
	out := map[string]int64{}
	for _, f := range s.GetFunding() {
		out[f.GetSource()] = f.GetAmountFen()
	}
	return out
}

// TestCityReport checks the annual report of a small city line by line,
// persons against person-times, the statistics' filters, finalisation, and
// that a refund recovered after finalisation makes the next version differ
// by exactly that amount, in the term of the original payment.
func TestCityReport(t *testing.T) {
	ctx := context.Background()
	e := start(t)
	payments := city()
	for _, p := range payments {
		e.publish(chainEvents(p)...)
	}
	loanKeys := events.Keys{SchoolCode: "U00", ProgramCode: "STUDENT_LOAN", Term: "2017-autumn"}
	bank := events.Actor("system:payout", "service", "FINANCE")
	e.publish(events.MustNew(time.Date(2017, time.November, 20, 3, 0, 0, 0, time.UTC), bank, loanKeys,
		&eventsv1.LoanRepaymentRecorded{RepaymentId: uuid.NewString(), ContractNumber: "LOAN-2017-0001", Kind: "recovery",
			AmountFen: 300_000, BankReference: "R1", PaidOn: "2017-11-20", Reason: "回收", RepaidFen: 300_000, OutstandingFen: 500_000}))
	dataOffice := events.Actor("dc1", string(auth.RoleDataOfficer), auth.OrgBureau)
	e.publish(events.MustNew(time.Date(2017, time.December, 1, 3, 0, 0, 0, time.UTC), dataOffice, events.Keys{},
		&eventsv1.ComparisonCompleted{RunId: 1, FromTerm: "2017-spring", ToTerm: "2017-autumn", Records: 18, NewClues: 1}))
	dupKeys := events.Keys{SchoolCode: "H01", ProgramCode: "HS_NATIONAL_GRANT", Term: "2017-autumn"}
	e.publish(events.MustNew(time.Date(2017, time.December, 1, 3, 0, 0, 0, time.UTC), dataOffice, dupKeys,
		&eventsv1.ClueRaised{ClueId: "c-1", Kind: "paid_twice", Origin: "comparison", StudentIdHash: "hash-P10", AmountFen: 100_000}),
		events.MustNew(time.Date(2017, time.December, 5, 3, 0, 0, 0, time.UTC), dataOffice, dupKeys,
			&eventsv1.ClueDismissed{ClueId: "c-1", Findings: "不属实"}))

	year := &reportingv1.GetStatisticsRequest{FromTerm: "2017-spring", ToTerm: "2017-autumn"}
	servicetest.Eventually(t, func() error {
		s, err := e.aud.GetStatistics(ctx, year)
		if err != nil {
			return err
		}
		if s.GetPersonTimes() != 17 || s.GetLoansRecoveredFen() != 300_000 {
			return fmt.Errorf("%d person-times, %d recovered so far", s.GetPersonTimes(), s.GetLoansRecoveredFen())
		}
		return nil
	})

	t.Run("statistics", func(t *testing.T) {
		s, err := e.finance.GetStatistics(ctx, year)
		if err != nil {
			t.Fatal(err)
		}
		// 15 students (P1–P14, P16): P1 by two programs, P5 in two terms.
		if s.GetPaidFen() != 1_596_501 || s.GetPersons() != 15 || s.GetPersonTimes() != 17 {
			t.Errorf("paid %d fen to %d persons, %d person-times; want 1596501, 15, 17", s.GetPaidFen(), s.GetPersons(), s.GetPersonTimes())
		}
		want := map[string]int64{"central_provincial": 890_201, "municipal": 206_300, "charity": 500_000, "bank_loan": 0}
		if got := funding(s); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("funding %v, want %v", got, want)
		}
		if s.GetLoansIssuedFen() != 800_000 || s.GetLoansIssuedCount() != 1 || s.GetLoansRecoveredFen() != 300_000 {
			t.Errorf("loans %d fen ×%d, recovered %d", s.GetLoansIssuedFen(), s.GetLoansIssuedCount(), s.GetLoansRecoveredFen())
		}
		tests := []struct {
			name                string
			req                 *reportingv1.GetStatisticsRequest
			fen, persons, times int64
		}{
			{"spring only", &reportingv1.GetStatisticsRequest{FromTerm: "2017-spring", ToTerm: "2017-spring"}, 112_500, 2, 2},
			{"boarding", &reportingv1.GetStatisticsRequest{FromTerm: "2017-spring", ToTerm: "2017-autumn", ProgramCode: "BOARDING_SUBSIDY"}, 275_000, 4, 5},
			{"two schools", &reportingv1.GetStatisticsRequest{FromTerm: "2017-spring", ToTerm: "2017-autumn", SchoolCodes: []string{"K01", "J01"}}, 275_000, 4, 5},
			{"preschool stage", &reportingv1.GetStatisticsRequest{FromTerm: "2016-autumn", ToTerm: "2017-autumn", Stage: "preschool"}, 300_000, 4, 6},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s, err := e.data.GetStatistics(ctx, tt.req)
				if err != nil {
					t.Fatal(err)
				}
				if s.GetPaidFen() != tt.fen || s.GetPersons() != tt.persons || s.GetPersonTimes() != tt.times {
					t.Errorf("%d fen, %d persons, %d person-times; want %d, %d, %d", s.GetPaidFen(), s.GetPersons(), s.GetPersonTimes(), tt.fen, tt.persons, tt.times)
				}
			})
		}
		_, err = e.aud.GetStatistics(ctx, &reportingv1.GetStatisticsRequest{FromTerm: "2017-autumn", ToTerm: "2017-spring"})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("a reversed range: %v, want InvalidArgument", err)
		}
		_, err = e.school.GetStatistics(ctx, year)
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("a school officer: %v, want PermissionDenied", err)
		}
	})

	wantLines := []struct {
		section, key string
		fen, count   int64
	}{
		{"programs", "PRESCHOOL_AID", 200_000, 4},
		{"programs", "BOARDING_SUBSIDY", 275_000, 5},
		{"programs", "HS_NATIONAL_GRANT", 300_000, 3},
		{"programs", "HS_TUITION_WAIVER", 171_500, 2},
		{"programs", "VOC_TUITION_WAIVER", 100_001, 1},
		{"programs", "POVERTY_EXTENSION", 50_000, 1},
		{"programs", "total", 1_096_501, 14},
		{"summary", "central_provincial", 890_201, 0},
		{"summary", "municipal", 206_300, 0},
		{"loans", "loans_issued", 800_000, 1},
		{"loans", "loans_recovered", 300_000, 0},
		{"charity", "FANHAI_FRESHMAN", 500_000, 1},
		{"charity", "total", 500_000, 1},
		{"comparison_records", "2017-spring..2017-autumn", 0, 18},
		{"clues", "kind:paid_twice", 0, 1},
		{"clues", "origin:comparison", 0, 1},
		{"verified", "dismissed", 0, 1},
		{"refunds", "students_involved", 0, 1},
		{"refunds", "eligible", 0, 1},
	}
	var v1 *reportingv1.AnnualReport
	t.Run("annual report", func(t *testing.T) {
		r, err := e.reviewer.GetAnnualReport(ctx, &reportingv1.GetAnnualReportRequest{Year: 2017})
		if err != nil {
			t.Fatal(err)
		}
		if r.GetStatus() != "DRAFT" || r.GetGovernmentTotalFen() != 1_096_501 || r.GetCentralProvincialFen() != 890_201 ||
			r.GetMunicipalFen() != 206_300 || r.GetStudents() != 14 || r.GetAsOf() == nil {
			t.Errorf("%s: total %d = %d + %d for %d students, as of %v", r.GetStatus(), r.GetGovernmentTotalFen(),
				r.GetCentralProvincialFen(), r.GetMunicipalFen(), r.GetStudents(), r.GetAsOf())
		}
		for _, w := range wantLines {
			if l := line(t, r, w.section, w.key); l.GetAmountFen() != w.fen || l.GetCount() != w.count {
				t.Errorf("%s/%s: %d fen, %d; want %d, %d", w.section, w.key, l.GetAmountFen(), l.GetCount(), w.fen, w.count)
			}
		}
		var order []string
		for _, s := range r.GetSections() {
			if s.GetKey() == "programs" {
				for _, l := range s.GetLines() {
					order = append(order, l.GetKey())
				}
			}
		}
		if want := "PRESCHOOL_AID BOARDING_SUBSIDY HS_NATIONAL_GRANT HS_TUITION_WAIVER VOC_TUITION_WAIVER POVERTY_EXTENSION total"; strings.Join(order, " ") != want {
			t.Errorf("programs in order %v, want %s", order, want)
		}
		if r.GetSections()[1].GetTitle() != "各项目资助情况（政府资金）" {
			t.Errorf("Chinese heading %q", r.GetSections()[1].GetTitle())
		}
		en, err := e.aud.GetAnnualReport(ctx, &reportingv1.GetAnnualReportRequest{Year: 2017, Language: "en"})
		if err != nil {
			t.Fatal(err)
		}
		if en.GetSections()[1].GetTitle() != "Programs (government funds)" || line(t, en, "programs", "PRESCHOOL_AID").GetLabel() != "Preschool government aid" {
			t.Errorf("English: %q / %q", en.GetSections()[1].GetTitle(), line(t, en, "programs", "PRESCHOOL_AID").GetLabel())
		}
	})

	t.Run("finalise", func(t *testing.T) {
		_, err := e.data.FinaliseAnnualReport(ctx, &reportingv1.FinaliseAnnualReportRequest{Year: 2017})
		if status.Code(err) != codes.PermissionDenied {
			t.Fatalf("a data officer finalises: %v, want PermissionDenied", err)
		}
		v1, err = e.reviewer.FinaliseAnnualReport(ctx, &reportingv1.FinaliseAnnualReportRequest{Year: 2017, Note: "年度汇报"})
		if err != nil {
			t.Fatal(err)
		}
		if v1.GetStatus() != "FINAL" || v1.GetVersion() != 1 || v1.GetFinalisedBy() != "br1" || len(v1.GetContentSha256()) != 64 ||
			v1.GetGovernmentTotalFen() != 1_096_501 {
			t.Errorf("v1: %s %d by %q, hash %q, total %d", v1.GetStatus(), v1.GetVersion(), v1.GetFinalisedBy(), v1.GetContentSha256(), v1.GetGovernmentTotalFen())
		}
		_, err = e.reviewer.FinaliseAnnualReport(ctx, &reportingv1.FinaliseAnnualReportRequest{Year: 2017})
		if status.Code(err) != codes.FailedPrecondition {
			t.Errorf("finalising unchanged figures: %v, want FailedPrecondition", err)
		}
		got, err := e.aud.GetAnnualReport(ctx, &reportingv1.GetAnnualReportRequest{Year: 2017})
		if err != nil {
			t.Fatal(err)
		}
		if got.GetStatus() != "FINAL" || got.GetContentSha256() != v1.GetContentSha256() || !got.GetAsOf().AsTime().Equal(v1.GetAsOf().AsTime()) {
			t.Errorf("read back %s %s as of %v; finalised %s as of %v", got.GetStatus(), got.GetContentSha256(), got.GetAsOf(), v1.GetContentSha256(), v1.GetAsOf())
		}
		conn, err := pgx.Connect(ctx, e.dbURL)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = conn.Close(ctx) }()
		if _, err := conn.Exec(ctx, `UPDATE reporting.report_versions SET note = 'changed'`); err == nil || !strings.Contains(err.Error(), "insert-only") {
			t.Errorf("updating a FINAL version: %v, want refused as insert-only", err)
		}
	})

	// In 2018 the data office finds P12's waiver ineligible and recovers it
	// in full: 85,000 fen, from the 2017-autumn payment.
	var waiver *paid
	for _, p := range payments {
		if p.student == "P12" {
			waiver = p
		}
	}
	wKeys := events.Keys{SchoolCode: "H01", ProgramCode: "HS_TUITION_WAIVER", Term: "2017-autumn"}
	received := time.Date(2018, time.March, 1, 3, 0, 0, 0, time.UTC)
	e.publish(
		events.MustNew(time.Date(2018, time.February, 1, 3, 0, 0, 0, time.UTC), dataOffice, wKeys,
			&eventsv1.ClueRaised{ClueId: "c-2", Kind: "not_in_registry", Origin: "comparison", StudentIdHash: "hash-P12", AmountFen: 85_000}),
		events.MustNew(time.Date(2018, time.February, 10, 3, 0, 0, 0, time.UTC), dataOffice, wKeys,
			&eventsv1.ClueVerified{ClueId: "c-2", Findings: "查实", Ineligible: true, Kind: "not_in_registry"}),
		events.MustNew(time.Date(2018, time.February, 10, 3, 0, 0, 0, time.UTC), dataOffice, wKeys,
			&eventsv1.RefundOpened{RefundId: "r-1", ClueId: "c-2", RecordId: "rec-1", PaymentId: waiver.paymentID, AmountFen: 85_000, Account: "INTEGRITY"}),
		events.MustNew(received, dataOffice, wKeys,
			&eventsv1.RefundReceiptRecorded{RefundId: "r-1", AmountFen: 85_000, ReceivedFen: 85_000, BankRef: "RF1", Account: "INTEGRITY"}),
	)
	servicetest.Eventually(t, func() error {
		s, err := e.aud.GetStatistics(ctx, year)
		if err != nil {
			return err
		}
		if s.GetRefundsRecoveredFen() != 85_000 {
			return fmt.Errorf("%d recovered so far", s.GetRefundsRecoveredFen())
		}
		return nil
	})

	t.Run("refund after finalisation", func(t *testing.T) {
		s, err := e.aud.GetStatistics(ctx, year)
		if err != nil {
			t.Fatal(err)
		}
		if s.GetPaidFen() != 1_511_501 || s.GetGrossPaidFen() != 1_596_501 || s.GetPersons() != 14 || s.GetPersonTimes() != 16 || s.GetRefundsOrderedFen() != 85_000 {
			t.Errorf("after the refund: paid %d (gross %d) to %d persons, %d person-times, ordered %d", s.GetPaidFen(), s.GetGrossPaidFen(), s.GetPersons(), s.GetPersonTimes(), s.GetRefundsOrderedFen())
		}
		before, err := e.aud.GetStatistics(ctx, &reportingv1.GetStatisticsRequest{FromTerm: "2017-spring", ToTerm: "2017-autumn",
			AsOf: timestamppb.New(received.Add(-time.Second))})
		if err != nil {
			t.Fatal(err)
		}
		if before.GetPaidFen() != 1_596_501 {
			t.Errorf("as of before the receipt: %d fen, want 1596501", before.GetPaidFen())
		}
		live, err := e.aud.GetAnnualReport(ctx, &reportingv1.GetAnnualReportRequest{Year: 2017})
		if err != nil {
			t.Fatal(err)
		}
		if live.GetVersion() != 1 || live.GetGovernmentTotalFen() != 1_096_501 {
			t.Errorf("the FINAL version changed: v%d total %d", live.GetVersion(), live.GetGovernmentTotalFen())
		}
		v2, err := e.reviewer.FinaliseAnnualReport(ctx, &reportingv1.FinaliseAnnualReportRequest{Year: 2017, Note: "退款更正"})
		if err != nil {
			t.Fatal(err)
		}
		if v2.GetVersion() != 2 || v1.GetGovernmentTotalFen()-v2.GetGovernmentTotalFen() != 85_000 ||
			v2.GetCentralProvincialFen() != 822_201 || v2.GetMunicipalFen() != 189_300 || v2.GetStudents() != 13 {
			t.Errorf("v2: %d, total %d = %d + %d, %d students", v2.GetVersion(), v2.GetGovernmentTotalFen(), v2.GetCentralProvincialFen(), v2.GetMunicipalFen(), v2.GetStudents())
		}
		if l := line(t, v2, "programs", "HS_TUITION_WAIVER"); l.GetAmountFen() != 86_500 || l.GetCount() != 1 {
			t.Errorf("the waiver line: %d fen, %d", l.GetAmountFen(), l.GetCount())
		}
		changes := strings.Join(v2.GetChanges(), "\n")
		for _, want := range []string{"programs/HS_TUITION_WAIVER amount 171500 → 86500 fen (-85000)", "programs/total amount 1096501 → 1011501 fen (-85000)"} {
			if !strings.Contains(changes, want) {
				t.Errorf("changes lack %q:\n%s", want, changes)
			}
		}
		if v2.GetContentSha256() == v1.GetContentSha256() {
			t.Error("v2 has v1's hash")
		}
		vs, err := e.finance.ListReportVersions(ctx, &reportingv1.ListReportVersionsRequest{Year: 2017})
		if err != nil {
			t.Fatal(err)
		}
		if len(vs.GetVersions()) != 2 || vs.GetVersions()[0].GetContentSha256() != v1.GetContentSha256() {
			t.Errorf("versions: %v", vs.GetVersions())
		}
		old, err := e.aud.GetAnnualReport(ctx, &reportingv1.GetAnnualReportRequest{Year: 2017, Version: 1})
		if err != nil {
			t.Fatal(err)
		}
		if old.GetGovernmentTotalFen() != 1_096_501 || old.GetContentSha256() != v1.GetContentSha256() {
			t.Errorf("version 1 read back: %d, %s", old.GetGovernmentTotalFen(), old.GetContentSha256())
		}
		t.Run("exports", func(t *testing.T) { checkExports(t, e, v2) })
		t.Run("payment exports", func(t *testing.T) { checkPaymentExports(t, e) })
		r2018, err := e.aud.GetAnnualReport(ctx, &reportingv1.GetAnnualReportRequest{Year: 2018})
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range []struct {
			section, key string
			fen, count   int64
		}{
			{"verified", "HS_TUITION_WAIVER", 0, 1},
			{"refunds", "ineligible", 0, 1},
			{"refunds", "refunds_opened", 85_000, 1},
			{"refunds", "refunded", 85_000, 1},
			{"programs", "total", 0, 0},
		} {
			if l := line(t, r2018, w.section, w.key); l.GetAmountFen() != w.fen || l.GetCount() != w.count {
				t.Errorf("2018 %s/%s: %d fen, %d; want %d, %d", w.section, w.key, l.GetAmountFen(), l.GetCount(), w.fen, w.count)
			}
		}
	})
}

func get(t *testing.T, e *env, path, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://"+e.httpAddr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// checkExports reads the JSON, CSV and XLSX exports of the latest FINAL
// version back and compares them with the report the API returned.
func checkExports(t *testing.T, e *env, final *reportingv1.AnnualReport) {
	t.Helper()
	tok := e.token("aud1", auth.RoleAuditor, auth.OrgBureau)
	if code, _ := get(t, e, "/v1/reporting/annual/2017/export?format=json", ""); code != http.StatusUnauthorized {
		t.Errorf("no token: HTTP %d, want 401", code)
	}
	if code, _ := get(t, e, "/v1/reporting/annual/2017/export?format=json", e.token("so1", auth.RoleSchoolOfficer, "K01")); code != http.StatusForbidden {
		t.Errorf("a school officer: HTTP %d, want 403", code)
	}
	code, body := get(t, e, "/v1/reporting/annual/2017/export?format=json", tok)
	if code != http.StatusOK {
		t.Fatalf("json: HTTP %d: %s", code, body)
	}
	var fromJSON reportingv1.AnnualReport
	if err := protojson.Unmarshal(body, &fromJSON); err != nil {
		t.Fatal(err)
	}
	if fromJSON.GetContentSha256() != final.GetContentSha256() || fromJSON.GetGovernmentTotalFen() != 1_011_501 {
		t.Errorf("json: %s total %d", fromJSON.GetContentSha256(), fromJSON.GetGovernmentTotalFen())
	}

	code, body = get(t, e, "/v1/reporting/annual/2017/export?format=csv", tok)
	if code != http.StatusOK {
		t.Fatalf("csv: HTTP %d: %s", code, body)
	}
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range rows {
		if r[5] == "programs" && r[6] == "total" {
			found = true
			if r[0] != "2017" || r[1] != "FINAL" || r[2] != "2" || r[4] != final.GetContentSha256() ||
				r[8] != "1011501" || r[9] != "10115.01" || r[10] != "1.011501" || r[11] != "13" {
				t.Errorf("csv total row %v", r)
			}
		}
	}
	if !found {
		t.Error("csv has no programs total row")
	}

	code, body = get(t, e, "/v1/reporting/annual/2017/export?format=xlsx", tok)
	if code != http.StatusOK {
		t.Fatalf("xlsx: HTTP %d: %s", code, body)
	}
	f, err := excelize.OpenReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	sheets := f.GetSheetList()
	if len(sheets) != 1+len(fromJSON.GetSections()) {
		t.Fatalf("sheets %v for %d sections", sheets, len(fromJSON.GetSections()))
	}
	if hash, _ := f.GetCellValue("report", "B5"); hash != final.GetContentSha256() {
		t.Errorf("xlsx hash %q", hash)
	}
	for i, s := range fromJSON.GetSections() {
		rows, err := f.GetRows(sheets[i+1], excelize.Options{RawCellValue: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 1+len(s.GetLines()) {
			t.Fatalf("sheet %s: %d rows for %d lines", sheets[i+1], len(rows), len(s.GetLines()))
		}
		for j, l := range s.GetLines() {
			row := rows[j+1]
			yuan, err := strconv.ParseFloat(row[1], 64)
			if err != nil {
				t.Fatal(err)
			}
			count, _ := strconv.ParseInt(row[3], 10, 64)
			if row[0] != l.GetLabel() || math.Round(yuan*100) != float64(l.GetAmountFen()) || count != l.GetCount() {
				t.Errorf("sheet %s row %d: %v; json %s %d fen %d", sheets[i+1], j+2, row, l.GetLabel(), l.GetAmountFen(), l.GetCount())
			}
		}
	}
	if v, _ := f.GetCellValue(sheets[2], "B2"); v != "2,000.00" {
		t.Errorf("the preschool line formatted in yuan: %q, want 2,000.00", v)
	}
}

// checkPaymentExports reads the per-payment exports of 2017 (after P12's
// waiver was refunded): the JSON lists every paid record, the CSV and the
// XLSX read back (excelize) with the same rows.
func checkPaymentExports(t *testing.T, e *env) {
	t.Helper()
	const path = "/v1/reporting/payments/export?from_term=2017-spring&to_term=2017-autumn&format="
	if code, _ := get(t, e, path+"json", ""); code != http.StatusUnauthorized {
		t.Errorf("no token: HTTP %d, want 401", code)
	}
	if code, _ := get(t, e, path+"xlsx", e.token("so1", auth.RoleSchoolOfficer, "K01")); code != http.StatusForbidden {
		t.Errorf("a school officer: HTTP %d, want 403", code)
	}
	tok := e.token("aud1", auth.RoleAuditor, auth.OrgBureau)
	if code, _ := get(t, e, "/v1/reporting/payments/export?from_term=2017-autumn&to_term=2017-spring&format=csv", tok); code != http.StatusBadRequest {
		t.Errorf("a reversed range: HTTP %d, want 400", code)
	}
	code, body := get(t, e, path+"json", tok)
	if code != http.StatusOK {
		t.Fatalf("json: HTTP %d: %s", code, body)
	}
	var doc struct {
		AsOf     string `json:"as_of"`
		Payments []struct {
			PaymentID   string `json:"payment_id"`
			SchoolCode  string `json:"school_code"`
			Student     string `json:"student"`
			ProgramCode string `json:"program_code"`
			Stage       string `json:"stage"`
			Term        string `json:"term"`
			AmountFen   string `json:"amount_fen"`
			PaidAt      string `json:"paid_at"`
			RefundedFen string `json:"refunded_fen"`
			Loan        bool   `json:"loan"`
		} `json:"payments"`
		Totals struct {
			Payments    string `json:"payments"`
			AmountFen   string `json:"amount_fen"`
			RefundedFen string `json:"refunded_fen"`
		} `json:"totals"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("json: %v\n%s", err, body)
	}
	// 2017: 18 payments (17 grants, one loan) of 2,396,501 fen, P12's
	// waiver of 85,000 fen refunded.
	if len(doc.Payments) != 18 || doc.Totals.Payments != "18" || doc.Totals.AmountFen != "2396501" || doc.Totals.RefundedFen != "85000" {
		t.Fatalf("json: %d payments, totals %+v; want 18, 2396501 fen, 85000 refunded", len(doc.Payments), doc.Totals)
	}
	// The same instant for the files: the same rows.
	at := "&as_of=" + doc.AsOf
	code, body = get(t, e, path+"csv"+at, tok)
	if code != http.StatusOK {
		t.Fatalf("csv: HTTP %d: %s", code, body)
	}
	recs, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	code, body = get(t, e, path+"xlsx&language=en"+at, tok)
	if code != http.StatusOK {
		t.Fatalf("xlsx: HTTP %d: %s", code, body)
	}
	f, err := excelize.OpenReader(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("xlsx does not open: %v", err)
	}
	defer func() { _ = f.Close() }()
	rows, err := f.GetRows("payments", excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1+18 || len(rows) != 1+18+1 {
		t.Fatalf("csv %d rows, xlsx %d rows; want a header and 18 (and a total)", len(recs), len(rows))
	}
	if rows[0][0] != "School" || rows[19][0] != "Total" || rows[19][1] != "18" || rows[19][5] != "23965.01" || rows[19][7] != "850" {
		t.Errorf("xlsx header %v, total %v", rows[0], rows[19])
	}
	if cover, err := f.GetCellValue("export", "B1"); err != nil || cover != doc.AsOf {
		t.Errorf("xlsx as of %q (%v), json %q", cover, err, doc.AsOf)
	}
	yuan := func(fen string) string {
		n, err := strconv.ParseInt(fen, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return strconv.FormatFloat(float64(n)/100, 'f', -1, 64)
	}
	net := func(amount, refunded string) string {
		a, err1 := strconv.ParseInt(amount, 10, 64)
		r, err2 := strconv.ParseInt(refunded, 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatal(amount, refunded)
		}
		return yuan(strconv.FormatInt(a-r, 10))
	}
	paidAt := func(s string) string {
		at, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return at.UTC().Format("2006-01-02T15:04:05.000000Z07:00")
	}
	for i, p := range doc.Payments {
		wantCSV := []string{doc.AsOf, p.PaymentID, p.SchoolCode, p.Student, p.ProgramCode, p.Stage, p.Term, p.AmountFen,
			"", paidAt(p.PaidAt), p.RefundedFen, "", strconv.FormatBool(p.Loan)}
		got := recs[i+1]
		got[8], got[11] = "", "" // the yuan columns: checked below
		if fmt.Sprint(got) != fmt.Sprint(wantCSV) {
			t.Errorf("csv row %d %v, json %v", i+1, got, wantCSV)
		}
		x := rows[i+1]
		want := []string{p.SchoolCode, p.Student, p.ProgramCode, p.Stage, p.Term, yuan(p.AmountFen), paidAt(p.PaidAt), yuan(p.RefundedFen),
			net(p.AmountFen, p.RefundedFen), map[bool]string{false: "0", true: "1"}[p.Loan], p.PaymentID}
		if fmt.Sprint(x) != fmt.Sprint(want) {
			t.Errorf("xlsx row %d %v, json %v", i+1, x, want)
		}
	}
	for _, p := range doc.Payments {
		if p.Student == "" || strings.Contains(p.Student, "P1") && len(p.Student) > 12 {
			t.Errorf("student %q: want the ID hash's first 12 characters", p.Student)
		}
	}
}
