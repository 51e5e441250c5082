// Package adapters keeps the application service's state in PostgreSQL: the
// applications, their insert-only hash-chained trails and the submission
// idempotency keys. SQL names tables unqualified; the pool's search_path is
// the service's schema.
package adapters

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/services/application/internal/domain"
)

// UniqueStudentProgramTerm is the unique index that keeps one live
// application per student, program and term (domain.Status.Live).
const UniqueStudentProgramTerm = "applications_one_live_per_student_program_term"

// Store reads and writes the service's tables.
type Store struct{}

// applicationColumns are the columns scanApplication reads, in order.
const applicationColumns = `id, school_code, term, program_code, stage, funding_source, tiered,
	boarding, rural, registered_poor,
	student_id_hash, student_id_hash_key, student_id_masked, student_id_sealed, student_name_masked, student_name_sealed,
	bank_card_masked, bank_card_sealed, account_name_sealed,
	status, hardship_level, amount_fen, batch_id, payment_id, status_reason,
	submitted_by, submitted_at, updated_at, trail_length, trail_head, policy_version, register_version, back_pay_clue_id`

func scanApplication(row pgx.Row) (domain.Application, error) {
	var a domain.Application
	var status string
	err := row.Scan(&a.ID, &a.SchoolCode, &a.Term, &a.ProgramCode, &a.Stage, &a.FundingSource, &a.Tiered,
		&a.Boarding, &a.Rural, &a.RegisteredPoor,
		&a.StudentIDHash, &a.StudentIDHashKey, &a.StudentIDMasked, &a.StudentIDSealed, &a.StudentNameMasked, &a.StudentNameSealed,
		&a.BankCardMasked, &a.BankCardSealed, &a.AccountNameSealed,
		&status, &a.HardshipLevel, &a.AmountFen, &a.BatchID, &a.PaymentID, &a.Reason,
		&a.SubmittedBy, &a.SubmittedAt, &a.UpdatedAt, &a.TrailLength, &a.TrailHead, &a.PolicyVersion, &a.RegisterVersion, &a.BackPayClueID)
	a.Status = domain.Status(status)
	return a, err
}

// StudentProgram names one student (by ID hash) and program.
type StudentProgram struct {
	StudentIDHash string
	ProgramCode   string
}

// FindExisting returns which of the given student/program pairs already have
// a live application in term, at any school.
func (Store) FindExisting(ctx context.Context, q db.Querier, term string, pairs []StudentProgram) ([]StudentProgram, error) {
	hashes := make([]string, len(pairs))
	programs := make([]string, len(pairs))
	for i, p := range pairs {
		hashes[i], programs[i] = p.StudentIDHash, p.ProgramCode
	}
	rows, err := q.Query(ctx, `SELECT a.student_id_hash, a.program_code
		FROM applications a
		JOIN unnest($2::text[], $3::text[]) AS want (student_id_hash, program_code)
		  ON a.student_id_hash = want.student_id_hash AND a.program_code = want.program_code
		WHERE a.term = $1 AND a.live`, term, hashes, programs)
	if err != nil {
		return nil, fmt.Errorf("find existing applications: %w", err)
	}
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (StudentProgram, error) {
		var p StudentProgram
		err := r.Scan(&p.StudentIDHash, &p.ProgramCode)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("find existing applications: %w", err)
	}
	return found, nil
}

// insertColumns are applicationColumns as a list.
var insertColumns = strings.Split(strings.NewReplacer("\n", "", "\t", "", " ", "").Replace(applicationColumns), ",")

