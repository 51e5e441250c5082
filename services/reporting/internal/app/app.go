// Package app holds the reporting service's use cases: keeping its read
// model from the chain's events, answering statistics, building the annual
// report and finalising it.
package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/services/reporting/internal/adapters"
	"github.com/edubureau/studentaid/services/reporting/internal/domain"
)

// ErrNotYet: an event refers to one not consumed yet; redeliver later.
var ErrNotYet = errors.New("not yet")

// ErrBadEvent: an event can never be applied.
var ErrBadEvent = errors.New("bad event")

// Deps are what the use cases need.
type Deps struct {
	Pool *pgxpool.Pool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service runs the use cases.
type Service struct {
	pool *pgxpool.Pool
	now  func() time.Time
}

// New returns a Service.
func New(d Deps) *Service {
	s := &Service{pool: d.Pool, now: d.Now}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(domain.TimePrecision) }

// readSnapshot runs fn in a read-only repeatable-read transaction, so that
// all of one answer's queries see the same rows.
func (s *Service) readSnapshot(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	// Distinct persons of a selection the aggregates do not count ahead are
	// grouped by student: let the grouping hash in memory.
	if _, err := tx.Exec(ctx, `SET LOCAL work_mem = '64MB'`); err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// StatisticsQuery selects figures.
type StatisticsQuery struct {
	FromTerm, ToTerm string
	Schools          []string
	Stage, Program   string
	// AsOf: zero means now.
	AsOf time.Time
}

// selection checks q and returns its selection. InvalidArgument for a bad
// term range or school list.
func (s *Service) selection(q StatisticsQuery) (adapters.Selection, error) {
	var v apperr.Violations
	from, err := domain.TermRank(q.FromTerm)
	if err != nil {
		v.Addf("from_term", "must be a term like 2017-spring or 2017-autumn")
	}
	to, err := domain.TermRank(q.ToTerm)
	if err != nil {
		v.Addf("to_term", "must be a term like 2017-spring or 2017-autumn")
	}
	if err == nil && from > to {
		v.Addf("to_term", "must not be before from_term")
	}
	if len(q.Schools) > 1000 {
		v.Addf("school_codes", "must list at most 1000 schools")
	}
	for i, c := range q.Schools {
		if c == "" || len(c) > 32 {
			v.Addf(fmt.Sprintf("school_codes[%d]", i), "must be a school code")
		}
	}
	if err := v.Err(); err != nil {
		return adapters.Selection{}, err
	}
	asOf := q.AsOf.UTC().Truncate(domain.TimePrecision)
	if q.AsOf.IsZero() {
		asOf = s.clock()
	}
	return adapters.Selection{FromRank: from, ToRank: to, Schools: q.Schools, Stage: q.Stage, Program: q.Program, AsOf: asOf}, nil
}

// Statistics returns the figures of q. InvalidArgument for a bad term range.
func (s *Service) Statistics(ctx context.Context, q StatisticsQuery) (domain.Figures, error) {
	sel, err := s.selection(q)
	if err != nil {
		return domain.Figures{}, err
	}
	var f domain.Figures
	err = s.readSnapshot(ctx, func(tx pgx.Tx) error {
		var err error
		if f, err = adapters.Figures(ctx, tx, sel); err != nil {
			return err
		}
		f.Steps, f.Rejections, err = adapters.Steps(ctx, tx, sel)
		return err
	})
	return f, err
}

// ExportBatch is how many payments ExportPayments passes at a time.
const ExportBatch = 1000

// ExportPayments calls fn with the paid records of q's selection in
// batches of up to ExportBatch, from one snapshot, and returns the instant
// they are as of. The batch's slice is reused: fn must not keep it.
// InvalidArgument as Statistics.
func (s *Service) ExportPayments(ctx context.Context, q StatisticsQuery, fn func(asOf time.Time, batch []adapters.PaymentRecord) error) error {
	sel, err := s.selection(q)
	if err != nil {
		return err
	}
	return s.readSnapshot(ctx, func(tx pgx.Tx) error {
		batch := make([]adapters.PaymentRecord, 0, ExportBatch)
		if err := adapters.EachPayment(ctx, tx, sel, func(r adapters.PaymentRecord) error {
			batch = append(batch, r)
			if len(batch) < ExportBatch {
				return nil
			}
			err := fn(sel.AsOf, batch)
			batch = batch[:0]
			return err
		}); err != nil {
			return err
		}
		return fn(sel.AsOf, batch)
	})
}

// ReportVersion is a report with its status.
type ReportVersion struct {
	Report      domain.Report
	Final       bool
	Version     int
	SHA256      string
	FinalisedBy string
	Note        string
	Changes     []string
}

func checkYear(year int) error {
	if year < 2000 || year > 2200 {
		return apperr.Violations{{Field: "year", Description: "must be a year between 2000 and 2200"}}.Err()
	}
	return nil
}

// live builds the year's report from the figures as of asOf.
func live(ctx context.Context, q db.Querier, year int, lang string, asOf time.Time) (domain.Report, error) {
	f, err := adapters.Figures(ctx, q, adapters.Selection{FromRank: year * 2, ToRank: year*2 + 1, AsOf: asOf, RecoveredYear: year})
	if err != nil {
		return domain.Report{}, err
	}
	c, err := adapters.Comparison(ctx, q, year, asOf)
	if err != nil {
		return domain.Report{}, err
	}
	return domain.BuildAnnual(year, lang, f, c), nil
}

// AnnualReport returns the year's latest FINAL version (or the given one),
// or the live figures when there is none or liveFigures is set. NotFound
// for a FINAL version that does not exist. A FINAL version is returned in
// the language it was finalised in.
func (s *Service) AnnualReport(ctx context.Context, year int, lang string, liveFigures bool, version int) (ReportVersion, error) {
	if err := checkYear(year); err != nil {
		return ReportVersion{}, err
	}
	var out ReportVersion
	err := s.readSnapshot(ctx, func(tx pgx.Tx) error {
		if !liveFigures {
			v, ok, err := adapters.LatestVersion(ctx, tx, year, version)
			if err != nil {
				return err
			}
			if ok {
				out = ReportVersion{Report: v.Report, Final: true, Version: v.Version, SHA256: v.SHA256,
					FinalisedBy: v.FinalisedBy, Note: v.Note, Changes: v.Changes}
				return nil
			}
			if version != 0 {
				return apperr.New(apperr.NotFound, "the %d report has no FINAL version %d", year, version)
			}
		}
		r, err := live(ctx, tx, year, lang, s.clock())
		out = ReportVersion{Report: r, SHA256: r.Hash()}
		return err
	})
	return out, err
}

// FinaliseRoles may finalise a year's report: the bureau's reviewers, who
// sign the bureau's report off.
var FinaliseRoles = []auth.Role{auth.RoleBureauReviewer}

// Finalise freezes the year's live figures as its next FINAL version,
// recording who finalised it and what changed since the version before.
// FailedPrecondition (report-unchanged) when the figures are those of the
// latest version.
func (s *Service) Finalise(ctx context.Context, by auth.Identity, year int, lang, note string) (ReportVersion, error) {
	if err := checkYear(year); err != nil {
		return ReportVersion{}, err
	}
	note = strings.TrimSpace(note)
	if !utf8.ValidString(note) || utf8.RuneCountInString(note) > 500 {
		return ReportVersion{}, apperr.Violations{{Field: "note", Description: "must be valid text of at most 500 characters"}}.Err()
	}
	var out ReportVersion
	err := db.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		// One finalisation of a year at a time.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('reporting.finalise'), $1)`, year); err != nil {
			return err
		}
		now := s.clock()
		prev, hasPrev, err := adapters.LatestVersion(ctx, tx, year, 0)
		if err != nil {
			return err
		}
		if hasPrev {
			lang = prev.Report.Language
		}
		r, err := live(ctx, tx, year, lang, now)
		if err != nil {
			return err
		}
		v := adapters.Version{Year: year, Version: 1, AsOf: now, CreatedAt: now, Report: r, SHA256: r.Hash(),
			FinalisedBy: by.UserID, Role: string(by.Role), Note: note, Changes: []string{}}
		if hasPrev {
			v.Version = prev.Version + 1
			v.Changes = domain.Changes(prev.Report, r)
			if len(v.Changes) == 0 {
				return apperr.Refused(apperr.FailedPrecondition, apperr.ReasonReportUnchanged,
					"the %d report's figures are those of FINAL version %d: nothing to correct", year, prev.Version)
			}
		}
		if err := adapters.InsertVersion(ctx, tx, v); err != nil {
			return fmt.Errorf("finalise %d: %w", year, err)
		}
		out = ReportVersion{Report: r, Final: true, Version: v.Version, SHA256: v.SHA256, FinalisedBy: v.FinalisedBy, Note: note, Changes: v.Changes}
		return nil
	})
	return out, err
}

// Versions lists the year's FINAL versions, oldest first.
func (s *Service) Versions(ctx context.Context, year int) ([]ReportVersion, error) {
	if err := checkYear(year); err != nil {
		return nil, err
	}
	vs, err := adapters.ListVersions(ctx, s.pool, year)
	if err != nil {
		return nil, err
	}
	out := make([]ReportVersion, 0, len(vs))
	for _, v := range vs {
		out = append(out, ReportVersion{Report: v.Report, Final: true, Version: v.Version, SHA256: v.SHA256,
			FinalisedBy: v.FinalisedBy, Note: v.Note, Changes: v.Changes})
	}
	return out, nil
}
