package app

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/catalog"
	"github.com/edubureau/studentaid/pkg/page"
	"github.com/edubureau/studentaid/services/application/internal/adapters"
	"github.com/edubureau/studentaid/services/application/internal/domain"
)

// Page sizes of ListApplications.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// Get returns one application as who may see it, with its pending payee
// correction. A read of the student's identity in full is recorded with
// purpose (optional for one application). Returns InvalidArgument for a
// malformed ID or purpose and NotFound if it does not exist or belongs to a
// school the caller may not see.
func (s *Service) Get(ctx context.Context, who auth.Identity, id, purpose string) (View, error) {
	var v apperr.Violations
	if err := checkID("application_id", id); err != nil {
		return View{}, err
	}
	purpose = checkText(&v, "purpose", purpose, maxPurposeRunes, false)
	if err := v.Err(); err != nil {
		return View{}, err
	}
	a, err := s.get(ctx, who, id)
	if err != nil {
		return View{}, err
	}
	views, err := s.reveal(ctx, who, []domain.Application{a}, true, UseCaseGetApplication, purpose)
	if err != nil {
		return View{}, err
	}
	out := views[0]
	if a.Status == domain.StatusPaymentFailed {
		c, found, err := s.store.PendingPayeeCorrection(ctx, s.pool, a.ID)
		if err != nil {
			return View{}, err
		}
		if found {
			out.PendingPayee = &c
		}
	}
	return out, nil
}

// get reads one application visible to who. Errors as Get.
func (s *Service) get(ctx context.Context, who auth.Identity, id string) (domain.Application, error) {
	if err := checkID("application_id", id); err != nil {
		return domain.Application{}, err
	}
	a, found, err := s.store.GetApplication(ctx, s.pool, id, false)
	if err != nil {
		return a, err
	}
	if !found || !visible(who, a) {
		return domain.Application{}, notFound(id)
	}
	annotate(ctx, a)
	return a, nil
}

// ListRequest filters and pages a listing; empty fields match everything.
type ListRequest struct {
	SchoolCode  string
	Term        string
	ProgramCode string
	Status      domain.Status
	// PendingPayee keeps only applications with a payee correction waiting
	// for its approval.
	PendingPayee bool
	PageSize     int
	PageToken    string
	// Purpose is why the caller reads the records; required when the
	// caller's role sees students in full, and recorded with the read.
	Purpose string
}

// List returns applications newest first, as caller may see them, and the
// token of the next page ("" on the last). School roles see only their own
// school: the school filter is set to theirs, and asking for another school
// is refused (PermissionDenied, rule own-school-only). Roles that see
// students in full must state a purpose (InvalidArgument, rule
// purpose-required), recorded with every page they read. Returns
// InvalidArgument for bad filters, page sizes or tokens.
func (s *Service) List(ctx context.Context, caller auth.Identity, req ListRequest) ([]View, string, error) {
	if caller.Role.SchoolBound() {
		if req.SchoolCode != "" && req.SchoolCode != caller.Org {
			return nil, "", apperr.Denied(apperr.ReasonOwnSchoolOnly, "you may only list your own school's applications")
		}
		req.SchoolCode = caller.Org
	}
	var v apperr.Violations
	checkCode(&v, "school_code", req.SchoolCode, false)
	if req.Term != "" {
		if _, err := catalog.ParseTerm(req.Term); err != nil {
			v.Addf("term", "%s", termProblem(req.Term))
		}
	}
	if req.ProgramCode != "" {
		if !s.knownProgram(req.ProgramCode) || len(req.ProgramCode) > maxCodeLength {
			v.Addf("program_code", "is not a program of the aid policy (see ListPrograms)")
		}
	}
	if req.Status != "" && !req.Status.Valid() {
		v.Addf("status", "is not a known status")
	}
	full := domain.SeesFullIdentity(caller.Role, false)
	req.Purpose = checkText(&v, "purpose", req.Purpose, maxPurposeRunes, false)
	if full && req.Purpose == "" && len(v) == 0 {
		return nil, "", &apperr.Error{Code: apperr.Invalid, Rule: RulePurposeRequired,
			Message:    "purpose: is required: your role reads ID numbers and names in full, and every such read is recorded with why it was made",
			Violations: []apperr.FieldViolation{{Field: "purpose", Description: "is required when listing unmasked personal data; say why you read these records"}}}
	}
	size := req.PageSize
	switch {
	case size == 0:
		size = DefaultPageSize
	case size < 1 || size > MaxPageSize:
		v.Addf("page_size", "must be between 1 and %d", MaxPageSize)
	}
	f := adapters.Filter{SchoolCode: req.SchoolCode, Term: req.Term, ProgramCode: req.ProgramCode, Status: req.Status, PendingPayee: req.PendingPayee}
	var after *adapters.Cursor
	if req.PageToken != "" {
		c, ok := decodePageToken(req.PageToken, f)
		if !ok {
			v.Addf("page_token", "is not a page token of this listing; start again without it")
		}
		after = c
	}
	if err := v.Err(); err != nil {
		return nil, "", err
	}
	trace.SpanFromContext(ctx).SetAttributes(
		attribute.String("school.code", f.SchoolCode),
		attribute.String("term", f.Term),
		attribute.String("program.code", f.ProgramCode),
	)
	apps, err := s.store.List(ctx, s.pool, f, after, size+1)
	if err != nil {
		return nil, "", err
	}
	next := ""
	apps, more := page.Trim(apps, size)
	if more {
		last := apps[size-1]
		next = encodePageToken(adapters.Cursor{SubmittedAt: last.SubmittedAt, ID: last.ID}, f)
	}
	views, err := s.reveal(ctx, caller, apps, false, UseCaseListApplications, req.Purpose)
	if err != nil {
		return nil, "", err
	}
	if req.PendingPayee {
		// The corrections waiting, with the page, as GetApplication shows
		// each: the reviewer's queue needs no call per item.
		ids := make([]string, len(views))
		for i, v := range views {
			ids[i] = v.ID
		}
		pending, err := s.store.PendingPayeeCorrections(ctx, s.pool, ids)
		if err != nil {
			return nil, "", err
		}
		for i := range views {
			if c, ok := pending[views[i].ID]; ok {
				views[i].PendingPayee = &c
			}
		}
	}
	return views, next, nil
}

