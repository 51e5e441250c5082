package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/edubureau/studentaid/internal/devtools/stack"
	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/grpcx"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
	bureaureviewv1 "github.com/edubureau/studentaid/proto/gen/aid/bureaureview/v1"
	datacomparisonv1 "github.com/edubureau/studentaid/proto/gen/aid/datacomparison/v1"
	financev1 "github.com/edubureau/studentaid/proto/gen/aid/finance/v1"
	keysv1 "github.com/edubureau/studentaid/proto/gen/aid/keys/v1"
	payoutv1 "github.com/edubureau/studentaid/proto/gen/aid/payout/v1"
	reportingv1 "github.com/edubureau/studentaid/proto/gen/aid/reporting/v1"
	schoolreviewv1 "github.com/edubureau/studentaid/proto/gen/aid/schoolreview/v1"
)

// user is one person's view of the system: their token and a client per service.
type user struct {
	token   string
	app     applicationv1.ApplicationServiceClient
	policy  applicationv1.PolicyServiceClient
	school  schoolreviewv1.SchoolReviewServiceClient
	bureau  bureaureviewv1.BureauReviewServiceClient
	finance financev1.FinanceConfirmationServiceClient
	payout  payoutv1.PayoutServiceClient
	data    datacomparisonv1.DataComparisonServiceClient
	reports reportingv1.ReportingServiceClient
	// appKeys and payoutKeys rotate the keys of the services that hold
	// sealed data.
	appKeys    keysv1.KeyRotationServiceClient
	payoutKeys keysv1.KeyRotationServiceClient
}

func newUser(t *testing.T, s *stack.Stack, id string, role auth.Role, org string) *user {
	t.Helper()
	tok, err := s.Token(id, role, org)
	if err != nil {
		t.Fatal(err)
	}
	return newUserWithToken(t, s, tok)
}

func newUserWithToken(t *testing.T, s *stack.Stack, tok string) *user {
	t.Helper()
	var opts []grpc.DialOption
	if l, ok := reasonChecks.Load(topTest(t)); ok {
		opts = append(opts, grpc.WithChainUnaryInterceptor(l.(*reasonLog).interceptor()))
	}
	dial := func(name string) *grpc.ClientConn {
		conn, err := grpcx.Dial(s.Endpoints[name].GRPC, tok, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	appConn, payoutConn := dial("application"), dial("payout")
	return &user{
		token:      tok,
		appKeys:    keysv1.NewKeyRotationServiceClient(appConn),
		payoutKeys: keysv1.NewKeyRotationServiceClient(payoutConn),
		app:        applicationv1.NewApplicationServiceClient(appConn),
		policy:     applicationv1.NewPolicyServiceClient(appConn),
		school:     schoolreviewv1.NewSchoolReviewServiceClient(dial("school-review")),
		bureau:     bureaureviewv1.NewBureauReviewServiceClient(dial("bureau-review")),
		finance:    financev1.NewFinanceConfirmationServiceClient(dial("finance-confirmation")),
		payout:     payoutv1.NewPayoutServiceClient(payoutConn),
		data:       datacomparisonv1.NewDataComparisonServiceClient(dial("data-comparison")),
		reports:    reportingv1.NewReportingServiceClient(dial("reporting")),
	}
}

// reasonChecks holds, per test, the log of the error reasons its users saw
// (checkReasons).
var reasonChecks sync.Map // top-level test name → *reasonLog

// topTest names t's top-level test, so that subtests' users are checked too.
func topTest(t *testing.T) string {
	t.Helper()
	name, _, _ := strings.Cut(t.Name(), "/")
	return name
}

// reasonLog counts the ErrorInfo reasons of failed calls and keeps every
// failure the error catalog does not account for.
type reasonLog struct {
	mu   sync.Mutex
	seen map[apperr.Reason]int
	bad  []string
}

// checkReasons makes every user newUser creates for t from now on check the
// status of each failed call against the error catalog (pkg/apperr): t fails
// at its end for any answer without a reason, with a reason the catalog does
// not list, or with another gRPC code than the catalog's for it.
func checkReasons(t *testing.T) *reasonLog {
	t.Helper()
	l := &reasonLog{seen: map[apperr.Reason]int{}}
	reasonChecks.Store(topTest(t), l)
	t.Cleanup(func() {
		reasonChecks.Delete(topTest(t))
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, b := range l.bad {
			t.Error(b)
		}
		t.Logf("error reasons seen: %v", l.seen)
	})
	return l
}

// record checks one failed call's status.
func (l *reasonLog) record(what string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if cerr := apperr.CheckStatus(err); cerr != nil {
		l.bad = append(l.bad, fmt.Sprintf("%s: %v", what, cerr))
		return
	}
	l.seen[apperr.ReasonOf(err)]++
}

// recordREST checks the google.rpc.Status body of a failed REST answer.
func (l *reasonLog) recordREST(what string, code int, body []byte) {
	var st spb.Status
	if err := protojson.Unmarshal(body, &st); err != nil {
		l.mu.Lock()
		l.bad = append(l.bad, fmt.Sprintf("%s: HTTP %d body is not a google.rpc.Status (%v): %.200s", what, code, err, body))
		l.mu.Unlock()
		return
	}
	l.record(what, status.FromProto(&st).Err())
}

// must fails t unless every reason of want was seen.
func (l *reasonLog) must(t *testing.T, want ...apperr.Reason) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range want {
		if l.seen[r] == 0 {
			t.Errorf("no answer carried reason %q (seen: %v)", r, l.seen)
		}
	}
}

func (l *reasonLog) interceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if err != nil {
			l.record(method, err)
		}
		return err
	}
}

// rest calls a REST endpoint with the user's token and decodes the JSON answer.
func (u *user) rest(t *testing.T, method, url string, body, out any) int {
	t.Helper()
	var rdr io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rdr = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rdr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+u.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("decode %s %s: %v: %s", method, url, err, b)
		}
	}
	return resp.StatusCode
}

// eventually polls cond until it returns nil or the deadline passes.
func eventually(t *testing.T, what string, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not reached within %s: %v", what, timeout, err)
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func errf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// errorReason is the ErrorInfo reason (the rule) of err's status, if any.
func errorReason(err error) string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}
