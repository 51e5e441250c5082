// Package reviewports is the request side every review service shares: the
// validation of Decide and ListReviews requests before anything is read or
// written, and the page tokens of lists.
package reviewports

import (
	"fmt"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/catalog"
	"github.com/edubureau/studentaid/pkg/page"
	"github.com/edubureau/studentaid/pkg/review"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
)

// MaxDecisions caps the decisions of one Decide request.
const MaxDecisions = 1000

// DecisionRequest is one decision of a Decide request, as the services'
// protobuf messages have it.
type DecisionRequest interface {
	GetApplicationId() string
	GetApprove() bool
	GetReason() string
}

// Decisions validates a Decide request's decisions: 1 to MaxDecisions, each
// about a well-formed application ID that no other decision names, with a
// well-formed reason, required for rejections. own converts one decision to
// the service's type, adding the violations of the service's own fields
// under field ("decisions[i]"). Every violation is reported at once, as
// InvalidArgument.
func Decisions[P DecisionRequest, D any](req []P, own func(v *apperr.Violations, field, applicationID string, p P) D) ([]D, error) {
	var v apperr.Violations
	n := len(req)
	if n < 1 || n > MaxDecisions {
		v.Addf("decisions", "give between 1 and %d decisions, not %d", MaxDecisions, n)
		return nil, v.Err()
	}
	ds := make([]D, 0, n)
	seen := make(map[string]int, n)
	for i, d := range req {
		field := fmt.Sprintf("decisions[%d]", i)
		appID := v.CheckUUID(field+".application_id", d.GetApplicationId())
		if j, dup := seen[appID]; dup && appID != "" {
			v.Addf(field+".application_id", "application %s is also decided in decisions[%d]", appID, j)
		}
		seen[appID] = i
		decision := own(&v, field, appID, d)
		if err := review.CheckReason(d.GetReason(), !d.GetApprove()); err != nil {
			v.Addf(field+".reason", "%v", err)
		}
		ds = append(ds, decision)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	return ds, nil
}

// ListRequest is a ListReviews request, as the services' protobuf messages
// have it; E is the service's review state enum.
type ListRequest[E ~int32] interface {
	GetSchoolCode() string
	GetProgramCode() string
	GetTerm() string
	GetState() E
	GetPageSize() int32
	GetPageToken() string
}

// Filter validates a ListReviews request and returns the filter it asks
// for: the state states maps its enum to (pending when unspecified), codes
// and term well-formed, a page size in range and a page token that this
// service issued (NextPageToken). Every violation is reported at once, as
// InvalidArgument.
func Filter[S ~string, E ~int32](req ListRequest[E], states map[E]S, pending S) (review.Filter[S], error) {
	var v apperr.Violations
	v.CheckCode("school_code", req.GetSchoolCode())
	v.CheckCode("program_code", req.GetProgramCode())
	if t := req.GetTerm(); t != "" {
		if _, err := catalog.ParseTerm(t); err != nil {
			v.Addf("term", "%v", err)
		}
	}
	state := pending
	if req.GetState() != 0 {
		var ok bool
		if state, ok = states[req.GetState()]; !ok {
			v.Addf("state", "unknown review state %d", req.GetState())
		}
	}
	size := page.Size(&v, req.GetPageSize())
	var cursor pageCursor
	if page.Decode(&v, req.GetPageToken(), &cursor) {
		cursor.After = v.CheckUUID("page_token", cursor.After)
	}
	if err := v.Err(); err != nil {
		return review.Filter[S]{}, err
	}
	return review.Filter[S]{
		SchoolCode: req.GetSchoolCode(), Term: req.GetTerm(), ProgramCode: req.GetProgramCode(),
		State: state, After: cursor.After, Limit: size,
	}, nil
}

// NextPageToken is the token of the page after list, or "" when there are
// no more items.
func NextPageToken[S ~string, R review.Reviewed[S]](list []R, more bool) string {
	if !more || len(list) == 0 {
		return ""
	}
	return page.Encode(pageCursor{After: list[len(list)-1].Shared().ApplicationID})
}

// pageCursor is the keyset position a page token carries.
type pageCursor struct {
	After string `json:"after"`
}

// ArrivalBody is the body of an event that brings an application into a
// review (application.submitted, schoolreview.notice_passed).
type ArrivalBody interface {
	GetStage() string
	GetStudentIdMasked() string
	GetStudentIdHash() string
	GetAmountFen() int64
	GetFundingSource() string
	GetSubmittedBy() string
}

// Arrival decodes what ev, with its body, says about the application.
func Arrival(ev *eventsv1.Event, body ArrivalBody) review.Arrival {
	return review.Arrival{
		ApplicationID: ev.GetApplicationId(), SchoolCode: ev.GetSchoolCode(), Term: ev.GetTerm(), ProgramCode: ev.GetProgramCode(),
		Stage: body.GetStage(), StudentIDMasked: body.GetStudentIdMasked(), StudentIDHash: body.GetStudentIdHash(),
		AmountFen: body.GetAmountFen(), FundingSource: body.GetFundingSource(), SubmittedBy: body.GetSubmittedBy(),
	}
}
