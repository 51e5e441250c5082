package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/catalog"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/policy"
	"github.com/edubureau/studentaid/pkg/policy/seed"
	"github.com/edubureau/studentaid/services/application/internal/adapters"
	"github.com/edubureau/studentaid/services/application/internal/domain"
)

// seedUser drafts and approves the seed documents.
const seedUser = "seed"

// policyCache holds the book of published versions the submission path
// reads without touching the database, and the stamp it was built at.
type policyCache struct {
	book  atomic.Pointer[policy.Book]
	stamp atomic.Pointer[string]
}

// Book returns the published policy versions as last loaded.
func (s *Service) Book() *policy.Book {
	if b := s.policy.book.Load(); b != nil {
		return b
	}
	return emptyBook
}

var emptyBook, _ = policy.NewBook(nil)

// SeedPolicy publishes the seed documents (package seed) as the first
// versions of each kind the store does not have yet, then loads the book.
// Replicas starting together publish them once.
func (s *Service) SeedPolicy(ctx context.Context) error {
	docs, err := seed.Documents()
	if err != nil {
		return err
	}
	now := s.clock()
	err = db.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if err := s.store.LockPolicy(ctx, tx); err != nil {
			return err
		}
		have, err := s.store.ListPolicyVersions(ctx, tx, "", false)
		if err != nil {
			return err
		}
		seeded := map[policy.Kind]bool{}
		for _, v := range have {
			seeded[v.Kind] = true
		}
		for _, d := range docs {
			if seeded[d.Kind] {
				continue
			}
			h, err := headerOf(d.Kind, d.Data)
			if err != nil {
				return fmt.Errorf("seed %s: %w", d.Name, err)
			}
			n, err := s.store.NextPolicyNumber(ctx, tx, d.Kind)
			if err != nil {
				return err
			}
			v := adapters.StoredVersion{Status: adapters.PolicyPublished, Version: policy.Version{
				Kind: d.Kind, Number: n, Header: h, Document: d.Data, SHA256: policy.Digest(d.Data),
				DraftedBy: seedUser, DraftedAt: now, ApprovedBy: seedUser, ApprovedAt: now}}
			if err := s.store.InsertPolicyVersion(ctx, tx, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("seed the policy store: %w", err)
	}
	return s.LoadPolicy(ctx)
}

// LoadPolicy rebuilds the book from the published versions.
func (s *Service) LoadPolicy(ctx context.Context) error {
	stamp, err := s.store.PolicyStamp(ctx, s.pool)
	if err != nil {
		return err
	}
	stored, err := s.store.ListPolicyVersions(ctx, s.pool, "", true)
	if err != nil {
		return err
	}
	versions := make([]policy.Version, len(stored))
	for i, v := range stored {
		if policy.Digest(v.Document) != v.SHA256 {
			return fmt.Errorf("policy version %s %d: the stored document does not match its SHA-256; it was altered in the database", v.Kind, v.Number)
		}
		versions[i] = v.Version
	}
	b, err := policy.NewBook(versions)
	if err != nil {
		return fmt.Errorf("load the policy: %w", err)
	}
	s.policy.book.Store(b)
	s.policy.stamp.Store(&stamp)
	return nil
}

// RunPolicyRefresh reloads the book whenever another replica published a
// version, checking every interval.
func (s *Service) RunPolicyRefresh(ctx context.Context, interval time.Duration, onErr func(error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		stamp, err := s.store.PolicyStamp(ctx, s.pool)
		if err == nil {
			if old := s.policy.stamp.Load(); old == nil || *old != stamp {
				err = s.LoadPolicy(ctx)
			}
		}
		if err != nil && ctx.Err() == nil {
			onErr(err)
		}
	}
}

func headerOf(kind policy.Kind, doc []byte) (policy.Header, error) {
	switch kind {
	case policy.KindPrograms:
		p, err := policy.ParsePolicy(doc)
		if err != nil {
			return policy.Header{}, err
		}
		return p.Header, nil
	case policy.KindSchools:
		r, err := policy.ParseRegister(doc)
		if err != nil {
			return policy.Header{}, err
		}
		return r.Header, nil
	}
	return policy.Header{}, fmt.Errorf("unknown kind %q", kind)
}

// documentViolations turns a document's problems into field violations.
func documentViolations(err error) error {
	problems := policy.ProblemsOf(err)
	if len(problems) == 0 {
		msg := strings.TrimPrefix(err.Error(), policy.ErrInvalid.Error()+": ")
		return &apperr.Error{Code: apperr.Invalid, Message: "the policy document is refused: " + msg,
			Violations: []apperr.FieldViolation{{Field: "document", Description: msg}}}
	}
	e := &apperr.Error{Code: apperr.Invalid, Message: fmt.Sprintf("the policy document has %d problems; fix them all and draft it again", len(problems))}
	if len(problems) == 1 {
		e.Message = "the policy document has a problem: " + problems[0]
	}
	for _, p := range problems {
		place, what, ok := strings.Cut(p, ": ")
		if !ok {
			place, what = "", p
		}
		field := "document"
		if place != "" && place != "document" {
			field += "." + place
		}
		e.Violations = append(e.Violations, apperr.FieldViolation{Field: field, Description: what})
	}
	return e
}

func parseKind(kind string) (policy.Kind, error) {
	k, err := policy.ParseKind(kind)
	if err != nil {
		var v apperr.Violations
		v.Addf("kind", "must be programs (the program policy) or schools (the school register)")
		return "", v.Err()
	}
	return k, nil
}

// DraftPolicyVersion validates doc and stores it as a draft of kind.
func (s *Service) DraftPolicyVersion(ctx context.Context, caller auth.Identity, kind string, doc []byte) (adapters.StoredVersion, error) {
	k, err := parseKind(kind)
	if err != nil {
		return adapters.StoredVersion{}, err
	}
	h, err := headerOf(k, doc)
	if err != nil {
		return adapters.StoredVersion{}, documentViolations(err)
	}
	if err := s.Book().CheckPlacement(k, h); err != nil {
		return adapters.StoredVersion{}, placementViolation(h, err)
	}
	var out adapters.StoredVersion
	err = db.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if err := s.store.LockPolicy(ctx, tx); err != nil {
			return err
		}
		n, err := s.store.NextPolicyNumber(ctx, tx, k)
		if err != nil {
			return err
		}
		out = adapters.StoredVersion{Status: adapters.PolicyDraft, Version: policy.Version{
			Kind: k, Number: n, Header: h, Document: doc, SHA256: policy.Digest(doc),
			DraftedBy: caller.UserID, DraftedAt: s.clock()}}
		return s.store.InsertPolicyVersion(ctx, tx, out)
	})
	return out, err
}

