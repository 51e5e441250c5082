package e2e

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
	datacomparisonv1 "github.com/edubureau/studentaid/proto/gen/aid/datacomparison/v1"
	financev1 "github.com/edubureau/studentaid/proto/gen/aid/finance/v1"
	payoutv1 "github.com/edubureau/studentaid/proto/gen/aid/payout/v1"

	"github.com/edubureau/studentaid/internal/devtools/stack"
	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/grpcx"
)

// TestGatewayOneEntryPoint calls several services' REST and gRPC through
// the gateway only, then floods it as one school and shows another school
// still served.
func TestGatewayOneEntryPoint(t *testing.T) {
	const burst = 20
	const hold = 50 * time.Millisecond // each refusal answered this late
	s := startStackWith(t, nil, false, func(o *stack.Options) {
		o.GatewayEnv = map[string]string{"AID_GATEWAY_RATE": "1", "AID_GATEWAY_BURST": strconv.Itoa(burst), "AID_GATEWAY_REFUSAL_HOLD": hold.String()}
	})
	base := "http://" + s.Gateway

	auditor := newUser(t, s, "auditor1", auth.RoleAuditor, "BUREAU")
	for _, path := range []string{"/v1/programs", "/v1/batches", "/v1/payments?batch_id=00000000-0000-0000-0000-000000000000", "/v1/datacomparison/imports", "/openapi.json"} {
		if code := auditor.rest(t, http.MethodGet, base+path, nil, nil); code != http.StatusOK {
			t.Errorf("GET %s through the gateway: %d, want 200", path, code)
		}
	}
	if code := auditor.rest(t, http.MethodGet, base+"/v1/no-such-resource", nil, nil); code != http.StatusNotFound {
		t.Errorf("GET an unknown path through the gateway: %d, want 404", code)
	}

	conn, err := grpcx.Dial(s.Gateway, auditor.token)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx := ctxT(t)
	if _, err := applicationv1.NewApplicationServiceClient(conn).ListPrograms(ctx, &applicationv1.ListProgramsRequest{}); err != nil {
		t.Errorf("gRPC ListPrograms through the gateway: %v", err)
	}
	if _, err := financev1.NewFinanceConfirmationServiceClient(conn).ListBatches(ctx, &financev1.ListBatchesRequest{}); err != nil {
		t.Errorf("gRPC ListBatches through the gateway: %v", err)
	}
	if _, err := payoutv1.NewPayoutServiceClient(conn).ListPayments(ctx, &payoutv1.ListPaymentsRequest{BatchId: "00000000-0000-0000-0000-000000000000"}); err != nil {
		t.Errorf("gRPC ListPayments through the gateway: %v", err)
	}
	if _, err := datacomparisonv1.NewDataComparisonServiceClient(conn).ListImports(ctx, &datacomparisonv1.ListImportsRequest{}); err != nil {
		t.Errorf("gRPC ListImports through the gateway: %v", err)
	}

	// One school floods: past its burst it gets 429 with Retry-After on
	// REST and ResourceExhausted on gRPC; another school is served.
	flooder := newUser(t, s, "officer1", auth.RoleSchoolOfficer, "S001")
	other := newUser(t, s, "officer2", auth.RoleSchoolOfficer, "S002")
	served, limited := 0, 0
	for range 3 * burst {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/programs", http.NoBody)
		req.Header.Set("Authorization", "Bearer "+flooder.token)
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			served++
		case http.StatusTooManyRequests:
			limited++
			if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
				t.Fatalf("429 with Retry-After %q, want whole seconds ≥ 1", resp.Header.Get("Retry-After"))
			}
			if d := time.Since(start); d < hold {
				t.Fatalf("429 answered after %v, want it held for AID_GATEWAY_REFUSAL_HOLD (%v)", d, hold)
			}
		default:
			t.Fatalf("flood: status %d", resp.StatusCode)
		}
	}
	// At 1 token/s a fast loop may earn a token or two beyond the burst.
	if served < burst || served > burst+5 || limited == 0 {
		t.Errorf("flood of %d from S001: %d served, %d limited; want about %d served", 3*burst, served, limited, burst)
	}
	fconn, err := grpcx.Dial(s.Gateway, flooder.token)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fconn.Close() })
	// The REST flood took about two seconds (40 refusals held 50 ms each),
	// so a token may have come back since its last call: of three calls in
	// a row, at least one is refused.
	refused := 0
	for range 3 {
		_, err = applicationv1.NewApplicationServiceClient(fconn).ListPrograms(ctx, &applicationv1.ListProgramsRequest{})
		switch {
		case err == nil:
		case status.Code(err) == codes.ResourceExhausted && apperr.ReasonOf(err) == apperr.ReasonResourceExhausted:
			refused++
		default:
			t.Fatalf("gRPC from the flooding school: %v (reason %q), want ResourceExhausted with reason %q", err, apperr.ReasonOf(err), apperr.ReasonResourceExhausted)
		}
	}
	if refused == 0 {
		t.Errorf("gRPC from the flooding school: three calls served, want ResourceExhausted past the rate")
	}
	for i := range burst {
		if code := other.rest(t, http.MethodGet, base+"/v1/programs", nil, nil); code != http.StatusOK {
			t.Fatalf("S002's request %d during S001's flood: %d, want 200", i, code)
		}
	}
}
