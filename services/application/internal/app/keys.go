package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/keyrotation"
	"github.com/edubureau/studentaid/pkg/pii"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	"github.com/edubureau/studentaid/services/application/internal/adapters"
	"github.com/edubureau/studentaid/services/application/internal/domain"
)

// Columns of the applications table whose values are sealed, as their
// bindings (pii.Binding) name them. The payee's two are the events'
// (events.BankCardColumn, events.AccountNameColumn): payout opens them too.
const (
	studentIDColumn   = "application.applications.student_id_sealed"
	studentNameColumn = "application.applications.student_name_sealed"
	// The pending payee corrections' columns, bound to the correction's ID.
	pendingCardColumn = "application.payee_corrections.bank_card_sealed"
	pendingNameColumn = "application.payee_corrections.account_name_sealed"
)

func studentIDBinding(id string) []byte   { return pii.Binding(studentIDColumn, id) }
func studentNameBinding(id string) []byte { return pii.Binding(studentNameColumn, id) }
func pendingCardBinding(id string) []byte { return pii.Binding(pendingCardColumn, id) }
func pendingNameBinding(id string) []byte { return pii.Binding(pendingNameColumn, id) }

// sealedColumns are the applications table's sealed columns.
var sealedColumns = keyrotation.Table{
	Name: "applications", Key: "id", Bind: "id",
	Columns: []keyrotation.Column{
		{Name: "student_id_sealed", Binding: studentIDBinding},
		{Name: "student_name_sealed", Binding: studentNameBinding},
		{Name: "bank_card_sealed", Binding: events.BankCardBinding},
		{Name: "account_name_sealed", Binding: events.AccountNameBinding},
	},
}

// pendingPayees are the pending payee corrections' sealed columns; a
// decided correction's are erased, so only pending ones are re-sealed.
var pendingPayees = keyrotation.Table{
	Name: "payee_corrections", Key: "id", Bind: "id", Where: "state = 'PENDING'",
	Columns: []keyrotation.Column{
		{Name: "bank_card_sealed", Binding: pendingCardBinding},
		{Name: "account_name_sealed", Binding: pendingNameBinding},
	},
}

// CheckHashKeys records the configured current hashing key in a database
// that has none, and refuses to run when applications are hashed under a
// key the Hasher lacks: duplicate checks could not find them. Setup calls
// it before serving.
func (s *Service) CheckHashKeys(ctx context.Context) error {
	keys, err := s.store.EnsureHashKey(ctx, s.pool, s.hasher.CurrentKeyID())
	if err != nil {
		return err
	}
	for _, k := range keys {
		if !s.hasher.Has(k) {
			return fmt.Errorf("applications are hashed under key %q, which AID_HASH_KEYS lacks: keep it configured until `aidctl rotate-key -service application` has finished", k)
		}
	}
	return nil
}

// hashKeyMissing is the refusal when the database's hashing key is not
// configured here (an instance not yet given a new key).
func hashKeyMissing(key string) error {
	return apperr.New(apperr.Unavailable,
		"duplicate checks use hashing key %q, which this instance does not hold; the operator must add it to AID_HASH_KEYS; try again later", key)
}

// bindHashKey hashes apps under the current hashing key of the database
// (rehashing them when it is not the one they were built with) and returns
// the keys applications are hashed under, current first. It holds the
// hash keys' lock shared until tx ends, so the current key cannot change
// before the applications are written.
func (s *Service) bindHashKey(ctx context.Context, tx db.Tx, apps []domain.Application, evs []*eventsv1.Event, ps []prepared) ([]string, error) {
	keys, err := s.store.HashKeys(ctx, tx)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		if keys, err = s.store.EnsureHashKey(ctx, tx, s.hasher.CurrentKeyID()); err != nil {
			return nil, err
		}
	}
	for _, k := range keys {
		if !s.hasher.Has(k) {
			return nil, hashKeyMissing(k)
		}
	}
	current := keys[0]
	for i := range apps {
		if apps[i].StudentIDHashKey == current {
			continue
		}
		h, err := s.hasher.HashWith(current, ps[i].id.String())
		if err != nil {
			return nil, hashKeyMissing(current)
		}
		apps[i].StudentIDHash, apps[i].StudentIDHashKey = h, current
		evs[i].GetApplicationSubmitted().StudentIdHash = h
	}
	return keys, nil
}

