package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/catalog"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/idnumber"
	"github.com/edubureau/studentaid/pkg/outbox"
	"github.com/edubureau/studentaid/pkg/pii"
	"github.com/edubureau/studentaid/pkg/policy"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	"github.com/edubureau/studentaid/services/application/internal/adapters"
	"github.com/edubureau/studentaid/services/application/internal/domain"
)

// MaxApplicationsPerRequest caps one submission.
const MaxApplicationsPerRequest = 1000

// maxViolations caps the field violations one answer lists.
const maxViolations = 100

// NewApplication is what a school submits for one student.
type NewApplication struct {
	StudentIDNumber string `json:"student_id_number"`
	StudentName     string `json:"student_name"`
	Stage           string `json:"stage"`
	ProgramCode     string `json:"program_code"`
	Boarding        bool   `json:"boarding"`
	Rural           bool   `json:"rural"`
	RegisteredPoor  bool   `json:"registered_poor"`
	BankCardNumber  string `json:"bank_card_number"`
	AccountName     string `json:"account_name"`
	// RequestedFen is the amount asked for, for programs of rule requested.
	RequestedAmountFen int64 `json:"requested_amount_fen,omitempty"`
	// BackPayClueID names the school's back-pay order (补发) the
	// application fulfils: the verified missed-student clue it came from.
	BackPayClueID string `json:"back_pay_clue_id,omitempty"`
}

// SubmitRequest is one school's submission.
type SubmitRequest struct {
	SchoolCode   string           `json:"school_code"`
	Term         string           `json:"term"`
	Applications []NewApplication `json:"applications"`
	// IdempotencyKey is optional: 8..64 characters of [A-Za-z0-9_-].
	IdempotencyKey string `json:"-"`
	// ValidateOnly runs every check a submission runs, duplicates and
	// limits included, and writes nothing: the console's preview of an
	// uploaded list before the officer submits it.
	ValidateOnly bool `json:"-"`
}

// requestHash is the hex SHA-256 of the request's canonical encoding (JSON
// with fields in declaration order), idempotency key excluded.
func (r SubmitRequest) requestHash() (string, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return "", fmt.Errorf("encode request: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// ErrIdempotencyKeyReused is the message for a key sent again with another body.
const ErrIdempotencyKeyReused = "idempotency key reused with a different request"

// Submit records a school's applications, all or nothing. The caller must be
// an aid officer of req.SchoolCode.
//
// Returns PermissionDenied (rule own-school-only) for another school,
// InvalidArgument with field violations for bad input or an idempotency key
// reused with a different request, and AlreadyExists when a student already
// has an application for the program in the term.
func (s *Service) Submit(ctx context.Context, caller auth.Identity, req SubmitRequest) ([]domain.Application, error) {
	if caller.Role != auth.RoleSchoolOfficer {
		return nil, apperr.Denied(apperr.ReasonSchoolOfficerOnly, "only a school's aid officer may submit applications")
	}
	if err := s.checkSubmitter(caller, req); err != nil {
		return nil, err
	}
	prepared, pin, err := s.prepare(req)
	if err != nil {
		return nil, err
	}
	trace.SpanFromContext(ctx).SetAttributes(
		attribute.String("school.code", req.SchoolCode),
		attribute.String("term", req.Term),
		attribute.Int("applications.count", len(req.Applications)),
	)
	now := s.clock()
	apps, evs, entries, err := s.build(caller, req, prepared, pin, now)
	if err != nil {
		return nil, err
	}
	if req.ValidateOnly {
		return s.validateOnly(ctx, req, apps, evs, prepared)
	}
	hash, err := req.requestHash()
	if err != nil {
		return nil, err
	}

	var result []domain.Application
	wrote := false
	// The unique index on student, program and term is the duplicate check:
	// the first attempt just inserts. When the index refuses, a second
	// attempt looks the students up first, to name every duplicate.
	lookFirst := false
	ids := make([]string, len(apps))
	for i, a := range apps {
		ids[i] = a.ID
	}
	attempt := func(tx pgx.Tx) error {
		result, wrote = nil, false
		if req.IdempotencyKey != "" {
			rec, err := s.store.ClaimIdempotencyKey(ctx, tx, req.SchoolCode, req.IdempotencyKey, hash, caller.UserID, ids)
			if err != nil {
				return err
			}
			if rec != nil {
				if rec.RequestHash != hash {
					return &apperr.Error{Code: apperr.Invalid, Rule: apperr.ReasonIdempotencyKeyReused, Message: ErrIdempotencyKeyReused, Violations: []apperr.FieldViolation{{
						Field:       "idempotency_key",
						Description: "was already used for a different request; use a new key for new applications",
					}}}
				}
				result, err = s.store.GetApplications(ctx, tx, rec.ApplicationIDs)
				return err
			}
		}
		if err := s.checkDuplicates(ctx, tx, req, apps, evs, prepared, lookFirst); err != nil {
			return err
		}
		if err := s.store.InsertApplications(ctx, tx, apps); err != nil {
			return err
		}
		if err := s.store.InsertTrail(ctx, tx, entries); err != nil {
			return err
		}
		if err := outbox.Append(ctx, tx, evs...); err != nil {
			return err
		}
		result, wrote = apps, true
		return nil
	}
	for try := 0; ; try++ {
		err = db.InTx(ctx, s.pool, attempt)
		if err == nil || !db.IsUniqueViolation(err, adapters.UniqueStudentProgramTerm) {
			break
		}
		if try == 1 {
			// A concurrent submission of the same student slipped in
			// between the lookup and the insert.
			return nil, apperr.New(apperr.AlreadyExists, "a student in this request already has an application for the program in term %s", req.Term)
		}
		lookFirst = true
	}
	if err != nil {
		return nil, err
	}
	if wrote {
		for _, a := range result {
			s.heads.put(a.ID, headOf(a))
		}
		s.notify()
	}
	markSubmitted(trace.SpanFromContext(ctx), result)
	return result, nil
}

// errValidated rolls a validate-only submission's transaction back.
var errValidated = errors.New("validated only")

// validateOnly runs the checks that need the database (duplicates within
// the school's and other schools' applications, once-per-student and yearly
// limits) in a transaction it rolls back, and returns the applications as
// they would be recorded.
func (s *Service) validateOnly(ctx context.Context, req SubmitRequest, apps []domain.Application, evs []*eventsv1.Event, ps []prepared) ([]domain.Application, error) {
	err := db.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if err := s.checkDuplicates(ctx, tx, req, apps, evs, ps, true); err != nil {
			return err
		}
		return errValidated
	})
	if !errors.Is(err, errValidated) {
		return nil, err
	}
	return apps, nil
}

