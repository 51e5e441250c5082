package apperr

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestToStatus(t *testing.T) {
	t.Parallel()
	var logged strings.Builder
	log := slog.New(slog.NewTextHandler(&logged, nil))
	var v Violations
	v.Addf("applications[0].student_id_number", "check character does not match")
	v.Addf("term", "must be like 2017-autumn")
	tests := []struct {
		name string
		err  error
		code codes.Code
		msg  string
	}{
		{"invalid with violations", v.Err(), codes.InvalidArgument, "applications[0].student_id_number: check character does not match (and 1 more problems)"},
		{"not found", New(NotFound, "application %s not found", "x"), codes.NotFound, "application x not found"},
		{"denied with rule", Denied("submitter-cannot-review", "you submitted it"), codes.PermissionDenied, "you submitted it"},
		{"internal hides detail", errors.New("pq: password=secret"), codes.Internal, "internal error"},
		{"canceled", context.Canceled, codes.Canceled, "request canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := status.Convert(ToStatus(context.Background(), log, "/m", tt.err))
			if st.Code() != tt.code || st.Message() != tt.msg {
				t.Fatalf("got %s %q, want %s %q", st.Code(), st.Message(), tt.code, tt.msg)
			}
		})
	}
	st := status.Convert(ToStatus(context.Background(), log, "/m", v.Err()))
	var br *errdetails.BadRequest
	for _, d := range st.Details() {
		if b, ok := d.(*errdetails.BadRequest); ok {
			br = b
		}
	}
	if br == nil || len(br.GetFieldViolations()) != 2 || br.GetFieldViolations()[1].GetField() != "term" {
		t.Fatalf("field violations not carried: %v", st.Details())
	}
	if !strings.Contains(logged.String(), "password=secret") {
		t.Fatal("internal errors must be logged with their detail")
	}
}

func TestCheckUUID(t *testing.T) {
	t.Parallel()
	var v Violations
	if got := v.CheckUUID("id", "01A22D11-8B4B-7946-8327-68EEFE0E0D7D"); got != "01a22d11-8b4b-7946-8327-68eefe0e0d7d" || v.Err() != nil {
		t.Fatalf("canonical form: %q %v", got, v)
	}
	for _, bad := range []string{"", "x", "{01a22d11-8b4b-7946-8327-68eefe0e0d7d}", "01a22d118b4b7946832768eefe0e0d7d"} {
		var v Violations
		if v.CheckUUID("id", bad) != "" || v.Err() == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}
