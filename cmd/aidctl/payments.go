package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/edubureau/studentaid/pkg/config"
)

// exportPayments downloads every paid record of a selection as a file
// (GET /v1/reporting/payments/export), streamed to -out.
func exportPayments(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("export-payments", flag.ContinueOnError)
	api := fs.String("api", config.Env("API", "http://127.0.0.1:8080"), "the API's base URL (the gateway, or the reporting service's HTTP port)")
	from := fs.String("from", "", "first term, e.g. 2017-spring")
	to := fs.String("to", "", "last term (default: -from)")
	schools := fs.String("schools", "", "comma-separated school codes (default: all)")
	stage := fs.String("stage", "", "a stage (default: all)")
	program := fs.String("program", "", "a program code (default: all)")
	asOf := fs.String("as-of", "", "an instant, e.g. 2018-01-15T00:00:00Z (default: now)")
	format := fs.String("format", "xlsx", "xlsx, csv or json")
	language := fs.String("language", "zh", "the XLSX headings: zh or en")
	out := fs.String("out", "", "the file to write (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *from == "" || *out == "" {
		return fmt.Errorf("-from and -out are required\n%s", usage)
	}
	if *to == "" {
		*to = *from
	}
	token := config.Env("AID_TOKEN", "")
	if token == "" {
		return errors.New("AID_TOKEN is not set: a bureau reviewer's, data officer's, finance officer's or auditor's token is required")
	}
	q := url.Values{"from_term": {*from}, "to_term": {*to}, "format": {*format}, "language": {*language}}
	for k, v := range map[string]string{"school_codes": *schools, "stage": *stage, "program_code": *program, "as_of": *asOf} {
		if v != "" {
			q.Set(k, v)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(*api, "/")+"/v1/reporting/payments/export?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("export refused: HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(*out)
		return fmt.Errorf("export cut off after %d bytes: %w", n, err)
	}
	fmt.Fprintf(os.Stderr, "%s: %d bytes\n", *out, n)
	return nil
}