// maxSubmittedEvents bounds the span events of one submission (the SDK
// keeps 128 by default).
const maxSubmittedEvents = 100

// markSubmitted puts the applications' IDs on the submission's span, so a
// search by application.id finds it: the attribute for a submission of one,
// an "application submitted" span event per application (the first
// maxSubmittedEvents) otherwise.
func markSubmitted(span trace.Span, apps []domain.Application) {
	if !span.IsRecording() {
		return
	}
	if len(apps) == 1 {
		span.SetAttributes(attribute.String("application.id", apps[0].ID))
	}
	for _, a := range apps[:min(len(apps), maxSubmittedEvents)] {
		span.AddEvent("application submitted", trace.WithAttributes(attribute.String("application.id", a.ID), attribute.String("program.code", a.ProgramCode)))
	}
}

// checkSubmitter refuses a caller whose organisation may not submit for
// the request's school: the school register names the organisation
// (usually the school itself); a school it does not know is the caller's
// own or nobody's, and prepare refuses it.
func (s *Service) checkSubmitter(caller auth.Identity, req SubmitRequest) error {
	if req.SchoolCode == "" {
		return nil
	}
	org := req.SchoolCode
	if rv, ok := s.Book().Register(req.Term); ok {
		if school, ok := rv.Register.School(req.SchoolCode); ok {
			org = school.SubmittingOrg
		}
	}
	if org != caller.Org {
		if org != req.SchoolCode {
			return apperr.Denied(apperr.ReasonOwnSchoolOnly, "applications of school %s are submitted by the aid officers of %s, as the school register says", req.SchoolCode, org)
		}
		return apperr.Denied(apperr.ReasonOwnSchoolOnly, "you may only submit applications for your own school")
	}
	return nil
}

