package adapters

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/db"
)

// hashKeysLock is the advisory lock over hash_keys: submissions hold it
// shared while they hash and insert, a key change exclusively.
const hashKeysLock int64 = 0x6169642d68617368 // "aid-hash"

// HashKeys returns the hashing keys applications are hashed under, current
// first, and holds hash_keys' lock shared until tx ends, so that the current
// key does not change before tx's applications are written.
//
// On a transaction that pipelines (pgx.Tx), the lock and the read go to the
// server in one round trip, as two statements: the read still runs after
// the lock is granted, with a snapshot of its own (read committed), so it
// sees a key change committed while the submission waited for the lock.
func (Store) HashKeys(ctx context.Context, tx db.Querier) ([]string, error) {
	if p, ok := tx.(pipeliner); ok {
		b := &pgx.Batch{}
		b.Queue(`SELECT pg_advisory_xact_lock_shared($1)`, hashKeysLock)
		b.Queue(hashKeysSQL)
		br := p.SendBatch(ctx, b)
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return nil, fmt.Errorf("lock hash keys: %w", err)
		}
		rows, err := br.Query()
		keys, err := collectKeys(rows, err)
		if cerr := br.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("hash keys: %w", cerr)
		}
		return keys, err
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock_shared($1)`, hashKeysLock); err != nil {
		return nil, fmt.Errorf("lock hash keys: %w", err)
	}
	return hashKeys(ctx, tx)
}

// pipeliner sends several statements in one round trip (pgx.Tx does).
type pipeliner interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

const hashKeysSQL = `SELECT key_id FROM hash_keys ORDER BY current DESC, since DESC`

func hashKeys(ctx context.Context, q db.Querier) ([]string, error) {
	rows, err := q.Query(ctx, hashKeysSQL)
	return collectKeys(rows, err)
}

func collectKeys(rows pgx.Rows, err error) ([]string, error) {
	if err != nil {
		return nil, fmt.Errorf("hash keys: %w", err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("hash keys: %w", err)
	}
	return keys, nil
}

// EnsureHashKey records keyID as the current hashing key of a database
// that has none yet, and returns the keys in use, current first.
func (Store) EnsureHashKey(ctx context.Context, q db.Querier, keyID string) ([]string, error) {
	if _, err := q.Exec(ctx, `INSERT INTO hash_keys (key_id, current) VALUES ($1, true) ON CONFLICT DO NOTHING`, keyID); err != nil {
		return nil, fmt.Errorf("record hash key: %w", err)
	}
	return hashKeys(ctx, q)
}

// PromoteHashKey makes keyID the current hashing key, the others retiring,
// once every submission that read the keys has ended (it takes hash_keys'
// lock exclusively). It reports whether the current key changed.
func (Store) PromoteHashKey(ctx context.Context, tx db.Querier, keyID string) (bool, error) {
	keys, err := hashKeys(ctx, tx)
	if err != nil || (len(keys) > 0 && keys[0] == keyID) {
		return false, err
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, hashKeysLock); err != nil {
		return false, fmt.Errorf("lock hash keys: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE hash_keys SET current = false WHERE current AND key_id <> $1`, keyID); err != nil {
		return false, fmt.Errorf("retire hash key: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO hash_keys (key_id, current) VALUES ($1, true)
		ON CONFLICT (key_id) DO UPDATE SET current = true, since = now()`, keyID); err != nil {
		return false, fmt.Errorf("promote hash key: %w", err)
	}
	return true, nil
}

// RetireHashKeys forgets the hashing keys other than keyID once no
// application is hashed under another key, and returns how many still are
// (then nothing is forgotten).
func (Store) RetireHashKeys(ctx context.Context, tx db.Querier, keyID string) (int64, error) {
	var left int64
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM applications WHERE student_id_hash_key <> $1`, keyID).Scan(&left); err != nil {
		return 0, fmt.Errorf("count applications under old hash keys: %w", err)
	}
	if left > 0 {
		return left, nil
	}
	if _, err := tx.Exec(ctx, `DELETE FROM hash_keys WHERE key_id <> $1`, keyID); err != nil {
		return 0, fmt.Errorf("retire hash keys: %w", err)
	}
	return 0, nil
}

// SealedStudentID is an application's sealed ID number, for re-hashing.
type SealedStudentID struct {
	ID     string
	Sealed []byte
}

// StudentIDsHashedUnder returns up to limit applications after the ID
// after ("" for the first) whose ID hash is not under keyID, locked.
func (Store) StudentIDsHashedUnder(ctx context.Context, tx db.Querier, keyID, after string, limit int) ([]SealedStudentID, error) {
	rows, err := tx.Query(ctx, `SELECT id::text, student_id_sealed FROM applications
		WHERE ($1 = '' OR id > $1::uuid) AND student_id_hash_key <> $2
		ORDER BY id LIMIT $3 FOR UPDATE`, after, keyID, limit)
	if err != nil {
		return nil, fmt.Errorf("applications to re-hash: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SealedStudentID, error) {
		var s SealedStudentID
		err := r.Scan(&s.ID, &s.Sealed)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("applications to re-hash: %w", err)
	}
	return out, nil
}

// SetStudentIDHashes stores recomputed ID hashes under keyID. A collision
// with another application's hash is a unique violation of
// UniqueStudentProgramTerm.
func (Store) SetStudentIDHashes(ctx context.Context, tx db.Querier, keyID string, ids, hashes []string) error {
	if _, err := tx.Exec(ctx, `UPDATE applications SET student_id_hash = u.h, student_id_hash_key = $1
		FROM unnest($2::uuid[], $3::text[]) AS u (id, h) WHERE applications.id = u.id`, keyID, ids, hashes); err != nil {
		return fmt.Errorf("store re-hashed IDs: %w", err)
	}
	return nil
}
