package apperr_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	rpccode "google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/edubureau/studentaid/pkg/apperr"
)

var update = flag.Bool("update", false, "rewrite the catalog section of docs/api.md")

const apiDoc = "../../docs/api.md"

var reasonForm = regexp.MustCompile(`^[a-z]+(-[a-z]+)*$`)

// TestCatalogEntries checks each entry against the REST gateway's own
// code-to-HTTP mapping, and that it says what the portal should do.
func TestCatalogEntries(t *testing.T) {
	t.Parallel()
	for _, e := range apperr.Catalog {
		if !reasonForm.MatchString(string(e.Reason)) {
			t.Errorf("reason %q is not lower-case words joined by '-'", e.Reason)
		}
		if got := runtime.HTTPStatusFromCode(e.GRPC); got != e.HTTP {
			t.Errorf("%s: HTTP %d, but the gateway answers %s with %d", e.Reason, e.HTTP, e.GRPC, got)
		}
		if e.Means == "" || e.Do == "" || strings.Contains(e.Means+e.Do, "|") {
			t.Errorf("%s: meaning and action must be set and hold no '|'", e.Reason)
		}
	}
}

// TestToStatusReasons checks the reason each kind of error carries.
func TestToStatusReasons(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.DiscardHandler)
	var v apperr.Violations
	v.Addf("term", "must be like 2017-autumn")
	tests := []struct {
		err    error
		code   codes.Code
		reason apperr.Reason
	}{
		{v.Err(), codes.InvalidArgument, "invalid-argument"},
		{apperr.New(apperr.NotFound, "batch not found"), codes.NotFound, "not-found"},
		{apperr.New(apperr.FailedPrecondition, "batch confirmed"), codes.FailedPrecondition, "failed-precondition"},
		{apperr.Denied(apperr.ReasonPayeeSelfApproval, "you entered it"), codes.PermissionDenied, "payee-self-approval"},
		{&apperr.Error{Code: apperr.Invalid, Rule: apperr.ReasonPurposeRequired, Message: "purpose: is required"}, codes.InvalidArgument, "purpose-required"},
		{errors.New("pq: broken"), codes.Internal, "internal"},
		{context.DeadlineExceeded, codes.DeadlineExceeded, "deadline-exceeded"},
		{status.Error(codes.Unavailable, "downstream"), codes.Unavailable, "unavailable"},
		{apperr.WithReason(codes.Unauthenticated, "no token"), codes.Unauthenticated, "unauthenticated"},
	}
	for _, tt := range tests {
		got := apperr.ToStatus(context.Background(), log, "/m", tt.err)
		if status.Code(got) != tt.code || apperr.ReasonOf(got) != tt.reason {
			t.Errorf("%v: got %s %q, want %s %q", tt.err, status.Code(got), apperr.ReasonOf(got), tt.code, tt.reason)
		}
		if err := apperr.CheckStatus(got); err != nil {
			t.Errorf("%v: %v", tt.err, err)
		}
	}
	var logged bytes.Buffer
	got := apperr.ToStatus(context.Background(), slog.New(slog.NewTextHandler(&logged, nil)), "/m",
		&apperr.Error{Code: apperr.FailedPrecondition, Rule: apperr.Reason("made-up-rule"), Message: "x"})
	if err := apperr.CheckStatus(got); err == nil || !strings.Contains(err.Error(), "not in the error catalog") {
		t.Errorf("CheckStatus of an uncatalogued reason: %v", err)
	}
	if !strings.Contains(logged.String(), "made-up-rule") {
		t.Error("an uncatalogued reason must be logged")
	}
	if err := apperr.CheckStatus(status.Error(codes.NotFound, "bare")); err == nil {
		t.Error("CheckStatus accepted a status without ErrorInfo")
	}
	if err := apperr.CheckStatus(apperr.ToStatus(context.Background(), log, "/m", &apperr.Error{Code: apperr.NotFound, Rule: apperr.ReasonPayeeSelfApproval, Message: "x"})); err == nil {
		t.Error("CheckStatus accepted a reason with another code than the catalog's")
	}
}

const (
	beginMark = "<!-- catalog:begin (generated from pkg/apperr/catalog.go by `make generate`; do not edit) -->\n"
	endMark   = "<!-- catalog:end -->\n"
)

func catalogTable() string {
	var b strings.Builder
	b.WriteString("| Reason | gRPC code | HTTP | What it means | What the portal should do |\n")
	b.WriteString("|---|---|---|---|---|\n")
	for _, e := range apperr.Catalog {
		fmt.Fprintf(&b, "| `%s` | %s (%d) | %d | %s | %s |\n", e.Reason, rpccode.Code(e.GRPC).String(), e.GRPC, e.HTTP, e.Means, e.Do)
	}
	return b.String()
}

// TestAPIDoc fails when the catalog table in docs/api.md differs from
// apperr.Catalog; `go test ./pkg/apperr -run TestAPIDoc -update` (make
// generate) rewrites it.
func TestAPIDoc(t *testing.T) {
	doc, err := os.ReadFile(apiDoc)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok1 := strings.Cut(string(doc), beginMark)
	_, after, ok2 := strings.Cut(rest, endMark)
	if !ok1 || !ok2 {
		t.Fatalf("docs/api.md lacks the catalog markers %q and %q", beginMark, endMark)
	}
	want := before + beginMark + catalogTable() + endMark + after
	if want == string(doc) {
		return
	}
	if *update {
		if err := os.WriteFile(apiDoc, []byte(want), 0o600); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatal("docs/api.md's error catalog differs from pkg/apperr/catalog.go; run `make generate`")
}
