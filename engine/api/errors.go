package api

import (
	"errors"
	"net/http"
)

// Error is an error that crosses the API: a stable code and a message.
// The client turns a response back into an *Error that errors.Is matches
// against the sentinels below.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Status  int    `json:"-"`
}

func (e *Error) Error() string { return e.Message }

// Is matches errors by code.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code == e.Code
}

// Sentinels for errors.Is.
var (
	ErrNotRunning       = &Error{Code: "not_running", Status: http.StatusConflict, Message: "the stack is not running"}
	ErrBusy             = &Error{Code: "busy", Status: http.StatusConflict, Message: "another operation is in progress"}
	ErrUnknownComponent = &Error{Code: "unknown_component", Status: http.StatusNotFound, Message: "unknown component"}
	ErrNotFound         = &Error{Code: "not_found", Status: http.StatusNotFound, Message: "not found"}
	ErrBadRequest       = &Error{Code: "bad_request", Status: http.StatusBadRequest, Message: "bad request"}
	ErrStartFailed      = &Error{Code: "start_failed", Status: http.StatusInternalServerError, Message: "start failed"}
	ErrUnavailable      = &Error{Code: "unavailable", Status: http.StatusServiceUnavailable, Message: "unavailable"}
	ErrForbidden        = &Error{Code: "forbidden", Status: http.StatusForbidden, Message: "forbidden"}
	ErrInternal         = &Error{Code: "internal", Status: http.StatusInternalServerError, Message: "internal error"}
	// ErrNoDaemon is the client's: nothing listens on the socket.
	ErrNoDaemon = &Error{Code: "no_daemon", Message: "the engine is not running"}
)

func sentinels() []*Error {
	return []*Error{ErrNotRunning, ErrBusy, ErrUnknownComponent, ErrNotFound, ErrBadRequest, ErrStartFailed, ErrUnavailable, ErrForbidden, ErrInternal}
}

// Errorf makes an error of kind with its own message.
func Errorf(kind *Error, msg string) *Error {
	return &Error{Code: kind.Code, Status: kind.Status, Message: msg}
}

// toError maps any error to an *Error for the wire.
func toError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		if e.Status == 0 {
			for _, s := range sentinels() {
				if s.Code == e.Code {
					return &Error{Code: e.Code, Status: s.Status, Message: e.Message}
				}
			}
			return &Error{Code: e.Code, Status: http.StatusInternalServerError, Message: e.Message}
		}
		return e
	}
	return &Error{Code: ErrInternal.Code, Status: http.StatusInternalServerError, Message: err.Error()}
}
