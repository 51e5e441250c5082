package web

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/grpcx"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
	bureaureviewv1 "github.com/edubureau/studentaid/proto/gen/aid/bureaureview/v1"
	datacomparisonv1 "github.com/edubureau/studentaid/proto/gen/aid/datacomparison/v1"
	financev1 "github.com/edubureau/studentaid/proto/gen/aid/finance/v1"
	reportingv1 "github.com/edubureau/studentaid/proto/gen/aid/reporting/v1"
	schoolreviewv1 "github.com/edubureau/studentaid/proto/gen/aid/schoolreview/v1"
)

// callTokenTTL is how long the token minted for one call to the services
// is valid: long enough for a bulk decision's calls, short enough that a
// token read off the wire is soon worthless.
const callTokenTTL = 5 * time.Minute

// Upstream calls the services through the public API's entry point with
// the signed-in user's identity: each call carries a token the console
// mints for that user, so every rule, scope and separation of duties is
// the services' own, as for any portal.
type Upstream struct {
	conn   *grpc.ClientConn
	signer *auth.Signer

	Applications applicationv1.ApplicationServiceClient
	Policy       applicationv1.PolicyServiceClient
	School       schoolreviewv1.SchoolReviewServiceClient
	Bureau       bureaureviewv1.BureauReviewServiceClient
	Finance      financev1.FinanceConfirmationServiceClient
	Data         datacomparisonv1.DataComparisonServiceClient
	Reporting    reportingv1.ReportingServiceClient
}

// NewUpstream connects to the entry point's gRPC address.
func NewUpstream(addr string, signer *auth.Signer) (*Upstream, error) {
	conn, err := grpcx.Dial(addr, "")
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return &Upstream{
		conn: conn, signer: signer,
		Applications: applicationv1.NewApplicationServiceClient(conn),
		Policy:       applicationv1.NewPolicyServiceClient(conn),
		School:       schoolreviewv1.NewSchoolReviewServiceClient(conn),
		Bureau:       bureaureviewv1.NewBureauReviewServiceClient(conn),
		Finance:      financev1.NewFinanceConfirmationServiceClient(conn),
		Data:         datacomparisonv1.NewDataComparisonServiceClient(conn),
		Reporting:    reportingv1.NewReportingServiceClient(conn),
	}, nil
}

// Close closes the connection.
func (u *Upstream) Close() error { return u.conn.Close() }

// As returns ctx carrying a fresh token for id.
func (u *Upstream) As(ctx context.Context, id auth.Identity) (context.Context, error) {
	tok, err := u.Token(id)
	if err != nil {
		return nil, err
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok), nil
}

// Token mints a call token for id.
func (u *Upstream) Token(id auth.Identity) (string, error) {
	tok, err := u.signer.Mint(id, callTokenTTL)
	if err != nil {
		return "", fmt.Errorf("mint call token for %s: %w", id, err)
	}
	return tok, nil
}
