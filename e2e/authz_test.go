package e2e

import (
	"context"
	"crypto/ed25519"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/edubureau/studentaid/internal/devtools/stack"
	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/config"
	"github.com/edubureau/studentaid/pkg/pii"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
	bureaureviewv1 "github.com/edubureau/studentaid/proto/gen/aid/bureaureview/v1"
	datacomparisonv1 "github.com/edubureau/studentaid/proto/gen/aid/datacomparison/v1"
	financev1 "github.com/edubureau/studentaid/proto/gen/aid/finance/v1"
	keysv1 "github.com/edubureau/studentaid/proto/gen/aid/keys/v1"
	payoutv1 "github.com/edubureau/studentaid/proto/gen/aid/payout/v1"
	reportingv1 "github.com/edubureau/studentaid/proto/gen/aid/reporting/v1"
	schoolreviewv1 "github.com/edubureau/studentaid/proto/gen/aid/schoolreview/v1"
)

// rpcCase is one RPC with a request that a permitted caller gets `allowed`
// for (NotFound for an unknown ID, OK for a list, InvalidArgument for an
// empty submission), and the roles it is permitted to.
type rpcCase struct {
	name    string
	roles   []auth.Role
	allowed codes.Code
	call    func(ctx context.Context, u *user) error
}

var (
	readers       = []auth.Role{auth.RoleSchoolOfficer, auth.RoleSchoolReviewer, auth.RoleBureauReviewer, auth.RoleFinanceOfficer, auth.RoleDataOfficer, auth.RoleAuditor}
	schoolReaders = []auth.Role{auth.RoleSchoolReviewer, auth.RoleSchoolOfficer, auth.RoleBureauReviewer, auth.RoleDataOfficer, auth.RoleAuditor}
	bureauReaders = []auth.Role{auth.RoleBureauReviewer, auth.RoleDataOfficer, auth.RoleAuditor, auth.RoleFinanceOfficer}
	financeReader = []auth.Role{auth.RoleFinanceOfficer, auth.RoleBureauReviewer, auth.RoleDataOfficer, auth.RoleAuditor}
	allButOps     = []auth.Role{auth.RoleSchoolOfficer, auth.RoleSchoolReviewer, auth.RoleBureauReviewer, auth.RoleFinanceOfficer, auth.RoleDataOfficer, auth.RoleAuditor}
	// policyReaders read the aid policy: everyone who works with it.
	policyReaders = append(slices.Clone(allButOps), auth.RolePolicyAdmin)
)

func rpcCases() []rpcCase {
	unknown := uuid.NewString()
	card := pii.GenerateCardNumber("621700", 123456, 19)
	return append(append(chainCases(unknown, card), dataComparisonCases(unknown)...), reportingCases()...)
}

// reportingCases are the statistics and annual report's RPCs: the bureau's
// reviewers, the data office, finance and auditors read; only the bureau's
// reviewers finalise.
func reportingCases() []rpcCase {
	finaliser := []auth.Role{auth.RoleBureauReviewer}
	return []rpcCase{
		{"reporting.GetStatistics", bureauReaders, codes.InvalidArgument, func(ctx context.Context, u *user) error {
			_, err := u.reports.GetStatistics(ctx, &reportingv1.GetStatisticsRequest{FromTerm: "2017-autumn", ToTerm: "2017-spring"})
			return err
		}},
		{"reporting.GetAnnualReport", bureauReaders, codes.InvalidArgument, func(ctx context.Context, u *user) error {
			_, err := u.reports.GetAnnualReport(ctx, &reportingv1.GetAnnualReportRequest{Year: 1999})
			return err
		}},
		{"reporting.FinaliseAnnualReport", finaliser, codes.InvalidArgument, func(ctx context.Context, u *user) error {
			_, err := u.reports.FinaliseAnnualReport(ctx, &reportingv1.FinaliseAnnualReportRequest{Year: 1999})
			return err
		}},
		{"reporting.ListReportVersions", bureauReaders, codes.OK, func(ctx context.Context, u *user) error {
			_, err := u.reports.ListReportVersions(ctx, &reportingv1.ListReportVersionsRequest{Year: 2017})
			return err
		}},
	}
}

