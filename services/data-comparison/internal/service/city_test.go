package service_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/text/encoding/simplifiedchinese"
	"google.golang.org/grpc/codes"

	"github.com/edubureau/studentaid/internal/devtools/testenv"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/grpcx"
	"github.com/edubureau/studentaid/pkg/idnumber"
	"github.com/edubureau/studentaid/pkg/natsx"
	"github.com/edubureau/studentaid/pkg/pii"
	"github.com/edubureau/studentaid/pkg/service/servicetest"
	dcv1 "github.com/edubureau/studentaid/proto/gen/aid/datacomparison/v1"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	"github.com/edubureau/studentaid/services/data-comparison/internal/app"
	dcservice "github.com/edubureau/studentaid/services/data-comparison/internal/service"
)

const integrity = "TEST-INTEGRITY-001"

// person i of the city: a student born in 2008 (2002 for high school).
func person(i int) string {
	birth := time.Date(2008, time.May, 1+i%28, 0, 0, 0, 0, time.UTC)
	return idnumber.Generate("421081", birth, i)
}

func name(i int) string { return fmt.Sprintf("学生%d号", i) }

// payment is one payment of the chain: submitted and then paid.
type payment struct {
	person                 int
	school, program, stage string
	term                   string
	level                  string
	paidFen                int64
	rejected               bool
}

func chainEvents(h *pii.Hasher, p payment) []*eventsv1.Event {
	id := uuid.NewString()
	keys := events.Keys{ApplicationID: id, SchoolCode: p.school, ProgramCode: p.program, Term: p.term}
	actor := events.Actor("officer-"+p.school, string(auth.RoleSchoolOfficer), p.school)
	at := time.Date(2017, time.March, 10, 0, 0, 0, 0, time.UTC)
	num := person(p.person)
	evs := []*eventsv1.Event{events.MustNew(at, actor, keys, &eventsv1.ApplicationSubmitted{StudentIdHash: h.Hash(num),
		StudentIdMasked: idnumber.Mask(num), Stage: p.stage, AmountFen: p.paidFen, SubmittedBy: "officer-" + p.school})}
	if p.rejected {
		return append(evs, events.MustNew(at.Add(time.Hour), actor, keys, &eventsv1.SchoolReviewRejected{Reason: "材料不全"}))
	}
	if p.level != "" {
		evs = append(evs, events.MustNew(at.Add(time.Hour), actor, keys, &eventsv1.SchoolReviewApproved{HardshipLevel: p.level, AmountFen: p.paidFen}))
	}
	return append(evs, events.MustNew(at.Add(48*time.Hour), events.Actor("system:payout", "service", "FINANCE"), keys,
		&eventsv1.PaymentSucceeded{PaymentId: uuid.NewString(), AmountFen: p.paidFen, BankRef: "B" + id[:8]}))
}

func csvOf(header string, rows ...string) []byte {
	return []byte(header + "\n" + strings.Join(rows, "\n") + "\n")
}

type env struct {
	t         *testing.T
	exportDir string
	importDir string
	dc        dcv1.DataComparisonServiceClient
	aud       dcv1.DataComparisonServiceClient
	client    func(user string, role auth.Role) dcv1.DataComparisonServiceClient
	httpAddr  string
	keys      testenv.Keys
	dbURL     string
	js        jetstream.JetStream
}

