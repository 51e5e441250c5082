package app

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/catalog"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/idnumber"
	"github.com/edubureau/studentaid/pkg/page"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	"github.com/edubureau/studentaid/services/application/internal/adapters"
	"github.com/edubureau/studentaid/services/application/internal/domain"
)

// backPayNote is what a back-pay application's first trail entry says, so
// that the hash-chained trail records which order it fulfils.
func backPayNote(clueID string) string {
	if clueID == "" {
		return ""
	}
	return "back-pay (补发) of verified missed-student clue " + clueID
}

// OpenBackPay records the back-pay order of a datacomparison.back_pay_opened
// event, inside the consumer's transaction tx. A redelivered event changes
// nothing. An event that cannot name an order is refused for good
// (domain.ErrImpossible).
func (s *Service) OpenBackPay(ctx context.Context, tx db.Tx, ev *eventsv1.Event) error {
	b := ev.GetBackPayOpened()
	clue, err := uuid.Parse(b.GetClueId())
	bad := func(what string) error {
		return fmt.Errorf("%w: back-pay order of event %s: %s", domain.ErrImpossible, ev.GetEventId(), what)
	}
	switch {
	case err != nil:
		return bad("bad clue id")
	case b.GetSchoolCode() == "" || len(b.GetSchoolCode()) > maxCodeLength || b.GetSchoolCode() != ev.GetSchoolCode():
		return bad("bad school code")
	case b.GetProgramCode() == "" || len(b.GetProgramCode()) > maxCodeLength:
		return bad("bad program code")
	case b.GetStudentIdHash() == "" || b.GetAmountFen() < 0:
		return bad("no student or a negative amount")
	}
	if _, err := catalog.ParseTerm(b.GetTerm()); err != nil {
		return bad("bad term")
	}
	_, err = s.store.InsertBackPayOrder(ctx, tx, adapters.BackPayOrder{
		ClueID: clue.String(), SchoolCode: b.GetSchoolCode(), ProgramCode: b.GetProgramCode(), Term: b.GetTerm(),
		StudentIDHash: b.GetStudentIdHash(), StudentIDMasked: b.GetStudentIdMasked(), EstimatedFen: b.GetAmountFen(),
		OpenedAt: ev.GetOccurredAt().AsTime().UTC(), EventID: ev.GetEventId(),
	})
	return err
}

// claimBackPays checks the back-pay applications of a submission against
// their orders and marks each order fulfilled by its application, inside
// the submission's transaction: the order must be the school's, open, for
// the application's program and term, and for the same student (compared
// under every hashing key in use, hashKeys). Any mismatch refuses the
// whole submission (FailedPrecondition, reason back-pay-order-unusable).
func (s *Service) claimBackPays(ctx context.Context, tx db.Tx, apps []domain.Application, ps []prepared, hashKeys []string) error {
	var clues []string
	for _, a := range apps {
		if a.BackPayClueID != "" {
			clues = append(clues, a.BackPayClueID)
		}
	}
	if len(clues) == 0 {
		return nil
	}
	orders, err := s.store.LockBackPayOrders(ctx, tx, clues)
	if err != nil {
		return err
	}
	var v apperr.Violations
	byClue := make(map[string]string, len(clues))
	for i, a := range apps {
		if a.BackPayClueID == "" {
			continue
		}
		field := fmt.Sprintf("applications[%d].back_pay_clue_id", i)
		o, ok := orders[a.BackPayClueID]
		_, twice := byClue[a.BackPayClueID]
		switch {
		case !ok || o.SchoolCode != a.SchoolCode:
			v.Addf(field, "is not a back-pay order of school %s (see ListBackPayOrders); if the data office has just verified it, try again in a minute", a.SchoolCode)
		case o.ApplicationID != "":
			v.Addf(field, "is already fulfilled by application %s", o.ApplicationID)
		case twice:
			v.Addf(field, "names the same order as another application of this request")
		case o.ProgramCode != a.ProgramCode || o.Term != a.Term:
			v.Addf(field, "is an order for %s in %s, not for %s in %s", o.ProgramCode, o.Term, a.ProgramCode, a.Term)
		case !s.sameStudent(o.StudentIDHash, ps[i].id, hashKeys):
			v.Addf(field, "is an order for student %s, not for this student", o.StudentIDMasked)
		default:
			byClue[a.BackPayClueID] = a.ID
		}
	}
	if len(v) > 0 {
		return &apperr.Error{Code: apperr.FailedPrecondition, Rule: apperr.ReasonBackPayOrderUnusable,
			Message:    fmt.Sprintf("%d back-pay application(s) do not match an open order of the school; nothing was submitted", len(v)),
			Violations: v}
	}
	return s.store.FulfilBackPayOrders(ctx, tx, byClue)
}

