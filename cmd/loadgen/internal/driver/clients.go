// Package driver drives the student aid system through its public APIs, the
// way schools, reviewers and the finance bureau would: typed clients for the
// five services, a generator of realistic applications, "bots" that review
// and confirm in bulk, a watcher that times each application's arrival at
// PAID, and the recorder and process probes the load generator reports from.
//
// Every actor is a distinct user, so separation of duties holds: the
// submitter of school Sxxx is officer-Sxxx, its reviewer reviewer-Sxxx, the
// bureau reviewer bureau-1 and the finance officer finance-1.
package driver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/edubureau/studentaid/internal/devtools/stack"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/config"
	"github.com/edubureau/studentaid/pkg/grpcx"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
	bureaureviewv1 "github.com/edubureau/studentaid/proto/gen/aid/bureaureview/v1"
	financev1 "github.com/edubureau/studentaid/proto/gen/aid/finance/v1"
	payoutv1 "github.com/edubureau/studentaid/proto/gen/aid/payout/v1"
	schoolreviewv1 "github.com/edubureau/studentaid/proto/gen/aid/schoolreview/v1"
)

// Service names, as in stack.Services.
const (
	ServiceApplication  = "application"
	ServiceSchoolReview = "school-review"
	ServiceBureauReview = "bureau-review"
	ServiceFinance      = "finance-confirmation"
	ServicePayout       = "payout"
)

// Users of the load. Each role is a different person.
const (
	BureauUser = "bureau-1"
	// FinanceUser confirms batches that FinanceCloserUser closed: closing
	// and confirming take two finance officers.
	FinanceUser       = "finance-1"
	FinanceCloserUser = "finance-2"
	AuditorUser       = "auditor-1"
)

// OfficerUser is the aid officer who submits for school.
func OfficerUser(school string) string { return "officer-" + school }

// ReviewerUser is the member of school's review committee who decides.
func ReviewerUser(school string) string { return "reviewer-" + school }

// TokenSource mints bearer tokens. *stack.Stack satisfies it; so does
// SignerTokens for a stack started elsewhere.
type TokenSource interface {
	Token(user string, role auth.Role, org string) (string, error)
}

// SignerTokens mints tokens with a signing key.
type SignerTokens struct{ Signer *auth.Signer }

// Token mints a 12-hour token.
func (s SignerTokens) Token(user string, role auth.Role, org string) (string, error) {
	return s.Signer.Mint(auth.Identity{UserID: user, Role: role, Org: org}, 12*time.Hour)
}

// LoadSignerTokens reads the PKCS#8 PEM private key a running stack verifies
// tokens against (devstack writes it to .devstack/keys/auth.pem).
func LoadSignerTokens(privateKeyPath string) (SignerTokens, error) {
	sk, err := auth.LoadPrivateKey(privateKeyPath)
	if err != nil {
		return SignerTokens{}, err
	}
	return SignerTokens{Signer: auth.NewSigner(sk, config.DevAuthIssuer, "studentaid")}, nil
}

// Clients holds one gRPC connection per service; each role's client sends
// its own user's token with every call.
type Clients struct {
	endpoints map[string]stack.Endpoint
	tokens    TokenSource
	conns     map[string]*grpc.ClientConn
	http      *http.Client
}

