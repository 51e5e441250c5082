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

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/pii"
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
}

// headCacheSize bounds the cache of application heads (a few hundred bytes each).
const headCacheSize = 100_000

// New returns a Service.
func New(d Deps) *Service {
	s := &Service{pool: d.Pool, sealer: d.Sealer, hasher: d.Hasher, notify: d.Notify, now: d.Now, heads: newHeadCache(headCacheSize)}
	if s.notify == nil {
		s.notify = func() {}
	}
	if s.now == nil {
		s.now = time.Now
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
	if !utf8.ValidString(name) {
		v.Addf(field, "must be valid UTF-8 text")
		return ""
	}
	name = trimSpace(name)
	n := utf8.RuneCountInString(name)
	switch {
	case n == 0:
		v.Addf(field, "is required")
	case n > maxNameRunes:
		v.Addf(field, "must be at most %d characters, got %d", maxNameRunes, n)
	default:
		for _, r := range name {
			if unicode.IsControl(r) {
				v.Addf(field, "must not contain control characters")
				break
			}
		}
	}
	return name
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

// Reveal returns a's student ID number and name in full when full is true,
// masked otherwise.
func (s *Service) Reveal(a domain.Application, full bool) (Identity, error) {
	if !full {
		return Identity{StudentIDNumber: a.StudentIDMasked, StudentName: a.StudentNameMasked}, nil
	}
	id, err := s.sealer.Open(a.StudentIDSealed, studentIDBinding(a.ID))
	if err != nil {
		return Identity{}, unsealable(a.ID, "student ID number", err)
	}
	name, err := s.sealer.Open(a.StudentNameSealed, studentNameBinding(a.ID))
	if err != nil {
		return Identity{}, unsealable(a.ID, "student name", err)
	}
	return Identity{StudentIDNumber: id, StudentName: name}, nil
}
