package adapters_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/edubureau/studentaid/internal/devtools/testenv"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/services/payout/internal/adapters"
	"github.com/edubureau/studentaid/services/payout/internal/domain"
	"github.com/edubureau/studentaid/services/payout/migrations"
)

// TestClaimIsTheDomainClaim runs the set-based claim and domain.Payment.Claim
// over the same due payments: the statement takes up exactly the payments the
// domain lets be claimed, and leaves each in the state the domain gives it.
// A payment whose wait is not over is left alone (the lease, which the
// domain does not know of).
func TestClaimIsTheDomainClaim(t *testing.T) {
	t.Parallel()
	pool, _ := testenv.Pool(t, "payout")
	ctx := context.Background()
	if err := db.Migrate(ctx, pool, "payout", migrations.FS()); err != nil {
		t.Fatal(err)
	}
	type seeded struct {
		status   domain.Status
		attempts int32
		due      bool
	}
	cases := map[string]seeded{}
	for _, s := range []seeded{
		{domain.Pending, 0, true},
		{domain.Unknown, 1, true},
		{domain.Unknown, 4, true},
		{domain.Paid, 1, true},
		{domain.Failed, 2, true},
		{domain.Pending, 0, false},
		{domain.Unknown, 1, false},
	} {
		id := uuid.NewString()
		cases[id] = s
		next := "now() - interval '1 second'"
		if !s.due {
			next = "now() + interval '1 hour'"
		}
		bankRef, reason := "", ""
		switch s.status {
		case domain.Paid:
			bankRef = "B1"
		case domain.Failed:
			reason = "ACCOUNT_CLOSED"
		default:
		}
		_, err := pool.Exec(ctx, `INSERT INTO payments (payment_id, application_id, batch_id, school_code, program_code, term,
  amount_fen, order_attempt, bank_card_sealed, account_name_sealed, bank_card_masked, status, attempts, bank_ref, reason, next_attempt_at)
VALUES ($1, $2, $3, 'S001', 'BOARDING_SUBSIDY', '2017-autumn', 50000, 1, '\x01', '\x02', '6217***0123', $4, $5, $6, $7, `+next+`)`,
			id, uuid.NewString(), uuid.NewString(), string(s.status), s.attempts, bankRef, reason)
		if err != nil {
			t.Fatal(err)
		}
	}

	claimed, err := adapters.Claim(ctx, pool, len(cases), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]adapters.Claimed{}
	for _, c := range claimed {
		got[c.PaymentID] = c
	}
	for id, s := range cases {
		c, taken := got[id]
		want := domain.Payment{Status: s.status, Attempts: s.attempts}
		_, claimErr := want.Claim()
		var status string
		var attempts int32
		if err := pool.QueryRow(ctx, `SELECT status, attempts FROM payments WHERE payment_id = $1`, id).Scan(&status, &attempts); err != nil {
			t.Fatal(err)
		}
		switch {
		case !s.due:
			if taken || status != string(s.status) || attempts != s.attempts {
				t.Errorf("%+v not due: taken %v, now %s with %d attempts", s, taken, status, attempts)
			}
		case claimErr != nil:
			if !errors.Is(claimErr, domain.ErrIllegalTransition) || taken || status != string(s.status) || attempts != s.attempts {
				t.Errorf("%+v: domain refuses (%v); statement took it %v, now %s with %d attempts", s, claimErr, taken, status, attempts)
			}
		default:
			if !taken {
				t.Errorf("%+v: domain claims it, statement did not", s)
				continue
			}
			if c.Status != s.status || c.Attempts != s.attempts {
				t.Errorf("%+v: statement returned the state before the claim as %s with %d attempts", s, c.Status, c.Attempts)
			}
			if status != string(want.Status) || attempts != want.Attempts {
				t.Errorf("%+v: statement left %s with %d attempts, domain %s with %d", s, status, attempts, want.Status, want.Attempts)
			}
		}
	}
}
