package web

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/policy"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
)

// policyKinds are the two policy documents (docs/policy.md).
var policyKinds = []string{"programs", "schools"}

// policyReaders may read the policy and its versions; only policy
// administrators draft and approve (the application service's rule).
var policyReaders = []auth.Role{auth.RolePolicyAdmin, auth.RoleBureauReviewer, auth.RoleAuditor}

// maxPolicyBytes bounds a drafted document (the school register is the
// larger of the two).
const maxPolicyBytes = 4 << 20

func (s *Server) policyRoutes(mux *http.ServeMux) {
	mux.Handle("GET /policy", s.role(s.policyPage, policyReaders...))
	mux.Handle("GET /policy/{kind}/versions/{number}", s.role(s.policyVersion, policyReaders...))
	mux.Handle("GET /policy/{kind}/draft", s.role(s.policyDraftPage, auth.RolePolicyAdmin))
	mux.Handle("POST /policy/{kind}/draft", s.role(s.policyDraft, auth.RolePolicyAdmin))
	mux.Handle("POST /policy/{kind}/versions/{number}/approve", s.role(s.policyApprove, auth.RolePolicyAdmin))
}

// programRow is one program of the policy in force, its amounts in stage
// and level order.
type programRow struct {
	P         *applicationv1.Program
	Name      string
	Standards []amountAt
	Tiers     []amountAt
}

type amountAt struct {
	Key string
	Fen int64
}

// stageOrder is the stages in schooling order, as the policy lists them.
var stageOrder = func() []string {
	out := make([]string, len(policy.Stages))
	for i, st := range policy.Stages {
		out[i] = string(st)
	}
	return out
}()

