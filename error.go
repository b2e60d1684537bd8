package smsgw

import (
	"errors"
	"fmt"
	"time"
)

// Error codes. Adapters map them to protocol answers in one place each
// (api for gRPC/HTTP, the SMPP server for command_status).
const (
	EINVALID      = "invalid"      // the request is wrong; do not retry it
	EUNAUTHORIZED = "unauthorized" // missing or wrong credentials
	ENOTFOUND     = "not_found"    // no such thing, or not the caller's
	ECONFLICT     = "conflict"     // the request clashes with existing state
	EUNAVAILABLE  = "unavailable"  // a dependency is down; retry later, nothing was accepted
	ETHROTTLED    = "throttled"    // over a rate limit; retry later
	EUNKNOWN      = "unknown"      // no answer in time: the request may have taken effect; look before retrying
	EFORBIDDEN    = "forbidden"    // refused by a policy (opt-out, destination, content); do not retry
	EINTERNAL     = "internal"     // a bug or an unexpected failure
)

// Error is a domain error with a code and a message safe to show to a customer.
type Error struct {
	Code    string
	Message string
	Err     error // the cause, for logs; never shown to customers
	// RetryAfter, when set, is how long a refused caller should wait
	// before it tries again (ETHROTTLED): REST sends it as Retry-After.
	RetryAfter time.Duration
	// Reason, when set, names the policy that refused the request in a
	// machine-readable word (ReasonOptedOut, …): REST and gRPC send it as
	// an ErrorInfo detail, SMPP maps it to a command_status, SMTP puts it
	// in the reply.
	Reason string
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Unavailable wraps a dependency failure as EUNAVAILABLE.
func Unavailable(what string, err error) *Error {
	return &Error{Code: EUNAVAILABLE, Message: what + " is unavailable", Err: err}
}

// ErrorCode returns the code of the first *Error in err's chain, or EINTERNAL.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// RetryAfter returns how long the first *Error in err's chain asks its
// caller to wait before retrying, or 0.
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// ErrorReason returns the Reason of the first *Error in err's chain, or "".
func ErrorReason(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// ErrorMessage returns the customer-safe message of err.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
