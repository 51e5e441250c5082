// Package app holds the application service's use cases: submitting
// applications, reading them and their trails, correcting a payee, and
// applying the events of the later steps to each application's status and
// trail. Each use case runs in one transaction and writes its events to the
// outbox in it.
package app

import (
	"context"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/edubureau/studentaid/pkg/policy/seed"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/pii"
	"github.com/edubureau/studentaid/services/application/anchor"
	"github.com/edubureau/studentaid/services/application/internal/adapters"
	"github.com/edubureau/studentaid/services/application/internal/domain"
)

// Deps are what the use cases need.
type Deps struct {
	Pool   *pgxpool.Pool
	Sealer *pii.Sealer
	Hasher *pii.Hasher
	// Notify wakes the outbox relay after a commit that wrote events.
	Notify func()
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// TrailSigner signs checkpoints of the trail tree (the current key of
	// AID_TRAIL_SIGNING_KEYS); nil signs none.
	TrailSigner *anchor.SigningKey
	// TrailVerifyKeys verify checkpoints (AID_TRAIL_VERIFY_KEYS).
	TrailVerifyKeys anchor.VerifyKeys
	// Checkpoints reads the published checkpoints back from the stream.
	Checkpoints CheckpointSource
	// Webhooks configures the change feed's webhooks.
	Webhooks WebhookConfig
}

// Service runs the use cases.
type Service struct {
	pool   *pgxpool.Pool
	store  adapters.Store
	sealer *pii.Sealer
	hasher *pii.Hasher
	notify func()
	now    func() time.Time
	heads  *headCache
	anchor anchoring
	policy policyCache
	// feed wakes the change feed's long-polls.
	feed broadcast
	// webhooks configures webhook deliveries.
	webhooks WebhookConfig
}

// headCacheSize bounds the cache of application heads (a few hundred bytes each).
const headCacheSize = 100_000

// New returns a Service.
func New(d Deps) *Service {
	s := &Service{pool: d.Pool, sealer: d.Sealer, hasher: d.Hasher, notify: d.Notify, now: d.Now, heads: newHeadCache(headCacheSize),
		anchor:   anchoring{signer: d.TrailSigner, verify: d.TrailVerifyKeys, source: d.Checkpoints},
		webhooks: d.Webhooks.withDefaults()}
	relay := d.Notify
	if relay == nil {
		relay = func() {}
	}
	// Every commit that writes events also changes applications: wake the
	// change feed's long-polls too.
	s.notify = func() {
		relay()
		s.feed.fire()
	}
	if s.now == nil {
		s.now = time.Now
	}
	// The seed documents until the store is loaded (SeedPolicy): the
	// versions the store starts with.
	if b, err := seed.Book(); err == nil {
		s.policy.book.Store(b)
	}
	return s
}

// clock returns the current UTC time at the precision PostgreSQL keeps, so
// that what is stored, hashed and published agree.
func (s *Service) clock() time.Time { return s.now().UTC().Truncate(domain.TimePrecision) }

// Limits on free-text input.
const (
	maxNameRunes  = 50
	maxCodeLength = 32
)

// checkName validates a person's name: 1..50 characters of valid UTF-8, no
// control characters. It returns the name trimmed of surrounding space.
func checkName(v *apperr.Violations, field, name string) string {
	return checkText(v, field, name, maxNameRunes, true)
}

// checkText validates free text: at most maxRunes characters of valid
// UTF-8, no control characters, and not empty when required. It returns the
// text trimmed of surrounding space.
func checkText(v *apperr.Violations, field, text string, maxRunes int, required bool) string {
	if !utf8.ValidString(text) {
		v.Addf(field, "must be valid UTF-8 text")
		return ""
	}
	text = trimSpace(text)
	n := utf8.RuneCountInString(text)
	switch {
	case n == 0:
		if required {
			v.Addf(field, "is required")
		}
	case n > maxRunes:
		v.Addf(field, "must be at most %d characters, got %d", maxRunes, n)
	default:
		for _, r := range text {
			if unicode.IsControl(r) {
				v.Addf(field, "must not contain control characters")
				break
			}
		}
	}
	return text
}

func trimSpace(s string) string {
	start, end := 0, len(s)
	for start < end {
		r, size := utf8.DecodeRuneInString(s[start:])
		if !unicode.IsSpace(r) {
			break
		}
		start += size
	}
	for end > start {
		r, size := utf8.DecodeLastRuneInString(s[start:end])
		if !unicode.IsSpace(r) {
			break
		}
		end -= size
	}
	return s[start:end]
}

