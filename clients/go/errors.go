package herald

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/herald-webhooks/herald/clients/go/heraldv1"
)

// Error is a call Herald refused or could not serve, with the google.rpc details it
// sent (decoded from grpc-status-details-bin). Get one with errors.As; status.Code and
// status.FromError see through it.
type Error struct {
	Code    codes.Code
	Message string
	// FieldViolations name each invalid request field (BadRequest, INVALID_ARGUMENT).
	FieldViolations []FieldViolation
	// RetryDelay is how long to wait before trying again (RetryInfo, on UNAVAILABLE and
	// RESOURCE_EXHAUSTED); HasRetryDelay tells a zero delay from none.
	RetryDelay    time.Duration
	HasRetryDelay bool
	// Reason, Domain and Metadata come from ErrorInfo: e.g. the missing scope, or the
	// cursor a slow watcher resumes after.
	Reason   string
	Domain   string
	Metadata map[string]string
	// ResourceType and ResourceName name what was not found or already exists
	// (ResourceInfo).
	ResourceType string
	ResourceName string

	status *status.Status
}

// FieldViolation is one invalid field of a request.
type FieldViolation struct {
	Field       string
	Description string
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "herald: %s: %s", e.Code, e.Message)
	for _, v := range e.FieldViolations {
		fmt.Fprintf(&b, "; %s: %s", v.Field, v.Description)
	}
	return b.String()
}

// GRPCStatus lets status.FromError and status.Code read the original status.
func (e *Error) GRPCStatus() *status.Status { return e.status }

// Is makes a call cut short by its context match context.Canceled or
// context.DeadlineExceeded.
func (e *Error) Is(target error) bool {
	switch e.Code {
	case codes.Canceled:
		return target == context.Canceled
	case codes.DeadlineExceeded:
		return target == context.DeadlineExceeded
	}
	return false
}

// fromRPC turns an error of a generated stub into *Error; nil stays nil and an error
// that carries no gRPC status is returned as it is.
func fromRPC(err error) error {
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	e := &Error{Code: st.Code(), Message: st.Message(), status: st}
	for _, detail := range st.Details() {
		switch d := detail.(type) {
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				e.FieldViolations = append(e.FieldViolations,
					FieldViolation{Field: v.GetField(), Description: v.GetDescription()})
			}
		case *errdetails.RetryInfo:
			e.RetryDelay = d.GetRetryDelay().AsDuration()
			e.HasRetryDelay = true
		case *errdetails.ErrorInfo:
			e.Reason, e.Domain, e.Metadata = d.GetReason(), d.GetDomain(), d.GetMetadata()
		case *errdetails.ResourceInfo:
			e.ResourceType, e.ResourceName = d.GetResourceType(), d.GetResourceName()
		}
	}
	return e
}

// fromPublishError is one refused event of a batch, in the same shape as a refused call.
func fromPublishError(p *heraldv1.PublishError) *Error {
	code := codes.Code(p.GetCode())
	e := &Error{Code: code, Message: p.GetMessage(), status: status.New(code, p.GetMessage())}
	for _, v := range p.GetFieldViolations() {
		e.FieldViolations = append(e.FieldViolations,
			FieldViolation{Field: v.GetField(), Description: v.GetDescription()})
	}
	return e
}