// Dial connects to the five services. It does not wait for them.
func Dial(endpoints map[string]stack.Endpoint, tokens TokenSource) (*Clients, error) {
	c := &Clients{
		endpoints: endpoints,
		tokens:    tokens,
		conns:     map[string]*grpc.ClientConn{},
		http: &http.Client{
			Timeout: 30 * time.Second,
			Transport: &http.Transport{
				MaxIdleConns:        512,
				MaxIdleConnsPerHost: 512,
				IdleConnTimeout:     90 * time.Second,
			},
		},
	}
	for _, name := range stack.Services {
		ep, ok := endpoints[name]
		if !ok || ep.GRPC == "" {
			_ = c.Close() // the missing endpoint is the error to report
			return nil, fmt.Errorf("no gRPC endpoint for %s", name)
		}
		conn, err := grpcx.Dial(ep.GRPC, "", grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
		if err != nil {
			_ = c.Close() // the failed dial is the error to report
			return nil, fmt.Errorf("dial %s: %w", name, err)
		}
		c.conns[name] = conn
	}
	return c, nil
}

// Close closes the connections.
func (c *Clients) Close() error {
	errs := make([]error, 0, len(c.conns))
	for _, conn := range c.conns {
		errs = append(errs, conn.Close())
	}
	c.http.CloseIdleConnections()
	return errors.Join(errs...)
}

// HTTPEndpoint returns a service's HTTP address (REST, /metrics).
func (c *Clients) HTTPEndpoint(service string) string { return c.endpoints[service].HTTP }

// HTTPClient returns the shared HTTP client.
func (c *Clients) HTTPClient() *http.Client { return c.http }

func (c *Clients) credentials(user string, role auth.Role, org string) (string, grpc.CallOption, error) {
	tok, err := c.tokens.Token(user, role, org)
	if err != nil {
		return "", nil, fmt.Errorf("mint token for %s: %w", user, err)
	}
	return tok, grpc.PerRPCCredentials(grpcx.BearerToken(tok)), nil
}

// Officer is a school's aid officer (school_officer): submits applications.
type Officer struct {
	School string
	User   string
	API    applicationv1.ApplicationServiceClient
	// Call carries the officer's token; pass it to every API call.
	Call     grpc.CallOption
	token    string
	restBase string
	http     *http.Client
}

// Officer returns the submitting officer of school.
func (c *Clients) Officer(school string) (*Officer, error) {
	user := OfficerUser(school)
	tok, call, err := c.credentials(user, auth.RoleSchoolOfficer, school)
	if err != nil {
		return nil, err
	}
	return &Officer{
		School: school, User: user, Call: call, token: tok,
		API:      applicationv1.NewApplicationServiceClient(c.conns[ServiceApplication]),
		restBase: "http://" + c.endpoints[ServiceApplication].HTTP,
		http:     c.http,
	}, nil
}

// Submit submits apps for the officer's school over gRPC.
func (o *Officer) Submit(ctx context.Context, term, idempotencyKey string, apps []*applicationv1.NewApplication) ([]*applicationv1.Application, error) {
	resp, err := o.API.SubmitApplications(ctx, &applicationv1.SubmitApplicationsRequest{
		SchoolCode: o.School, Term: term, Applications: apps, IdempotencyKey: idempotencyKey,
	}, o.Call)
	if err != nil {
		return nil, err
	}
	return resp.GetApplications(), nil
}

// restError is grpc-gateway's error body.
type restError struct {
	Code    int32  `json:"code"`
	Message string `json:"message"`
}

var restJSON = protojson.MarshalOptions{UseProtoNames: true}

// SubmitREST submits apps over the REST/JSON gateway
// (POST /v1/applications:submit). Errors carry the gRPC code the gateway
// reports, so status.Code works on them as on Submit's.
func (o *Officer) SubmitREST(ctx context.Context, term, idempotencyKey string, apps []*applicationv1.NewApplication) ([]*applicationv1.Application, error) {
	body, err := restJSON.Marshal(&applicationv1.SubmitApplicationsRequest{
		SchoolCode: o.School, Term: term, Applications: apps, IdempotencyKey: idempotencyKey,
	})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.restBase+"/v1/applications:submit", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+o.token)
	resp, err := o.http.Do(req)
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	if resp.StatusCode != http.StatusOK {
		var e restError
		if jerr := json.Unmarshal(b, &e); jerr != nil || e.Code == 0 {
			return nil, status.Errorf(httpToCode(resp.StatusCode), "HTTP %d: %s", resp.StatusCode, truncate(string(b), 200))
		}
		return nil, status.Error(codes.Code(e.Code), e.Message) //nolint:gosec // G115: the gateway writes a google.rpc.Status code, 1..16 once 0 is ruled out above
	}
	var out applicationv1.SubmitApplicationsResponse
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("decode submit response: %w", err)
	}
	return out.GetApplications(), nil
}

// SchoolReviewer is a member of a school's review committee (school_reviewer).
type SchoolReviewer struct {
	School string
	User   string
	API    schoolreviewv1.SchoolReviewServiceClient
	Call   grpc.CallOption
}

