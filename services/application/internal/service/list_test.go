package service_test

import (
	"context"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/edubureau/studentaid/pkg/auth"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
	commonv1 "github.com/edubureau/studentaid/proto/gen/aid/common/v1"
)

func ids(apps []*applicationv1.Application) []string {
	out := make([]string, len(apps))
	for i, a := range apps {
		out[i] = a.GetApplicationId()
	}
	return out
}

func TestListIsolation(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := context.Background()
	var aIDs, bIDs []string
	for range 3 {
		aIDs = append(aIDs, ids(submit(t, e.officer("LA"), "LA", boarding(newStudent())))...)
	}
	for range 2 {
		bIDs = append(bIDs, ids(submit(t, e.officer("LB"), "LB", boarding(newStudent())))...)
	}
	slices.Reverse(aIDs) // newest first
	slices.Reverse(bIDs)

	list := func(c applicationv1.ApplicationServiceClient, req *applicationv1.ListApplicationsRequest) []string {
		t.Helper()
		resp, err := c.ListApplications(ctx, req)
		if err != nil {
			t.Fatalf("list %v: %v", req, err)
		}
		for _, a := range resp.GetApplications() {
			if a.GetStudentIdNumber() == "" || len(a.GetStudentIdNumber()) != 18 {
				t.Fatalf("bad student id %q", a.GetStudentIdNumber())
			}
		}
		return ids(resp.GetApplications())
	}
	bureau := e.client("bur-1", auth.RoleBureauReviewer, auth.OrgBureau)
	tests := []struct {
		name string
		c    applicationv1.ApplicationServiceClient
		req  *applicationv1.ListApplicationsRequest
		want []string
	}{
		{"officer A sees only A", e.officer("LA"), &applicationv1.ListApplicationsRequest{}, aIDs},
		{"officer A filtering by A", e.officer("LA"), &applicationv1.ListApplicationsRequest{SchoolCode: "LA"}, aIDs},
		{"reviewer B sees only B", e.client("rev-b", auth.RoleSchoolReviewer, "LB"), &applicationv1.ListApplicationsRequest{}, bIDs},
		{"school of no applications", e.officer("LC"), &applicationv1.ListApplicationsRequest{}, []string{}},
		{"bureau sees all", bureau, &applicationv1.ListApplicationsRequest{}, append(slices.Clone(bIDs), aIDs...)},
		{"bureau filters by school", bureau, &applicationv1.ListApplicationsRequest{SchoolCode: "LB"}, bIDs},
		{"finance sees all", e.client("fin-1", auth.RoleFinanceOfficer, auth.OrgFinance), &applicationv1.ListApplicationsRequest{}, append(slices.Clone(bIDs), aIDs...)},
		{"status filter", bureau, &applicationv1.ListApplicationsRequest{Status: commonv1.ApplicationStatus_APPLICATION_STATUS_SUBMITTED, SchoolCode: "LA"}, aIDs},
		{"status filter without matches", bureau, &applicationv1.ListApplicationsRequest{Status: commonv1.ApplicationStatus_APPLICATION_STATUS_PAID}, []string{}},
		{"program filter", bureau, &applicationv1.ListApplicationsRequest{ProgramCode: "BOARDING_SUBSIDY", Term: term, SchoolCode: "LA"}, aIDs},
		{"other program", bureau, &applicationv1.ListApplicationsRequest{ProgramCode: "PRESCHOOL_AID"}, []string{}},
		{"other term", bureau, &applicationv1.ListApplicationsRequest{Term: "2016-spring"}, []string{}},
	}
	for _, tt := range tests {
		if got := list(tt.c, tt.req); !slices.Equal(got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}

	// Another school's rows: refused in listings, not found one by one.
	_, err := e.officer("LA").ListApplications(ctx, &applicationv1.ListApplicationsRequest{SchoolCode: "LB"})
	if st := wantCode(t, err, codes.PermissionDenied); rule(st) != "own-school-only" {
		t.Fatalf("rule %q", rule(st))
	}
	for _, c := range []applicationv1.ApplicationServiceClient{e.officer("LA"), e.client("rev-a", auth.RoleSchoolReviewer, "LA")} {
		_, err = c.GetApplication(ctx, &applicationv1.GetApplicationRequest{ApplicationId: bIDs[0]})
		wantCode(t, err, codes.NotFound)
		_, err = c.GetTrail(ctx, &applicationv1.GetTrailRequest{ApplicationId: bIDs[0]})
		wantCode(t, err, codes.NotFound)
	}

	// Keyset pages, newest first, cover everything once.
	var paged []string
	token := ""
	pages := 0
	for {
		resp, err := bureau.ListApplications(ctx, &applicationv1.ListApplicationsRequest{PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		paged = append(paged, ids(resp.GetApplications())...)
		token = resp.GetNextPageToken()
		if token == "" {
			break
		}
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
	}
	if want := append(slices.Clone(bIDs), aIDs...); !slices.Equal(paged, want) || pages != 3 {
		t.Fatalf("pages %d: %v, want %v", pages, paged, want)
	}

	// Bad listings.
	first, err := bureau.ListApplications(ctx, &applicationv1.ListApplicationsRequest{PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		req   *applicationv1.ListApplicationsRequest
		field string
	}{
		{&applicationv1.ListApplicationsRequest{PageSize: 501}, "page_size"},
		{&applicationv1.ListApplicationsRequest{PageSize: -1}, "page_size"},
		{&applicationv1.ListApplicationsRequest{PageToken: "not a token"}, "page_token"},
		{&applicationv1.ListApplicationsRequest{PageToken: "eyJ0IjoiMjAxNy0wOS0wMVQwMDowMDowMFoiLCJpZCI6IngifQ"}, "page_token"},
		{&applicationv1.ListApplicationsRequest{PageSize: 2, PageToken: first.GetNextPageToken(), SchoolCode: "LA"}, "page_token"},
		{&applicationv1.ListApplicationsRequest{Term: "autumn"}, "term"},
		{&applicationv1.ListApplicationsRequest{ProgramCode: "NOPE"}, "program_code"},
		{&applicationv1.ListApplicationsRequest{Status: commonv1.ApplicationStatus(42)}, "status"},
	}
	for _, b := range bad {
		_, err := bureau.ListApplications(ctx, b.req)
		st := wantCode(t, err, codes.InvalidArgument)
		if _, ok := violations(st)[b.field]; !ok {
			t.Errorf("%v: violations %v, want %s", b.req, violations(st), b.field)
		}
	}
}
