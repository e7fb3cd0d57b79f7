package fluxapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Error types of fluxd's error bodies.
const (
	errServer  = "server"
	errMissing = "missing"
	errUser    = "user"
)

// apiError is fluxd's error body, {"type","help","error"}: fluxctl prints
// "== Error ==" and Help, so Help says what went wrong and what to do.
type apiError struct {
	Type   string `json:"type"`
	Help   string `json:"help"`
	Err    string `json:"error"`
	status int
}

func (e *apiError) Error() string { return e.Err }

// userError is a request that cannot be done as asked (422, as fluxd).
func userError(format string, args ...any) *apiError {
	msg := fmt.Sprintf(format, args...)
	return &apiError{Type: errUser, Help: msg, Err: msg, status: http.StatusUnprocessableEntity}
}

// badRequest is a request that does not parse (400, as fluxd).
func badRequest(format string, args ...any) *apiError {
	msg := fmt.Sprintf(format, args...)
	return &apiError{Type: errUser, Help: msg, Err: msg, status: http.StatusBadRequest}
}

// missing is a request for something that is not there (404, as fluxd).
func missing(format string, args ...any) *apiError {
	msg := fmt.Sprintf(format, args...)
	return &apiError{Type: errMissing, Help: msg, Err: msg, status: http.StatusNotFound}
}

// serverError is a failure of ours or of something we depend on (500).
func serverError(err error) *apiError {
	return &apiError{Type: errServer, Help: "helmflux could not complete the request: " + err.Error(), Err: err.Error(), status: http.StatusInternalServerError}
}

// ErrNotLeader is what Notify returns for a change only the leader can act
// on (an image rescan) on a replica that does not lead: it is answered 503
// with Retry-After, so the sender tries again, not 2xx for a change dropped.
var ErrNotLeader = errors.New("this replica is not the leader")

// notLeaderRetryAfter is the Retry-After, in seconds, of ErrNotLeader.
const notLeaderRetryAfter = "5"

// writeError answers with err as fluxd's error body.
func writeError(w http.ResponseWriter, err error) {
	var e *apiError
	switch {
	case errors.Is(err, ErrNotLeader):
		w.Header().Set("Retry-After", notLeaderRetryAfter)
		msg := err.Error() + ": try again, or reach the leader (helmflux and fluxctl port-forward to it)"
		e = &apiError{Type: errServer, Help: msg, Err: msg, status: http.StatusServiceUnavailable}
	case !errors.As(err, &e):
		e = serverError(err)
	}
	writeJSON(w, e.status, e)
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"type":"server","help":"helmflux could not encode its answer","error":"encode"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
