// Package app holds the data-comparison service's use cases: keeping its
// copy of the chain's records from events, importing reference files,
// running comparisons, working clues and recovering refunds. Each use case
// runs in one transaction and writes its events to the outbox in it.
package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/audit"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/outbox"
	"github.com/edubureau/studentaid/pkg/pii"
	commonv1 "github.com/edubureau/studentaid/proto/gen/aid/common/v1"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	"github.com/edubureau/studentaid/services/data-comparison/internal/domain"
)

// Config is the service's own settings.
type Config struct {
	// ImportDir is the directory server-side import files are read from;
	// empty refuses server paths.
	ImportDir string
	// ExportDir is the directory exports for the big-data office are
	// written to; empty allows inline exports only.
	ExportDir string
	// IntegrityAccount is the account (廉政账户) refunds are received into.
	IntegrityAccount string
}

// Deps are what the use cases need.
type Deps struct {
	Pool   *pgxpool.Pool
	Hasher *pii.Hasher
	Config Config
	// Notify wakes the outbox relay after a commit that wrote events.
	Notify func()
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service runs the use cases.
type Service struct {
	pool   *pgxpool.Pool
	hasher *pii.Hasher
	cfg    Config
	notify func()
	now    func() time.Time
}

// New returns a Service.
func New(d Deps) *Service {
	s := &Service{pool: d.Pool, hasher: d.Hasher, cfg: d.Config, notify: d.Notify, now: d.Now}
	if s.notify == nil {
		s.notify = func() {}
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// clock is the current UTC time at PostgreSQL's precision.
func (s *Service) clock() time.Time { return s.now().UTC().Truncate(domain.TimePrecision) }

// inTx runs fn in a transaction and wakes the relay after it commits.
func (s *Service) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	if err := db.InTx(ctx, s.pool, fn); err != nil {
		return err
	}
	s.notify()
	return nil
}

// HashID is the keyed hash the service matches persons by: of the
// normalised 18-character ID number, as the application service hashes it.
func (s *Service) HashID(id string) string { return s.hasher.Hash(id) }

// hashName is the keyed hash of a normalised name, kept apart from ID
// hashes by its prefix.
func (s *Service) hashName(name string) string { return s.hasher.Hash("name:" + name) }

func actorOf(id auth.Identity) *commonv1.Actor {
	return events.Actor(id.UserID, string(id.Role), id.Org)
}

// checkText validates free text: valid UTF-8, at most max characters,
// required when required is set. It returns it trimmed.
func checkText(v *apperr.Violations, field, s string, maxRunes int, required bool) string {
	s = strings.TrimSpace(s)
	switch {
	case !utf8.ValidString(s):
		v.Addf(field, "must be valid UTF-8 text")
	case s == "" && required:
		v.Addf(field, "is required")
	case utf8.RuneCountInString(s) > maxRunes:
		v.Addf(field, "must be at most %d characters", maxRunes)
	}
	return s
}

// checkIDs validates 1..max UUIDs without repeats.
func checkIDs(v *apperr.Violations, field string, ids []string, maxIDs int) []string {
	if len(ids) == 0 || len(ids) > maxIDs {
		v.Addf(field, "must list 1 to %d IDs, got %d", maxIDs, len(ids))
		return nil
	}
	seen := make(map[string]bool, len(ids))
	out := make([]string, 0, len(ids))
	for i, id := range ids {
		u, err := uuid.Parse(id)
		if err != nil || len(id) != 36 {
			v.Addf(fmt.Sprintf("%s[%d]", field, i), "must be a UUID")
			continue
		}
		if seen[u.String()] {
			v.Addf(fmt.Sprintf("%s[%d]", field, i), "repeats an earlier ID")
		}
		seen[u.String()] = true
		out = append(out, u.String())
	}
	return out
}

// ruleReasons names each rule error of the domain by its catalog reason.
var ruleReasons = []struct {
	err    error
	reason apperr.Reason
}{
	{domain.ErrClueClosed, apperr.ReasonClueClosed},
	{domain.ErrNotAssignee, apperr.ReasonClueNotAssignedToCaller},
	{domain.ErrNotAssigned, apperr.ReasonClueNotAssigned},
	{domain.ErrNothingToRecover, apperr.ReasonRefundAmountOutOfRange},
	{domain.ErrWrongAccount, apperr.ReasonReceiptNotIntoIntegrityAccount},
	{domain.ErrOverReceipt, apperr.ReasonReceiptExceedsOutstanding},
	{domain.ErrRefundClosed, apperr.ReasonRefundClosed},
	{domain.ErrNotRefundable, apperr.ReasonClueHasNoPaymentToRecover},
	{domain.ErrMissedClueIncomplete, apperr.ReasonMissedClueIncomplete},
}

// refuse turns a broken rule (one of the domain's rule errors) into the
// officer's refusal naming it, and audits it as the platform audits denied
// calls; other errors pass through.
func (s *Service) refuse(ctx context.Context, useCase string, err error) error {
	for _, r := range ruleReasons {
		if !errors.Is(err, r.err) {
			continue
		}
		code := apperr.FailedPrecondition
		if errors.Is(r.err, domain.ErrNotAssignee) {
			code = apperr.PermissionDenied
		}
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if aerr := audit.Record(actx, s.pool, audit.Entry{Method: useCase, Outcome: "refused", Rule: string(r.reason), Detail: err.Error()}); aerr != nil {
			return fmt.Errorf("audit refusal %w: %w", r.err, aerr)
		}
		return &apperr.Error{Code: code, Message: err.Error(), Rule: r.reason}
	}
	return err
}

// appendEvents writes evs to the outbox.
func appendEvents(ctx context.Context, tx db.Tx, evs ...*eventsv1.Event) error {
	return outbox.Append(ctx, tx, evs...)
}
