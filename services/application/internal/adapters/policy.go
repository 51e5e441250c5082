package adapters

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/policy"
)

// Statuses of a stored policy version.
const (
	PolicyDraft     = "draft"
	PolicyPublished = "published"
)

// UniquePolicyStart and UniquePolicyCorrection are the indexes that refuse
// two published versions overlapping (docs/policy.md).
const (
	UniquePolicyStart      = "policy_versions_one_start"
	UniquePolicyCorrection = "policy_versions_one_correction"
)

// StoredVersion is a policy version with its status.
type StoredVersion struct {
	policy.Version
	Status string
}

const policyColumns = `kind, number, status, effective_from, corrects, summary, document, sha256,
	drafted_by, drafted_at, approved_by, approved_at`

func scanPolicyVersion(row pgx.Row) (StoredVersion, error) {
	var v StoredVersion
	var kind string
	var approvedAt *time.Time
	err := row.Scan(&kind, &v.Number, &v.Status, &v.Header.EffectiveFrom, &v.Header.Corrects, &v.Header.Summary,
		&v.Document, &v.SHA256, &v.DraftedBy, &v.DraftedAt, &v.ApprovedBy, &approvedAt)
	v.Kind = policy.Kind(kind)
	if approvedAt != nil {
		v.ApprovedAt = approvedAt.UTC()
	}
	v.DraftedAt = v.DraftedAt.UTC()
	return v, err
}

