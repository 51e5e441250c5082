package service_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/grpcx"
	"github.com/edubureau/studentaid/pkg/review/reviewtest"
	"github.com/edubureau/studentaid/pkg/service/servicetest"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	schoolreviewv1 "github.com/edubureau/studentaid/proto/gen/aid/schoolreview/v1"
	"github.com/edubureau/studentaid/services/school-review/internal/app"
	srservice "github.com/edubureau/studentaid/services/school-review/internal/service"
)

const policyAdmin = "policy-admin-1"

// tenAM is 10:00 China Standard Time on the day.
func tenAM(y int, m time.Month, d int) time.Time {
	return time.Date(y, m, d, 10, 0, 0, 0, time.FixedZone("CST", 8*3600))
}

// startAt runs the service with cfg and its clock stopped at now.
func (e *env) startAt(t *testing.T, cfg app.Config, now time.Time) servicetest.Running {
	t.Helper()
	return e.Start(t, srservice.SpecWith(srservice.Options{Config: &cfg, Now: func() time.Time { return now }}))
}

func days(dates ...string) []*schoolreviewv1.CalendarDay {
	out := make([]*schoolreviewv1.CalendarDay, len(dates))
	for i, d := range dates {
		out[i] = &schoolreviewv1.CalendarDay{Date: d, Name: "国庆节"}
	}
	return out
}

func dates(ds []*schoolreviewv1.CalendarDay) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.GetDate()
	}
	return out
}

// The service starts with pkg/calendar's years, once however often it starts.
func TestWorkingCalendarIsSeeded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, longNotice)
	e.start(t, longNotice) // a second replica seeds nothing more
	ctx := reviewtest.Ctx(t)
	e.WaitCount(t, `SELECT count(*) FROM calendar_versions`, 6)
	e.WaitCount(t, `SELECT count(DISTINCT year) FROM calendar_days`, 6)

	cal, err := e.client(t, reviewer, auth.RoleSchoolReviewer, schoolA).GetWorkingCalendar(ctx, &schoolreviewv1.GetWorkingCalendarRequest{Year: 2017})
	if err != nil {
		t.Fatal(err)
	}
	// 2017's notice: the swapped working days, and the National Day break.
	if got, want := dates(cal.GetWorkingDays()), []string{"2017-01-22", "2017-02-04", "2017-04-01", "2017-05-27", "2017-09-30"}; !slices.Equal(got, want) {
		t.Fatalf("2017 working days %v, want %v", got, want)
	}
	hol := dates(cal.GetHolidays())
	for _, d := range []string{"2016-12-31", "2017-01-02", "2017-10-01", "2017-10-04", "2017-10-08"} {
		if !slices.Contains(hol, d) {
			t.Errorf("2017 holidays %v lack %s", hol, d)
		}
	}
	if cal.GetVersion() != 1 || len(cal.GetHistory()) != 1 || cal.GetHistory()[0].GetChangedBy() != app.SystemActor ||
		len(cal.GetHistory()[0].GetHolidaysAdded()) != len(hol) {
		t.Fatalf("2017 version %d history %v", cal.GetVersion(), cal.GetHistory())
	}
	// Each seeded year was announced once.
	seeded := servicetest.Events(t, e.JS, events.TypeCalendarChanged, 6, nil)
	years := make([]int32, 0, len(seeded))
	for _, ev := range seeded {
		years = append(years, ev.GetCalendarChanged().GetYear())
	}
	slices.Sort(years)
	if !slices.Equal(years, []int32{2015, 2016, 2017, 2018, 2025, 2026}) {
		t.Fatalf("seeded years announced %v", years)
	}

	// A year without data answers version 0, no days.
	none, err := e.client(t, "auditor-1", auth.RoleAuditor, auth.OrgBureau).GetWorkingCalendar(ctx, &schoolreviewv1.GetWorkingCalendarRequest{Year: 2019})
	if err != nil {
		t.Fatal(err)
	}
	if none.GetVersion() != 0 || len(none.GetHolidays())+len(none.GetWorkingDays())+len(none.GetHistory()) != 0 {
		t.Fatalf("2019 = %v, want empty", none)
	}
	_, err = e.client(t, reviewer, auth.RoleSchoolReviewer, schoolA).GetWorkingCalendar(ctx, &schoolreviewv1.GetWorkingCalendarRequest{Year: 1999})
	if f := servicetest.ViolationFields(servicetest.WantCode(t, err, codes.InvalidArgument)); !slices.Equal(f, []string{"year"}) {
		t.Fatalf("violations %v", f)
	}
}

