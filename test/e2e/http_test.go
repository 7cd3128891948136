package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"
)

// Req is one HTTP request to varnishd.
type Req struct {
	Method string      // default GET
	Host   string      // Host header
	URL    string      // raw request target, sent verbatim ("/p?q")
	Hdr    [][2]string // header lines, in order; a name may repeat
}

// Echo is what build/upstream answers with.
type Echo struct {
	Upstream string              `json:"upstream"`
	Method   string              `json:"method"`
	URL      string              `json:"url"`
	Host     string              `json:"host"`
	Headers  map[string][]string `json:"headers"`
}

// Resp is a response from varnishd.
type Resp struct {
	Status int
	Header http.Header
	Body   string
	Echo   *Echo // parsed body when the response came from an upstream
}

// Upstream is who answered: the X-Upstream header, else the echo body.
func (r *Resp) Upstream() string {
	if u := r.Header.Get("X-Upstream"); u != "" {
		return u
	}
	if r.Echo != nil {
		return r.Echo.Upstream
	}
	return ""
}

// Hit reports whether varnishd served the response from cache (X-Varnish
// carries two transaction ids on a hit).
func (r *Resp) Hit() bool {
	return len(strings.Fields(r.Header.Get("X-Varnish"))) == 2
}

// String summarises the response for failure messages.
func (r *Resp) String() string {
	if r == nil {
		return "<nil>"
	}
	var hs []string
	for k, v := range r.Header {
		hs = append(hs, fmt.Sprintf("%s: %s", k, strings.Join(v, " | ")))
	}
	sort.Strings(hs)
	body := r.Body
	if len(body) > 300 {
		body = body[:300] + "..."
	}
	return fmt.Sprintf("%d [%s] %q", r.Status, strings.Join(hs, "; "), body)
}

func (q Req) String() string {
	m := q.Method
	if m == "" {
		m = "GET"
	}
	s := fmt.Sprintf("%s %s Host=%q", m, q.URL, q.Host)
	for _, h := range q.Hdr {
		s += fmt.Sprintf(" %s=%q", h[0], h[1])
	}
	return s
}

func newClient() *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DisableCompression:  true,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     30 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

var defaultClient = newClient()

// Do sends q to addr with client c.
func Do(c *http.Client, addr string, q Req) (*Resp, error) {
	method := q.Method
	if method == "" {
		method = http.MethodGet
	}
	path, query, _ := strings.Cut(q.URL, "?")
	u := &url.URL{Scheme: "http", Host: addr, Opaque: path, RawQuery: query, ForceQuery: strings.Contains(q.URL, "?") && query == ""}
	hr, err := http.NewRequest(method, "http://"+addr+"/", nil)
	if err != nil {
		return nil, err
	}
	hr.URL = u
	hr.Host = q.Host
	for _, h := range q.Hdr {
		hr.Header[http.CanonicalHeaderKey(h[0])] = append(hr.Header[http.CanonicalHeaderKey(h[0])], h[1])
	}
	return readResp(c.Do(hr))
}

// readResp reads a response's body and parses it.
func readResp(resp *http.Response, err error) (*Resp, error) {
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return parseResp(resp, b), nil
}

