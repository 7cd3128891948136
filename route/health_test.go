package route

import (
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	good := map[string]time.Duration{
		"0s": 0, "500ms": 500 * time.Millisecond, "10s": 10 * time.Second, "1m": time.Minute,
		"1h": time.Hour, "1m30s": 90 * time.Second, "1h2m3s4ms": time.Hour + 2*time.Minute + 3*time.Second + 4*time.Millisecond,
		"99999ms": 99999 * time.Millisecond, "1s1s": 2 * time.Second,
	}
	for s, want := range good {
		if got, err := ParseDuration(s); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "1", "s", "-1s", "1.5s", "1 s", "100000ms", "1d", "1us", "1s1s1s1s1s", "1S", "ms"} {
		_, err := ParseDuration(s)
		want := `"` + s + `" is not a Gateway API duration (like "500ms", "10s", "1m")`
		if err == nil || err.Error() != want {
			t.Errorf("ParseDuration(%q) error %v, want %s", s, err, want)
		}
	}
}

// Every bound of health, outlier and panic_threshold is an exact error
// naming the vhost, the route and the field.
func TestHealthValidation(t *testing.T) {
	const V = `ghost.json: vhost "api.example.com" route 2: `
	be := `"backends":[{"address":"10.0.0.1","port":80}]`
	r := func(s string) string { return route0(`{` + be + `,` + s + `}`) }
	cases := []struct{ doc, want string }{
		{r(`"health":{"interval":"100ms"}`), V + `health.interval: 100ms is below the minimum 500ms`},
		{r(`"health":{"interval":"2h"}`), V + `health.interval: 2h is above the maximum 1h`},
		{r(`"health":{"interval":"2"}`), V + `health.interval: "2" is not a Gateway API duration (like "500ms", "10s", "1m")`},
		{r(`"health":{"interval":"1s","timeout":"2s"}`), V + `health.timeout 2s is longer than health.interval 1s`},
		{r(`"health":{"timeout":"5ms"}`), V + `health.timeout: 5ms is below the minimum 10ms`},
		{r(`"health":{"timeout":"0s"}`), V + `health.timeout: 0s is below the minimum 10ms`},
		{r(`"health":{"path":"healthz"}`), V + `health.path "healthz" must start with "/"`},
		{r(`"health":{"path":"/a b"}`), V + `health.path "/a b": byte 2 is a space, a control character or not ASCII`},
		{r(`"health":{"path":"/` + strings.Repeat("a", 1024) + `"}`), V + `health.path longer than 1024 bytes`},
		{r(`"health":{"host":"a b"}`), V + `health.host "a b" contains an invalid character ' '`},
		{r(`"health":{"host":""}`), V + `health.host "" is empty`},
		{r(`"health":{"window":0}`), V + `health.window: 0 out of range 1-64`},
		{r(`"health":{"window":65}`), V + `health.window: 65 out of range 1-64`},
		{r(`"health":{"window":3,"threshold":4}`), V + `health.threshold 4 is more than health.window 3`},
		{r(`"health":{"threshold":0}`), V + `health.threshold: 0 out of range 1-64`},
		{r(`"health":{"expected_status":99}`), V + `health.expected_status: 99 out of range 100-599`},
		{r(`"health":{"interval":5}`), V + `health.interval: number is not a string (line 1 column 140)`},
		{r(`"outlier":{"consecutive_failures":0}`), V + `outlier.consecutive_failures: 0 out of range 1-1000`},
		{r(`"outlier":{"base_ejection_time":"50ms"}`), V + `outlier.base_ejection_time: 50ms is below the minimum 100ms`},
		{r(`"outlier":{"base_ejection_time":"25h"}`), V + `outlier.base_ejection_time: 25h is above the maximum 24h`},
		{r(`"outlier":{"base_ejection_time":"10m","max_ejection_time":"1m"}`), V + `outlier.max_ejection_time 1m is shorter than outlier.base_ejection_time 10m`},
		{r(`"outlier":{"max_ejection_percent":101}`), V + `outlier.max_ejection_percent: 101 out of range 0-100`},
		{r(`"panic_threshold":-1`), V + `panic_threshold: -1 out of range 0-100`},
		{`{"version":2,"vhosts":{"a":{"health":{"interval":"1ms"},"routes":[]}}}`, `ghost.json: vhost "a": health.interval: 1ms is below the minimum 500ms`},
		{`{"version":2,"vhosts":{"a":{"panic_threshold":200}}}`, `ghost.json: vhost "a": panic_threshold: 200 out of range 0-100`},
	}
	for _, c := range cases {
		_, err := Parse("ghost.json", []byte(c.doc))
		if err == nil || err.Error() != c.want {
			t.Errorf("%s\n got  %v\n want %s", c.doc, err, c.want)
		}
	}
}