// pinFor finds the policy and register versions in force for the
// request's term and its school in the register; it records what is
// missing in v and says whether the request can be computed.
func (s *Service) pinFor(v *apperr.Violations, req SubmitRequest) (pinned, bool) {
	var pin pinned
	book := s.Book()
	var okP, okR bool
	pin.policy, okP = book.Policy(req.Term)
	pin.register, okR = book.Register(req.Term)
	if !okP || !okR {
		v.Addf("term", "no aid policy and school register are in force for %s; check the term, or ask the bureau to publish them", req.Term)
		return pin, false
	}
	if req.SchoolCode == "" {
		return pin, true
	}
	school, ok := pin.register.Register.School(req.SchoolCode)
	if !ok {
		v.Addf("school_code", "school %s is not in the school register in force for %s (version %d); check the code or ask the bureau to register the school",
			req.SchoolCode, req.Term, pin.register.Number)
		return pin, false
	}
	pin.school = school
	return pin, true
}

// prepared is a validated application, with what validation computed.
type prepared struct {
	id      idnumber.ID
	hash    string
	name    string
	stage   catalog.Stage
	program policy.Program
	quote   policy.Quote
	card    string
	account string
	// backPay is the canonical clue ID of the back-pay order, or "".
	backPay string
}

// programCopies holds one copy of each program a request names, so that
// the policy's maps are copied once per program, not per application.
type programCopies map[string]policy.Program

func (c programCopies) lookup(p *policy.Policy, code string) (policy.Program, bool) {
	if prog, ok := c[code]; ok {
		return prog, true
	}
	if p == nil || len(code) > maxCodeLength {
		return policy.Program{}, false
	}
	prog, ok := p.Program(code)
	if ok {
		c[code] = prog
	}
	return prog, ok
}

// pinned is the policy a request is computed under: the versions in force
// for its term, and the school as the register has it.
type pinned struct {
	policy   policy.PolicyVersion
	register policy.RegisterVersion
	school   policy.School
}

// prepare validates the whole request and returns every problem at once.
func (s *Service) prepare(req SubmitRequest) ([]prepared, pinned, error) {
	var v apperr.Violations
	var pin pinned
	checkCode(&v, "school_code", req.SchoolCode, true)
	term, termErr := catalog.ParseTerm(req.Term)
	inForce := false
	if termErr != nil {
		v.Addf("term", "%s", termProblem(req.Term))
	} else {
		pin, inForce = s.pinFor(&v, req)
	}
	if k := req.IdempotencyKey; k != "" && !validIdempotencyKey(k) {
		v.Addf("idempotency_key", "must be 8 to 64 characters of A-Z, a-z, 0-9, '_' or '-'")
	}
	switch n := len(req.Applications); {
	case n == 0:
		v.Addf("applications", "at least one application is required")
		return nil, pin, v.Err()
	case n > MaxApplicationsPerRequest:
		v.Addf("applications", "at most %d applications per request, got %d; split the submission", MaxApplicationsPerRequest, n)
		return nil, pin, v.Err()
	}
	out := make([]prepared, len(req.Applications))
	programs := make(programCopies, 4)
	firstOf := make(map[[2]string]int, len(req.Applications))
	extra := 0
	for i, in := range req.Applications {
		var iv apperr.Violations
		field := func(name string) string { return fmt.Sprintf("applications[%d].%s", i, name) }
		p := &out[i]
		id, err := idnumber.Parse(in.StudentIDNumber)
		if err != nil {
			iv.Addf(field("student_id_number"), "%v", err)
		} else {
			p.id, p.hash = id, s.hasher.Hash(id.String())
		}
		p.name = checkName(&iv, field("student_name"), in.StudentName)
		stage, stageErr := catalog.ParseStage(in.Stage)
		if stageErr != nil {
			iv.Addf(field("stage"), "must be one of preschool, primary, junior, high_school, vocational or university")
		}
		program, known := programs.lookup(pin.policy.Policy, in.ProgramCode)
		switch {
		case in.ProgramCode == "":
			iv.Addf(field("program_code"), "is required")
		case !known && termErr == nil:
			iv.Addf(field("program_code"), "is not a program of the policy in force for %s (see ListPrograms)", req.Term)
		}
		if known && stageErr == nil && inForce {
			a := policy.Applicant{Stage: stage, Boarding: in.Boarding, Rural: in.Rural, RegisteredPoor: in.RegisteredPoor,
				BirthDate: p.id.BirthDate(), RequestedFen: in.RequestedAmountFen}
			quote, refusals := pin.policy.Policy.Check(program, pin.school, term, a)
			for _, r := range refusals {
				iv.Addf(field(r.Field), "%s", r.Message)
			}
			p.quote = quote
		}
		p.stage, p.program = stage, program
		if err := pii.ValidateCardNumber(in.BankCardNumber); err != nil {
			iv.Addf(field("bank_card_number"), "%s", cardProblem(err))
		}
		p.card = in.BankCardNumber
		p.account = checkName(&iv, field("account_name"), in.AccountName)
		p.backPay = backPayClueOf(&iv, field("back_pay_clue_id"), in.BackPayClueID)
		if p.hash != "" && known {
			key := [2]string{p.hash, program.Code}
			if j, dup := firstOf[key]; dup {
				iv.Addf(field("student_id_number"), "the same student already applies for %s in applications[%d]", program.Code, j)
			} else {
				firstOf[key] = i
			}
		}
		for _, fv := range iv {
			if len(v) < maxViolations {
				v = append(v, fv)
			} else {
				extra++
			}
		}
	}
	if extra > 0 {
		v.Addf("applications", "%d more problems not listed; fix the ones above and submit again", extra)
	}
	if err := v.Err(); err != nil {
		return nil, pin, err
	}
	return out, pin, nil
}