// pageToken is the keyset cursor a page token carries, bound to its filter.
type pageToken struct {
	SubmittedAt time.Time `json:"t"`
	ID          string    `json:"id"`
	Filter      string    `json:"f"`
}

// filterFingerprint identifies a listing's filter, so a token is not
// replayed against another one.
func filterFingerprint(f adapters.Filter) string {
	parts := []string{f.SchoolCode, f.Term, f.ProgramCode, string(f.Status)}
	if f.PendingPayee {
		parts = append(parts, "pending-payee")
	}
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:8])
}

func encodePageToken(c adapters.Cursor, f adapters.Filter) string {
	b, _ := json.Marshal(pageToken{SubmittedAt: c.SubmittedAt.UTC(), ID: c.ID, Filter: filterFingerprint(f)}) //nolint:errchkjson // strings and a stored time (years 0–9999) always encode
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodePageToken(s string, f adapters.Filter) (*adapters.Cursor, bool) {
	if len(s) > 512 {
		return nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, false
	}
	var t pageToken
	if err := json.Unmarshal(b, &t); err != nil || t.SubmittedAt.IsZero() || t.Filter != filterFingerprint(f) {
		return nil, false
	}
	if _, err := uuid.Parse(t.ID); err != nil {
		return nil, false
	}
	return &adapters.Cursor{SubmittedAt: t.SubmittedAt, ID: t.ID}, true
}

// Trail returns an application's trail in order. Errors as Get.
func (s *Service) Trail(ctx context.Context, caller auth.Identity, id string) ([]domain.TrailEntry, error) {
	if _, err := s.get(ctx, caller, id); err != nil {
		return nil, err
	}
	return s.store.Trail(ctx, s.pool, id)
}

// VerifyTrail recomputes an application's hash chain, checks that it ends
// at the head kept with the application, and checks the application's
// entries against the latest checkpoint on the stream AID_CHECKPOINTS
// (anchorCheck). It reports every check made and the first problem found.
// Errors as Get.
func (s *Service) VerifyTrail(ctx context.Context, caller auth.Identity, id string) (Verified, error) {
	if err := checkID("application_id", id); err != nil {
		return Verified{}, err
	}
	var (
		a       domain.Application
		found   bool
		entries []domain.TrailEntry
		v       Verified
	)
	// One snapshot, so an entry appended meanwhile does not look like tampering.
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		if a, found, err = s.store.GetApplication(ctx, tx, id, false); err != nil || !found || !visible(caller, a) {
			return err
		}
		if entries, err = s.store.Trail(ctx, tx, id); err != nil {
			return err
		}
		v.Verification = domain.VerifyTrail(entries, a.TrailLength)
		v.Checks = append(v.Checks, CheckpointCheck{Name: "chain", OK: v.OK, Detail: chainDetail(v.Verification)})
		if !v.OK {
			return nil
		}
		last := entries[len(entries)-1]
		v.check("head", last.Hash == a.TrailHead, "the last entry (position %d) hashes to the trail head kept with the application", last.Position)
		if !v.OK {
			v.FirstBadPosition = last.Position
			return nil
		}
		return s.anchorCheck(ctx, tx, &v, entries)
	})
	if err != nil {
		return Verified{}, err
	}
	if !found || !visible(caller, a) {
		return Verified{}, notFound(id)
	}
	annotate(ctx, a)
	return v, nil
}

func chainDetail(v domain.Verification) string {
	if v.OK {
		return fmt.Sprintf("%d entries chained from the genesis hash, each matching its hash", v.Length)
	}
	return v.Problem
}
