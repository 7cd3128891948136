package route

import (
	"reflect"
	"testing"
)

// timeouts and retry: every malformed value is one precise error naming
// the vhost, the route and the field (docs/configuration.md).
func TestResilienceErrors(t *testing.T) {
	const V = `ghost.json: vhost "api.example.com" route 2: `
	cases := []struct{ route, want string }{
		{`{"timeouts":{"request":"10"}}`, V + `timeouts.request: "10" is not a Gateway API duration (like "500ms", "10s", "1m")`},
		{`{"timeouts":{"request":"1.5s"}}`, V + `timeouts.request: "1.5s" is not a Gateway API duration (like "500ms", "10s", "1m")`},
		{`{"timeouts":{"request":""}}`, V + `timeouts.request: "" is not a Gateway API duration (like "500ms", "10s", "1m")`},
		{`{"timeouts":{"request":"-1s"}}`, V + `timeouts.request: "-1s" is not a Gateway API duration (like "500ms", "10s", "1m")`},
		{`{"timeouts":{"request":"123456s"}}`, V + `timeouts.request: "123456s" is not a Gateway API duration (like "500ms", "10s", "1m")`},
		{`{"timeouts":{"request":"1h1m1s1ms1h"}}`, V + `timeouts.request: "1h1m1s1ms1h" is not a Gateway API duration (like "500ms", "10s", "1m")`},
		{`{"timeouts":{"request":"10 s"}}`, V + `timeouts.request: "10 s" is not a Gateway API duration (like "500ms", "10s", "1m")`},
		{`{"timeouts":{"request":"5S"}}`, V + `timeouts.request: "5S" is not a Gateway API duration (like "500ms", "10s", "1m")`},
		{`{"timeouts":{"backend_request":"2d"}}`, V + `timeouts.backend_request: "2d" is not a Gateway API duration (like "500ms", "10s", "1m")`},
		{`{"timeouts":{"request":"1s","backend_request":"1500ms"}}`, V + `timeouts.backend_request 1500ms is longer than timeouts.request 1s (request bounds every attempt together)`},
		{`{"timeouts":{"request":10}}`, V + `timeouts.request: number is not a string (line 1 column 95)`},
		{`{"retry":{"attempts":-1}}`, V + `retry.attempts -1 out of range 0-10`},
		{`{"retry":{"attempts":11}}`, V + `retry.attempts 11 out of range 0-10`},
		{`{"retry":{"attempts":1.5}}`, V + `retry.attempts: number 1.5 is not an integer (line 1 column 93)`},
		{`{"retry":{"codes":[503,200]}}`, V + `retry.codes[1]: 200 out of range 400-599`},
		{`{"retry":{"codes":[600]}}`, V + `retry.codes[0]: 600 out of range 400-599`},
		{`{"retry":{"codes":["503"]}}`, V + `retry.codes[0]: string is not an integer (line 1 column 91)`},
		{`{"retry":{"backoff":"fast"}}`, V + `retry.backoff: "fast" is not a Gateway API duration (like "500ms", "10s", "1m")`},
		{`{"timeouts":{"request":"1s"},"retry":{"backoff":"1s"}}`, V + `retry.backoff 1s is not shorter than timeouts.request 1s: no retry could ever start`},
	}
	for _, c := range cases {
		_, err := Parse("ghost.json", []byte(route0(c.route)))
		if err == nil || err.Error() != c.want {
			t.Errorf("%s:\n got %v\nwant %s", c.route, err, c.want)
		}
	}
}

func TestResilienceCompiled(t *testing.T) {
	cases := []struct {
		route string
		tm    *Timeouts
		rt    *Retry
	}{
		{`{}`, nil, nil},
		{`{"timeouts":{}}`, nil, nil},
		{`{"timeouts":{"request":"0s","backend_request":"0s"}}`, nil, nil},
		{`{"timeouts":{"request":"10s","backend_request":"2s"}}`, &Timeouts{10000, 2000}, nil},
		{`{"timeouts":{"request":"1m30s"}}`, &Timeouts{90000, 0}, nil},
		{`{"timeouts":{"backend_request":"250ms"}}`, &Timeouts{0, 250}, nil},
		// request 0s disables it, so any backend_request is fine
		{`{"timeouts":{"request":"0s","backend_request":"1h"}}`, &Timeouts{0, 3600000}, nil},
		{`{"timeouts":{"request":"2s","backend_request":"2s"}}`, &Timeouts{2000, 2000}, nil},
		{`{"retry":{}}`, nil, &Retry{Attempts: 2}},
		{`{"retry":{"attempts":0,"codes":[503]}}`, nil, nil},
		{`{"retry":{"attempts":3,"codes":[504,503,503,500],"backoff":"100ms"}}`, nil, &Retry{3, []int{500, 503, 504}, 100}},
		{`{"timeouts":{"request":"1s"},"retry":{"codes":[503],"backoff":"999ms"}}`, &Timeouts{1000, 0}, &Retry{2, []int{503}, 999}},
	}
	for _, c := range cases {
		tb, err := Parse("ghost.json", []byte(`{"version":2,"vhosts":{"h":{"routes":[`+
			c.route[:len(c.route)-1]+sep(c.route)+`"backends":[{"address":"10.0.0.1","port":80}]}]}}}`))
		if err != nil {
			t.Fatalf("%s: %v", c.route, err)
		}
		var d Decision
		tb.Decide(&Request{Host: "h", Method: "GET", URL: "/"}, &d)
		if !reflect.DeepEqual(d.Timeouts, c.tm) || !reflect.DeepEqual(d.Retry, c.rt) {
			t.Errorf("%s: timeouts %+v retry %+v, want %+v %+v", c.route, d.Timeouts, d.Retry, c.tm, c.rt)
		}
	}
}