// checkDuplicates hashes apps under the current hashing key and, when
// lookFirst is set or a hashing-key change is under way (earlier
// applications may be hashed under another key, which the unique index
// cannot compare), refuses the students who already have an application;
// then it checks the policy's limits and claims the back-pay orders the
// applications name.
func (s *Service) checkDuplicates(ctx context.Context, tx db.Tx, req SubmitRequest, apps []domain.Application, evs []*eventsv1.Event, ps []prepared, lookFirst bool) error {
	hashKeys, err := s.bindHashKey(ctx, tx, apps, evs, ps)
	if err != nil {
		return err
	}
	if lookFirst || len(hashKeys) > 1 {
		if err := s.refuseDuplicates(ctx, tx, req, ps, hashKeys); err != nil {
			return err
		}
	}
	if err := s.checkLimits(ctx, tx, req, ps, hashKeys); err != nil {
		return err
	}
	return s.claimBackPays(ctx, tx, apps, ps, hashKeys)
}

// Rotator moves the applications onto the current keys: it re-seals every
// sealed column under the current sealing key, makes the configured
// current hashing key the one new applications are hashed under (first
// batch), re-hashes every ID number under it, and forgets the older
// hashing keys once no application is hashed under them (last batch).
func (s *Service) Rotator() *keyrotation.Rotator {
	current := s.hasher.CurrentKeyID()
	return &keyrotation.Rotator{
		Pool: s.pool, Sealer: s.sealer, HashKeyID: current,
		Begin: func(ctx context.Context, tx pgx.Tx) error {
			_, err := s.store.PromoteHashKey(ctx, tx, current)
			return err
		},
		Passes: []keyrotation.Pass{
			keyrotation.ResealPass(sealedColumns, s.sealer),
			keyrotation.ResealPass(pendingPayees, s.sealer),
			keyrotation.ResealPass(liveWebhooks, s.sealer),
			{Table: "applications (ID hashes)", Run: s.rehash},
		},
		Finish: func(ctx context.Context, tx pgx.Tx) error {
			left, err := s.store.RetireHashKeys(ctx, tx, current)
			if err != nil || left == 0 {
				return err
			}
			return apperr.New(apperr.FailedPrecondition,
				"%d applications are still hashed under an older key; run the rotation again from the start", left)
		},
	}
}

// rehash recomputes up to limit ID hashes under the current hashing key.
func (s *Service) rehash(ctx context.Context, tx pgx.Tx, after string, limit int) (keyrotation.Batch, error) {
	current := s.hasher.CurrentKeyID()
	rows, err := s.store.StudentIDsHashedUnder(ctx, tx, current, after, limit)
	if err != nil || len(rows) == 0 {
		return keyrotation.Batch{}, err
	}
	ids, hashes := make([]string, len(rows)), make([]string, len(rows))
	for i, r := range rows {
		number, err := s.sealer.Open(r.Sealed, studentIDBinding(r.ID))
		if err != nil {
			return keyrotation.Batch{}, fmt.Errorf("open student id of %s: %w", r.ID, err)
		}
		ids[i], hashes[i] = r.ID, s.hasher.Hash(number)
	}
	if err := s.store.SetStudentIDHashes(ctx, tx, current, ids, hashes); err != nil {
		if db.IsUniqueViolation(err, adapters.UniqueStudentProgramTerm) {
			return keyrotation.Batch{}, apperr.New(apperr.FailedPrecondition,
				"re-hashing found two applications of one student for one program and term among applications after %s; resolve the duplicate, then run the rotation again", cmp.Or(after, "the first"))
		}
		return keyrotation.Batch{}, err
	}
	return keyrotation.Batch{Rehashed: int64(len(rows)), Last: ids[len(ids)-1], More: len(rows) == limit}, nil
}

// unsealable is the answer when application id's sealed field does not
// open: a value altered, copied from another row or column, or sealed
// under a key this instance lacks. The caller learns which; the plaintext
// stays sealed.
func unsealable(id, field string, err error) error {
	switch {
	case errors.Is(err, pii.ErrUnknownKey):
		return apperr.New(apperr.Unavailable, "the %s of application %s is sealed under a key this instance does not hold; the operator must configure it (AID_SEAL_KEYS)", field, id)
	case errors.Is(err, pii.ErrOpen), errors.Is(err, pii.ErrSealFormat):
		return apperr.New(apperr.FailedPrecondition, "the sealed %s of application %s does not open: it was altered or copied from another record; report it to the data officer", field, id)
	}
	return fmt.Errorf("open %s of %s: %w", field, id, err)
}