// dataComparisonCases are the data office's RPCs: data officers do
// everything, auditors read, bureau reviewers read review-time flags.
func dataComparisonCases(unknown string) []rpcCase {
	officer := []auth.Role{auth.RoleDataOfficer}
	readers := []auth.Role{auth.RoleDataOfficer, auth.RoleAuditor}
	return []rpcCase{
		{"data-comparison.ImportReference", officer, codes.InvalidArgument, func(ctx context.Context, u *user) error {
			_, err := u.data.ImportReference(ctx, &datacomparisonv1.ImportReferenceRequest{})
			return err
		}},
		{"data-comparison.ListImports", readers, codes.OK, func(ctx context.Context, u *user) error {
			_, err := u.data.ListImports(ctx, &datacomparisonv1.ListImportsRequest{})
			return err
		}},
		{"data-comparison.RunComparison", officer, codes.InvalidArgument, func(ctx context.Context, u *user) error {
			_, err := u.data.RunComparison(ctx, &datacomparisonv1.RunComparisonRequest{FromTerm: "2017-autumn", ToTerm: "2017-spring"})
			return err
		}},
		{"data-comparison.RaiseClue", officer, codes.InvalidArgument, func(ctx context.Context, u *user) error {
			_, err := u.data.RaiseClue(ctx, &datacomparisonv1.RaiseClueRequest{Kind: "other"})
			return err
		}},
		{"data-comparison.GetClue", readers, codes.NotFound, func(ctx context.Context, u *user) error {
			_, err := u.data.GetClue(ctx, &datacomparisonv1.GetClueRequest{ClueId: unknown})
			return err
		}},
		{"data-comparison.ListClues", readers, codes.OK, func(ctx context.Context, u *user) error {
			_, err := u.data.ListClues(ctx, &datacomparisonv1.ListCluesRequest{})
			return err
		}},
		{"data-comparison.AssignClues", officer, codes.NotFound, func(ctx context.Context, u *user) error {
			_, err := u.data.AssignClues(ctx, &datacomparisonv1.AssignCluesRequest{ClueIds: []string{unknown}, Assignee: "dc1"})
			return err
		}},
		{"data-comparison.VerifyClues", officer, codes.NotFound, func(ctx context.Context, u *user) error {
			_, err := u.data.VerifyClues(ctx, &datacomparisonv1.VerifyCluesRequest{ClueIds: []string{unknown}, Findings: "查实"})
			return err
		}},
		{"data-comparison.DismissClues", officer, codes.NotFound, func(ctx context.Context, u *user) error {
			_, err := u.data.DismissClues(ctx, &datacomparisonv1.DismissCluesRequest{ClueIds: []string{unknown}, Findings: "不属实"})
			return err
		}},
		{"data-comparison.GetClueTrail", readers, codes.NotFound, func(ctx context.Context, u *user) error {
			_, err := u.data.GetClueTrail(ctx, &datacomparisonv1.GetClueTrailRequest{ClueId: unknown})
			return err
		}},
		{"data-comparison.GetRefund", readers, codes.NotFound, func(ctx context.Context, u *user) error {
			_, err := u.data.GetRefund(ctx, &datacomparisonv1.GetRefundRequest{RefundId: unknown})
			return err
		}},
		{"data-comparison.ListRefunds", readers, codes.OK, func(ctx context.Context, u *user) error {
			_, err := u.data.ListRefunds(ctx, &datacomparisonv1.ListRefundsRequest{})
			return err
		}},
		{"data-comparison.ExportRecords", officer, codes.InvalidArgument, func(ctx context.Context, u *user) error {
			_, err := u.data.ExportRecords(ctx, &datacomparisonv1.ExportRecordsRequest{FromTerm: "2017-autumn", ToTerm: "2017-spring",
				Format: datacomparisonv1.ExportFormat_EXPORT_FORMAT_CSV, Inline: true})
			return err
		}},
		{"data-comparison.ImportClues", officer, codes.InvalidArgument, func(ctx context.Context, u *user) error {
			_, err := u.data.ImportClues(ctx, &datacomparisonv1.ImportCluesRequest{})
			return err
		}},
		{"data-comparison.RecordReceipt", officer, codes.NotFound, func(ctx context.Context, u *user) error {
			_, err := u.data.RecordReceipt(ctx, &datacomparisonv1.RecordReceiptRequest{RefundId: unknown, AmountFen: 100, BankRef: "IN-1", Account: "DEV-INTEGRITY-ACCOUNT"})
			return err
		}},
		{"data-comparison.ListFlags", []auth.Role{auth.RoleBureauReviewer, auth.RoleDataOfficer, auth.RoleAuditor}, codes.OK, func(ctx context.Context, u *user) error {
			_, err := u.data.ListFlags(ctx, &datacomparisonv1.ListFlagsRequest{ApplicationIds: []string{unknown}})
			return err
		}},
	}
}

