package webhookserver

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// The contract's answers (../shared/DESIGN.md, "The HTTP contract"), in one place.
const (
	msgMalformed       = "Malformed payload"
	msgNoIntegration   = "No active integration"
	msgForbidden       = "Forbidden"
	msgTooLarge        = "Payload too large"
	msgRateLimited     = "Too many requests"
	msgStoreDown       = "Storage unavailable, retry later"
	msgNotReady        = "Integration not ready, retry later"
	msgServerError     = "Server error"
	msgNotFound        = "Not found"
	msgMethodNotAllowd = "Method not allowed"
)

// Outcomes recorded in the intake log and logs.
const (
	outcomeStored        = "stored"
	outcomeSpooled       = "spooled" // stored in the local spool while MongoDB is down: a 200 too
	outcomeDuplicate     = "duplicate"
	outcomeProbe         = "probe"
	outcomeRejected      = "rejected"
	outcomeNoIntegration = "no_integration"
	outcomeUnavailable   = "unavailable"
	outcomeError         = "error"
)

// Seconds a sender is asked to wait before retrying.
const (
	retryAfterStore    = 30
	retryAfterNotReady = 60
)

// response is every answer's body.
type response struct {
	Status    bool   `json:"status"`
	Duplicate bool   `json:"duplicate,omitempty"`
	LeadID    string `json:"lead_id,omitempty"`
	Error     string `json:"error,omitempty"`
}

// writeJSON writes an answer; Success is exactly 200, as some senders treat 201/202 as failure.
func writeJSON(w http.ResponseWriter, code int, body response) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, response{Status: false, Error: msg})
}

func setRetryAfter(w http.ResponseWriter, seconds int) {
	w.Header().Set("Retry-After", strconv.Itoa(seconds))
}