// SchoolReviewer returns the reviewer of school.
func (c *Clients) SchoolReviewer(school string) (*SchoolReviewer, error) {
	user := ReviewerUser(school)
	_, call, err := c.credentials(user, auth.RoleSchoolReviewer, school)
	if err != nil {
		return nil, err
	}
	return &SchoolReviewer{School: school, User: user, Call: call,
		API: schoolreviewv1.NewSchoolReviewServiceClient(c.conns[ServiceSchoolReview])}, nil
}

// BureauReviewer is the education bureau's reviewer (bureau_reviewer).
type BureauReviewer struct {
	User string
	API  bureaureviewv1.BureauReviewServiceClient
	Call grpc.CallOption
}

// BureauReviewer returns the bureau reviewer user.
func (c *Clients) BureauReviewer(user string) (*BureauReviewer, error) {
	_, call, err := c.credentials(user, auth.RoleBureauReviewer, auth.OrgBureau)
	if err != nil {
		return nil, err
	}
	return &BureauReviewer{User: user, Call: call,
		API: bureaureviewv1.NewBureauReviewServiceClient(c.conns[ServiceBureauReview])}, nil
}

// FinanceOfficer is a finance bureau officer (finance_officer).
type FinanceOfficer struct {
	User string
	API  financev1.FinanceConfirmationServiceClient
	Call grpc.CallOption
}

// FinanceOfficer returns the finance officer user.
func (c *Clients) FinanceOfficer(user string) (*FinanceOfficer, error) {
	_, call, err := c.credentials(user, auth.RoleFinanceOfficer, auth.OrgFinance)
	if err != nil {
		return nil, err
	}
	return &FinanceOfficer{User: user, Call: call,
		API: financev1.NewFinanceConfirmationServiceClient(c.conns[ServiceFinance])}, nil
}

// Auditor reads everything and changes nothing; the watcher uses it.
type Auditor struct {
	User        string
	Application applicationv1.ApplicationServiceClient
	Finance     financev1.FinanceConfirmationServiceClient
	Payout      payoutv1.PayoutServiceClient
	Call        grpc.CallOption
}

// Auditor returns the auditor user (org BUREAU).
func (c *Clients) Auditor(user string) (*Auditor, error) {
	_, call, err := c.credentials(user, auth.RoleAuditor, auth.OrgBureau)
	if err != nil {
		return nil, err
	}
	return &Auditor{User: user, Call: call,
		Application: applicationv1.NewApplicationServiceClient(c.conns[ServiceApplication]),
		Finance:     financev1.NewFinanceConfirmationServiceClient(c.conns[ServiceFinance]),
		Payout:      payoutv1.NewPayoutServiceClient(c.conns[ServicePayout]),
	}, nil
}

// Retryable reports whether a failed call may be repeated as it is: the
// server was unreachable, overloaded or timed out. Submissions carry an
// idempotency key, so repeating them is safe.
func Retryable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted:
		return true
	default:
		// Every other code is the server's answer: asking again gets it again.
		return false
	}
}

// WithRetry calls fn up to attempts times while it fails with a retryable
// error, backing off between tries. It returns the last error and how many
// attempts failed.
func WithRetry(ctx context.Context, attempts int, fn func(ctx context.Context) error) (failed int, err error) {
	backoff := 100 * time.Millisecond
	for i := range attempts {
		if err = fn(ctx); err == nil {
			return failed, nil
		}
		failed++
		if !Retryable(err) || i == attempts-1 {
			return failed, err
		}
		select {
		case <-ctx.Done():
			return failed, ctx.Err()
		case <-time.After(backoff):
		}
		backoff *= 2
	}
	return failed, err
}

func httpToCode(s int) codes.Code {
	switch s {
	case http.StatusBadRequest:
		return codes.InvalidArgument
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusNotFound:
		return codes.NotFound
	case http.StatusConflict:
		return codes.AlreadyExists
	case http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case http.StatusServiceUnavailable, http.StatusBadGateway:
		return codes.Unavailable
	case http.StatusGatewayTimeout:
		return codes.DeadlineExceeded
	}
	return codes.Unknown
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