// sep is the comma that joins more keys to the object r.
func sep(r string) string {
	if r == "{}" {
		return ""
	}
	return ","
}

// Only a decision that fetches carries them: a redirect or a route
// without backends does not.
func TestResilienceOnlyFetches(t *testing.T) {
	tb := mustParse(t, `{"version":2,"vhosts":{"h":{"routes":[
		{"path_match":{"type":"Exact","value":"/r"},"timeouts":{"request":"1s"},"retry":{},
		 "filters":{"request_redirect":{"replace_full_path":"/x"}}},
		{"path_match":{"type":"Exact","value":"/n"},"timeouts":{"request":"1s"},"retry":{}}]}}}`)
	for _, u := range []string{"/r", "/n", "/none"} {
		var d Decision
		tb.Decide(&Request{Host: "h", Method: "GET", URL: u}, &d)
		if d.Timeouts != nil || d.Retry != nil {
			t.Errorf("%s (outcome %d): timeouts %+v retry %+v", u, d.Outcome, d.Timeouts, d.Retry)
		}
	}
}

// The example of docs/configuration.md "timeouts and retry" loads and
// means what the page says.
func TestResilienceDocExample(t *testing.T) {
	tb, err := Parse("ghost.json", docExample(t, "timeouts and retry"))
	if err != nil {
		t.Fatal(err)
	}
	var d Decision
	tb.Decide(&Request{Host: "a", Method: "GET", URL: "/"}, &d)
	if !reflect.DeepEqual(d.Timeouts, &Timeouts{10000, 2000}) ||
		!reflect.DeepEqual(d.Retry, &Retry{2, []int{500, 502, 503, 504}, 100}) {
		t.Fatalf("%+v %+v", d.Timeouts, d.Retry)
	}
}

func TestResilienceWarning(t *testing.T) {
	tb := mustParse(t, `{"version":2,"vhosts":{"h":{"routes":[
		{"route_name":"ns/a","retry":{"attempts":6},"backends":[{"address":"10.0.0.1","port":80}]},
		{"path_match":{"type":"Exact","value":"/b"},"retry":{"attempts":4},"backends":[{"address":"10.0.0.1","port":80}]}]}}}`)
	want := []string{`vhost "h" route 0 ("ns/a"): retry.attempts 6 is more than varnishd's default max_retries (4): raise that parameter (varnishd -p max_retries=6) or the extra retries never happen`}
	if got := tb.Warnings(); !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// ghostd dump (and ghostd route) summarise them.
func TestResilienceDump(t *testing.T) {
	tb := mustParse(t, `{"version":2,"vhosts":{"a":{"routes":[
		{"path_match":{"type":"Exact","value":"/x"},"backends":[{"address":"10.0.0.1","port":80}],
		 "timeouts":{"request":"10s","backend_request":"1500ms"},
		 "retry":{"attempts":1,"codes":[503,500],"backoff":"100ms"}},
		{"backends":[{"address":"10.0.0.1","port":80}],"retry":{}}]}}}`)
	var got []RouteDump
	for _, v := range tb.Dump() {
		got = append(got, v.Routes...)
	}
	want := [][2]string{
		{"request 10s (504 past it), each attempt 1500ms", "up to 1 retry on another endpoint after 500, 503 or a failed fetch, 100ms apart"},
		{"", "up to 2 retries on another endpoint after a failed fetch"},
	}
	for i, w := range want {
		if got[i].Timeouts != w[0] || got[i].Retry != w[1] {
			t.Errorf("route %d: %q %q, want %q %q", i, got[i].Timeouts, got[i].Retry, w[0], w[1])
		}
	}
}
