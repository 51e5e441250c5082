package web

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/google/uuid"
	"google.golang.org/grpc/status"

	"github.com/edubureau/studentaid/pkg/auth"
	bureaureviewv1 "github.com/edubureau/studentaid/proto/gen/aid/bureaureview/v1"
	datacomparisonv1 "github.com/edubureau/studentaid/proto/gen/aid/datacomparison/v1"
	schoolreviewv1 "github.com/edubureau/studentaid/proto/gen/aid/schoolreview/v1"
)

// decideChunk is how many decisions one call carries; a call is all or
// nothing, so a refused chunk is retried item by item to tell which failed.
const decideChunk = 100

// maxBulk caps one bulk decision.
const maxBulk = 2000

func (s *Server) reviewRoutes(mux *http.ServeMux) {
	mux.Handle("GET /school/reviews", s.role(s.schoolInbox, auth.RoleSchoolReviewer))
	mux.Handle("POST /school/decide", s.role(s.decide, auth.RoleSchoolReviewer))
	mux.Handle("GET /school/notice", s.role(s.notice, auth.RoleSchoolReviewer, auth.RoleSchoolOfficer))
	mux.Handle("POST /school/objections", s.role(s.objection, auth.RoleSchoolReviewer))
	mux.Handle("GET /bureau/reviews", s.role(s.bureauInbox, auth.RoleBureauReviewer))
	mux.Handle("POST /bureau/decide", s.role(s.decide, auth.RoleBureauReviewer))
}

var schoolStates = []string{"PENDING", "IN_NOTICE", "PASSED", "REJECTED", "WITHDRAWN"}

type inboxView struct {
	F      filters
	States []string
	School []*schoolreviewv1.Review
	Bureau []*bureaureviewv1.Review
	// Flags are the data office's flags of each item on the page, by
	// application ID (the bureau's inbox).
	Flags   map[string]*datacomparisonv1.ApplicationFlags
	Next    string
	Levels  []string
	Pending bool
}

var levels = []string{"especially_difficult", "difficult", "generally_difficult"}

// inboxQuery reads an inbox's filters, its state (pending unless asked)
// against the review service's state names, and the user's call context;
// false when it already answered the request.
func inboxQuery(q *request, states map[string]int32) (filters, int32, context.Context, bool) {
	f := filtersOf(q.r)
	if f.State == "" {
		f.State = "PENDING"
	}
	st, ok := states["REVIEW_STATE_"+f.State]
	if !ok {
		q.fail(http.StatusBadRequest, q.t("err.filter"))
		return f, 0, nil, false
	}
	ctx, err := q.ctx()
	if err != nil {
		q.upstreamError(err)
		return f, 0, nil, false
	}
	return f, st, ctx, true
}

func (s *Server) schoolInbox(q *request) {
	f, st, ctx, ok := inboxQuery(q, schoolreviewv1.ReviewState_value)
	if !ok {
		return
	}
	resp, err := s.up.School.ListReviews(ctx, &schoolreviewv1.ListReviewsRequest{SchoolCode: q.sess.ID.Org, Term: f.Term, ProgramCode: f.Program,
		State: schoolreviewv1.ReviewState(st), PageSize: pageSize, PageToken: f.Token})
	if err != nil {
		q.upstreamError(err)
		return
	}
	q.render("school_inbox.html", "inbox.title", inboxView{F: f, States: schoolStates, School: resp.GetReviews(), Next: f.next(resp.GetNextPageToken()),
		Levels: levels, Pending: f.State == "PENDING"})
}

var bureauStates = []string{"PENDING", "APPROVED", "REJECTED"}

func (s *Server) bureauInbox(q *request) {
	f, st, ctx, ok := inboxQuery(q, bureaureviewv1.ReviewState_value)
	if !ok {
		return
	}
	resp, err := s.up.Bureau.ListReviews(ctx, &bureaureviewv1.ListReviewsRequest{SchoolCode: f.School, Term: f.Term, ProgramCode: f.Program,
		State: bureaureviewv1.ReviewState(st), PageSize: pageSize, PageToken: f.Token})
	if err != nil {
		q.upstreamError(err)
		return
	}
	flags := map[string]*datacomparisonv1.ApplicationFlags{}
	if len(resp.GetReviews()) > 0 {
		ids := make([]string, len(resp.GetReviews()))
		for i, r := range resp.GetReviews() {
			ids[i] = r.GetApplicationId()
		}
		fl, err := s.up.Data.ListFlags(ctx, &datacomparisonv1.ListFlagsRequest{ApplicationIds: ids})
		if err != nil {
			q.upstreamError(err)
			return
		}
		for _, a := range fl.GetApplications() {
			flags[a.GetApplicationId()] = a
		}
	}
	q.render("bureau_inbox.html", "inbox.title", inboxView{F: f, States: bureauStates, Bureau: resp.GetReviews(), Next: f.next(resp.GetNextPageToken()),
		Pending: f.State == "PENDING", Flags: flags})
}

// itemOutcome is one item of a bulk decision.
type itemOutcome struct {
	ApplicationID string `json:"application_id"`
	OK            bool   `json:"ok"`
	Message       string `json:"message,omitempty"`
}

type decideResult struct {
	Approve bool          `json:"approve"`
	Items   []itemOutcome `json:"items"`
	Decided int           `json:"decided"`
	Failed  int           `json:"failed"`
}

