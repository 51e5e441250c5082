package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/edubureau/studentaid/internal/devtools/stack"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/grpcx"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
	bureaureviewv1 "github.com/edubureau/studentaid/proto/gen/aid/bureaureview/v1"
	datacomparisonv1 "github.com/edubureau/studentaid/proto/gen/aid/datacomparison/v1"
	financev1 "github.com/edubureau/studentaid/proto/gen/aid/finance/v1"
	keysv1 "github.com/edubureau/studentaid/proto/gen/aid/keys/v1"
	payoutv1 "github.com/edubureau/studentaid/proto/gen/aid/payout/v1"
	schoolreviewv1 "github.com/edubureau/studentaid/proto/gen/aid/schoolreview/v1"
)

// user is one person's view of the system: their token and a client per service.
type user struct {
	token   string
	app     applicationv1.ApplicationServiceClient
	school  schoolreviewv1.SchoolReviewServiceClient
	bureau  bureaureviewv1.BureauReviewServiceClient
	finance financev1.FinanceConfirmationServiceClient
	payout  payoutv1.PayoutServiceClient
	data    datacomparisonv1.DataComparisonServiceClient
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
	dial := func(name string) *grpc.ClientConn {
		conn, err := grpcx.Dial(s.Endpoints[name].GRPC, tok)
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
		school:     schoolreviewv1.NewSchoolReviewServiceClient(dial("school-review")),
		bureau:     bureaureviewv1.NewBureauReviewServiceClient(dial("bureau-review")),
		finance:    financev1.NewFinanceConfirmationServiceClient(dial("finance-confirmation")),
		payout:     payoutv1.NewPayoutServiceClient(payoutConn),
		data:       datacomparisonv1.NewDataComparisonServiceClient(dial("data-comparison")),
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
