package store

import (
	"errors"
	"fmt"
)

// ErrorCode says what kind of failure a store error is. The server maps
// each code to an HTTP status; any other error is an internal one.
type ErrorCode int

// The error codes of the store.
const (
	ENotFound     ErrorCode = iota + 1 // no such resource or version
	EConflict                          // a create's id is taken
	EPrecondition                      // If-Match does not name the current version
	EInvalid                           // a request the store cannot read, such as a bad paging cursor
	EUnsupported                       // a search the store cannot run
)

// Error is a failure the caller can act on.
type Error struct {
	Code    ErrorCode
	Message string
}

func (e *Error) Error() string { return e.Message }

func errorf(code ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Code returns the code of the first *Error in err's chain, or 0.
func Code(err error) ErrorCode {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}