// decide approves or rejects the ticked items, in the background with
// progress: chunks of decideChunk, all or nothing each; a refused chunk is
// decided item by item so that each item says how it went.
func (s *Server) decide(q *request) {
	ids := q.r.PostForm["id"]
	approve := q.r.PostFormValue("action") == "approve"
	reason := strings.TrimSpace(q.r.PostFormValue("reason"))
	level := q.r.PostFormValue("level")
	if len(ids) == 0 || len(ids) > maxBulk {
		q.fail(http.StatusBadRequest, q.t("decide.none"))
		return
	}
	for _, id := range ids {
		if _, err := uuid.Parse(id); err != nil {
			q.fail(http.StatusBadRequest, q.t("err.filter"))
			return
		}
	}
	if !approve && reason == "" {
		q.fail(http.StatusBadRequest, q.t("decide.reason"))
		return
	}
	if level != "" && !slices.Contains(levels, level) {
		q.fail(http.StatusBadRequest, q.t("err.filter"))
		return
	}
	school := q.sess.ID.Role == auth.RoleSchoolReviewer
	who := q.sess.ID
	// The flags each item showed the bureau reviewer, recorded with the
	// decision (the page posts them as shown-<id>).
	shown := map[string][]string{}
	if !school {
		for _, id := range ids {
			for _, k := range q.r.PostForm["shown-"+id] {
				if k != "" {
					shown[id] = append(shown[id], k)
				}
			}
		}
	}
	send := func(ctx context.Context, chunk []string) error {
		ctx, err := s.up.As(ctx, who)
		if err != nil {
			return err
		}
		if school {
			ds := make([]*schoolreviewv1.Decision, len(chunk))
			for i, id := range chunk {
				ds[i] = &schoolreviewv1.Decision{ApplicationId: id, Approve: approve, HardshipLevel: level, Reason: reason}
			}
			_, err = s.up.School.Decide(ctx, &schoolreviewv1.DecideRequest{Decisions: ds})
			return err
		}
		ds := make([]*bureaureviewv1.Decision, len(chunk))
		for i, id := range chunk {
			ds[i] = &bureaureviewv1.Decision{ApplicationId: id, Approve: approve, Reason: reason, FlagsShown: shown[id]}
		}
		_, err = s.up.Bureau.Decide(ctx, &bureaureviewv1.DecideRequest{Decisions: ds})
		return err
	}
	jid, err := s.jobs.Start(q.r.Context(), who, jobDecide, "", len(ids), func(bg context.Context, p Progress) (any, error) {
		return decideInChunks(bg, p, ids, approve, send), nil
	})
	if err != nil {
		q.fail(http.StatusInternalServerError, q.t("err.unavailable"))
		return
	}
	http.Redirect(q.w, q.r, "/jobs/"+jid.String(), http.StatusSeeOther)
}

// decideInChunks sends the decisions decideChunk at a time; a refused
// chunk is sent again item by item, so each item says how it went.
func decideInChunks(ctx context.Context, p Progress, ids []string, approve bool, send func(context.Context, []string) error) decideResult {
	res := decideResult{Approve: approve}
	for from := 0; from < len(ids); from += decideChunk {
		chunk := ids[from:min(from+decideChunk, len(ids))]
		chunkErr := send(ctx, chunk)
		for _, id := range chunk {
			o := itemOutcome{ApplicationID: id, OK: true}
			if chunkErr != nil {
				if err := send(ctx, []string{id}); err != nil {
					o.OK, o.Message = false, status.Convert(err).Message()
				}
			}
			if o.OK {
				res.Decided++
			} else {
				res.Failed++
			}
			res.Items = append(res.Items, o)
		}
		p.Step(ctx, from+len(chunk))
	}
	return res
}

type noticeView struct {
	F       filters
	Items   []*schoolreviewv1.Review
	School  string
	Total   int64
	EndsMax string
}

// notice is the public-notice list (公示名单) of the school's items in
// notice: masked ID numbers and names, program, level, amount and the
// notice's end; printable as it is.
func (s *Server) notice(q *request) {
	f := filtersOf(q.r)
	ctx, err := q.ctx()
	if err != nil {
		q.upstreamError(err)
		return
	}
	v := noticeView{F: f, School: q.sess.ID.Org}
	token := ""
	for range 200 { // up to 10,000 rows: a notice is one school's term
		resp, err := s.up.School.ListReviews(ctx, &schoolreviewv1.ListReviewsRequest{SchoolCode: q.sess.ID.Org, Term: f.Term, ProgramCode: f.Program,
			State: schoolreviewv1.ReviewState_REVIEW_STATE_IN_NOTICE, PageSize: 200, PageToken: token})
		if err != nil {
			q.upstreamError(err)
			return
		}
		for _, r := range resp.GetReviews() {
			v.Items = append(v.Items, r)
			v.Total += r.GetAmountFen()
			if e := r.GetNoticeEndsAt().AsTime().UTC().Format("2006-01-02"); e > v.EndsMax {
				v.EndsMax = e
			}
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	q.render("notice.html", "notice.title", v)
}

func (s *Server) objection(q *request) {
	ctx, err := q.ctx()
	if err != nil {
		q.upstreamError(err)
		return
	}
	if _, err := s.up.School.RaiseObjection(ctx, &schoolreviewv1.RaiseObjectionRequest{ApplicationId: q.r.PostFormValue("id"),
		Reason: strings.TrimSpace(q.r.PostFormValue("reason"))}); err != nil {
		q.upstreamError(err)
		return
	}
	http.Redirect(q.w, q.r, "/school/notice?done=objection", http.StatusSeeOther)
}