// InsertApplications writes new applications (with COPY when there are many).
func (Store) InsertApplications(ctx context.Context, tx db.Tx, apps []domain.Application) error {
	rows := make([][]any, len(apps))
	for i, a := range apps {
		rows[i] = []any{a.ID, a.SchoolCode, a.Term, a.ProgramCode, a.Stage, a.FundingSource, a.Tiered,
			a.Boarding, a.Rural, a.RegisteredPoor,
			a.StudentIDHash, a.StudentIDHashKey, a.StudentIDMasked, a.StudentIDSealed, a.StudentNameMasked, a.StudentNameSealed,
			a.BankCardMasked, a.BankCardSealed, a.AccountNameSealed,
			string(a.Status), a.HardshipLevel, a.AmountFen, a.BatchID, a.PaymentID, a.Reason,
			a.SubmittedBy, a.SubmittedAt, a.UpdatedAt, a.TrailLength, a.TrailHead, a.PolicyVersion, a.RegisterVersion, a.BackPayClueID}
	}
	return db.InsertRows(ctx, tx, "applications", insertColumns, rows)
}

// trailColumns are the trail's columns as InsertTrail writes them.
var trailColumns = []string{"application_id", "position", "event_id", "type", "occurred_at",
	"actor_user_id", "actor_role", "actor_org", "status", "reason", "amount_fen", "batch_id", "prev_hash", "hash"}

func trailRow(e domain.TrailEntry) []any {
	return []any{e.ApplicationID, e.Position, e.EventID, e.Type, e.OccurredAt,
		e.ActorUser, e.ActorRole, e.ActorOrg, string(e.Status), e.Reason, e.AmountFen, e.BatchID, e.PrevHash, e.Hash}
}

// Appended is a trail entry with what the school's change feed shows beside
// it: the application's school and its status before the entry ("" for the
// first).
type Appended struct {
	domain.TrailEntry
	SchoolCode string
	Previous   domain.Status
}

// changeColumns are the change feed's columns as InsertTrail writes them;
// xid, seq and recorded_at are the writing transaction's (defaults).
var changeColumns = []string{"school_code", "application_id", "position", "type", "status", "previous_status", "occurred_at"}

func changeRow(a Appended) []any {
	return []any{a.SchoolCode, a.ApplicationID, a.Position, a.Type, string(a.Status), string(a.Previous), a.OccurredAt}
}

// InsertTrail appends trail entries and their change-feed rows, in the order
// given (with COPY when there are many). Every path that appends to a trail
// comes here or to ApplyChange, which write both (migration 009).
func (Store) InsertTrail(ctx context.Context, tx db.Tx, entries []Appended) error {
	rows := make([][]any, len(entries))
	feed := make([][]any, len(entries))
	for i, e := range entries {
		rows[i], feed[i] = trailRow(e.TrailEntry), changeRow(e)
	}
	if err := db.InsertRows(ctx, tx, "trail", trailColumns, rows); err != nil {
		return err
	}
	return db.InsertRows(ctx, tx, "changes", changeColumns, feed)
}

// IdempotencyRecord is what a submission's idempotency key stored.
type IdempotencyRecord struct {
	RequestHash    string
	ApplicationIDs []string
}

// ClaimIdempotencyKey records inside tx that key of school creates the
// applications ids. It returns nil when the key is new (the caller goes on
// and inserts them; if the transaction rolls back, so does the claim), or
// the earlier submission's record. A concurrent claim of the same key waits
// for the other transaction and then sees its outcome.
func (Store) ClaimIdempotencyKey(ctx context.Context, tx db.Tx, school, key, requestHash, user string, ids []string) (*IdempotencyRecord, error) {
	tag, err := tx.Exec(ctx, `INSERT INTO idempotency_keys (school_code, key, request_hash, created_by, application_ids)
		VALUES ($1, $2, $3, $4, $5::uuid[]) ON CONFLICT DO NOTHING`, school, key, requestHash, user, ids)
	if err != nil {
		return nil, fmt.Errorf("claim idempotency key: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return nil, nil //nolint:nilnil // no earlier record: the key is ours now
	}
	var rec IdempotencyRecord
	if err := tx.QueryRow(ctx, `SELECT request_hash, application_ids::text[] FROM idempotency_keys
		WHERE school_code = $1 AND key = $2`, school, key).Scan(&rec.RequestHash, &rec.ApplicationIDs); err != nil {
		return nil, fmt.Errorf("read idempotency key: %w", err)
	}
	return &rec, nil
}

// GetApplications returns the applications with ids, in the order of ids;
// missing ones are left out.
func (Store) GetApplications(ctx context.Context, q db.Querier, ids []string) ([]domain.Application, error) {
	rows, err := q.Query(ctx, `SELECT `+applicationColumns+`
		FROM applications JOIN unnest($1::uuid[]) WITH ORDINALITY AS want (id, n) USING (id)
		ORDER BY want.n`, ids)
	if err != nil {
		return nil, fmt.Errorf("get applications: %w", err)
	}
	apps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Application, error) { return scanApplication(r) })
	if err != nil {
		return nil, fmt.Errorf("get applications: %w", err)
	}
	return apps, nil
}