func placementViolation(h policy.Header, err error) error {
	field := "document.effective_from"
	if h.Corrects != 0 {
		field = "document.corrects"
	}
	msg := strings.TrimPrefix(err.Error(), policy.ErrInvalid.Error()+": ")
	return &apperr.Error{Code: apperr.Invalid, Message: "the version would overlap a published one: " + msg,
		Violations: []apperr.FieldViolation{{Field: field, Description: msg}}}
}

// ApprovePolicyVersion publishes the draft kind/number, whose digest the
// approver restates. The approver must not be its drafter.
func (s *Service) ApprovePolicyVersion(ctx context.Context, caller auth.Identity, kind string, number int64, digest string) (adapters.StoredVersion, error) {
	k, err := parseKind(kind)
	if err != nil {
		return adapters.StoredVersion{}, err
	}
	var out adapters.StoredVersion
	err = db.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if err := s.store.LockPolicy(ctx, tx); err != nil {
			return err
		}
		v, ok, err := s.store.GetPolicyVersion(ctx, tx, k, number, true)
		switch {
		case err != nil:
			return err
		case !ok:
			return apperr.New(apperr.NotFound, "there is no %s policy version %d", k, number)
		case v.Status != adapters.PolicyDraft:
			return apperr.Refused(apperr.FailedPrecondition, apperr.ReasonPolicyNotDraft, "%s policy version %d is already published (approved by %s); draft a correction to change it", k, number, v.ApprovedBy)
		case v.DraftedBy == caller.UserID:
			return apperr.Denied(apperr.ReasonPolicySelfApproval, "you drafted %s policy version %d; another policy administrator must approve it", k, number)
		case !strings.EqualFold(digest, v.SHA256):
			return apperr.Refused(apperr.FailedPrecondition, apperr.ReasonPolicyDigestMismatch, "%s policy version %d has SHA-256 %s, not %q; read the draft again and approve what you read", k, number, v.SHA256, digest)
		}
		// Published versions as they stand in this transaction, not as
		// this replica last loaded them.
		published, err := s.store.ListPolicyVersions(ctx, tx, k, true)
		if err != nil {
			return err
		}
		versions := make([]policy.Version, len(published))
		for i, p := range published {
			versions[i] = p.Version
		}
		current, err := policy.NewBook(versions)
		if err != nil {
			return err
		}
		if err := current.CheckPlacement(k, v.Header); err != nil {
			return apperr.Refused(apperr.FailedPrecondition, apperr.ReasonPolicyVersionOverlap, "%s", strings.TrimPrefix(err.Error(), policy.ErrInvalid.Error()+": "))
		}
		now := s.clock()
		if err := s.store.PublishPolicyVersion(ctx, tx, k, number, caller.UserID, now); err != nil {
			if db.IsUniqueViolation(err, adapters.UniquePolicyStart) || db.IsUniqueViolation(err, adapters.UniquePolicyCorrection) {
				return apperr.Refused(apperr.FailedPrecondition, apperr.ReasonPolicyVersionOverlap, "another version from %s was published at the same moment; draft this one again as its correction", v.Header.EffectiveFrom)
			}
			return err
		}
		v.Status, v.ApprovedBy, v.ApprovedAt = adapters.PolicyPublished, caller.UserID, now
		out = v
		return nil
	})
	if err != nil {
		return adapters.StoredVersion{}, err
	}
	return out, s.LoadPolicy(ctx)
}