// Defaults, the vhost's defaults, and what a decision carries.
func TestHealthDecision(t *testing.T) {
	doc := `{"version":2,"vhosts":{"a":{
		"health":{"path":"/healthz"},"outlier":{},
		"default_backends":[{"address":"10.0.0.9","port":80}],
		"routes":[
			{"path_match":{"value":"/own"},"backends":[{"address":"10.0.0.1","port":80}],
			 "health":{"path":"/ready","interval":"2s","timeout":"1s","window":5,"threshold":3,"expected_status":204},
			 "panic_threshold":0},
			{"path_match":{"value":"/inherit"},"backends":[{"address":"10.0.0.2","port":80}]}]},
		"b":{"routes":[{"backends":[{"address":"10.0.0.1","port":80}]}]}}}`
	tb, err := Parse("ghost.json", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	var d Decision
	tb.Decide(&Request{Host: "a", Method: "GET", URL: "/own"}, &d)
	h := d.Health
	if h == nil || h.Path != "/ready" || h.Interval != 2*time.Second || h.Timeout != time.Second ||
		h.Window != 5 || h.Threshold != 3 || h.Initial != 3 || h.ExpectedStatus != 204 || d.Panic != 0 {
		t.Fatalf("own: %+v panic %d", h, d.Panic)
	}
	o := d.Outlier
	if o == nil || o.ConsecutiveFailures != 5 || o.BaseEjection != 30*time.Second ||
		o.MaxEjection != 300*time.Second || o.MaxEjectionPercent != 10 {
		t.Fatalf("inherited outlier: %+v", o)
	}
	own := h.ID
	tb.Decide(&Request{Host: "a", Method: "GET", URL: "/inherit"}, &d)
	h = d.Health
	if h == nil || h.Path != "/healthz" || h.Interval != 5*time.Second || h.Timeout != 2*time.Second ||
		h.Window != 8 || h.Threshold != 3 || h.ExpectedStatus != 200 || d.Panic != DefaultPanicThreshold {
		t.Fatalf("inherit: %+v panic %d", h, d.Panic)
	}
	if h.ID == own || h.ID == 0 || len(h.IDString()) != 8 {
		t.Fatalf("ids %x %x %q", own, h.ID, h.IDString())
	}
	tb.Decide(&Request{Host: "a", Method: "GET", URL: "/else"}, &d)
	if d.RouteIndex != RouteDefault || d.Health == nil || d.Health.Path != "/healthz" {
		t.Fatalf("default_backends: %+v", d)
	}
	tb.Decide(&Request{Host: "b", Method: "GET", URL: "/"}, &d)
	if d.Health != nil || d.Outlier != nil || d.Panic != 0 {
		t.Fatalf("no health: %+v %+v %d", d.Health, d.Outlier, d.Panic)
	}
	// live: an endpoint is referenced under each probe that applies to
	// it, and always without one (the panic rule's way around a probe)
	e1 := Endpoint{Address: "10.0.0.1", Port: 80}
	for _, c := range []struct {
		e    Endpoint
		id   uint32
		want bool
	}{{e1, own, true}, {e1, 0, true}, {e1, h.ID + 1, false}, {Endpoint{Address: "10.0.0.9", Port: 80}, 0, true},
		{Endpoint{Address: "10.0.0.3", Port: 80}, 0, false}, {Endpoint{Address: "10.0.0.3", Port: 80}, own, false}} {
		if got := tb.ReferencesProbe(c.e, c.id); got != c.want {
			t.Errorf("ReferencesProbe(%v, %x) = %v", c.e, c.id, got)
		}
	}
	// the Host header is part of the probe
	withHost, err := Parse("ghost.json", []byte(strings.Replace(doc, `"path":"/ready",`, `"path":"/ready","host":"app.internal",`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	withHost.Decide(&Request{Host: "a", Method: "GET", URL: "/own"}, &d)
	if d.Health.Host != "app.internal" || d.Health.ID == own {
		t.Errorf("host: %q, id %x (without %x)", d.Health.Host, d.Health.ID, own)
	}
	// the same settings give the same id in another table (a reload keeps
	// the probe); another setting another id
	tb2, err := Parse("ghost.json", []byte(strings.Replace(doc, `"window":5`, `"window":6`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	tb2.Decide(&Request{Host: "a", Method: "GET", URL: "/inherit"}, &d)
	if d.Health.ID != h.ID {
		t.Errorf("unchanged probe changed id")
	}
	tb2.Decide(&Request{Host: "a", Method: "GET", URL: "/own"}, &d)
	if d.Health.ID == own {
		t.Errorf("changed probe kept its id")
	}
}

// The example of docs/configuration.md "Endpoint health" loads and means
// what the page says.
func TestHealthDocExample(t *testing.T) {
	tb, err := Parse("ghost.json", docExample(t, "Endpoint health"))
	if err != nil {
		t.Fatal(err)
	}
	var d Decision
	tb.Decide(&Request{Host: "a", Method: "GET", URL: "/"}, &d)
	if d.Health == nil || d.Health.Interval != 2*time.Second || d.Health.Window != 5 ||
		d.Outlier == nil || d.Outlier.MaxEjection != 5*time.Minute || d.Outlier.MaxEjectionPercent != 34 || d.Panic != 50 {
		t.Fatalf("%+v %+v %d", d.Health, d.Outlier, d.Panic)
	}
}

// ghostd dump shows each route's health with the vhost's defaults.
func TestHealthDump(t *testing.T) {
	tb, err := Parse("ghost.json", []byte(`{"version":2,"vhosts":{"a":{
		"outlier":{"base_ejection_time":"1m"},
		"routes":[{"backends":[{"address":"10.0.0.1","port":80}],
		  "health":{"path":"/healthz","interval":"2s","timeout":"1s","window":5,"threshold":3}}]},
		"b":{"routes":[{"backends":[{"address":"10.0.0.1","port":80}]}]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	var got []RouteDump
	for _, v := range tb.Dump() {
		got = append(got, v.Routes...)
	}
	if len(got) != 2 {
		t.Fatalf("%d routes", len(got))
	}
	r := got[0]
	wantH := "GET /healthz every 2s, timeout 1s, healthy with 3 of 5 answering 200 (id "
	if !strings.HasPrefix(r.Health, wantH) || len(r.Health) != len(wantH)+9 ||
		r.Outlier != "5 failures in a row eject for 1m x n (at most 5m), at most 10% of the endpoints" ||
		r.PanicThreshold == nil || *r.PanicThreshold != 50 {
		t.Errorf("a: %q %q %v", r.Health, r.Outlier, r.PanicThreshold)
	}
	if r := got[1]; r.Health != "" || r.Outlier != "" || r.PanicThreshold != nil {
		t.Errorf("b: %+v", r)
	}
}
