package service_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/edubureau/studentaid/cmd/banksim/sim"
	"github.com/edubureau/studentaid/internal/devtools/testenv"
	"github.com/edubureau/studentaid/pkg/config"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/manifest"
	"github.com/edubureau/studentaid/pkg/outbox"
	"github.com/edubureau/studentaid/pkg/pii"
	payoutservice "github.com/edubureau/studentaid/services/payout/internal/service"
)

// TestPayOneLargeBatch pays one confirmed batch of payment orders and checks
// that every item is paid exactly once, at the bank as at payout, and every
// outcome relayed. It pays 3,000 items in every run; AID_LOAD_TEST=1 makes it
// the 50,000-item measurement (or AID_LOAD_TEST=<n> items), and it logs how
// long paying took: docs/performance.md records the measurements, the test
// asserts no timing.
func TestPayOneLargeBatch(t *testing.T) {
	n, err := strconv.Atoi(config.Env("AID_LOAD_TEST", "0"))
	if err != nil || n < 0 {
		t.Fatalf("AID_LOAD_TEST=%q: want 1 (50,000 items) or an item count", config.Env("AID_LOAD_TEST", ""))
	}
	switch n {
	case 0:
		n = 3000
	case 1:
		n = 50000
	}
	// testenv's NATS fsyncs every message (about a thousand a second on
	// this disk), which would measure the disk rather than payout: this test
	// runs on one that syncs as a production server does by default.
	natsURL := testenv.NATSWith(t, func(o *natsserver.Options) { o.SyncAlways = false })
	h := startOn(t, natsURL, sim.Faults{}, payoutservice.Options{Config: payoutservice.DefaultConfig()})
	ctx := context.Background()

	// Payees arrive long before payment orders; seed them directly.
	apps := make([]application, n)
	rows := make([][]any, n)
	for i := range apps {
		apps[i] = newApplication(62500)
		card := pii.GenerateCardNumber("621700", int64(i+1), 19)
		for strings.HasSuffix(card, sim.ClosedCardSuffix) {
			card = pii.GenerateCardNumber("621700", int64(n+i+1), 19)
		}
		rows[i] = []any{apps[i].id, h.sealCard(apps[i].id, card), h.sealName(apps[i].id, accountName), sim.MaskCard(card), uuid.NewString(), time.Now()}
	}
	if _, err := h.pool.CopyFrom(ctx, pgx.Identifier{"payees"},
		[]string{"application_id", "bank_card_sealed", "account_name_sealed", "bank_card_masked", "source_event_id", "source_at"},
		pgx.CopyFromRows(rows)); err != nil {
		t.Fatal(err)
	}
	batchID := uuid.NewString()
	paymentIDs := make([]string, n)
	items := make([]manifest.Item, n)
	for i, a := range apps {
		paymentIDs[i] = uuid.NewString()
		items[i] = itemOf(a, paymentIDs[i])
	}
	h.confirm(batchID, items...)
	msgs := make([]*nats.Msg, n)
	for i, a := range apps {
		ev := ordered(a, batchID, paymentIDs[i], 1)
		data, err := events.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = nats.NewMsg(events.Subject(ev.GetType()))
		msgs[i].Data = data
		msgs[i].Header.Set(jetstream.MsgIDHeader, ev.GetEventId())
	}

	// The orders come from finance-confirmation's NATS identity, the only one
	// that may publish them.
	_, finance := testenv.ConnectNATS(t, natsURL, "finance-confirmation")
	began := time.Now()
	for i, m := range msgs {
		if _, err := finance.PublishMsgAsync(m); err != nil {
			t.Fatal(err)
		}
		if i%1000 == 999 {
			<-finance.PublishAsyncComplete()
		}
	}
	<-finance.PublishAsyncComplete()
	published := time.Since(began)

	deadline := time.Now().Add(3 * time.Minute)
	var paid, taken, backlog int64
	lastReport := time.Now()
	for time.Now().Before(deadline) {
		if err := h.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'PAID'), count(*) FROM payments`).Scan(&paid, &taken); err != nil {
			t.Fatal(err)
		}
		if paid == int64(n) {
			break
		}
		if time.Since(lastReport) > 5*time.Second {
			t.Logf("after %v: %d orders taken in, %d paid", time.Since(began).Round(time.Second), taken, paid)
			lastReport = time.Now()
		}
		time.Sleep(100 * time.Millisecond)
	}
	allPaid := time.Since(began)
	for time.Now().Before(deadline) {
		if backlog, err = outbox.Backlog(ctx, h.pool); err != nil {
			t.Fatal(err)
		}
		if backlog == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	reported := time.Since(began)
	t.Logf("%d orders published in %v; all paid after %v; all payment_succeeded relayed after %v", n, published, allPaid, reported)
	if paid != int64(n) || backlog != 0 {
		t.Fatalf("paid %d of %d, outbox backlog %d", paid, n, backlog)
	}
	totals := h.ledger()
	if totals.CreditedCount != int64(n) || totals.CreditedSumFen != int64(n)*62500 {
		t.Errorf("bank ledger %+v", totals)
	}
}