// backPayClueOf reads an application's back_pay_clue_id: "" when it names
// none, its canonical form, or "" after a violation of field.
func backPayClueOf(v *apperr.Violations, field, clueID string) string {
	if clueID == "" {
		return ""
	}
	clue, err := uuid.Parse(clueID)
	if err != nil {
		v.Addf(field, "must be the clue ID of one of the school's back-pay orders (see ListBackPayOrders)")
		return ""
	}
	return clue.String()
}

// sameStudent reports whether hash is the keyed hash of id under one of keys.
func (s *Service) sameStudent(hash string, id idnumber.ID, keys []string) bool {
	for _, k := range keys {
		if h, err := s.hasher.HashWith(k, id.String()); err == nil && h == hash {
			return true
		}
	}
	return false
}

// BackPayOrder is an order as a school sees it.
type BackPayOrder = adapters.BackPayOrder

// BackPayListRequest filters a school's back-pay orders.
type BackPayListRequest struct {
	SchoolCode string
	OpenOnly   bool
	PageSize   int32
	PageToken  string
}

// ListBackPayOrders returns a school's back-pay orders, open ones first, and
// the next page's token ("" on the last). School roles read only their own
// school (PermissionDenied, reason own-school-only).
func (s *Service) ListBackPayOrders(ctx context.Context, caller auth.Identity, req BackPayListRequest) ([]BackPayOrder, string, error) {
	if caller.Role.SchoolBound() && req.SchoolCode != caller.Org {
		return nil, "", apperr.Denied(apperr.ReasonOwnSchoolOnly, "you may only read your own school's back-pay orders")
	}
	var v apperr.Violations
	if req.SchoolCode == "" {
		v.Addf("school_code", "is required")
	}
	v.CheckCode("school_code", req.SchoolCode)
	size := page.Size(&v, req.PageSize)
	var after *adapters.BackPayCursor
	var t backPayToken
	if page.Decode(&v, req.PageToken, &t) {
		if _, err := uuid.Parse(t.ClueID); err != nil || t.OpenOnly != req.OpenOnly || t.OpenedAt.IsZero() {
			v.Addf("page_token", "is not a page token of this listing; start again without it")
		}
		after = &adapters.BackPayCursor{Fulfilled: t.Fulfilled, OpenedAt: t.OpenedAt, ClueID: t.ClueID}
	}
	if err := v.Err(); err != nil {
		return nil, "", err
	}
	list, err := s.store.ListBackPayOrders(ctx, s.pool, req.SchoolCode, req.OpenOnly, after, size+1)
	if err != nil {
		return nil, "", err
	}
	list, more := page.Trim(list, size)
	next := ""
	if more {
		last := list[len(list)-1]
		next = page.Encode(backPayToken{Fulfilled: last.ApplicationID != "", OpenedAt: last.OpenedAt.UTC(), ClueID: last.ClueID, OpenOnly: req.OpenOnly})
	}
	return list, next, nil
}

// backPayToken is the keyset cursor of a back-pay listing's page token.
type backPayToken struct {
	Fulfilled bool      `json:"d"`
	OpenedAt  time.Time `json:"t"`
	ClueID    string    `json:"id"`
	OpenOnly  bool      `json:"o"`
}