// chainCases are the RPCs of the five chain services.
func chainCases(unknown, card string) []rpcCase {
	return []rpcCase{
		{"application.SubmitApplications", []auth.Role{auth.RoleSchoolOfficer}, codes.InvalidArgument, func(ctx context.Context, u *user) error {
			_, err := u.app.SubmitApplications(ctx, &applicationv1.SubmitApplicationsRequest{SchoolCode: "S001", Term: "2017-autumn"})
			return err
		}},
		{"application.GetApplication", readers, codes.NotFound, func(ctx context.Context, u *user) error {
			_, err := u.app.GetApplication(ctx, &applicationv1.GetApplicationRequest{ApplicationId: unknown})
			return err
		}},
		{"application.ListApplications", readers, codes.OK, func(ctx context.Context, u *user) error {
			_, err := u.app.ListApplications(ctx, &applicationv1.ListApplicationsRequest{Purpose: "authorization matrix"})
			return err
		}},
		{"application.ListChanges", readers, codes.OK, func(ctx context.Context, u *user) error {
			_, err := u.app.ListChanges(ctx, &applicationv1.ListChangesRequest{SchoolCode: "S001"})
			return err
		}},
		{"application.ListBackPayOrders", readers, codes.OK, func(ctx context.Context, u *user) error {
			_, err := u.app.ListBackPayOrders(ctx, &applicationv1.ListBackPayOrdersRequest{SchoolCode: "S001"})
			return err
		}},
		{"application.CreateWebhook", []auth.Role{auth.RoleSchoolOfficer}, codes.InvalidArgument, func(ctx context.Context, u *user) error {
			_, err := u.app.CreateWebhook(ctx, &applicationv1.CreateWebhookRequest{SchoolCode: "S001"})
			return err
		}},
		{"application.ListWebhooks", []auth.Role{auth.RoleSchoolOfficer, auth.RoleAuditor}, codes.OK, func(ctx context.Context, u *user) error {
			_, err := u.app.ListWebhooks(ctx, &applicationv1.ListWebhooksRequest{SchoolCode: "S001"})
			return err
		}},
		{"application.DeleteWebhook", []auth.Role{auth.RoleSchoolOfficer}, codes.NotFound, func(ctx context.Context, u *user) error {
			_, err := u.app.DeleteWebhook(ctx, &applicationv1.DeleteWebhookRequest{SchoolCode: "S001", WebhookId: unknown})
			return err
		}},
		{"application.ListWebhookDeadLetters", []auth.Role{auth.RoleSchoolOfficer, auth.RoleAuditor}, codes.NotFound, func(ctx context.Context, u *user) error {
			_, err := u.app.ListWebhookDeadLetters(ctx, &applicationv1.ListWebhookDeadLettersRequest{SchoolCode: "S001", WebhookId: unknown})
			return err
		}},
		{"application.RedeliverWebhookDeadLetter", []auth.Role{auth.RoleSchoolOfficer}, codes.NotFound, func(ctx context.Context, u *user) error {
			_, err := u.app.RedeliverWebhookDeadLetter(ctx, &applicationv1.RedeliverWebhookDeadLetterRequest{SchoolCode: "S001", WebhookId: unknown, DeadLetterId: unknown})
			return err
		}},
		{"application.GetTrail", readers, codes.NotFound, func(ctx context.Context, u *user) error {
			_, err := u.app.GetTrail(ctx, &applicationv1.GetTrailRequest{ApplicationId: unknown})
			return err
		}},
		{"application.VerifyTrail", []auth.Role{auth.RoleAuditor, auth.RoleDataOfficer, auth.RoleBureauReviewer}, codes.NotFound, func(ctx context.Context, u *user) error {
			_, err := u.app.VerifyTrail(ctx, &applicationv1.VerifyTrailRequest{ApplicationId: unknown})
			return err
		}},
		{"application.CorrectPayee", []auth.Role{auth.RoleSchoolOfficer}, codes.NotFound, func(ctx context.Context, u *user) error {
			_, err := u.app.CorrectPayee(ctx, &applicationv1.CorrectPayeeRequest{ApplicationId: unknown, BankCardNumber: card, AccountName: "王大明"})
			return err
		}},
		{"application.ApprovePayeeCorrection", []auth.Role{auth.RoleSchoolReviewer}, codes.NotFound, func(ctx context.Context, u *user) error {
			_, err := u.app.ApprovePayeeCorrection(ctx, &applicationv1.ApprovePayeeCorrectionRequest{ApplicationId: unknown, CorrectionId: unknown})
			return err
		}},
		{"application.RejectPayeeCorrection", []auth.Role{auth.RoleSchoolReviewer}, codes.NotFound, func(ctx context.Context, u *user) error {
			_, err := u.app.RejectPayeeCorrection(ctx, &applicationv1.RejectPayeeCorrectionRequest{ApplicationId: unknown, CorrectionId: unknown, Reason: "户名不符"})
			return err
		}},
		{"application.ExportCheckpoint", []auth.Role{auth.RoleAuditor}, codes.OK, func(ctx context.Context, u *user) error {
			// The service signs its first checkpoint as it starts; wait for
			// it to reach the stream.
			for range 100 {
				_, err := u.app.ExportCheckpoint(ctx, &applicationv1.ExportCheckpointRequest{})
				if status.Code(err) != codes.FailedPrecondition {
					return err
				}
				time.Sleep(50 * time.Millisecond)
			}
			return errors.New("no checkpoint on the stream in time")
		}},
		{"application.ExportTrailLeaves", []auth.Role{auth.RoleAuditor}, codes.InvalidArgument, func(ctx context.Context, u *user) error {
			_, err := u.app.ExportTrailLeaves(ctx, &applicationv1.ExportTrailLeavesRequest{Start: 5, End: 1})
			return err
		}},
		{"application.GetInclusionProof", []auth.Role{auth.RoleAuditor}, codes.NotFound, func(ctx context.Context, u *user) error {
			_, err := u.app.GetInclusionProof(ctx, &applicationv1.GetInclusionProofRequest{ApplicationId: unknown})
			return err
		}},
		{"application.ListPrograms", policyReaders, codes.OK, func(ctx context.Context, u *user) error {
			_, err := u.app.ListPrograms(ctx, &applicationv1.ListProgramsRequest{})
			return err
		}},
		{"application.DraftPolicyVersion", []auth.Role{auth.RolePolicyAdmin}, codes.InvalidArgument, func(ctx context.Context, u *user) error {
			_, err := u.policy.DraftPolicyVersion(ctx, &applicationv1.DraftPolicyVersionRequest{Kind: "programs"})
			return err
		}},
		{"application.ApprovePolicyVersion", []auth.Role{auth.RolePolicyAdmin}, codes.NotFound, func(ctx context.Context, u *user) error {
			_, err := u.policy.ApprovePolicyVersion(ctx, &applicationv1.ApprovePolicyVersionRequest{Kind: "programs", Number: 999, Sha256: "00"})
			return err
		}},
		{"application.PreviewPolicyVersion", []auth.Role{auth.RolePolicyAdmin, auth.RoleBureauReviewer, auth.RoleAuditor}, codes.NotFound, func(ctx context.Context, u *user) error {
			_, err := u.policy.PreviewPolicyVersion(ctx, &applicationv1.PreviewPolicyVersionRequest{Kind: "programs", Number: 999})
			return err
		}},
		{"application.ListPolicyVersions", policyReaders, codes.OK, func(ctx context.Context, u *user) error {
			_, err := u.policy.ListPolicyVersions(ctx, &applicationv1.ListPolicyVersionsRequest{Kind: "schools"})
			return err
		}},
		{"application.GetPolicyVersion", policyReaders, codes.NotFound, func(ctx context.Context, u *user) error {
			_, err := u.policy.GetPolicyVersion(ctx, &applicationv1.GetPolicyVersionRequest{Kind: "programs", Number: 999})
			return err
		}},
		{"school-review.ListReviews", schoolReaders, codes.OK, func(ctx context.Context, u *user) error {
			_, err := u.school.ListReviews(ctx, &schoolreviewv1.ListReviewsRequest{})
			return err
		}},
		{"school-review.GetReview", schoolReaders, codes.NotFound, func(ctx context.Context, u *user) error {
			_, err := u.school.GetReview(ctx, &schoolreviewv1.GetReviewRequest{ApplicationId: unknown})
			return err
		}},
		{"school-review.Decide", []auth.Role{auth.RoleSchoolReviewer}, codes.NotFound, func(ctx context.Context, u *user) error {
			_, err := u.school.Decide(ctx, &schoolreviewv1.DecideRequest{Decisions: []*schoolreviewv1.Decision{{ApplicationId: unknown, Approve: false, Reason: "不符合条件"}}})
			return err
		}},
		{"school-review.RaiseObjection", []auth.Role{auth.RoleSchoolOfficer, auth.RoleSchoolReviewer}, codes.NotFound, func(ctx context.Context, u *user) error {
			_, err := u.school.RaiseObjection(ctx, &schoolreviewv1.RaiseObjectionRequest{ApplicationId: unknown, Reason: "有异议"})
			return err
		}},
		{"school-review.WithdrawApplication", []auth.Role{auth.RoleSchoolOfficer}, codes.NotFound, func(ctx context.Context, u *user) error {
			_, err := u.school.WithdrawApplication(ctx, &schoolreviewv1.WithdrawApplicationRequest{ApplicationId: unknown, Reason: "学生转学"})
			return err
		}},
		{"school-review.GetWorkingCalendar", append([]auth.Role{auth.RolePolicyAdmin}, schoolReaders...), codes.OK, func(ctx context.Context, u *user) error {
			_, err := u.school.GetWorkingCalendar(ctx, &schoolreviewv1.GetWorkingCalendarRequest{Year: 2017})
			return err
		}},
		// A year out of range: the administrator is told so, and nothing is set.
		{"school-review.SetWorkingCalendar", []auth.Role{auth.RolePolicyAdmin}, codes.InvalidArgument, func(ctx context.Context, u *user) error {
			_, err := u.school.SetWorkingCalendar(ctx, &schoolreviewv1.SetWorkingCalendarRequest{Year: 1999, Reason: "矩阵"})
			return err
		}},
		{"bureau-review.ListReviews", bureauReaders, codes.OK, func(ctx context.Context, u *user) error {
			_, err := u.bureau.ListReviews(ctx, &bureaureviewv1.ListReviewsRequest{})
			return err
		}},
		{"bureau-review.GetReview", bureauReaders, codes.NotFound, func(ctx context.Context, u *user) error {
			_, err := u.bureau.GetReview(ctx, &bureaureviewv1.GetReviewRequest{ApplicationId: unknown})
			return err
		}},
		{"bureau-review.Decide", []auth.Role{auth.RoleBureauReviewer}, codes.NotFound, func(ctx context.Context, u *user) error {
			_, err := u.bureau.Decide(ctx, &bureaureviewv1.DecideRequest{Decisions: []*bureaureviewv1.Decision{{ApplicationId: unknown, Approve: true}}})
			return err
		}},
		{"finance.ListBatches", financeReader, codes.OK, func(ctx context.Context, u *user) error {
			_, err := u.finance.ListBatches(ctx, &financev1.ListBatchesRequest{})
			return err
		}},
		{"finance.GetBatch", financeReader, codes.NotFound, func(ctx context.Context, u *user) error {
			_, err := u.finance.GetBatch(ctx, &financev1.GetBatchRequest{BatchId: unknown})
			return err
		}},
		{"finance.ListBatchItems", financeReader, codes.NotFound, func(ctx context.Context, u *user) error {
			_, err := u.finance.ListBatchItems(ctx, &financev1.ListBatchItemsRequest{BatchId: unknown})
			return err
		}},
		{"finance.CloseBatch", []auth.Role{auth.RoleFinanceOfficer}, codes.NotFound, func(ctx context.Context, u *user) error {
			_, err := u.finance.CloseBatch(ctx, &financev1.CloseBatchRequest{BatchId: unknown})
			return err
		}},
		{"finance.ConfirmBatch", []auth.Role{auth.RoleFinanceOfficer}, codes.NotFound, func(ctx context.Context, u *user) error {
			_, err := u.finance.ConfirmBatch(ctx, &financev1.ConfirmBatchRequest{BatchId: unknown, ControlCount: 1, ControlSumFen: 50000})
			return err
		}},
		{"finance.ReturnItem", []auth.Role{auth.RoleFinanceOfficer}, codes.NotFound, func(ctx context.Context, u *user) error {
			_, err := u.finance.ReturnItem(ctx, &financev1.ReturnItemRequest{BatchId: unknown, ApplicationId: unknown, Reason: "请复核"})
			return err
		}},
		{"finance.ReissuePayment", []auth.Role{auth.RoleFinanceOfficer}, codes.NotFound, func(ctx context.Context, u *user) error {
			_, err := u.finance.ReissuePayment(ctx, &financev1.ReissuePaymentRequest{BatchId: unknown, ApplicationId: unknown})
			return err
		}},
		{"payout.GetPayment", financeReader, codes.NotFound, func(ctx context.Context, u *user) error {
			_, err := u.payout.GetPayment(ctx, &payoutv1.GetPaymentRequest{PaymentId: unknown})
			return err
		}},
		{"payout.ListPayments", financeReader, codes.OK, func(ctx context.Context, u *user) error {
			_, err := u.payout.ListPayments(ctx, &payoutv1.ListPaymentsRequest{BatchId: unknown})
			return err
		}},
		{"payout.ListLoans", financeReader, codes.OK, func(ctx context.Context, u *user) error {
			_, err := u.payout.ListLoans(ctx, &payoutv1.ListLoansRequest{Term: "1999-autumn"})
			return err
		}},
		{"payout.GetLoanBookTotals", financeReader, codes.OK, func(ctx context.Context, u *user) error {
			_, err := u.payout.GetLoanBookTotals(ctx, &payoutv1.GetLoanBookTotalsRequest{Term: "1999-autumn"})
			return err
		}},
		{"payout.RecordLoanRepayment", []auth.Role{auth.RoleFinanceOfficer}, codes.NotFound, func(ctx context.Context, u *user) error {
			_, err := u.payout.RecordLoanRepayment(ctx, &payoutv1.RecordLoanRepaymentRequest{ContractNumber: "NO-SUCH-" + unknown[:8],
				Kind: payoutv1.LoanRepaymentKind_LOAN_REPAYMENT_KIND_REPAYMENT, AmountFen: 100, BankReference: "MATRIX-" + unknown[:8], PaidOn: "2018-09-03"})
			return err
		}},
		// A bad page token: ops is told so, and nothing is rotated.
		{"application.RotateKeys", []auth.Role{auth.RoleOps}, codes.InvalidArgument, func(ctx context.Context, u *user) error {
			_, err := u.appKeys.RotateKeys(ctx, &keysv1.RotateKeysRequest{PageToken: "bogus"})
			return err
		}},
		{"payout.RotateKeys", []auth.Role{auth.RoleOps}, codes.InvalidArgument, func(ctx context.Context, u *user) error {
			_, err := u.payoutKeys.RotateKeys(ctx, &keysv1.RotateKeysRequest{PageToken: "bogus"})
			return err
		}},
	}
}

