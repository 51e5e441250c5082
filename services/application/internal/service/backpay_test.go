package service_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"

	"github.com/edubureau/studentaid/internal/devtools/testenv"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/idnumber"
	"github.com/edubureau/studentaid/pkg/service/servicetest"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
)

// TestBackPay follows a missed student's back-pay order from the data
// office's event to the one application that may fulfil it: the order is
// the school's alone, for its student, program and term, used once.
func TestBackPay(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	h := testenv.Hasher(t, "")
	missed, other, third := newStudent(), newStudent(), newStudent()
	clue := uuid.NewString()
	sa, sb := e.officer("SA"), e.officer("SB")

	backPay := func(s student, clueID string) *applicationv1.NewApplication {
		a := boarding(s)
		a.BackPayClueId = clueID
		return a
	}
	refused := func(t *testing.T, c applicationv1.ApplicationServiceClient, school string, a *applicationv1.NewApplication, wantDesc string) {
		t.Helper()
		_, err := c.SubmitApplications(ctx, &applicationv1.SubmitApplicationsRequest{SchoolCode: school, Term: term,
			Applications: []*applicationv1.NewApplication{a}})
		st := wantCode(t, err, codes.FailedPrecondition)
		if r := rule(st); r != "back-pay-order-unusable" {
			t.Fatalf("reason %q, want back-pay-order-unusable", r)
		}
		if d := violations(st)["applications[0].back_pay_clue_id"]; !strings.Contains(d, wantDesc) {
			t.Fatalf("violation %q, want it to say %q", d, wantDesc)
		}
	}

	// Before the order has arrived nothing can fulfil it.
	refused(t, sa, "SA", backPay(missed, clue), "is not a back-pay order of school SA")

	order := events.MustNew(time.Date(2017, time.October, 9, 8, 0, 0, 0, time.UTC),
		events.Actor("dc1", string(auth.RoleDataOfficer), auth.OrgBureau),
		events.Keys{SchoolCode: "SA", ProgramCode: "BOARDING_SUBSIDY", Term: term},
		&eventsv1.BackPayOpened{ClueId: clue, SchoolCode: "SA", ProgramCode: "BOARDING_SUBSIDY", Term: term,
			StudentIdHash: h.Hash(missed.ID), StudentIdMasked: idnumber.Mask(missed.ID), AmountFen: 50000})
	e.publish(t, order, order.GetEventId())
	servicetest.Eventually(t, func() error {
		res, err := sa.ListBackPayOrders(ctx, &applicationv1.ListBackPayOrdersRequest{SchoolCode: "SA", OpenOnly: true})
		if err != nil {
			return err
		}
		if len(res.GetOrders()) != 1 {
			return fmt.Errorf("%d open orders, want 1", len(res.GetOrders()))
		}
		return nil
	})
	res, err := sa.ListBackPayOrders(ctx, &applicationv1.ListBackPayOrdersRequest{SchoolCode: "SA"})
	if err != nil {
		t.Fatal(err)
	}
	if o := res.GetOrders()[0]; o.GetClueId() != clue || o.GetProgramCode() != "BOARDING_SUBSIDY" || o.GetTerm() != term ||
		o.GetStudentIdMasked() != idnumber.Mask(missed.ID) || o.GetEstimatedAmountFen() != 50000 || o.GetApplicationId() != "" ||
		!o.GetOpenedAt().AsTime().Equal(order.GetOccurredAt().AsTime()) {
		t.Fatalf("order: %v", o)
	}
	// Another school neither reads nor fulfils it.
	_, err = sb.ListBackPayOrders(ctx, &applicationv1.ListBackPayOrdersRequest{SchoolCode: "SA"})
	if st := wantCode(t, err, codes.PermissionDenied); rule(st) != "own-school-only" {
		t.Fatalf("reason %q, want own-school-only", rule(st))
	}
	refused(t, sb, "SB", backPay(missed, clue), "is not a back-pay order of school SB")
	// Not another student, not another program.
	refused(t, sa, "SA", backPay(other, clue), "is an order for student "+idnumber.Mask(missed.ID)+", not for this student")
	wrongProgram := hsGrant(missed)
	wrongProgram.BackPayClueId = clue
	refused(t, sa, "SA", wrongProgram, "is an order for BOARDING_SUBSIDY in "+term+", not for HS_NATIONAL_GRANT")
	_, err = sa.SubmitApplications(ctx, &applicationv1.SubmitApplicationsRequest{SchoolCode: "SA", Term: term,
		Applications: []*applicationv1.NewApplication{backPay(missed, "not-a-clue")}})
	if st := wantCode(t, err, codes.InvalidArgument); violations(st)["applications[0].back_pay_clue_id"] == "" {
		t.Fatalf("a malformed clue ID: %v", st.Details())
	}

	// The school submits the student as back-pay.
	got := submit(t, sa, "SA", backPay(missed, clue))[0]
	if got.GetBackPayClueId() != clue {
		t.Fatalf("back-pay application: back_pay_clue_id %q, want %s", got.GetBackPayClueId(), clue)
	}
	sub := e.outputEvents(t, events.TypeApplicationSubmitted, 1, func(ev *eventsv1.Event) bool {
		return ev.GetApplicationId() == got.GetApplicationId()
	})[0]
	if sub.GetApplicationSubmitted().GetBackPayClueId() != clue {
		t.Fatalf("submitted event: back_pay_clue_id %q, want %s", sub.GetApplicationSubmitted().GetBackPayClueId(), clue)
	}
	trail, err := sa.GetTrail(ctx, &applicationv1.GetTrailRequest{ApplicationId: got.GetApplicationId()})
	if err != nil {
		t.Fatal(err)
	}
	if r := trail.GetEvents()[0].GetReason(); r != "back-pay (补发) of verified missed-student clue "+clue {
		t.Fatalf("first trail entry's reason %q", r)
	}

	// Used once: not again, not by a redelivered order.
	refused(t, sa, "SA", backPay(third, clue), "is already fulfilled by application "+got.GetApplicationId())
	e.publish(t, order, "again-"+order.GetEventId())
	servicetest.AwaitConsumed(t, e.js, "application")
	res, err = sa.ListBackPayOrders(ctx, &applicationv1.ListBackPayOrdersRequest{SchoolCode: "SA"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.GetOrders()) != 1 || res.GetOrders()[0].GetApplicationId() != got.GetApplicationId() {
		t.Fatalf("orders after the redelivery: %v", res.GetOrders())
	}
	open, err := sa.ListBackPayOrders(ctx, &applicationv1.ListBackPayOrdersRequest{SchoolCode: "SA", OpenOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(open.GetOrders()) != 0 {
		t.Fatalf("open orders after the back-pay was submitted: %v", open.GetOrders())
	}
	if n := e.count(t, `SELECT count(*) FROM application.applications WHERE back_pay_clue_id = $1`, clue); n != 1 {
		t.Fatalf("%d applications name the clue, want 1", n)
	}
	// Every path that wrote a trail entry above fed the change feed with it.
	checkFeedMirrorsTrail(t, e)
}
