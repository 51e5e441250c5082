package adapters_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/internal/devtools/testenv"
	"github.com/edubureau/studentaid/pkg/config"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/manifest"
	"github.com/edubureau/studentaid/services/payout/internal/adapters"
	"github.com/edubureau/studentaid/services/payout/internal/domain"
	"github.com/edubureau/studentaid/services/payout/migrations"
)

// TestAddPaymentsProvesAsCheckAgainst runs the batch statement's manifest
// join and domain.Order.CheckAgainst over the same orders: the statement
// takes in exactly the orders the domain finds proven.
func TestAddPaymentsProvesAsCheckAgainst(t *testing.T) {
	t.Parallel()
	pool, _ := testenv.Pool(t, "payout")
	ctx := context.Background()
	if err := db.Migrate(ctx, pool, "payout", migrations.FS()); err != nil {
		t.Fatal(err)
	}
	signer, err := manifest.ParseSigningKeys(config.DevFinanceSigningKeys)
	if err != nil {
		t.Fatal(err)
	}
	store := func(items []manifest.Item, complete bool) string {
		t.Helper()
		b := manifest.Batch{ID: uuid.NewString(), ProgramCode: "BOARDING_SUBSIDY", Term: "2017-autumn", FundingSource: "government", ControlCount: int64(len(items))}
		for _, it := range items {
			b.ControlSumFen += it.AmountFen
		}
		h, parts, err := manifest.Build(b, items, signer)
		if err != nil {
			t.Fatal(err)
		}
		err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if err := adapters.SaveManifestHeader(ctx, tx, h, uuid.NewString()); err != nil {
				return err
			}
			if _, _, err := adapters.SaveManifestPart(ctx, tx, h.ID, 0, parts[0], uuid.NewString()); err != nil {
				return err
			}
			if !complete {
				return nil
			}
			return adapters.MarkManifestVerified(ctx, tx, h.ID)
		})
		if err != nil {
			t.Fatal(err)
		}
		return h.ID
	}
	apps := make([]string, 4)
	for i := range apps {
		apps[i] = uuid.NewString()
		if _, err := pool.Exec(ctx, `INSERT INTO payees (application_id, bank_card_sealed, account_name_sealed, bank_card_masked, source_event_id, source_at)
VALUES ($1, '\x01', '\x02', '6217***0123', $2, $3)`, apps[i], uuid.NewString(), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	pay0, pay1 := uuid.NewString(), uuid.NewString()
	verified := store([]manifest.Item{{ApplicationID: apps[0], PaymentID: pay0, AmountFen: 62500}, {ApplicationID: apps[1], PaymentID: pay1, AmountFen: 50000}}, true)
	pending := store([]manifest.Item{{ApplicationID: apps[2], PaymentID: uuid.NewString(), AmountFen: 62500}}, false)

	order := func(batch, app, payment string, amount int64, attempt int32) domain.Order {
		return domain.Order{PaymentID: payment, ApplicationID: app, BatchID: batch, SchoolCode: "S001", ProgramCode: "BOARDING_SUBSIDY",
			Term: "2017-autumn", AmountFen: amount, Attempt: attempt}
	}
	orders := map[string]domain.Order{
		"as listed":                      order(verified, apps[0], pay0, 62500, 1),
		"reissue as listed":              order(verified, apps[1], uuid.NewString(), 50000, 2),
		"another payment ID":             order(verified, apps[0], uuid.NewString(), 62500, 1),
		"more":                           order(verified, apps[1], pay1, 50001, 1),
		"reissue for more":               order(verified, apps[1], uuid.NewString(), 90000, 2),
		"not listed":                     order(verified, apps[3], uuid.NewString(), 62500, 1),
		"batch not verified":             order(pending, apps[2], uuid.NewString(), 62500, 1),
		"batch without manifest":         order(uuid.NewString(), apps[3], uuid.NewString(), 62500, 1),
		"listed in another batch's name": order(verified, apps[2], uuid.NewString(), 62500, 1),
		"another term":                   func() domain.Order { o := order(verified, apps[0], pay0, 62500, 1); o.Term = "2018-spring"; return o }(),
	}
	for name, o := range orders {
		t.Run(name, func(t *testing.T) {
			entry, err := adapters.ManifestEntry(ctx, pool, o.BatchID, o.ApplicationID)
			if err != nil {
				t.Fatal(err)
			}
			domainErr := o.CheckAgainst(entry)
			var unproven int
			errRollback := errors.New("rollback")
			err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				var err error
				if _, unproven, err = adapters.AddPayments(ctx, tx, []adapters.NewPayment{{Order: o}}); err != nil {
					return err
				}
				return errRollback
			})
			if !errors.Is(err, errRollback) {
				t.Fatal(err)
			}
			if (domainErr == nil) != (unproven == 0) {
				t.Errorf("domain: %v; statement: %d unproven", domainErr, unproven)
			}
		})
	}
}