// GetPolicyVersion returns one version with its document.
func (s *Service) GetPolicyVersion(ctx context.Context, kind string, number int64) (adapters.StoredVersion, error) {
	k, err := parseKind(kind)
	if err != nil {
		return adapters.StoredVersion{}, err
	}
	v, ok, err := s.store.GetPolicyVersion(ctx, s.pool, k, number, false)
	if err != nil {
		return adapters.StoredVersion{}, err
	}
	if !ok {
		return adapters.StoredVersion{}, apperr.New(apperr.NotFound, "there is no %s policy version %d", k, number)
	}
	return v, nil
}

// ListPolicyVersions returns the history of kind, drafts included.
func (s *Service) ListPolicyVersions(ctx context.Context, kind string) ([]adapters.StoredVersion, error) {
	k, err := parseKind(kind)
	if err != nil {
		return nil, err
	}
	return s.store.ListPolicyVersions(ctx, s.pool, k, false)
}

// PolicyChange is a group of pending applications a draft would compute
// differently.
type PolicyChange struct {
	adapters.PendingGroup
	Before, After policy.Quote
	// Refusal is set when the draft would refuse such applications.
	Refusal string
}

// PolicyPreview is what publishing a draft would change.
type PolicyPreview struct {
	Changes             []PolicyChange
	Considered, Affects int64
}

// pendingStatuses are the statuses before a batch is confirmed.
var pendingStatuses = []string{string(domain.StatusSubmitted), string(domain.StatusInNotice),
	string(domain.StatusSchoolApproved), string(domain.StatusBureauApproved)}

// PreviewPolicyVersion lists the applications not yet confirmed in a batch,
// in the terms the draft would be in force for, whose amount it would
// compute differently than the versions they are pinned to. Their amounts
// stay pinned: the preview says what a resubmission would get.
func (s *Service) PreviewPolicyVersion(ctx context.Context, kind string, number int64) (PolicyPreview, error) {
	v, err := s.GetPolicyVersion(ctx, kind, number)
	if err != nil {
		return PolicyPreview{}, err
	}
	if v.Status != adapters.PolicyDraft {
		return PolicyPreview{}, apperr.Refused(apperr.FailedPrecondition, apperr.ReasonPolicyNotDraft, "%s policy version %d is already published; only drafts are previewed", v.Kind, number)
	}
	book := s.Book()
	after, err := book.With(v.Version)
	if err != nil {
		return PolicyPreview{}, documentViolations(err)
	}
	groups, err := s.store.PendingGroups(ctx, s.pool, pendingStatuses)
	if err != nil {
		return PolicyPreview{}, err
	}
	var out PolicyPreview
	for _, g := range groups {
		pa, okA := after.Policy(g.Term)
		ra, okR := after.Register(g.Term)
		if !okA || !okR || (v.Kind == policy.KindPrograms && pa.Number != v.Number) || (v.Kind == policy.KindSchools && ra.Number != v.Number) {
			continue // the draft would not be in force for the term
		}
		out.Considered += g.Applications
		before := pinnedQuote(book, g)
		quote, refusal := quoteGroup(pa.Policy, ra.Register, g)
		if refusal == "" && sameQuote(before, quote) {
			continue
		}
		out.Affects += g.Applications
		out.Changes = append(out.Changes, PolicyChange{PendingGroup: g, Before: before, After: quote, Refusal: refusal})
	}
	return out, nil
}

// pinnedQuote is what g's applications were computed to: their amount,
// and for tiered programs the tiers of the pinned policy version.
func pinnedQuote(book *policy.Book, g adapters.PendingGroup) policy.Quote {
	q := policy.Quote{AmountFen: g.AmountFen}
	for _, v := range book.Policies() {
		if v.Number != g.PolicyVersion {
			continue
		}
		if prog, ok := v.Policy.Program(g.ProgramCode); ok && prog.Tiered() {
			q.TierFen = prog.TierFen
		}
	}
	return q
}