// LockPolicy serialises writers of the policy store for tx: drafts get
// consecutive numbers and approvals see every published version.
func (Store) LockPolicy(ctx context.Context, tx db.Tx) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('application.policy_versions'))`); err != nil {
		return fmt.Errorf("lock policy versions: %w", err)
	}
	return nil
}

// InsertPolicyVersion stores v (numbered by the caller under LockPolicy).
func (Store) InsertPolicyVersion(ctx context.Context, tx db.Tx, v StoredVersion) error {
	var approvedAt *time.Time
	if !v.ApprovedAt.IsZero() {
		approvedAt = &v.ApprovedAt
	}
	_, err := tx.Exec(ctx, `INSERT INTO policy_versions (`+policyColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		string(v.Kind), v.Number, v.Status, v.Header.EffectiveFrom, v.Header.Corrects, v.Header.Summary,
		v.Document, v.SHA256, v.DraftedBy, v.DraftedAt, v.ApprovedBy, approvedAt)
	if err != nil {
		return fmt.Errorf("insert policy version %s %d: %w", v.Kind, v.Number, err)
	}
	return nil
}

// NextPolicyNumber returns the number the next version of kind gets.
func (Store) NextPolicyNumber(ctx context.Context, q db.Querier, kind policy.Kind) (int64, error) {
	var n int64
	if err := q.QueryRow(ctx, `SELECT coalesce(max(number), 0) + 1 FROM policy_versions WHERE kind = $1`, string(kind)).Scan(&n); err != nil {
		return 0, fmt.Errorf("next policy number: %w", err)
	}
	return n, nil
}

// PublishPolicyVersion marks a draft published by approver.
func (Store) PublishPolicyVersion(ctx context.Context, tx db.Tx, kind policy.Kind, number int64, approver string, at time.Time) error {
	tag, err := tx.Exec(ctx, `UPDATE policy_versions SET status = 'published', approved_by = $3, approved_at = $4
		WHERE kind = $1 AND number = $2 AND status = 'draft'`, string(kind), number, approver, at)
	if err != nil {
		return fmt.Errorf("publish policy version %s %d: %w", kind, number, err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("publish policy version %s %d: not a draft", kind, number)
	}
	return nil
}

// GetPolicyVersion returns one version, or ok false.
func (Store) GetPolicyVersion(ctx context.Context, q db.Querier, kind policy.Kind, number int64, forUpdate bool) (StoredVersion, bool, error) {
	sql := `SELECT ` + policyColumns + ` FROM policy_versions WHERE kind = $1 AND number = $2`
	if forUpdate {
		sql += ` FOR UPDATE`
	}
	v, err := scanPolicyVersion(q.QueryRow(ctx, sql, string(kind), number))
	if errors.Is(err, pgx.ErrNoRows) {
		return StoredVersion{}, false, nil
	}
	if err != nil {
		return StoredVersion{}, false, fmt.Errorf("get policy version %s %d: %w", kind, number, err)
	}
	return v, true, nil
}

// ListPolicyVersions returns every version of kind (all kinds when kind is
// empty), oldest number first; published only when publishedOnly.
func (Store) ListPolicyVersions(ctx context.Context, q db.Querier, kind policy.Kind, publishedOnly bool) ([]StoredVersion, error) {
	rows, err := q.Query(ctx, `SELECT `+policyColumns+` FROM policy_versions
		WHERE ($1 = '' OR kind = $1) AND (NOT $2 OR status = 'published') ORDER BY kind, number`, string(kind), publishedOnly)
	if err != nil {
		return nil, fmt.Errorf("list policy versions: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (StoredVersion, error) { return scanPolicyVersion(r) })
	if err != nil {
		return nil, fmt.Errorf("list policy versions: %w", err)
	}
	return out, nil
}

// PolicyStamp changes whenever a version is published: the number of
// published versions and the highest number, over both kinds.
func (Store) PolicyStamp(ctx context.Context, q db.Querier) (string, error) {
	var n, top int64
	if err := q.QueryRow(ctx, `SELECT count(*), coalesce(max(number), 0) FROM policy_versions WHERE status = 'published'`).Scan(&n, &top); err != nil {
		return "", fmt.Errorf("policy stamp: %w", err)
	}
	return fmt.Sprintf("%d/%d", n, top), nil
}

// PendingGroup is a group of applications not yet confirmed in a batch
// that share everything their amount depends on.
type PendingGroup struct {
	Term, SchoolCode, ProgramCode, Stage, Status string
	PolicyVersion, RegisterVersion, AmountFen    int64
	Boarding, Rural, RegisteredPoor              bool
	Applications                                 int64
}

// PendingGroups returns the live applications not yet in a confirmed batch
// (statuses in statuses), grouped by what their amount depends on.
func (Store) PendingGroups(ctx context.Context, q db.Querier, statuses []string) ([]PendingGroup, error) {
	rows, err := q.Query(ctx, `SELECT term, school_code, program_code, stage, status, policy_version, register_version,
		amount_fen, boarding, rural, registered_poor, count(*)
		FROM applications WHERE status = ANY($1)
		GROUP BY term, school_code, program_code, stage, status, policy_version, register_version, amount_fen, boarding, rural, registered_poor
		ORDER BY term, school_code, program_code, stage, status`, statuses)
	if err != nil {
		return nil, fmt.Errorf("pending applications: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (PendingGroup, error) {
		var g PendingGroup
		err := r.Scan(&g.Term, &g.SchoolCode, &g.ProgramCode, &g.Stage, &g.Status, &g.PolicyVersion, &g.RegisterVersion,
			&g.AmountFen, &g.Boarding, &g.Rural, &g.RegisteredPoor, &g.Applications)
		return g, err
	})
	if err != nil {
		return nil, fmt.Errorf("pending applications: %w", err)
	}
	return out, nil
}

// StudentTerm is one live application of a student for a program, as the
// frequency and yearly limits need it.
type StudentTerm struct {
	StudentProgram
	Term      string
	AmountFen int64
}

// FindOtherTerms returns the live applications of the given student/program
// pairs in any term but term.
func (Store) FindOtherTerms(ctx context.Context, q db.Querier, term string, pairs []StudentProgram) ([]StudentTerm, error) {
	hashes := make([]string, len(pairs))
	programs := make([]string, len(pairs))
	for i, p := range pairs {
		hashes[i], programs[i] = p.StudentIDHash, p.ProgramCode
	}
	rows, err := q.Query(ctx, `SELECT a.student_id_hash, a.program_code, a.term, a.amount_fen
		FROM applications a
		JOIN unnest($2::text[], $3::text[]) AS want (student_id_hash, program_code)
		  ON a.student_id_hash = want.student_id_hash AND a.program_code = want.program_code
		WHERE a.term <> $1 AND a.live`, term, hashes, programs)
	if err != nil {
		return nil, fmt.Errorf("find other terms: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (StudentTerm, error) {
		var t StudentTerm
		err := r.Scan(&t.StudentIDHash, &t.ProgramCode, &t.Term, &t.AmountFen)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("find other terms: %w", err)
	}
	return out, nil
}

// LockStudentPrograms takes a transaction lock per student/program pair, in
// a fixed order, so that two submissions of one student for one program in
// different terms are checked one after the other.
func (Store) LockStudentPrograms(ctx context.Context, tx db.Tx, pairs []StudentProgram) error {
	keys := make([]string, len(pairs))
	for i, p := range pairs {
		keys[i] = p.StudentIDHash + "/" + p.ProgramCode
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended(k, 7)) FROM (SELECT DISTINCT k FROM unnest($1::text[]) k ORDER BY k) s`, keys); err != nil {
		return fmt.Errorf("lock students' programs: %w", err)
	}
	return nil
}