// TestAuthorizationMatrix calls every RPC as every role, with no token, an
// expired token, a token signed by another key, one for another audience,
// and a school user of another school, and checks the exact code of each cell.
func TestAuthorizationMatrix(t *testing.T) {
	s := startStack(t, nil, false)
	reasons := checkReasons(t)
	orgOf := map[auth.Role]string{
		auth.RoleSchoolOfficer: "S001", auth.RoleSchoolReviewer: "S001", auth.RoleBureauReviewer: auth.OrgBureau,
		auth.RoleDataOfficer: auth.OrgBureau, auth.RoleFinanceOfficer: auth.OrgFinance, auth.RoleAuditor: auth.OrgBureau,
		auth.RoleOps: auth.OrgIT, auth.RoleService: auth.OrgIT, auth.RolePolicyAdmin: auth.OrgBureau,
	}
	users := map[string]*user{}
	for _, r := range auth.Roles {
		users[string(r)] = newUser(t, s, "matrix-"+string(r), r, orgOf[r])
	}
	// The wrong school: permitted roles of another school.
	users["school_officer@S002"] = newUser(t, s, "matrix-officer-s002", auth.RoleSchoolOfficer, "S002")

	expired, err := s.Signer.Mint(auth.Identity{UserID: "late", Role: auth.RoleAuditor, Org: auth.OrgBureau}, -time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	_, otherKey, _ := auth.GenerateKey()
	forged, _ := auth.NewSigner(otherKey, "mallory", "studentaid").Mint(auth.Identity{UserID: "mallory", Role: auth.RoleAuditor, Org: auth.OrgBureau}, time.Hour)
	wrongAud, _ := auth.NewSigner(mustKey(t, s), config.DevAuthIssuer, "another-system").Mint(auth.Identity{UserID: "aud", Role: auth.RoleAuditor, Org: auth.OrgBureau}, time.Hour)
	unauth := map[string]*user{
		"no token":       newUserWithToken(t, s, ""),
		"expired token":  newUserWithToken(t, s, expired),
		"wrong key":      newUserWithToken(t, s, forged),
		"wrong audience": newUserWithToken(t, s, wrongAud),
	}

	for _, rc := range rpcCases() {
		t.Run(rc.name, func(t *testing.T) {
			for _, r := range auth.Roles {
				want := codes.PermissionDenied
				for _, ok := range rc.roles {
					if ok == r {
						want = rc.allowed
					}
				}
				check(t, rc, string(r), users[string(r)], want)
			}
			for name, u := range unauth {
				check(t, rc, name, u, codes.Unauthenticated)
			}
		})
	}

	// A school officer of S002 cannot submit for S001, nor read its rows.
	ctx := ctxT(t)
	_, err = users["school_officer@S002"].app.SubmitApplications(ctx, &applicationv1.SubmitApplicationsRequest{SchoolCode: "S001", Term: "2017-autumn",
		Applications: []*applicationv1.NewApplication{{StudentIdNumber: "x"}}})
	if status.Code(err) != codes.PermissionDenied || apperr.ReasonOf(err) != "own-school-only" {
		t.Errorf("submit for another school: %v, want PermissionDenied own-school-only", err)
	}
	reasons.must(t, "role-not-permitted", "unauthenticated", "own-school-only")
}

func check(t *testing.T, rc rpcCase, who string, u *user, want codes.Code) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := rc.call(ctx, u)
	if got := status.Code(err); got != want {
		t.Errorf("%s as %s: %s (%v), want %s", rc.name, who, got, err, want)
	}
}

// mustKey loads the stack's development signing key.
func mustKey(t *testing.T, s *stack.Stack) ed25519.PrivateKey {
	t.Helper()
	k, err := auth.LoadPrivateKey(filepath.Join(s.KeyDir, "auth.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}