func termProblem(term string) string {
	if term == "" {
		return "is required (e.g. 2017-autumn)"
	}
	return "must be a year and season such as 2017-spring or 2017-autumn"
}

func cardProblem(err error) string {
	if errors.Is(err, pii.ErrCardChecksum) {
		return "check digit does not match: a digit is probably mistyped"
	}
	return "must be 16 to 19 digits"
}

func validIdempotencyKey(k string) bool {
	if len(k) < 8 || len(k) > 64 {
		return false
	}
	for i := range len(k) {
		c := k[i]
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// build turns validated input into the rows, trail entries and events to write.
func (s *Service) build(caller auth.Identity, req SubmitRequest, ps []prepared, pin pinned, now time.Time) ([]domain.Application, []*eventsv1.Event, []adapters.Appended, error) {
	apps := make([]domain.Application, len(ps))
	evs := make([]*eventsv1.Event, len(ps))
	entries := make([]adapters.Appended, len(ps))
	actor := events.Actor(caller.UserID, string(caller.Role), caller.Org)
	for i, p := range ps {
		in := req.Applications[i]
		id, err := uuid.NewV7()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("new application id: %w", err)
		}
		// 0 for tiered programs: set once the school determines the level.
		amount := p.quote.AmountFen
		if amount <= 0 && !p.program.Tiered() {
			return nil, nil, nil, fmt.Errorf("amount of %s for %s under policy %d: none", p.program.Code, p.stage, pin.policy.Number)
		}
		a := domain.Application{
			ID: id.String(), SchoolCode: req.SchoolCode, Term: req.Term,
			ProgramCode: p.program.Code, Stage: string(p.stage), FundingSource: string(p.program.Funding), Tiered: p.program.Tiered(),
			PolicyVersion: pin.policy.Number, RegisterVersion: pin.register.Number,
			Boarding: in.Boarding, Rural: in.Rural, RegisteredPoor: in.RegisteredPoor,
			StudentIDHash: p.hash, StudentIDHashKey: s.hasher.CurrentKeyID(), StudentIDMasked: p.id.Masked(),
			StudentNameMasked: domain.MaskName(p.name),
			BankCardMasked:    idnumber.Mask(p.card),
			SubmittedBy:       caller.UserID, SubmittedAt: now, UpdatedAt: now,
			BackPayClueID: p.backPay,
		}
		if a.StudentIDSealed, err = s.sealer.Seal(p.id.String(), studentIDBinding(a.ID)); err != nil {
			return nil, nil, nil, err
		}
		if a.StudentNameSealed, err = s.sealer.Seal(p.name, studentNameBinding(a.ID)); err != nil {
			return nil, nil, nil, err
		}
		if a.BankCardSealed, err = s.sealer.Seal(p.card, events.BankCardBinding(a.ID)); err != nil {
			return nil, nil, nil, err
		}
		if a.AccountNameSealed, err = s.sealer.Seal(p.account, events.AccountNameBinding(a.ID)); err != nil {
			return nil, nil, nil, err
		}
		change := domain.Change{Kind: domain.KindSubmitted, AmountFen: amount}
		if a.State, err = domain.Apply(domain.State{}, change); err != nil {
			return nil, nil, nil, err
		}
		ev, err := events.New(now, actor, events.Keys{ApplicationID: a.ID, SchoolCode: a.SchoolCode, ProgramCode: a.ProgramCode, Term: a.Term},
			&eventsv1.ApplicationSubmitted{
				StudentIdMasked:   a.StudentIDMasked,
				StudentIdHash:     a.StudentIDHash,
				StudentNameMasked: a.StudentNameMasked,
				Stage:             a.Stage,
				FundingSource:     a.FundingSource,
				Tiered:            a.Tiered,
				AmountFen:         amount,
				BankCardSealed:    a.BankCardSealed,
				AccountNameSealed: a.AccountNameSealed,
				BankCardMasked:    a.BankCardMasked,
				SubmittedBy:       caller.UserID,
				PolicyVersion:     pin.policy.Number,
				RegisterVersion:   pin.register.Number,
				TierFen:           tierMap(p.quote.TierFen),
				FundingSharesBp:   shareMap(p.program.SharesBP),
				GovernmentTotal:   p.program.GovernmentTotal,
				BackPayClueId:     a.BackPayClueID,
				BirthMonth:        birthMonth(p.id),
			})
		if err != nil {
			return nil, nil, nil, err
		}
		entry := domain.Chain(0, domain.GenesisHash, domain.TrailEntry{
			ApplicationID: a.ID, EventID: ev.GetEventId(), Type: ev.GetType(), OccurredAt: now,
			ActorUser: caller.UserID, ActorRole: string(caller.Role), ActorOrg: caller.Org,
			Status: a.Status, AmountFen: amount, Reason: backPayNote(a.BackPayClueID),
		})
		a.TrailLength, a.TrailHead = entry.Position, entry.Hash
		apps[i], evs[i], entries[i] = a, ev, adapters.Appended{TrailEntry: entry, SchoolCode: a.SchoolCode}
	}
	return apps, evs, entries, nil
}

// birthMonth is the birth year and month the submission event carries
// (YYYY-MM, from the ID number's digits 7-12), so that the data office can
// check the age against the stage without the ID number or the birth day.
func birthMonth(id idnumber.ID) string {
	return id.BirthDate().Format("2006-01")
}

// refuseDuplicates returns AlreadyExists when a student of the request
// already has an application for the program in the term, at any school.
// It looks each student up under every hashing key in use (hashKeys).
func (s *Service) refuseDuplicates(ctx context.Context, tx db.Tx, req SubmitRequest, ps []prepared, hashKeys []string) error {
	pairs := make([]adapters.StudentProgram, 0, len(ps)*len(hashKeys))
	owner := make(map[adapters.StudentProgram]int, len(ps)*len(hashKeys))
	for _, key := range hashKeys {
		for i, p := range ps {
			h, err := s.hasher.HashWith(key, p.id.String())
			if err != nil {
				return hashKeyMissing(key)
			}
			pair := adapters.StudentProgram{StudentIDHash: h, ProgramCode: p.program.Code}
			pairs, owner[pair] = append(pairs, pair), i
		}
	}
	existing, err := s.store.FindExisting(ctx, tx, req.Term, pairs)
	if err != nil || len(existing) == 0 {
		return err
	}
	taken := make(map[int]bool, len(existing))
	for _, e := range existing {
		taken[owner[e]] = true
	}
	e := &apperr.Error{Code: apperr.AlreadyExists}
	for i, p := range ps {
		if !taken[i] {
			continue
		}
		if e.Message == "" {
			e.Message = fmt.Sprintf("student %s already has an application for %s in %s", p.id.Masked(), p.program.Code, req.Term)
		}
		if len(e.Violations) < maxViolations {
			e.Violations = append(e.Violations, apperr.FieldViolation{
				Field:       fmt.Sprintf("applications[%d].student_id_number", i),
				Description: fmt.Sprintf("student %s already has an application for %s in %s", p.id.Masked(), p.program.Code, req.Term),
			})
		}
	}
	if n := len(taken); n > 1 {
		e.Message += fmt.Sprintf(" (and %d more students of this request)", n-1)
	}
	return e
}

// tierMap renders tiers for the event, keyed by level name.
func tierMap(tiers map[catalog.HardshipLevel]int64) map[string]int64 {
	if len(tiers) == 0 {
		return nil
	}
	out := make(map[string]int64, len(tiers))
	for l, fen := range tiers {
		out[string(l)] = fen
	}
	return out
}

// shareMap renders funding shares for the event, keyed by source name.
func shareMap(shares map[policy.Source]int32) map[string]int32 {
	out := make(map[string]int32, len(shares))
	for src, bp := range shares {
		out[string(src)] = bp
	}
	return out
}
