// Package apperr defines the application errors the services return and maps
// them to gRPC status codes. Messages are written for the school officer or
// reviewer who will read them; internal errors are logged and the caller sees
// only "internal error".
package apperr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Code classifies an application error.
type Code int

// The error codes, each mapped to one gRPC code.
const (
	Internal Code = iota
	Invalid
	NotFound
	AlreadyExists
	FailedPrecondition
	PermissionDenied
	Unauthenticated
	Unavailable
)

var grpcCodes = map[Code]codes.Code{
	Internal:           codes.Internal,
	Invalid:            codes.InvalidArgument,
	NotFound:           codes.NotFound,
	AlreadyExists:      codes.AlreadyExists,
	FailedPrecondition: codes.FailedPrecondition,
	PermissionDenied:   codes.PermissionDenied,
	Unauthenticated:    codes.Unauthenticated,
	Unavailable:        codes.Unavailable,
}

// FieldViolation names a bad field and why it is bad.
type FieldViolation struct {
	Field       string
	Description string
}

// Error is an error a caller can act on.
type Error struct {
	Code       Code
	Message    string
	Violations []FieldViolation
	// Rule names the separation-of-duties, scoping or state rule behind a
	// refusal: the ErrorInfo reason, one of the catalog's. Empty means the
	// code's generic reason (ReasonNotFound for NotFound, ...).
	Rule Reason
}

func (e *Error) Error() string { return e.Message }

// New returns an error with code and a formatted message.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Denied returns a PermissionDenied error naming the rule broken.
func Denied(rule Reason, format string, args ...any) *Error {
	return &Error{Code: PermissionDenied, Rule: rule, Message: fmt.Sprintf(format, args...)}
}

// Refused returns an error with code naming the rule broken.
func Refused(code Code, rule Reason, format string, args ...any) *Error {
	return &Error{Code: code, Rule: rule, Message: fmt.Sprintf(format, args...)}
}

// Violations collects field violations; its Err is nil when there are none.
// Add appends through a pointer; Err reads a value, so a literal can call it.
type Violations []FieldViolation //nolint:recvcheck // see above

// Addf records a violation of field, described by format and args.
func (v *Violations) Addf(field, format string, args ...any) {
	*v = append(*v, FieldViolation{Field: field, Description: fmt.Sprintf(format, args...)})
}

// Err returns an InvalidArgument error listing the violations, or nil.
func (v Violations) Err() error {
	if len(v) == 0 {
		return nil
	}
	msg := fmt.Sprintf("%s: %s", v[0].Field, v[0].Description)
	if len(v) > 1 {
		msg = fmt.Sprintf("%s (and %d more problems)", msg, len(v)-1)
	}
	return &Error{Code: Invalid, Message: msg, Violations: v}
}

// CodeOf returns err's application code, Internal for foreign errors.
func CodeOf(err error) Code {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return Internal
}

// ToStatus converts err to a gRPC status. Errors that are not *Error (and
// not already a status or a context error) are logged with their detail and
// reported as a bare internal error.
func ToStatus(ctx context.Context, log *slog.Logger, method string, err error) error {
	if err == nil {
		return nil
	}
	if e, ok := errors.AsType[*Error](err); ok {
		st := status.New(grpcCodes[e.Code], e.Message)
		if len(e.Violations) > 0 {
			br := &errdetails.BadRequest{}
			for _, v := range e.Violations {
				br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: v.Field, Description: v.Description})
			}
			if withDetails, derr := st.WithDetails(br); derr == nil {
				st = withDetails
			}
		}
		reason := e.Rule
		if reason == "" {
			reason = defaultReasons[st.Code()]
		} else if _, ok := Lookup(reason); !ok {
			// The static and e2e catalog tests keep this from happening;
			// should it, the portal still gets the reason, and we hear.
			log.ErrorContext(ctx, "error reason not in the catalog", "method", method, "reason", string(reason))
		}
		return withInfo(st, reason).Err()
	}
	if _, ok := status.FromError(err); ok {
		return EnsureReason(err)
	}
	switch {
	case errors.Is(err, context.Canceled):
		return WithReason(codes.Canceled, "request canceled")
	case errors.Is(err, context.DeadlineExceeded):
		return WithReason(codes.DeadlineExceeded, "deadline exceeded")
	}
	log.ErrorContext(ctx, "internal error", "method", method, "err", err)
	return WithReason(codes.Internal, "internal error")
}