// GetApplication returns one application; found is false if there is none.
// forUpdate locks the row until the end of the transaction.
func (Store) GetApplication(ctx context.Context, q db.Querier, id string, forUpdate bool) (a domain.Application, found bool, err error) {
	sql := `SELECT ` + applicationColumns + ` FROM applications WHERE id = $1`
	if forUpdate {
		sql += ` FOR UPDATE`
	}
	a, err = scanApplication(q.QueryRow(ctx, sql, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return a, false, nil
	}
	if err != nil {
		return a, false, fmt.Errorf("get application %s: %w", id, err)
	}
	return a, true, nil
}

// Head is what the event handler needs of an application: its keys, its
// state and the end of its trail.
type Head struct {
	SchoolCode  string
	ProgramCode string
	Term        string
	State       domain.State
	TrailLength int64
	TrailHead   string
}

// LockHead reads and locks an application's state for an update; found is
// false if there is no such application.
func (Store) LockHead(ctx context.Context, tx db.Tx, id string) (h Head, found bool, err error) {
	var status string
	err = tx.QueryRow(ctx, `SELECT school_code, program_code, term, status, hardship_level, amount_fen, batch_id,
		payment_id, status_reason, trail_length, trail_head
		FROM applications WHERE id = $1 FOR UPDATE`, id).Scan(&h.SchoolCode, &h.ProgramCode, &h.Term, &status,
		&h.State.HardshipLevel, &h.State.AmountFen, &h.State.BatchID, &h.State.PaymentID, &h.State.Reason,
		&h.TrailLength, &h.TrailHead)
	if errors.Is(err, pgx.ErrNoRows) {
		return h, false, nil
	}
	if err != nil {
		return h, false, fmt.Errorf("lock application %s: %w", id, err)
	}
	h.State.Status = domain.Status(status)
	return h, true, nil
}

// LockHeads reads and locks the states of the applications with ids, in one
// statement, and returns them by ID; unknown IDs are left out. Rows are
// locked in ID order, so that concurrent batches cannot deadlock.
func (Store) LockHeads(ctx context.Context, tx db.Tx, ids []string) (map[string]Head, error) {
	rows, err := tx.Query(ctx, `SELECT id::text, school_code, program_code, term, status, hardship_level, amount_fen,
		batch_id, payment_id, status_reason, trail_length, trail_head
		FROM applications WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE`, ids)
	if err != nil {
		return nil, fmt.Errorf("lock %d applications: %w", len(ids), err)
	}
	defer rows.Close()
	heads := make(map[string]Head, len(ids))
	for rows.Next() {
		var id, status string
		var h Head
		if err := rows.Scan(&id, &h.SchoolCode, &h.ProgramCode, &h.Term, &status,
			&h.State.HardshipLevel, &h.State.AmountFen, &h.State.BatchID, &h.State.PaymentID, &h.State.Reason,
			&h.TrailLength, &h.TrailHead); err != nil {
			return nil, fmt.Errorf("lock %d applications: %w", len(ids), err)
		}
		h.State.Status = domain.Status(status)
		heads[id] = h
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("lock %d applications: %w", len(ids), err)
	}
	return heads, nil
}

// Move is one application's change of state by ApplyChanges: from the trail
// end it was read at (FromLength, FromHead) to State with the trail ending
// at Length and Head.
type Move struct {
	ID         string
	FromLength int64
	FromHead   string
	State      domain.State
	Length     int64
	Head       string
}

// ApplyChanges stores the new states of several applications with one UPDATE
// and appends their trail entries (and change-feed rows) with one COPY each.
// Each move applies only if
// its application's trail still ends where the move started; if any does
// not, it returns an error (the caller rolls back). An application appears
// in at most one move.
func (Store) ApplyChanges(ctx context.Context, tx db.Tx, moves []Move, at time.Time, entries []Appended) error {
	n := len(moves)
	ids, fromLen, fromHead := make([]string, n), make([]int64, n), make([]string, n)
	status, hardship, amount := make([]string, n), make([]string, n), make([]int64, n)
	batch, payment, reason := make([]string, n), make([]string, n), make([]string, n)
	length, head, live := make([]int64, n), make([]string, n), make([]bool, n)
	for i, m := range moves {
		ids[i], fromLen[i], fromHead[i] = m.ID, m.FromLength, m.FromHead
		status[i], hardship[i], amount[i] = string(m.State.Status), m.State.HardshipLevel, m.State.AmountFen
		batch[i], payment[i], reason[i] = m.State.BatchID, m.State.PaymentID, m.State.Reason
		length[i], head[i], live[i] = m.Length, m.Head, m.State.Status.Live()
	}
	tag, err := tx.Exec(ctx, `UPDATE applications a SET status = u.status, hardship_level = u.hardship_level,
		  amount_fen = u.amount_fen, batch_id = u.batch_id, payment_id = u.payment_id, status_reason = u.reason,
		  updated_at = $12, trail_length = u.length, trail_head = u.head, live = u.live
		FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[],
		  $8::text[], $9::text[], $10::bigint[], $11::text[], $13::boolean[])
		  AS u (id, from_length, from_head, status, hardship_level, amount_fen, batch_id, payment_id, reason, length, head, live)
		WHERE a.id = ANY($1::uuid[]) AND a.id = u.id AND a.trail_length = u.from_length AND a.trail_head = u.from_head`,
		ids, fromLen, fromHead, status, hardship, amount, batch, payment, reason, length, head, at, live)
	if err != nil {
		return fmt.Errorf("update %d applications: %w", n, err)
	}
	if got := tag.RowsAffected(); got != int64(n) {
		// Unreachable while the rows are locked.
		return fmt.Errorf("update %d applications: %d still ended where they were read", n, got)
	}
	return Store{}.InsertTrail(ctx, tx, entries)
}

// ApplyChange stores an application's new state and appends its trail entry
// and change-feed row in one statement, provided the application's trail
// still ends where the entry follows (length e.Position-1 and head
// e.PrevHash, so e.Previous is the status it leaves). It reports whether it
// did; when the trail has moved on, it changes nothing.
func (Store) ApplyChange(ctx context.Context, tx db.Tx, s domain.State, at time.Time, e Appended) (bool, error) {
	args := append(trailRow(e.TrailEntry), string(s.Status), s.HardshipLevel, s.AmountFen, s.BatchID, s.PaymentID, s.Reason, at, s.Status.Live(),
		string(e.Previous))
	tag, err := tx.Exec(ctx, `WITH moved AS (
		UPDATE applications SET status = $15, hardship_level = $16, amount_fen = $17, batch_id = $18,
		  payment_id = $19, status_reason = $20, updated_at = $21, trail_length = $2, trail_head = $14, live = $22
		WHERE id = $1::uuid AND trail_length = $2::bigint - 1 AND trail_head = $13::text
		RETURNING id, school_code),
		fed AS (
		INSERT INTO changes (`+strings.Join(changeColumns, ", ")+`)
		SELECT school_code, id, $2::bigint, $4::text, $9::text, $23::text, $5::timestamptz FROM moved)
		INSERT INTO trail (`+strings.Join(trailColumns, ", ")+`)
		SELECT id, $2::bigint, $3::uuid, $4::text, $5::timestamptz, $6::text, $7::text, $8::text, $9::text,
		  $10::text, $11::bigint, $12::text, $13::text, $14::text FROM moved`, args...)
	if err != nil {
		return false, fmt.Errorf("apply %s to %s: %w", e.Type, e.ApplicationID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// UpdatePayee replaces an application's bank card and account name.
func (Store) UpdatePayee(ctx context.Context, tx db.Tx, id string, cardMasked string, cardSealed, nameSealed []byte) error {
	if _, err := tx.Exec(ctx, `UPDATE applications SET bank_card_masked = $2, bank_card_sealed = $3, account_name_sealed = $4
		WHERE id = $1`, id, cardMasked, cardSealed, nameSealed); err != nil {
		return fmt.Errorf("update payee of %s: %w", id, err)
	}
	return nil
}

// Filter narrows a listing; empty fields match everything.
type Filter struct {
	SchoolCode  string
	Term        string
	ProgramCode string
	Status      domain.Status
	// PendingPayee keeps the applications with a pending payee correction.
	PendingPayee bool
}

// Cursor is the keyset position after which a page starts.
type Cursor struct {
	SubmittedAt time.Time
	ID          string
}

// List returns up to limit applications matching f, newest first, starting
// after the cursor when one is given.
func (Store) List(ctx context.Context, q db.Querier, f Filter, after *Cursor, limit int) ([]domain.Application, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.SchoolCode != "" {
		where = append(where, "school_code = "+arg(f.SchoolCode))
	}
	if f.Term != "" {
		where = append(where, "term = "+arg(f.Term))
	}
	if f.ProgramCode != "" {
		where = append(where, "program_code = "+arg(f.ProgramCode))
	}
	if f.Status != "" {
		where = append(where, "status = "+arg(string(f.Status)))
	}
	if f.PendingPayee {
		where = append(where, "EXISTS (SELECT 1 FROM payee_corrections pc WHERE pc.application_id = applications.id AND pc.state = 'PENDING')")
	}
	if after != nil {
		where = append(where, fmt.Sprintf("(submitted_at, id) < (%s, %s::uuid)", arg(after.SubmittedAt), arg(after.ID)))
	}
	sql := `SELECT ` + applicationColumns + ` FROM applications`
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY submitted_at DESC, id DESC LIMIT " + arg(limit)
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("list applications: %w", err)
	}
	apps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Application, error) { return scanApplication(r) })
	if err != nil {
		return nil, fmt.Errorf("list applications: %w", err)
	}
	return apps, nil
}

// Trail returns an application's trail entries in stored position order.
func (Store) Trail(ctx context.Context, q db.Querier, id string) ([]domain.TrailEntry, error) {
	rows, err := q.Query(ctx, `SELECT `+strings.Join(trailColumns, ", ")+`
		FROM trail WHERE application_id = $1 ORDER BY position`, id)
	if err != nil {
		return nil, fmt.Errorf("trail of %s: %w", id, err)
	}
	entries, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.TrailEntry, error) {
		var e domain.TrailEntry
		var status string
		err := r.Scan(&e.ApplicationID, &e.Position, &e.EventID, &e.Type, &e.OccurredAt,
			&e.ActorUser, &e.ActorRole, &e.ActorOrg, &status, &e.Reason, &e.AmountFen, &e.BatchID, &e.PrevHash, &e.Hash)
		e.Status = domain.Status(status)
		e.OccurredAt = e.OccurredAt.UTC()
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("trail of %s: %w", id, err)
	}
	return entries, nil
}