func quoteGroup(p *policy.Policy, r *policy.Register, g adapters.PendingGroup) (policy.Quote, string) {
	prog, ok := p.Program(g.ProgramCode)
	if !ok {
		return policy.Quote{}, fmt.Sprintf("program %s is not in the draft", g.ProgramCode)
	}
	school, ok := r.School(g.SchoolCode)
	if !ok {
		return policy.Quote{}, fmt.Sprintf("school %s is not in the register", g.SchoolCode)
	}
	term, err := catalog.ParseTerm(g.Term)
	if err != nil {
		return policy.Quote{}, err.Error()
	}
	a := policy.Applicant{Stage: catalog.Stage(g.Stage), Boarding: g.Boarding, Rural: g.Rural, RegisteredPoor: g.RegisteredPoor}
	if prog.Rule == policy.RuleRequested {
		a.RequestedFen = g.AmountFen
	}
	q, refusals := p.Check(prog, school, term, a)
	if len(refusals) > 0 {
		return policy.Quote{}, refusals[0].Message
	}
	if prog.Tiered() && g.AmountFen != 0 {
		// Already determined: the level's amount under the draft is not
		// known here, the tiers are compared instead.
		q.AmountFen = g.AmountFen
	}
	return q, ""
}

func sameQuote(a, b policy.Quote) bool {
	if a.AmountFen != b.AmountFen || len(a.TierFen) != len(b.TierFen) {
		return false
	}
	for l, fen := range a.TierFen {
		if b.TierFen[l] != fen {
			return false
		}
	}
	return true
}

// DocumentJSON re-encodes a JSON object canonically (sorted keys, no
// insignificant space), so that what is stored and hashed does not depend
// on how a client spaced it.
func DocumentJSON(obj map[string]any) ([]byte, error) {
	if obj == nil {
		return nil, errors.New("no document")
	}
	return json.Marshal(obj)
}

// checkLimits refuses applications beyond the programs' frequency and
// yearly limits: a one-off grant a student already has in another term,
// and an amount that would take a student's year above the program's
// yearly maximum. It looks each student up under every hashing key in use,
// after locking the student/program pairs against concurrent submissions.
func (s *Service) checkLimits(ctx context.Context, tx db.Tx, req SubmitRequest, ps []prepared, hashKeys []string) error {
	var pairs []adapters.StudentProgram
	owner := map[adapters.StudentProgram]int{}
	for i, p := range ps {
		if p.program.Frequency != policy.OncePerStudent && p.program.YearlyMaxFen == 0 {
			continue
		}
		for _, key := range hashKeys {
			h, err := s.hasher.HashWith(key, p.id.String())
			if err != nil {
				return hashKeyMissing(key)
			}
			pair := adapters.StudentProgram{StudentIDHash: h, ProgramCode: p.program.Code}
			pairs, owner[pair] = append(pairs, pair), i
		}
	}
	if len(pairs) == 0 {
		return nil
	}
	if err := s.store.LockStudentPrograms(ctx, tx, pairs); err != nil {
		return err
	}
	others, err := s.store.FindOtherTerms(ctx, tx, req.Term, pairs)
	if err != nil || len(others) == 0 {
		return err
	}
	year, _, _ := strings.Cut(req.Term, "-")
	oneOff := &apperr.Error{Code: apperr.AlreadyExists, Rule: apperr.ReasonOneOffAlreadyGranted}
	var yearly apperr.Violations
	inYear := make(map[int]int64, len(ps))
	for _, o := range others {
		i := owner[o.StudentProgram]
		p := ps[i]
		field := fmt.Sprintf("applications[%d].student_id_number", i)
		if p.program.Frequency == policy.OncePerStudent {
			msg := fmt.Sprintf("student %s already has an application for the one-off grant %s in %s; it is granted once per student", p.id.Masked(), p.program.Code, o.Term)
			if oneOff.Message == "" {
				oneOff.Message = msg
			}
			oneOff.Violations = append(oneOff.Violations, apperr.FieldViolation{Field: field, Description: msg})
			continue
		}
		if strings.HasPrefix(o.Term, year+"-") {
			inYear[i] += o.AmountFen
		}
	}
	if len(oneOff.Violations) > 0 {
		return oneOff
	}
	for i, had := range inYear {
		p := ps[i]
		if total := had + p.quote.AmountFen; total > p.program.YearlyMaxFen {
			yearly.Addf(fmt.Sprintf("applications[%d].requested_amount_fen", i),
				"student %s already has %d fen of %s in %s; with %d fen more it would be %d, above the yearly maximum of %d fen",
				p.id.Masked(), had, p.program.Code, year, p.quote.AmountFen, total, p.program.YearlyMaxFen)
		}
	}
	return yearly.Err()
}

// knownProgram reports whether any published policy version has code.
func (s *Service) knownProgram(code string) bool {
	for _, v := range s.Book().Policies() {
		if _, ok := v.Policy.Program(code); ok {
			return true
		}
	}
	return false
}