func start(t *testing.T) (*env, *pii.Hasher, func(...*eventsv1.Event)) {
	t.Helper()
	dbURL := testenv.DatabaseURL(t)
	natsURL := testenv.NATS(t)
	keys := testenv.NewKeys(t)
	exportDir, importDir := t.TempDir(), t.TempDir()
	run := servicetest.Start(t, servicetest.Env{DatabaseURL: dbURL, NATSURL: natsURL, PublicKeyPath: keys.PublicKeyPath},
		dcservice.SpecWith(dcservice.Options{Config: &app.Config{IntegrityAccount: integrity, ExportDir: exportDir, ImportDir: importDir}}))
	nc, js, err := natsx.Connect(natsURL, "dc-test", natsx.WithNKeySeed(testenv.NATSSeed(t, natsx.AdminIdentity)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	h := testenv.Hasher(t, "")
	client := func(user string, role auth.Role) dcv1.DataComparisonServiceClient {
		conn, err := grpcx.Dial(run.GRPCAddr, keys.Token(t, user, role, auth.OrgBureau))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		return dcv1.NewDataComparisonServiceClient(conn)
	}
	e := &env{t: t, exportDir: exportDir, importDir: importDir, dc: client("dc1", auth.RoleDataOfficer), aud: client("aud1", auth.RoleAuditor),
		client: client, httpAddr: run.HTTPAddr, keys: keys, dbURL: dbURL, js: js}
	return e, h, func(evs ...*eventsv1.Event) { servicetest.Publish(t, js, evs...) }
}

func (e *env) importFile(ctx context.Context, req *dcv1.ImportReferenceRequest) *dcv1.ImportReferenceResponse {
	e.t.Helper()
	res, err := e.dc.ImportReference(ctx, req)
	if err != nil {
		e.t.Fatalf("import %s: %v", req.GetKind(), err)
	}
	if !res.GetImported() {
		e.t.Fatalf("import %s refused: %v", req.GetKind(), res.GetBadRows())
	}
	return res
}

func clueKey(c *dcv1.Clue) string {
	return fmt.Sprintf("%s|%s|%s|%d", c.GetKind(), c.GetStudentIdMasked(), c.GetTerm(), c.GetAmountFen())
}

// wantNoNewClues runs a comparison over from..to and fails when it adds a
// clue; what says when.
func (e *env) wantNoNewClues(ctx context.Context, from, to, what string) {
	e.t.Helper()
	r, err := e.dc.RunComparison(ctx, &dcv1.RunComparisonRequest{FromTerm: from, ToTerm: to})
	if err != nil {
		e.t.Fatal(err)
	}
	for kind, n := range r.GetNewClues() {
		if n != 0 {
			e.t.Errorf("%s added %d %s clues", what, n, kind)
		}
	}
}

// trailTypes reads a clue's trail: whether it is intact and its event types.
func (e *env) trailTypes(ctx context.Context, clueID string) (bool, []string) {
	e.t.Helper()
	trail, err := e.aud.GetClueTrail(ctx, &dcv1.GetClueTrailRequest{ClueId: clueID})
	if err != nil {
		e.t.Fatal(err)
	}
	var types []string
	for _, s := range trail.GetEntries() {
		types = append(types, s.GetType())
	}
	return trail.GetIntact(), types
}

func (e *env) allClues(ctx context.Context) []*dcv1.Clue {
	e.t.Helper()
	var out []*dcv1.Clue
	token := ""
	for {
		res, err := e.aud.ListClues(ctx, &dcv1.ListCluesRequest{PageSize: 7, PageToken: token})
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, res.GetClues()...)
		if token = res.GetNextPageToken(); token == "" {
			return out
		}
	}
}

// TestGeneratedCity plants one problem of every kind (and look-alikes that
// are no problem) in a small city and checks that the comparison finds
// exactly the planted ones, that a re-run adds none, that a bad import
// changes nothing, and that a verified clue's refund closes after two
// partial receipts.
func TestGeneratedCity(t *testing.T) {
	e, h, publish := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const term = "2017-spring"
	m := func(i int) string { return idnumber.Mask(person(i)) }

	var pays []payment
	for i := range 10 { // no problem at all
		pays = append(pays, payment{person: i, school: "S1", program: "BOARDING_SUBSIDY", stage: "primary", term: term, paidFen: 50000})
	}
	pays = append(pays,
		// duplicate: paid by two schools
		payment{person: 10, school: "S1", program: "BOARDING_SUBSIDY", stage: "primary", term: term, paidFen: 50000},
		payment{person: 10, school: "S2", program: "BOARDING_SUBSIDY", stage: "primary", term: term, paidFen: 50000},
		// key person
		payment{person: 11, school: "S1", program: "BOARDING_SUBSIDY", stage: "primary", term: term, paidFen: 50000},
		// not enrolled at S1
		payment{person: 12, school: "S1", program: "BOARDING_SUBSIDY", stage: "primary", term: term, paidFen: 50000},
		// deceased before the term
		payment{person: 13, school: "S1", program: "BOARDING_SUBSIDY", stage: "primary", term: term, paidFen: 50000},
		// above the standard: level difficult pays 1,000 yuan, 1,500 paid
		payment{person: 14, school: "S1", program: "HS_NATIONAL_GRANT", stage: "high_school", term: term, level: "difficult", paidFen: 150000},
		// rejected, so a registry child on S2's roster got nothing: missed
		payment{person: 16, school: "S2", program: "BOARDING_SUBSIDY", stage: "primary", term: term, paidFen: 50000, rejected: true},
		// died after the term began: no problem
		payment{person: 17, school: "S1", program: "BOARDING_SUBSIDY", stage: "primary", term: term, paidFen: 50000},
		// a registry-only program for someone not in the registry: ineligible
		payment{person: 30, school: "S1", program: "POVERTY_EXTENSION", stage: "primary", term: term, paidFen: 50000},
		// not in the registry, but the program does not require it: no problem
		payment{person: 31, school: "S1", program: "BOARDING_SUBSIDY", stage: "primary", term: term, paidFen: 50000},
	)
	want := []string{
		"duplicate_payment|" + m(10) + "|" + term + "|50000",
		"key_person|" + m(11) + "|" + term + "|50000",
		"not_enrolled|" + m(12) + "|" + term + "|50000",
		"deceased|" + m(13) + "|" + term + "|50000",
		"above_standard|" + m(14) + "|" + term + "|50000",
		"missed|" + m(15) + "|" + term + "|50000",
		"missed|" + m(16) + "|" + term + "|50000",
		"ineligible|" + m(30) + "|" + term + "|50000",
		// imported history: person 19 paid by S1 and S2 in 2016-autumn
		"duplicate_payment|" + m(19) + "|2016-autumn|50000",
	}
	var evs []*eventsv1.Event
	for _, p := range pays {
		evs = append(evs, chainEvents(h, p)...)
	}
	publish(evs...)
	// Wait until every chain payment is a paid record. With no reference
	// data yet, these runs can only find what is found anyway.
	servicetest.Eventually(t, func() error {
		r, err := e.dc.RunComparison(ctx, &dcv1.RunComparisonRequest{FromTerm: "2016-autumn", ToTerm: term})
		if err != nil {
			return err
		}
		if paid := int64(len(pays) - 1); r.GetRecords() != paid {
			return fmt.Errorf("run compared %d records, want %d", r.GetRecords(), paid)
		}
		return nil
	})

	// Reference data. The registry has persons 0-29 and an adult with an
	// old 15-digit number; the S1 roster is GB18030.
	var reg []string
	for i := range 30 {
		reg = append(reg, fmt.Sprintf("H%03d,%s,%s,城关镇", i/3, person(i), name(i)))
	}
	reg = append(reg, "H999,421081700101001,王 大明,城关镇")
	e.importFile(ctx, &dcv1.ImportReferenceRequest{Kind: dcv1.ReferenceKind_REFERENCE_KIND_POVERTY_REGISTRY, FileName: "registry.csv",
		Content: csvOf("户编号,身份证号,姓名,乡镇", reg...)})
	var s1 []string
	for _, i := range []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 30, 31} {
		s1 = append(s1, fmt.Sprintf("%s,%s,primary", person(i), name(i)))
	}
	s1 = append(s1, fmt.Sprintf("%s,%s,high_school", person(14), name(14)))
	gb, err := simplifiedchinese.GB18030.NewEncoder().Bytes(csvOf("身份证号,姓名,学段", s1...))
	if err != nil {
		t.Fatal(err)
	}
	e.importFile(ctx, &dcv1.ImportReferenceRequest{Kind: dcv1.ReferenceKind_REFERENCE_KIND_ROSTER, SchoolCode: "S1", Term: term, Content: gb})
	e.importFile(ctx, &dcv1.ImportReferenceRequest{Kind: dcv1.ReferenceKind_REFERENCE_KIND_ROSTER, SchoolCode: "S2", Term: term,
		Content: csvOf("id_number,name,stage", person(10)+","+name(10)+",primary", person(16)+","+name(16)+",primary")})
	e.importFile(ctx, &dcv1.ImportReferenceRequest{Kind: dcv1.ReferenceKind_REFERENCE_KIND_KEY_PERSONS,
		Content: csvOf("id_number,name,relation,unit", person(11)+","+name(11)+",子女,市某局")})
	e.importFile(ctx, &dcv1.ImportReferenceRequest{Kind: dcv1.ReferenceKind_REFERENCE_KIND_DEATHS,
		Content: csvOf("id_number,name,date,kind", person(13)+","+name(13)+",2016-12-01,死亡", person(17)+","+name(17)+",2017-06-01,death")})
	e.importFile(ctx, &dcv1.ImportReferenceRequest{Kind: dcv1.ReferenceKind_REFERENCE_KIND_HISTORY, Source: "bureau 2015-2017",
		Content: csvOf("id_number,name,school_code,program_code,term,stage,amount_yuan",
			person(19)+","+name(19)+",S1,BOARDING_SUBSIDY,2016-autumn,primary,500",
			person(19)+","+name(19)+",S2,BOARDING_SUBSIDY,2016-autumn,primary,500.00",
			person(20)+","+name(20)+",S1,BOARDING_SUBSIDY,2016-autumn,primary,\"500\"")})

	run, err := e.dc.RunComparison(ctx, &dcv1.RunComparisonRequest{FromTerm: "2016-autumn", ToTerm: term})
	if err != nil {
		t.Fatal(err)
	}
	if paid := int64(len(pays) - 1 + 3); run.GetRecords() != paid {
		t.Fatalf("run compared %d records, want %d", run.GetRecords(), paid)
	}
	clues := e.allClues(ctx)
	var got []string
	for _, c := range clues {
		got = append(got, clueKey(c))
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("clues:\n got %q\nwant %q", got, want)
	}
	if n := run.GetNewClues()["missed"]; n != 2 {
		t.Errorf("the run after the imports found %d missed students, want 2", n)
	}

	// A re-run adds nothing.
	again, err := e.dc.RunComparison(ctx, &dcv1.RunComparisonRequest{FromTerm: "2016-autumn", ToTerm: term})
	if err != nil {
		t.Fatal(err)
	}
	for kind, n := range again.GetNewClues() {
		if n != 0 {
			t.Errorf("re-run added %d %s clues", n, kind)
		}
	}
	if n := len(e.allClues(ctx)); n != len(want) {
		t.Errorf("after the re-run %d clues, want %d", n, len(want))
	}

	t.Run("bad import changes nothing", func(t *testing.T) {
		before, err := e.aud.ListImports(ctx, &dcv1.ListImportsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		bad := person(1)[:17] + string("0123456789X"[(strings.IndexByte("0123456789X", person(1)[17])+1)%11])
		res, err := e.dc.ImportReference(ctx, &dcv1.ImportReferenceRequest{Kind: dcv1.ReferenceKind_REFERENCE_KIND_POVERTY_REGISTRY,
			Content: csvOf("household_id,id_number,name,township",
				"H1,"+person(0)+",甲,城关镇",
				"H1,"+bad+",乙,城关镇",
				"H2,"+person(2)+",丙,城关镇",
				"H2,"+person(3)+",,城关镇",
				"H3,12345,丁,城关镇")})
		if err != nil {
			t.Fatal(err)
		}
		gotBad := make([]string, 0, len(res.GetBadRows()))
		for _, b := range res.GetBadRows() {
			gotBad = append(gotBad, fmt.Sprintf("%d:%s", b.GetLine(), b.GetColumn()))
		}
		if wantBad := []string{"3:id_number", "5:name", "6:id_number"}; res.GetImported() || !slices.Equal(gotBad, wantBad) || res.GetBadRowCount() != 3 {
			t.Fatalf("bad import: imported %t, bad rows %q (%d), want refused with %q", res.GetImported(), gotBad, res.GetBadRowCount(), wantBad)
		}
		after, err := e.aud.ListImports(ctx, &dcv1.ListImportsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(after.GetImports()) != len(before.GetImports()) {
			t.Errorf("imports %d after a refused file, %d before", len(after.GetImports()), len(before.GetImports()))
		}
		e.wantNoNewClues(ctx, "2016-autumn", term, "run after a refused import")
	})

	t.Run("verify, two partial receipts, refund closed", func(t *testing.T) {
		var ineligible *dcv1.Clue
		for _, c := range clues {
			if c.GetKind() == "ineligible" {
				ineligible = c
			}
		}
		ids := []string{ineligible.GetClueId()}
		_, err := e.dc.VerifyClues(ctx, &dcv1.VerifyCluesRequest{ClueIds: ids, Findings: "未建档"})
		servicetest.WantCode(t, err, codes.FailedPrecondition, "assign")
		if _, err := e.dc.AssignClues(ctx, &dcv1.AssignCluesRequest{ClueIds: ids, Assignee: "dc1"}); err != nil {
			t.Fatal(err)
		}
		res, err := e.dc.VerifyClues(ctx, &dcv1.VerifyCluesRequest{ClueIds: ids, Findings: "入户核查: 非建档立卡户", Evidence: "走访记录 2017-10-12", Ineligible: true})
		if err != nil {
			t.Fatal(err)
		}
		refundID := res.GetClues()[0].GetRefundId()
		if refundID == "" || res.GetClues()[0].GetStatus() != dcv1.ClueStatus_CLUE_STATUS_VERIFIED {
			t.Fatalf("verified clue: %v", res.GetClues()[0])
		}
		_, err = e.dc.RecordReceipt(ctx, &dcv1.RecordReceiptRequest{RefundId: refundID, AmountFen: 20000, BankRef: "IN-0", Account: "OTHER"})
		servicetest.WantCode(t, err, codes.FailedPrecondition, "integrity account")
		r1, err := e.dc.RecordReceipt(ctx, &dcv1.RecordReceiptRequest{RefundId: refundID, AmountFen: 20000, BankRef: "IN-1", Account: integrity})
		if err != nil {
			t.Fatal(err)
		}
		if r1.GetStatus() != dcv1.RefundStatus_REFUND_STATUS_OPEN || r1.GetReceivedFen() != 20000 || r1.GetAmountFen() != 50000 {
			t.Fatalf("after the first receipt: %v", r1)
		}
		_, err = e.dc.RecordReceipt(ctx, &dcv1.RecordReceiptRequest{RefundId: refundID, AmountFen: 30001, BankRef: "IN-2", Account: integrity})
		servicetest.WantCode(t, err, codes.FailedPrecondition, "outstanding")
		if _, err := e.dc.RecordReceipt(ctx, &dcv1.RecordReceiptRequest{RefundId: refundID, AmountFen: 30000, BankRef: "IN-2", Account: integrity}); err != nil {
			t.Fatal(err)
		}
		// A retry of the same receipt changes nothing.
		if _, err := e.dc.RecordReceipt(ctx, &dcv1.RecordReceiptRequest{RefundId: refundID, AmountFen: 30000, BankRef: "IN-2", Account: integrity}); err != nil {
			t.Fatal(err)
		}
		r, err := e.aud.GetRefund(ctx, &dcv1.GetRefundRequest{RefundId: refundID})
		if err != nil {
			t.Fatal(err)
		}
		if r.GetStatus() != dcv1.RefundStatus_REFUND_STATUS_CLOSED || r.GetReceivedFen() != 50000 || len(r.GetReceipts()) != 2 ||
			!slices.Equal(ineligible.GetRecordIds(), []string{r.GetRecordId()}) {
			t.Fatalf("refund after two receipts: %v", r)
		}
		// The list carries each refund's receipts too (the console's refunds page shows them).
		list, err := e.aud.ListRefunds(ctx, &dcv1.ListRefundsRequest{Status: dcv1.RefundStatus_REFUND_STATUS_CLOSED})
		if err != nil {
			t.Fatal(err)
		}
		var listed *dcv1.Refund
		for _, lr := range list.GetRefunds() {
			if lr.GetRefundId() == refundID {
				listed = lr
			}
		}
		if listed == nil || len(listed.GetReceipts()) != 2 || listed.GetReceipts()[0].GetBankRef() != "IN-1" || listed.GetReceipts()[0].GetAmountFen() != 20000 ||
			listed.GetReceipts()[1].GetBankRef() != "IN-2" || listed.GetReceipts()[1].GetAmountFen() != 30000 {
			t.Fatalf("listed refund %s: %v, want receipts IN-1 200.00 and IN-2 300.00", refundID, listed)
		}
		intact, types := e.trailTypes(ctx, ineligible.GetClueId())
		if wantTypes := []string{events.TypeClueRaised, events.TypeClueAssigned, events.TypeClueVerified, events.TypeRefundOpened}; !intact || !slices.Equal(types, wantTypes) {
			t.Fatalf("trail intact %t, %q; want intact %q", intact, types, wantTypes)
		}
	})

	t.Run("missed student: back-pay ordered, applied for and paid", func(t *testing.T) {
		var missed *dcv1.Clue
		for _, c := range clues {
			if c.GetKind() == "missed" && c.GetStudentIdMasked() == m(16) {
				missed = c
			}
		}
		ids := []string{missed.GetClueId()}
		if _, err := e.dc.AssignClues(ctx, &dcv1.AssignCluesRequest{ClueIds: ids, Assignee: "dc1"}); err != nil {
			t.Fatal(err)
		}
		res, err := e.dc.VerifyClues(ctx, &dcv1.VerifyCluesRequest{ClueIds: ids, Findings: "建档立卡户，在校未获资助", Evidence: "学籍与建档名单比对"})
		if err != nil {
			t.Fatal(err)
		}
		if c := res.GetClues()[0]; c.GetBackPayStatus() != "opened" || c.GetRefundId() != "" {
			t.Fatalf("verified missed clue: back-pay %q, refund %q; want the back-pay opened and no refund", c.GetBackPayStatus(), c.GetRefundId())
		}
		// The order the application service will hold: S2's, for the
		// student and term the comparison found and the program a
		// registry child of the stage is entitled to, in fen.
		got := servicetest.Events(t, e.js, events.TypeBackPayOpened, 1, func(ev *eventsv1.Event) bool {
			return ev.GetBackPayOpened().GetClueId() == missed.GetClueId()
		})[0]
		o := got.GetBackPayOpened()
		if o.GetSchoolCode() != "S2" || got.GetSchoolCode() != "S2" || o.GetProgramCode() != "POVERTY_EXTENSION" || o.GetTerm() != term ||
			o.GetStudentIdHash() != h.Hash(person(16)) || o.GetStudentIdMasked() != m(16) || o.GetAmountFen() != 50000 {
			t.Fatalf("back-pay order event: %v", o)
		}

		// S2 applies for the student as back-pay and the chain pays it.
		backPay := chainEvents(h, payment{person: 16, school: "S2", program: "POVERTY_EXTENSION", stage: "primary", term: term, paidFen: 50000})
		backPay[0].GetApplicationSubmitted().BackPayClueId = missed.GetClueId()
		publish(backPay[0])
		servicetest.Eventually(t, func() error {
			c, err := e.aud.GetClue(ctx, &dcv1.GetClueRequest{ClueId: missed.GetClueId()})
			if err != nil {
				return err
			}
			if c.GetBackPayStatus() != "applied" || c.GetBackPayApplicationId() != backPay[0].GetApplicationId() {
				return fmt.Errorf("back-pay %q for %q, want applied for %s", c.GetBackPayStatus(), c.GetBackPayApplicationId(), backPay[0].GetApplicationId())
			}
			return nil
		})
		// The payment, delivered twice, moves it once.
		publish(backPay[1], backPay[1])
		servicetest.Eventually(t, func() error {
			c, err := e.aud.GetClue(ctx, &dcv1.GetClueRequest{ClueId: missed.GetClueId()})
			if err != nil {
				return err
			}
			if c.GetBackPayStatus() != "paid" {
				return fmt.Errorf("back-pay %q, want paid", c.GetBackPayStatus())
			}
			return nil
		})
		intact, types := e.trailTypes(ctx, missed.GetClueId())
		wantTypes := []string{events.TypeClueRaised, events.TypeClueAssigned, events.TypeClueVerified, events.TypeBackPayOpened,
			events.TypeApplicationSubmitted, events.TypePaymentSucceeded}
		if !intact || !slices.Equal(types, wantTypes) {
			t.Fatalf("trail intact %t, %q; want intact %q", intact, types, wantTypes)
		}
		// Now paid for that term, the student is missed no more, and a
		// re-run adds no clue.
		e.wantNoNewClues(ctx, "2016-autumn", term, "run after the back-pay")
	})

	t.Run("a missed clue without a school cannot order back-pay", func(t *testing.T) {
		c, err := e.dc.RaiseClue(ctx, &dcv1.RaiseClueRequest{Kind: "missed", StudentIdNumber: person(15), Term: term, Detail: "举报：未获资助"})
		if err != nil {
			t.Fatal(err)
		}
		ids := []string{c.GetClueId()}
		if _, err := e.dc.AssignClues(ctx, &dcv1.AssignCluesRequest{ClueIds: ids, Assignee: "dc1"}); err != nil {
			t.Fatal(err)
		}
		_, err = e.dc.VerifyClues(ctx, &dcv1.VerifyCluesRequest{ClueIds: ids, Findings: "查实"})
		servicetest.WantCode(t, err, codes.FailedPrecondition, "school, program and term")
		after, err := e.aud.GetClue(ctx, &dcv1.GetClueRequest{ClueId: c.GetClueId()})
		if err != nil {
			t.Fatal(err)
		}
		if after.GetStatus() != dcv1.ClueStatus_CLUE_STATUS_ASSIGNED || after.GetBackPayStatus() != "" {
			t.Fatalf("refused verification changed the clue: %v", after)
		}
	})
}