// ordered lists m's entries in order's order, then any others by name.
func ordered(m map[string]int64, order []string) []amountAt {
	out := make([]amountAt, 0, len(m))
	for _, k := range order {
		if v, ok := m[k]; ok {
			out = append(out, amountAt{k, v})
		}
	}
	var rest []string
	for k := range m {
		if !slices.Contains(order, k) {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	for _, k := range rest {
		out = append(out, amountAt{k, m[k]})
	}
	return out
}

// policyPage shows the programs in force for a term (rules and amounts)
// and the versions of both documents, drafts included.
func (s *Server) policyPage(q *request) {
	term := strings.TrimSpace(q.r.URL.Query().Get("term"))
	if term == "" {
		term = currentTerm(s.now())
	}
	ctx, err := q.ctx()
	if err != nil {
		q.upstreamError(err)
		return
	}
	progs, err := s.up.Applications.ListPrograms(ctx, &applicationv1.ListProgramsRequest{Term: term})
	if err != nil {
		q.upstreamError(err)
		return
	}
	rows := make([]programRow, len(progs.GetPrograms()))
	for i, p := range progs.GetPrograms() {
		name := p.GetName()
		if q.lang == "en" && p.GetNameEn() != "" {
			name = p.GetNameEn()
		}
		rows[i] = programRow{P: p, Name: name, Standards: ordered(p.GetStandardFen(), stageOrder), Tiers: ordered(p.GetTierFen(), levels)}
	}
	versions := map[string][]*applicationv1.PolicyVersion{}
	for _, k := range policyKinds {
		v, err := s.up.Policy.ListPolicyVersions(ctx, &applicationv1.ListPolicyVersionsRequest{Kind: k})
		if err != nil {
			q.upstreamError(err)
			return
		}
		list := v.GetVersions()
		// Newest first: the drafts waiting are on top.
		slices.SortFunc(list, func(a, b *applicationv1.PolicyVersion) int { return int(b.GetNumber() - a.GetNumber()) })
		versions[k] = list
	}
	q.render("policy.html", "policy.title", map[string]any{"Term": term, "InForce": progs, "Programs": rows,
		"ProgramVersions": versions["programs"], "SchoolVersions": versions["schools"], "Admin": q.sess.ID.Role == auth.RolePolicyAdmin})
}

// policyKindNumber reads the path's kind and version number; false when it
// already answered.
func policyKindNumber(q *request) (string, int64, bool) {
	kind := q.r.PathValue("kind")
	if !slices.Contains(policyKinds, kind) {
		q.fail(http.StatusNotFound, q.t("err.notfound"))
		return "", 0, false
	}
	n, err := strconv.ParseInt(q.r.PathValue("number"), 10, 64)
	if err != nil || n <= 0 {
		q.fail(http.StatusNotFound, q.t("err.notfound"))
		return "", 0, false
	}
	return kind, n, true
}

type policyVersionView struct {
	V        *applicationv1.PolicyVersion
	Document string
	Preview  *applicationv1.PreviewPolicyVersionResponse
	Admin    bool
	Problem  string
	Details  []string
}

func (s *Server) policyVersion(q *request) {
	kind, n, ok := policyKindNumber(q)
	if !ok {
		return
	}
	s.showPolicyVersion(q, kind, n, "", nil)
}

// showPolicyVersion shows one version with its document, and for a draft
// what it would change and the approval form.
func (s *Server) showPolicyVersion(q *request, kind string, n int64, problem string, details []string) {
	ctx, err := q.ctx()
	if err != nil {
		q.upstreamError(err)
		return
	}
	v, err := s.up.Policy.GetPolicyVersion(ctx, &applicationv1.GetPolicyVersionRequest{Kind: kind, Number: n})
	if err != nil {
		q.upstreamError(err)
		return
	}
	doc, err := json.MarshalIndent(v.GetDocument().AsMap(), "", "  ")
	if err != nil {
		q.fail(http.StatusInternalServerError, q.t("err.unavailable"))
		return
	}
	view := policyVersionView{V: v, Document: string(doc), Admin: q.sess.ID.Role == auth.RolePolicyAdmin, Problem: problem, Details: details}
	if v.GetStatus() == "DRAFT" {
		p, err := s.up.Policy.PreviewPolicyVersion(ctx, &applicationv1.PreviewPolicyVersionRequest{Kind: kind, Number: n})
		if err != nil {
			q.upstreamError(err)
			return
		}
		view.Preview = p
	}
	if problem != "" {
		q.w.WriteHeader(http.StatusBadRequest)
	}
	q.render("policy_version.html", "policy.version", view)
}

type policyDraftView struct {
	Kind     string
	Document string
	Base     int64
	Problem  string
	Details  []string
}

// policyDraftPage offers the latest version's document to edit into a new
// version.
func (s *Server) policyDraftPage(q *request) {
	kind := q.r.PathValue("kind")
	if !slices.Contains(policyKinds, kind) {
		q.fail(http.StatusNotFound, q.t("err.notfound"))
		return
	}
	ctx, err := q.ctx()
	if err != nil {
		q.upstreamError(err)
		return
	}
	list, err := s.up.Policy.ListPolicyVersions(ctx, &applicationv1.ListPolicyVersionsRequest{Kind: kind})
	if err != nil {
		q.upstreamError(err)
		return
	}
	view := policyDraftView{Kind: kind}
	var latest int64
	for _, v := range list.GetVersions() {
		if v.GetStatus() == "PUBLISHED" && v.GetNumber() > latest {
			latest = v.GetNumber()
		}
	}
	if latest > 0 {
		v, err := s.up.Policy.GetPolicyVersion(ctx, &applicationv1.GetPolicyVersionRequest{Kind: kind, Number: latest})
		if err != nil {
			q.upstreamError(err)
			return
		}
		doc, err := json.MarshalIndent(v.GetDocument().AsMap(), "", "  ")
		if err != nil {
			q.fail(http.StatusInternalServerError, q.t("err.unavailable"))
			return
		}
		view.Document, view.Base = string(doc), latest
	}
	q.render("policy_draft.html", "policy.draft", view)
}

// policyDraft records the edited document as a draft; the service checks
// it whole and lists every problem.
func (s *Server) policyDraft(q *request) {
	kind := q.r.PathValue("kind")
	if !slices.Contains(policyKinds, kind) {
		q.fail(http.StatusNotFound, q.t("err.notfound"))
		return
	}
	text := q.r.PostFormValue("document")
	again := func(problem string, details []string) {
		q.w.WriteHeader(http.StatusBadRequest)
		q.render("policy_draft.html", "policy.draft", policyDraftView{Kind: kind, Document: text, Problem: problem, Details: details})
	}
	if len(text) > maxPolicyBytes {
		again(q.t("upload.toolarge"), nil)
		return
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(text), &m); err != nil {
		again(q.t("policy.badjson")+": "+err.Error(), nil)
		return
	}
	doc, err := structpb.NewStruct(m)
	if err != nil {
		again(q.t("policy.badjson")+": "+err.Error(), nil)
		return
	}
	ctx, err := q.ctx()
	if err != nil {
		q.upstreamError(err)
		return
	}
	v, err := s.up.Policy.DraftPolicyVersion(ctx, &applicationv1.DraftPolicyVersionRequest{Kind: kind, Document: doc})
	if err != nil {
		if msg := explainStatus(err); msg != "" {
			again(msg, fieldViolations(err))
			return
		}
		q.upstreamError(err)
		return
	}
	http.Redirect(q.w, q.r, "/policy/"+kind+"/versions/"+strconv.FormatInt(v.GetNumber(), 10)+"?done=drafted", http.StatusSeeOther)
}

// policyApprove publishes a draft: the approver restates the SHA-256 it
// read; the service refuses the drafter and a digest that differs.
func (s *Server) policyApprove(q *request) {
	kind, n, ok := policyKindNumber(q)
	if !ok {
		return
	}
	sum := strings.ToLower(strings.TrimSpace(q.r.PostFormValue("sha256")))
	if sum == "" {
		s.showPolicyVersion(q, kind, n, q.t("policy.sha.missing"), nil)
		return
	}
	ctx, err := q.ctx()
	if err != nil {
		q.upstreamError(err)
		return
	}
	if _, err := s.up.Policy.ApprovePolicyVersion(ctx, &applicationv1.ApprovePolicyVersionRequest{Kind: kind, Number: n, Sha256: sum}); err != nil {
		if msg := explainStatus(err); msg != "" {
			s.showPolicyVersion(q, kind, n, msg, fieldViolations(err))
			return
		}
		q.upstreamError(err)
		return
	}
	http.Redirect(q.w, q.r, "/policy/"+kind+"/versions/"+strconv.FormatInt(n, 10)+"?done=approved", http.StatusSeeOther)
}

// fieldViolations are a refusal's field violations, "field: description"
// each (the service writes them for the officer).
func fieldViolations(err error) []string {
	var out []string
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				out = append(out, v.GetField()+": "+v.GetDescription())
			}
		}
	}
	return out
}
