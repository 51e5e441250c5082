package service_test

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/grpcx"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
)

// policyAdmin returns a policy service client acting as policy
// administrator user.
func (e *env) policyAdmin(user string) applicationv1.PolicyServiceClient {
	e.t.Helper()
	return e.policyClient(user, auth.RolePolicyAdmin, auth.OrgBureau)
}

func (e *env) policyClient(user string, role auth.Role, org string) applicationv1.PolicyServiceClient {
	e.t.Helper()
	conn, err := grpcx.Dial(e.run.GRPCAddr, e.keys.Token(e.t, user, role, org))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = conn.Close() })
	return applicationv1.NewPolicyServiceClient(conn)
}

// testSchools are the schools the tests submit for beside the seed
// register's: each a rural boarding school teaching every stage but
// university, with tuition, so that any test application fits it.
func testSchools() []string {
	codes := []string{"SA", "SB", "SI", "SJ", "SK", "SBIG", "PR1", "LA", "LB"}
	for i := range 40 {
		codes = append(codes, fmt.Sprintf("SINV%02d", i))
	}
	for i := range 20 {
		codes = append(codes, fmt.Sprintf("SR%d", i))
	}
	return codes
}

// publishDocument drafts doc as a version of kind by one policy
// administrator and has another approve it, through the API.
func (e *env) publishDocument(t *testing.T, kind string, doc map[string]any) *applicationv1.PolicyVersion {
	t.Helper()
	ctx := context.Background()
	s, err := structpb.NewStruct(doc)
	if err != nil {
		t.Fatal(err)
	}
	draft, err := e.policyAdmin("policy-admin-1").DraftPolicyVersion(ctx, &applicationv1.DraftPolicyVersionRequest{Kind: kind, Document: s})
	if err != nil {
		t.Fatalf("draft %s: %v", kind, err)
	}
	v, err := e.policyAdmin("policy-admin-2").ApprovePolicyVersion(ctx, &applicationv1.ApprovePolicyVersionRequest{Kind: kind, Number: draft.GetNumber(), Sha256: draft.GetSha256()})
	if err != nil {
		t.Fatalf("approve %s %d: %v", kind, draft.GetNumber(), err)
	}
	return v
}

// currentDocument returns the document of the newest published version of
// kind, as a map to edit.
func (e *env) currentDocument(t *testing.T, kind string) (map[string]any, int64) {
	t.Helper()
	ctx := context.Background()
	admin := e.policyAdmin("policy-admin-1")
	list, err := admin.ListPolicyVersions(ctx, &applicationv1.ListPolicyVersionsRequest{Kind: kind})
	if err != nil {
		t.Fatal(err)
	}
	var newest int64
	for _, v := range list.GetVersions() {
		if v.GetStatus() == "PUBLISHED" && v.GetNumber() > newest {
			newest = v.GetNumber()
		}
	}
	v, err := admin.GetPolicyVersion(ctx, &applicationv1.GetPolicyVersionRequest{Kind: kind, Number: newest})
	if err != nil {
		t.Fatal(err)
	}
	return v.GetDocument().AsMap(), newest
}

// registerTestSchools publishes a correction of the school register that
// adds testSchools, as the bureau would.
func (e *env) registerTestSchools(t *testing.T) {
	t.Helper()
	doc, newest := e.currentDocument(t, "schools")
	schools, _ := doc["schools"].([]any)
	for _, code := range testSchools() {
		schools = append(schools, map[string]any{
			"code": code, "name": "测试学校" + code, "region": "420106", "rural": true, "boarding": true, "submitting_org": code,
			"stages":      []any{"preschool", "primary", "junior", "high_school", "vocational"},
			"tuition_fen": map[string]any{"high_school": 85000, "vocational": 107500},
		})
	}
	doc["schools"] = schools
	doc["corrects"] = newest
	doc["summary"] = "test schools for the application service's tests"
	e.publishDocument(t, "schools", doc)
}
