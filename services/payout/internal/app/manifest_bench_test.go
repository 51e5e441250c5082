package app

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/edubureau/studentaid/internal/devtools/testenv"
	"github.com/edubureau/studentaid/pkg/config"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/manifest"
	"github.com/edubureau/studentaid/services/payout/internal/adapters"
	"github.com/edubureau/studentaid/services/payout/internal/domain"
	"github.com/edubureau/studentaid/services/payout/migrations"
)

const benchItems = 50000

// benchService is payout's use cases over a fresh schema, verifying with
// the development key, and a signer of that key.
func benchService(b *testing.B) (*Service, *pgxpool.Pool, *manifest.Signer) {
	b.Helper()
	ctx := context.Background()
	pool, _ := testenv.Pool(b, "payout")
	if err := db.Migrate(ctx, pool, "payout", migrations.FS()); err != nil {
		b.Fatal(err)
	}
	v, err := manifest.ParseVerifyKeys(config.DevFinanceVerifyKeys)
	if err != nil {
		b.Fatal(err)
	}
	s, err := manifest.ParseSigningKeys(config.DevFinanceSigningKeys)
	if err != nil {
		b.Fatal(err)
	}
	return New(Deps{Pool: pool, Verifier: v}), pool, s
}

// signedBatch is a signed manifest of n items of 62,500 fen.
func signedBatch(b *testing.B, s *manifest.Signer, n int) (manifest.Header, [][]manifest.Item) {
	b.Helper()
	items := make([]manifest.Item, n)
	for i := range items {
		items[i] = manifest.Item{ApplicationID: uuid.NewString(), PaymentID: uuid.NewString(), AmountFen: 62500}
	}
	h, parts, err := manifest.Build(manifest.Batch{ID: uuid.NewString(), ProgramCode: "BOARDING_SUBSIDY", Term: "2017-autumn",
		FundingSource: "government", ControlCount: int64(n), ControlSumFen: int64(n) * 62500}, items, s)
	if err != nil {
		b.Fatal(err)
	}
	return h, parts
}

// storeManifest verifies and stores a manifest as the consumer does: the
// header in one transaction, each part in its own.
func storeManifest(ctx context.Context, b *testing.B, svc *Service, pool *pgxpool.Pool, h manifest.Header, parts [][]manifest.Item) {
	b.Helper()
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return svc.SaveManifestHeader(ctx, tx, h, uuid.NewString()) }); err != nil {
		b.Fatal(err)
	}
	for i, p := range parts {
		if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return svc.SaveManifestPart(ctx, tx, h.ID, i, p, uuid.NewString()) }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyAndStoreManifest50000 is payout's cost of taking in a
// 50,000-item batch's manifest: the header's signature, each of the 50
// parts against its digest, and the items stored (one transaction per part).
func BenchmarkVerifyAndStoreManifest50000(b *testing.B) {
	ctx := context.Background()
	svc, pool, s := benchService(b)
	for b.Loop() {
		b.StopTimer()
		h, parts := signedBatch(b, s, benchItems)
		b.StartTimer()
		storeManifest(ctx, b, svc, pool, h, parts)
	}
	var verified int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM manifests_verified`).Scan(&verified); err != nil || verified == 0 {
		b.Fatalf("%d manifests verified (%v)", verified, err)
	}
}

// BenchmarkOrderCheck is the per-order proof against a verified
// 50,000-item manifest: "single" is AddPayment's primary-key lookup and
// check (ManifestEntry, Order.CheckAgainst) for one order; "batch" is
// AddPayments taking in 256 orders per statement with the manifest join,
// reported per order.
func BenchmarkOrderCheck(b *testing.B) {
	ctx := context.Background()
	svc, pool, s := benchService(b)
	h, parts := signedBatch(b, s, benchItems)
	storeManifest(ctx, b, svc, pool, h, parts)
	var items []manifest.Item
	for _, p := range parts {
		items = append(items, p...)
	}
	// Payees for every item, so that orders are taken in.
	rows := make([][]any, len(items))
	for i, it := range items {
		rows[i] = []any{it.ApplicationID, []byte("sealed-card"), []byte("sealed-name"), "6217***********0123", uuid.NewString(), time.Date(2017, time.September, 1, 0, 0, 0, 0, time.UTC)}
	}
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"payees"},
		[]string{"application_id", "bank_card_sealed", "account_name_sealed", "bank_card_masked", "source_event_id", "source_at"},
		pgx.CopyFromRows(rows)); err != nil {
		b.Fatal(err)
	}
	order := func(it manifest.Item) domain.Order {
		return domain.Order{PaymentID: it.PaymentID, ApplicationID: it.ApplicationID, BatchID: h.ID, SchoolCode: "S001",
			ProgramCode: "BOARDING_SUBSIDY", Term: "2017-autumn", AmountFen: it.AmountFen, Attempt: 1}
	}

	b.Run("single", func(b *testing.B) {
		i := 0
		for b.Loop() {
			o := order(items[i%len(items)])
			i++
			e, err := adapters.ManifestEntry(ctx, pool, o.BatchID, o.ApplicationID)
			if err != nil {
				b.Fatal(err)
			}
			if err := o.CheckAgainst(e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("batch", func(b *testing.B) {
		next := 0
		var orders int
		for b.Loop() {
			if next+256 > len(items) {
				b.StopTimer()
				if _, err := pool.Exec(ctx, `DELETE FROM payments`); err != nil {
					b.Fatal(err)
				}
				next = 0
				b.StartTimer()
			}
			group := make([]DeliveredOrder, 256)
			for j := range group {
				group[j] = DeliveredOrder{Ctx: ctx, Order: order(items[next+j])}
			}
			next += 256
			orders += 256
			if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return svc.AddPayments(tx, group) }); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(orders), "ns/order")
	})
}