// The 2019 National Day break as the State Council set it: 1–7 October off,
// Sunday 29 September and Saturday 12 October worked.
var nationalDay2019 = &schoolreviewv1.SetWorkingCalendarRequest{
	Year:        2019,
	Holidays:    days("2019-10-01", "2019-10-02", "2019-10-03", "2019-10-04", "2019-10-05", "2019-10-06", "2019-10-07"),
	WorkingDays: days("2019-09-29", "2019-10-12"),
	Reason:      "国务院办公厅关于2019年部分节假日安排的通知",
}

func TestSetWorkingCalendar(t *testing.T) {
	t.Parallel()
	e := prepare(t)
	// Monday 30 September 2019, 10:00.
	run := e.startAt(t, longNotice, tenAM(2019, 9, 30))
	ctx := reviewtest.Ctx(t)
	admin := e.client(t, policyAdmin, auth.RolePolicyAdmin, auth.OrgBureau)
	e.WaitCount(t, `SELECT count(*) FROM calendar_versions`, 6)

	// Before 2019 is set, a notice counts Monday to Friday: 1–4 Oct, 7 Oct;
	// the guess is counted and the year named.
	early := e.submit(t, hsGrant, 1)[0]
	rev := e.client(t, reviewer, auth.RoleSchoolReviewer, schoolA)
	resp, err := rev.Decide(ctx, &schoolreviewv1.DecideRequest{Decisions: []*schoolreviewv1.Decision{approve(early, "difficult")}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := resp.GetReviews()[0].GetNoticeEndsAt().AsTime(), tenAM(2019, 10, 7); !got.Equal(want) {
		t.Fatalf("notice without 2019's calendar ends %s, want %s", got, want)
	}
	if got := metric(t, run.HTTPAddr, `aid_calendar_year_missing_total{year="2019"}`); got != "1" {
		t.Fatalf("aid_calendar_year_missing_total{year=2019} = %q, want 1", got)
	}

	// Only the policy administrator may set it; the others are refused and
	// nothing is written.
	for _, who := range []struct {
		user string
		role auth.Role
		org  string
	}{
		{reviewer, auth.RoleSchoolReviewer, schoolA},
		{officer, auth.RoleSchoolOfficer, schoolA},
		{"bureau-1", auth.RoleBureauReviewer, auth.OrgBureau},
		{"data-1", auth.RoleDataOfficer, auth.OrgBureau},
		{"auditor-1", auth.RoleAuditor, auth.OrgBureau},
		{"ops-1", auth.RoleOps, auth.OrgIT},
	} {
		_, err := e.client(t, who.user, who.role, who.org).SetWorkingCalendar(ctx, nationalDay2019)
		servicetest.WantCode(t, err, codes.PermissionDenied)
	}

	// Bad calendars are refused field by field, with nothing written.
	tooMany := make([]string, 61)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf("2019-%02d-%02d", 1+i/28, 1+i%28)
	}
	for _, tc := range []struct {
		name   string
		req    *schoolreviewv1.SetWorkingCalendarRequest
		fields []string
	}{
		{"a swapped working day on a weekday", &schoolreviewv1.SetWorkingCalendarRequest{Year: 2019, Holidays: days("2019-10-01"),
			WorkingDays: days("2019-10-08"), Reason: "r"}, []string{"working_days[0].date"}},
		{"a holiday on a swapped day", &schoolreviewv1.SetWorkingCalendarRequest{Year: 2019, Holidays: days("2019-10-01", "2019-09-29"),
			WorkingDays: days("2019-09-29"), Reason: "r"}, []string{"working_days[0].date"}},
		{"a date outside the year", &schoolreviewv1.SetWorkingCalendarRequest{Year: 2019, Holidays: days("2019-10-01", "2020-01-01"), Reason: "r"},
			[]string{"holidays[1].date"}},
		{"too many days", &schoolreviewv1.SetWorkingCalendarRequest{Year: 2019, Holidays: days(tooMany...), Reason: "r"}, []string{"holidays"}},
		{"not a date", &schoolreviewv1.SetWorkingCalendarRequest{Year: 2019, Holidays: days("2019-10-1"), Reason: "r"}, []string{"holidays[0].date"}},
		{"no holidays, no reason", &schoolreviewv1.SetWorkingCalendarRequest{Year: 2019}, []string{"holidays", "reason"}},
		{"a holiday listed twice", &schoolreviewv1.SetWorkingCalendarRequest{Year: 2019, Holidays: days("2019-10-01", "2019-10-01"), Reason: "r"},
			[]string{"holidays[1].date"}},
	} {
		_, err := admin.SetWorkingCalendar(ctx, tc.req)
		st := servicetest.WantCode(t, err, codes.InvalidArgument)
		if f := servicetest.ViolationFields(st); !slices.Equal(f, tc.fields) {
			t.Errorf("%s: violations %v, want %v", tc.name, f, tc.fields)
		}
	}
	e.WaitCount(t, `SELECT count(*) FROM calendar_versions WHERE year = 2019`, 0)
	e.WaitCount(t, `SELECT count(*) FROM calendar_days WHERE year = 2019`, 0)
	e.WaitCount(t, `SELECT count(*) FROM audit_log WHERE method = 'SetWorkingCalendar'`, 0)
	if n := servicetest.StreamCount(t, e.JS, events.TypeCalendarChanged); n != 6 {
		t.Fatalf("%d calendar.changed events after refusals, want the 6 seeded", n)
	}

	// The administrator sets 2019: version 1, recorded and announced.
	got, err := admin.SetWorkingCalendar(ctx, nationalDay2019)
	if err != nil {
		t.Fatal(err)
	}
	if got.GetVersion() != 1 || !slices.Equal(dates(got.GetHolidays()), dates(nationalDay2019.GetHolidays())) ||
		!slices.Equal(dates(got.GetWorkingDays()), []string{"2019-09-29", "2019-10-12"}) {
		t.Fatalf("set = %v", got)
	}
	h := got.GetHistory()[0]
	if h.GetChangedBy() != policyAdmin || h.GetChangedByRole() != string(auth.RolePolicyAdmin) || h.GetReason() != nationalDay2019.GetReason() ||
		len(h.GetHolidaysAdded()) != 7 || len(h.GetWorkingDaysAdded()) != 2 || len(h.GetHolidaysRemoved()) != 0 {
		t.Fatalf("history %v", h)
	}

	// A correction adds Mid-Autumn (Fri 13 Sep) as version 2, recording only what changed.
	fix := &schoolreviewv1.SetWorkingCalendarRequest{
		Year:        2019,
		Holidays:    append(days("2019-09-13"), nationalDay2019.GetHolidays()...),
		WorkingDays: nationalDay2019.GetWorkingDays(),
		Reason:      "中秋节 was missing",
	}
	got, err = admin.SetWorkingCalendar(ctx, fix)
	if err != nil {
		t.Fatal(err)
	}
	if h := got.GetHistory(); got.GetVersion() != 2 || len(h) != 2 || !slices.Equal(dates(h[0].GetHolidaysAdded()), []string{"2019-09-13"}) ||
		len(h[0].GetHolidaysRemoved())+len(h[0].GetWorkingDaysAdded())+len(h[0].GetWorkingDaysRemoved()) != 0 || h[1].GetVersion() != 1 {
		t.Fatalf("after the correction: %v", got)
	}
	e.WaitCount(t, `SELECT count(*) FROM calendar_versions WHERE year = 2019 AND changed_by = $1`, 2, policyAdmin)
	e.WaitCount(t, `SELECT count(*) FROM calendar_days WHERE year = 2019 AND version = 2`, 10)
	e.WaitCount(t, `SELECT count(*) FROM audit_log WHERE method = 'SetWorkingCalendar' AND outcome = 'done' AND user_id = $1`, 2, policyAdmin)
	announced := servicetest.Events(t, e.JS, events.TypeCalendarChanged, 2, func(ev *eventsv1.Event) bool {
		return ev.GetCalendarChanged().GetYear() == 2019
	})
	if b := announced[1].GetCalendarChanged(); b.GetVersion() != 2 || len(b.GetHolidays()) != 8 || b.GetReason() != fix.GetReason() ||
		announced[1].GetActor().GetUserId() != policyAdmin {
		t.Fatalf("second calendar.changed = %v", announced[1])
	}
	// The next approval counts on the new calendar at once: 1–7 Oct off,
	// then 8, 9, 10, 11 Oct and the swapped Saturday 12 Oct.
	late := e.submit(t, hsGrant, 1)[0]
	resp, err = rev.Decide(ctx, &schoolreviewv1.DecideRequest{Decisions: []*schoolreviewv1.Decision{approve(late, "difficult")}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := resp.GetReviews()[0].GetNoticeEndsAt().AsTime(), tenAM(2019, 10, 12); !got.Equal(want) {
		t.Fatalf("notice on 2019's calendar ends %s, want %s", got, want)
	}
	// The notice approved before keeps its end.
	r, err := rev.GetReview(ctx, &schoolreviewv1.GetReviewRequest{ApplicationId: early})
	if err != nil {
		t.Fatal(err)
	}
	if !r.GetNoticeEndsAt().AsTime().Equal(tenAM(2019, 10, 7)) {
		t.Fatalf("earlier notice now ends %s", r.GetNoticeEndsAt().AsTime())
	}
}

// Another replica picks an edit up on its next reload.
func TestCalendarEditReachesOtherReplicas(t *testing.T) {
	t.Parallel()
	e := prepare(t)
	cfg := app.Config{NoticePeriod: longNotice.NoticePeriod, CalendarRefresh: 100 * time.Millisecond}
	now := tenAM(2019, 9, 30)
	a := e.startAt(t, cfg, now)
	b := e.startAt(t, cfg, now)
	ctx := reviewtest.Ctx(t)
	dial := func(addr, user string, role auth.Role, org string) schoolreviewv1.SchoolReviewServiceClient {
		conn, err := grpcx.Dial(addr, e.Keys.Token(t, user, role, org))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		return schoolreviewv1.NewSchoolReviewServiceClient(conn)
	}
	if _, err := dial(a.GRPCAddr, policyAdmin, auth.RolePolicyAdmin, auth.OrgBureau).SetWorkingCalendar(ctx, nationalDay2019); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // about ten reloads of b
	id := e.submit(t, hsGrant, 1)[0]
	resp, err := dial(b.GRPCAddr, reviewer, auth.RoleSchoolReviewer, schoolA).Decide(ctx,
		&schoolreviewv1.DecideRequest{Decisions: []*schoolreviewv1.Decision{approve(id, "difficult")}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := resp.GetReviews()[0].GetNoticeEndsAt().AsTime(), tenAM(2019, 10, 12); !got.Equal(want) {
		t.Fatalf("replica b counts the notice to %s, want %s", got, want)
	}
}

// Five working days from Friday 29 September 2017 10:00: Saturday the 30th
// is worked, 1–8 October are the National Day and Mid-Autumn holidays, then
// 9, 10, 11 and 12 October: the notice ends on Thursday 12 October at 10:00.
func TestNoticeAcrossNationalDay2017(t *testing.T) {
	t.Parallel()
	e := prepare(t)
	e.startAt(t, longNotice, tenAM(2017, 9, 29))
	ctx := reviewtest.Ctx(t)
	id := e.submit(t, hsGrant, 1)[0]
	resp, err := e.client(t, reviewer, auth.RoleSchoolReviewer, schoolA).Decide(ctx,
		&schoolreviewv1.DecideRequest{Decisions: []*schoolreviewv1.Decision{approve(id, "difficult")}})
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2017, 10, 12, 2, 0, 0, 0, time.UTC) // 10:00 CST
	if got := resp.GetReviews()[0].GetNoticeEndsAt().AsTime(); !got.Equal(want) {
		t.Fatalf("notice ends %s, want %s", got, want)
	}
	approved := e.Outputs(t, events.TypeSchoolReviewApproved, 1, id)[id][0]
	if got := approved.GetSchoolReviewApproved().GetNoticeEndsAt().AsTime(); !got.Equal(want) {
		t.Fatalf("approved event: notice ends %s, want %s", got, want)
	}
}

// A submission computed under a pinned policy is approved at that policy's
// tiers, not the catalog's (150000 / 100000 / 50000).
func TestApprovalTakesThePinnedTiers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, longNotice)
	ctx := reviewtest.Ctx(t)
	pinned := func(t testing.TB, appID string) *eventsv1.Event {
		t.Helper()
		ev := hsGrant.event(t, appID)
		body := ev.GetApplicationSubmitted()
		body.PolicyVersion, body.RegisterVersion = 3, 9
		body.TierFen = map[string]int64{"especially_difficult": 140000, "difficult": 110000, "generally_difficult": 60000}
		return ev
	}
	ids := e.Arrive(t, 3, pinned)
	e.WaitCount(t, `SELECT count(*) FROM review WHERE policy_version = 3 AND register_version = 9
		AND tier_especially_difficult_fen = 140000 AND tier_difficult_fen = 110000 AND tier_generally_difficult_fen = 60000`, 3)
	resp, err := e.client(t, reviewer, auth.RoleSchoolReviewer, schoolA).Decide(ctx, &schoolreviewv1.DecideRequest{Decisions: []*schoolreviewv1.Decision{
		approve(ids[0], "difficult"), approve(ids[1], "especially_difficult"), approve(ids[2], "generally_difficult"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []int64{110000, 140000, 60000} {
		if got := resp.GetReviews()[i].GetAmountFen(); got != want {
			t.Errorf("decision %d: amount %d, want %d", i, got, want)
		}
	}
	out := e.Outputs(t, events.TypeSchoolReviewApproved, 3, ids...)
	if got := out[ids[1]][0].GetSchoolReviewApproved().GetAmountFen(); got != 140000 {
		t.Fatalf("approved event of the especially difficult one: %d fen, want 140000", got)
	}
}

// metric reads one sample of the service's /metrics.
func metric(t *testing.T, httpAddr, series string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+httpAddr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}
