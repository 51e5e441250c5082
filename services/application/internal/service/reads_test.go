package service_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/edubureau/studentaid/pkg/auth"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
)

// piiRead is one row of the record of personal data reads.
type piiRead struct {
	user, role, org, useCase, purpose string
	ids                               []string
}

// reads returns the recorded reads of user, oldest first.
func (e *env) reads(t *testing.T, user string) []piiRead {
	t.Helper()
	rows, err := e.pool.Query(context.Background(), `SELECT user_id, role, org, use_case, purpose, application_ids::text[]
		FROM pii_reads WHERE user_id = $1 ORDER BY id`, user)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []piiRead
	for rows.Next() {
		var r piiRead
		if err := rows.Scan(&r.user, &r.role, &r.org, &r.useCase, &r.purpose, &r.ids); err != nil {
			t.Fatal(err)
		}
		slices.Sort(r.ids)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestReadsOfPersonalDataAreRecorded: every answer with unmasked ID numbers
// and names leaves one record (who, which applications, the purpose); a
// listing in full needs a purpose; masked answers leave none; the record
// cannot be changed.
func TestReadsOfPersonalDataAreRecorded(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := context.Background()
	sts := []student{newStudent(), newStudent(), newStudent()}
	apps := submit(t, e.officer("PR1"), "PR1", boarding(sts[0]), boarding(sts[1]), boarding(sts[2]))
	var ids []string
	for _, a := range apps {
		ids = append(ids, a.GetApplicationId())
	}
	slices.Sort(ids)
	auditor := e.client("aud-1", auth.RoleAuditor, "AUDIT")
	data := e.client("data-1", auth.RoleDataOfficer, auth.OrgBureau)

	// A listing in full without a purpose is refused, and the refusal audited.
	for _, purpose := range []string{"", "   "} {
		_, err := auditor.ListApplications(ctx, &applicationv1.ListApplicationsRequest{SchoolCode: "PR1", Purpose: purpose})
		st := wantCode(t, err, codes.InvalidArgument)
		if rule(st) != "purpose-required" || violations(st)["purpose"] == "" {
			t.Fatalf("list without purpose %q: %v", purpose, st.Proto())
		}
	}
	if n := e.audited(t, "purpose-required", "aud-1"); n != 2 {
		t.Fatalf("%d audited refusals, want 2", n)
	}
	_, err := auditor.ListApplications(ctx, &applicationv1.ListApplicationsRequest{SchoolCode: "PR1", Purpose: strings.Repeat("查", 201)})
	wantCode(t, err, codes.InvalidArgument)
	if got := e.reads(t, "aud-1"); len(got) != 0 {
		t.Fatalf("refused listings recorded as reads: %v", got)
	}

	resp, err := auditor.ListApplications(ctx, &applicationv1.ListApplicationsRequest{SchoolCode: "PR1", Purpose: "纪检抽查 2017 秋季"})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range resp.GetApplications() {
		if !slices.ContainsFunc(sts, func(s student) bool { return s.ID == a.GetStudentIdNumber() && s.Name == a.GetStudentName() }) {
			t.Fatalf("auditor does not see the student in full: %v", a)
		}
	}
	if _, err := data.GetApplication(ctx, &applicationv1.GetApplicationRequest{ApplicationId: ids[1], Purpose: "比对线索核查"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.officer("PR1").GetApplication(ctx, &applicationv1.GetApplicationRequest{ApplicationId: ids[2]}); err != nil {
		t.Fatal(err)
	}
	// Masked answers are not reads of personal data.
	if _, err := e.client("bur-1", auth.RoleBureauReviewer, auth.OrgBureau).ListApplications(ctx, &applicationv1.ListApplicationsRequest{SchoolCode: "PR1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.officer("PR1").ListApplications(ctx, &applicationv1.ListApplicationsRequest{}); err != nil {
		t.Fatal(err)
	}

	checks := []struct {
		user string
		want []piiRead
	}{
		{"aud-1", []piiRead{{"aud-1", "auditor", "AUDIT", "ListApplications", "纪检抽查 2017 秋季", ids}}},
		{"data-1", []piiRead{{"data-1", "data_officer", auth.OrgBureau, "GetApplication", "比对线索核查", []string{ids[1]}}}},
		{"officer-PR1", []piiRead{{"officer-PR1", "school_officer", "PR1", "GetApplication", "", []string{ids[2]}}}},
		{"bur-1", nil},
	}
	for _, c := range checks {
		got := e.reads(t, c.user)
		if len(got) != len(c.want) {
			t.Fatalf("%s: reads %v, want %v", c.user, got, c.want)
		}
		for i := range got {
			w := c.want[i]
			if got[i].user != w.user || got[i].role != w.role || got[i].org != w.org || got[i].useCase != w.useCase ||
				got[i].purpose != w.purpose || !slices.Equal(got[i].ids, w.ids) {
				t.Errorf("%s: read %d = %+v, want %+v", c.user, i, got[i], w)
			}
		}
	}

	// The record is insert-only.
	for _, sql := range []string{`UPDATE pii_reads SET purpose = 'nothing to see'`, `DELETE FROM pii_reads`, `TRUNCATE pii_reads`} {
		_, err := e.pool.Exec(ctx, sql)
		if err == nil || !strings.Contains(err.Error(), "insert-only") {
			t.Errorf("%s: %v, want it refused", sql, err)
		}
	}
	if n := e.count(t, `SELECT count(*) FROM pii_reads`); n != 3 {
		t.Fatalf("%d reads recorded after the attempts to change them, want 3", n)
	}
}