// checkCode validates a short identifier such as a school or program code.
// It does not echo bad input.
func checkCode(v *apperr.Violations, field, code string, required bool) {
	switch {
	case code == "":
		if required {
			v.Addf(field, "is required")
		}
	case len(code) > maxCodeLength:
		v.Addf(field, "must be at most %d characters", maxCodeLength)
	case !utf8.ValidString(code):
		v.Addf(field, "must be valid UTF-8 text")
	}
}

// checkID validates an application ID.
func checkID(field, id string) error {
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		var v apperr.Violations
		v.Addf(field, "must be a UUID such as 0190f3a4-5b6c-7d8e-9f00-112233445566")
		return v.Err()
	}
	return nil
}

// notFound is the answer for an application that does not exist or that
// the caller's school may not see.
func notFound(id string) error {
	return apperr.New(apperr.NotFound, "application %s not found", id)
}

// visible reports whether caller may see a's row.
func visible(caller auth.Identity, a domain.Application) bool {
	return !caller.Role.SchoolBound() || a.SchoolCode == caller.Org
}

// annotate puts an application's business keys on the current span.
func annotate(ctx context.Context, a domain.Application) {
	attrs := []attribute.KeyValue{
		attribute.String("application.id", a.ID),
		attribute.String("school.code", a.SchoolCode),
		attribute.String("program.code", a.ProgramCode),
		attribute.String("term", a.Term),
	}
	if a.BatchID != "" {
		attrs = append(attrs, attribute.String("batch.id", a.BatchID))
	}
	if a.PaymentID != "" {
		attrs = append(attrs, attribute.String("payout.id", a.PaymentID))
	}
	trace.SpanFromContext(ctx).SetAttributes(attrs...)
}

// Identity is an application's student, in the form the caller may see.
type Identity struct {
	StudentIDNumber string
	StudentName     string
}

// View is an application as its caller sees it: the student's identity
// masked or in full, and the payee correction waiting for approval, where
// the use case loaded it.
type View struct {
	domain.Application
	Identity     Identity
	PendingPayee *domain.PayeeCorrection
}

// masked is a's student identity masked.
func masked(a domain.Application) Identity {
	return Identity{StudentIDNumber: a.StudentIDMasked, StudentName: a.StudentNameMasked}
}

// Views are apps with their students' identities masked, as the answers
// to commands show them.
func Views(apps []domain.Application) []View {
	out := make([]View, len(apps))
	for i, a := range apps {
		out[i] = View{Application: a, Identity: masked(a)}
	}
	return out
}

// Use cases a read of personal data is recorded under.
const (
	UseCaseGetApplication   = "GetApplication"
	UseCaseListApplications = "ListApplications"
)

// maxPurposeRunes caps a read's stated purpose.
const maxPurposeRunes = 200

// RulePurposeRequired names the refusal of a bulk read of unmasked
// personal data without a stated purpose.
const RulePurposeRequired = apperr.ReasonPurposeRequired

// reveal returns views of apps for who: masked unless who's role sees
// students in full (domain.SeesFullIdentity; single is a read of one
// application). A read in full is first recorded, in one statement for all
// of apps, with the use case and the stated purpose; if the record cannot
// be written nothing is revealed.
func (s *Service) reveal(ctx context.Context, who auth.Identity, apps []domain.Application, single bool, useCase, purpose string) ([]View, error) {
	if !domain.SeesFullIdentity(who.Role, single) || len(apps) == 0 {
		return Views(apps), nil
	}
	ids := make([]string, len(apps))
	for i, a := range apps {
		ids[i] = a.ID
	}
	if err := s.store.RecordRead(ctx, s.pool, adapters.Read{At: s.clock(), Reader: who, UseCase: useCase, Purpose: purpose, ApplicationIDs: ids}); err != nil {
		return nil, err
	}
	out := make([]View, len(apps))
	for i, a := range apps {
		id, err := s.sealer.Open(a.StudentIDSealed, studentIDBinding(a.ID))
		if err != nil {
			return nil, unsealable(a.ID, "student ID number", err)
		}
		name, err := s.sealer.Open(a.StudentNameSealed, studentNameBinding(a.ID))
		if err != nil {
			return nil, unsealable(a.ID, "student name", err)
		}
		out[i] = View{Application: a, Identity: Identity{StudentIDNumber: id, StudentName: name}}
	}
	return out, nil
}

// StatusCounts returns how many applications are in each status, every
// status present (zero when it has none). It reads counts the database
// maintains as statuses change, not the applications themselves.
func (s *Service) StatusCounts(ctx context.Context) (map[domain.Status]int64, error) {
	got, err := s.store.StatusCounts(ctx, s.pool)
	if err != nil {
		return nil, err
	}
	out := make(map[domain.Status]int64, len(domain.Statuses))
	for _, st := range domain.Statuses {
		out[st] = 0
	}
	for st, n := range got {
		out[domain.Status(st)] = n
	}
	return out, nil
}
