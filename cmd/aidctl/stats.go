package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/edubureau/studentaid/pkg/config"
	"github.com/edubureau/studentaid/pkg/grpcx"
	reportingv1 "github.com/edubureau/studentaid/proto/gen/aid/reporting/v1"
)

// stats prints the reporting service's figures of a term range.
func stats(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("stats", flag.ContinueOnError)
	addr := fs.String("addr", config.Env("REPORTING_GRPC_ADDR", "127.0.0.1:9107"), "the reporting service's gRPC address")
	from := fs.String("from", "", "first term, e.g. 2017-spring")
	to := fs.String("to", "", "last term (default: -from)")
	schools := fs.String("schools", "", "comma-separated school codes (default: all)")
	stage := fs.String("stage", "", "a stage (default: all)")
	program := fs.String("program", "", "a program code (default: all)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *from == "" {
		return fmt.Errorf("-from is required\n%s", usage)
	}
	if *to == "" {
		*to = *from
	}
	token := config.Env("AID_TOKEN", "")
	if token == "" {
		return errors.New("AID_TOKEN is not set: a bureau reviewer's, data officer's, finance officer's or auditor's token is required")
	}
	conn, err := grpcx.Dial(*addr, token)
	if err != nil {
		return err
	}
	defer conn.Close()
	req := &reportingv1.GetStatisticsRequest{FromTerm: *from, ToTerm: *to, Stage: *stage, ProgramCode: *program}
	if *schools != "" {
		req.SchoolCodes = strings.Split(*schools, ",")
	}
	s, err := reportingv1.NewReportingServiceClient(conn).GetStatistics(ctx, req)
	if err != nil {
		return err
	}
	return printStats(os.Stdout, s)
}

// yuan formats fen as yuan and 万元.
func yuan(fen int64) string {
	sign := ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	return fmt.Sprintf("%s%d.%02d yuan (%s%d.%06d 万元)", sign, fen/100, fen%100, sign, fen/1_000_000, fen%1_000_000)
}

// duration formats seconds as days, hours, minutes and seconds.
func duration(seconds float64) string {
	return (time.Duration(seconds * float64(time.Second))).Round(time.Second).String()
}

func printStats(out io.Writer, s *reportingv1.Statistics) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "as of\t%s\n", s.GetAsOf().AsTime().Format("2006-01-02T15:04:05.000000Z07:00"))
	fmt.Fprintf(w, "paid (minus refunds recovered)\t%s\n", yuan(s.GetPaidFen()))
	fmt.Fprintf(w, "paid before refunds\t%s\n", yuan(s.GetGrossPaidFen()))
	fmt.Fprintf(w, "persons / person-times\t%d / %d\n", s.GetPersons(), s.GetPersonTimes())
	for _, f := range s.GetFunding() {
		fmt.Fprintf(w, "  %s\t%s\n", f.GetSource(), yuan(f.GetAmountFen()))
	}
	fmt.Fprintf(w, "refunds ordered / recovered\t%s / %s\n", yuan(s.GetRefundsOrderedFen()), yuan(s.GetRefundsRecoveredFen()))
	fmt.Fprintf(w, "loans issued\t%d, %s\n", s.GetLoansIssuedCount(), yuan(s.GetLoansIssuedFen()))
	fmt.Fprintf(w, "loans recovered\t%s\n", yuan(s.GetLoansRecoveredFen()))
	fmt.Fprintln(w, "program\tpaid\tpersons\tperson-times")
	for _, p := range s.GetPrograms() {
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\n", p.GetProgramCode(), yuan(p.GetPaidFen()), p.GetPersons(), p.GetPersonTimes())
	}
	fmt.Fprintln(w, "step\tapplications now\tleft\tmedian time in step")
	for _, st := range s.GetSteps() {
		median := "-"
		if st.GetLeft() > 0 {
			median = duration(st.GetMedianSeconds())
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%s\n", st.GetStep(), st.GetApplications(), st.GetLeft(), median)
	}
	fmt.Fprintln(w, "rejected at\treason\tcount")
	for _, r := range s.GetRejections() {
		reason := r.GetReason()
		if r.GetOther() {
			reason = "(other reasons)"
		}
		fmt.Fprintf(w, "%s\t%s\t%d\n", r.GetStep(), reason, r.GetCount())
	}
	return w.Flush()
}