func parseResp(resp *http.Response, b []byte) *Resp {
	r := &Resp{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || resp.Header.Get("X-Upstream") != "" {
		var e Echo
		if json.Unmarshal(b, &e) == nil && e.Upstream != "" {
			r.Echo = &e
		}
	}
	if r.Echo == nil && strings.HasPrefix(strings.TrimSpace(r.Body), "{\"") {
		var e Echo
		if json.Unmarshal(b, &e) == nil && e.Upstream != "" {
			r.Echo = &e
		}
	}
	return r
}

// do sends q through the main listener and fails the test on a transport error.
func (e *Env) do(t *testing.T, q Req) *Resp {
	t.Helper()
	r, err := Do(defaultClient, e.HTTP, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return r
}

// doDecided is do for a request whose answer must come from ghostd's
// decision. ghostd may miss the shim's budget (ghost.init's timeout, 100
// ms here: a loaded 2-core test machine can take that long just to
// schedule it, or to start a socket-activated ghostd); the shim then
// answers as designed without the decision (503, or Varnish's own rules
// for vcl_recv's cache decision). GHOST.err_timeout tells that case
// apart: such a request is logged and asked again (at most twice more),
// so a request that is really answered wrong still fails.
func (e *Env) doDecided(t *testing.T, q Req) *Resp {
	t.Helper()
	const c = "GHOST.err_timeout"
	for try := 1; ; try++ {
		before := e.varnishd.Stats(c)[c]
		r := e.do(t, q)
		after := e.varnishd.Stats(c)[c]
		if after == before || try == 3 {
			return r
		}
		t.Logf("%s: ghostd missed the shim's timeout (%s %d -> %d), answered without its decision (%d, hit=%v); asking again",
			q, c, before, after, r.Status, r.Hit())
	}
}

// DoProxy sends q over the PROXY-protocol listener, claiming the client
// address src (IPv4), on a fresh connection.
func (e *Env) DoProxy(q Req, src string) (*Resp, error) {
	_, port, _ := net.SplitHostPort(e.Proxy)
	method := q.Method
	if method == "" {
		method = "GET"
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "PROXY TCP4 %s 127.0.0.1 40000 %s\r\n", src, port)
	fmt.Fprintf(&sb, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, q.URL, q.Host)
	for _, h := range q.Hdr {
		fmt.Fprintf(&sb, "%s: %s\r\n", h[0], h[1])
	}
	sb.WriteString("\r\n")
	return RawDo(e.Proxy, sb.String(), method)
}

// expectUpstream checks that q is answered 200 by the upstream named want.
func (e *Env) expectUpstream(t *testing.T, q Req, want string) *Resp {
	t.Helper()
	r := e.do(t, q)
	if r.Status != 200 || r.Upstream() != want {
		hit := ""
		if r.Hit() {
			hit = " (served from cache)"
		}
		t.Errorf("%s: want 200 from upstream %q, got%s %s", q, want, hit, r)
	}
	return r
}

// expectNoRoute checks ghost's 404 answer (docs/routing.md, "Outcomes").
func (e *Env) expectNoRoute(t *testing.T, q Req) *Resp {
	t.Helper()
	r := e.do(t, q)
	if r.Status != 404 || r.Body != "no route\n" {
		t.Errorf("%s: want 404 %q, got %s", q, "no route\n", r)
		return r
	}
	checkSynthHeaders(t, q, r)
	return r
}

// expectNoBackends checks ghost's 500 answer (docs/routing.md, "Outcomes").
func (e *Env) expectNoBackends(t *testing.T, q Req) *Resp {
	t.Helper()
	r := e.do(t, q)
	if r.Status != 500 || strings.TrimSpace(r.Body) != "no backends available" {
		t.Errorf("%s: want 500 %q, got %s", q, "no backends available", r)
		return r
	}
	checkSynthHeaders(t, q, r)
	return r
}

func checkSynthHeaders(t *testing.T, q Req, r *Resp) {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("%s: %d Content-Type = %q, want text/plain", q, r.Status, ct)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("%s: %d Cache-Control = %q, want no-store", q, r.Status, cc)
	}
	if r.Upstream() != "" {
		t.Errorf("%s: %d answered by upstream %q, want a synthetic answer", q, r.Status, r.Upstream())
	}
}

// expectRedirect checks a redirect (docs/routing.md, "Redirects").
func (e *Env) expectRedirect(t *testing.T, q Req, status int, location string) *Resp {
	t.Helper()
	r := e.do(t, q)
	if r.Status != status || r.Header.Get("Location") != location {
		t.Errorf("%s: want %d Location %q, got %s", q, status, location, r)
		return r
	}
	if r.Body != "" {
		t.Errorf("%s: redirect body = %q, want empty", q, r.Body)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("%s: redirect Cache-Control = %q, want no-store", q, cc)
	}
	if r.Upstream() != "" {
		t.Errorf("%s: redirect answered by upstream %q, no backend may be contacted", q, r.Upstream())
	}
	return r
}

// hdr builds header lines from name, value pairs.
func hdr(kv ...string) [][2]string {
	var out [][2]string
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, [2]string{kv[i], kv[i+1]})
	}
	return out
}

// RawDo sends a raw HTTP request (exactly the bytes given) on a fresh
// connection to addr and reads one response.
func RawDo(addr, raw, method string) (*Resp, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		return nil, err
	}
	hr, _ := http.NewRequest(method, "http://"+addr+"/", nil)
	return readResp(http.ReadResponse(bufio.NewReader(c), hr))
}
