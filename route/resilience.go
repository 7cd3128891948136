package route

// A route's "timeouts" and "retry" (Gateway API HTTPRouteTimeouts and
// HTTPRouteRetry, GEP-1731): validated and compiled here, sent with every
// decision that fetches (Decision.Timeouts, Decision.Retry), applied per
// fetch by the shim (docs/configuration.md "timeouts and retry").

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Bounds of a route's retry.
const (
	// MaxRetryAttempts bounds retry.attempts (retries after the first
	// attempt). varnishd's max_retries parameter (default 4) caps the
	// retries of one fetch too; raise it to use more.
	MaxRetryAttempts = 10
	// VarnishMaxRetries is varnishd's default max_retries parameter;
	// ghostd check warns about attempts above it.
	VarnishMaxRetries = 4
	// DefaultRetryAttempts is retry.attempts when a retry is configured
	// without it.
	DefaultRetryAttempts = 2
	// MinRetryCode and MaxRetryCode bound retry.codes, as the Gateway
	// API's HTTPRouteRetryStatusCode does.
	MinRetryCode = 400
	MaxRetryCode = 599
)

// Timeouts is a route's compiled "timeouts", in milliseconds; 0: none
// ("0s", or not set).
type Timeouts struct {
	// Request bounds the whole fetch, every attempt and backoff
	// included: past it the client gets 504.
	Request int64
	// BackendRequest bounds one attempt: its connect, first byte and
	// each wait between body bytes.
	BackendRequest int64
}

// Retry is a route's compiled "retry".
type Retry struct {
	Attempts int   // retries after the first attempt, 0..MaxRetryAttempts
	Codes    []int // statuses that are retried, ascending, distinct
	Backoff  int64 // milliseconds to wait before each retry
}

type timeoutsJSON struct {
	Request        *string `json:"request"`
	BackendRequest *string `json:"backend_request"`
}

type retryJSON struct {
	Attempts *int64  `json:"attempts"`
	Codes    []int64 `json:"codes"`
	Backoff  *string `json:"backoff"`
}

// millis parses the Gateway API duration at field into milliseconds.
func millis(field, v string) (int64, error) {
	d, err := ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", field, err)
	}
	return d.Milliseconds(), nil
}

// fmtMillis writes ms as fmtDuration does.
func fmtMillis(ms int64) string { return fmtDuration(time.Duration(ms) * time.Millisecond) }

// timeouts validates and compiles a route's "timeouts"; nil when it sets
// nothing (both absent or "0s").
func timeouts(tj *timeoutsJSON) (*Timeouts, error) {
	var t Timeouts
	var err error
	if tj.Request != nil {
		if t.Request, err = millis("timeouts.request", *tj.Request); err != nil {
			return nil, err
		}
	}
	if tj.BackendRequest != nil {
		if t.BackendRequest, err = millis("timeouts.backend_request", *tj.BackendRequest); err != nil {
			return nil, err
		}
	}
	if t.Request > 0 && t.BackendRequest > t.Request {
		return nil, fmt.Errorf("timeouts.backend_request %s is longer than timeouts.request %s (request bounds every attempt together)",
			*tj.BackendRequest, *tj.Request)
	}
	if t == (Timeouts{}) {
		return nil, nil
	}
	return &t, nil
}

// retry validates and compiles a route's "retry"; nil when it retries
// nothing (attempts 0).
func retry(rj *retryJSON) (*Retry, error) {
	r := Retry{Attempts: DefaultRetryAttempts}
	if rj.Attempts != nil {
		if *rj.Attempts < 0 || *rj.Attempts > MaxRetryAttempts {
			return nil, fmt.Errorf("retry.attempts %d out of range 0-%d", *rj.Attempts, MaxRetryAttempts)
		}
		r.Attempts = int(*rj.Attempts)
	}
	for j, c := range rj.Codes {
		if c < MinRetryCode || c > MaxRetryCode {
			return nil, fmt.Errorf("retry.codes[%d]: %d out of range %d-%d", j, c, MinRetryCode, MaxRetryCode)
		}
		if !slices.Contains(r.Codes, int(c)) {
			r.Codes = append(r.Codes, int(c))
		}
	}
	slices.Sort(r.Codes)
	if rj.Backoff != nil {
		var err error
		if r.Backoff, err = millis("retry.backoff", *rj.Backoff); err != nil {
			return nil, err
		}
	}
	if r.Attempts == 0 {
		return nil, nil
	}
	return &r, nil
}

// resilience compiles rj's timeouts and retry into r; the backoff must
// leave room for a retry inside the request timeout.
func (r *croute) resilience(rj *routeJSON) error {
	var err error
	if rj.Timeouts != nil {
		if r.timeouts, err = timeouts(rj.Timeouts); err != nil {
			return err
		}
	}
	if rj.Retry != nil {
		if r.retry, err = retry(rj.Retry); err != nil {
			return err
		}
	}
	if r.retry != nil && r.timeouts != nil && r.timeouts.Request > 0 &&
		r.retry.Backoff >= r.timeouts.Request {
		return fmt.Errorf("retry.backoff %s is not shorter than timeouts.request %s: no retry could ever start",
			fmtMillis(r.retry.Backoff), fmtMillis(r.timeouts.Request))
	}
	return nil
}

// String summarises the timeouts for operators (ghostd dump, ghostd
// route): "request 10s (504 past it), each attempt 2s".
func (t *Timeouts) String() string {
	var parts []string
	if t.Request > 0 {
		parts = append(parts, "request "+fmtMillis(t.Request)+" (504 past it)")
	}
	if t.BackendRequest > 0 {
		parts = append(parts, "each attempt "+fmtMillis(t.BackendRequest))
	}
	return strings.Join(parts, ", ")
}

// String summarises the retry: "up to 2 retries on another endpoint
// after 500, 502, 503, 504 or a failed fetch, 100ms apart".
func (r *Retry) String() string {
	on := "a failed fetch"
	if len(r.Codes) > 0 {
		cs := make([]string, len(r.Codes))
		for i, c := range r.Codes {
			cs[i] = strconv.Itoa(c)
		}
		on = strings.Join(cs, ", ") + " or a failed fetch"
	}
	s := fmt.Sprintf("up to %d retr%s on another endpoint after %s", r.Attempts,
		map[bool]string{true: "y", false: "ies"}[r.Attempts == 1], on)
	if r.Backoff > 0 {
		s += ", " + fmtMillis(r.Backoff) + " apart"
	}
	return s
}
