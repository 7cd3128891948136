package route

import (
	"strings"
	"testing"
)

func TestWarnings(t *testing.T) {
	tb := mustParse(t, `{"version":2,"vhosts":{
 "a.com":{"routes":[
  {"path_match":{"type":"PathPrefix","value":"/x/"},"headers":[{"name":"A","value":"1"},{"name":"b","value":"2"}],`+be(1)+`},
  {"route_name":"dup","path_match":{"type":"PathPrefix","value":"/x"},"headers":[{"name":"b","value":"2"},{"name":"a","value":"1"}],`+be(2)+`},
  {"path_match":{"type":"PathPrefix","value":"/x"},"headers":[{"name":"a","value":"1"}],`+be(3)+`},
  {"path_match":{"type":"PathPrefix","value":"/x"},"method":"GET","headers":[{"name":"a","value":"1"},{"name":"b","value":"2"}],`+be(4)+`},
  {"route_name":"empty","path_match":{"type":"Exact","value":"/e"},"backends":[]},
  {"path_match":{"type":"Exact","value":"/z"},"backend_groups":[{"weight":0,"backends":[{"address":"10.0.0.9","port":80}]}]},
  {"path_match":{"type":"Exact","value":"/r"},"filters":{"request_redirect":{"hostname":"b.com"}}},
  {"priority":5,`+be(5)+`},
  {"path_match":{"type":"PathPrefix","value":"/"},`+be(6)+`}
 ]},
 "b.com":{"routes":[{`+be(7)+`}],"default_backends":[{"address":"10.0.0.8","port":80,"weight":0}]}}}`)
	got := strings.Join(tb.Warnings(), "\n")
	want := strings.Join([]string{
		`vhost "a.com" route 1 ("dup"): never chosen: route 0 has the same matches and comes first in precedence order`,
		`vhost "a.com" route 8: never chosen: route 7 has the same matches and comes first in precedence order`,
		`vhost "a.com" route 4 ("empty"): no usable backends (none listed, or every weight 0): its requests get 500`,
		`vhost "a.com" route 5: no usable backends (none listed, or every weight 0): its requests get 500`,
		`vhost "b.com" default_backends: no usable backends (every weight 0): unmatched requests get 500`,
	}, "\n")
	if got != want {
		t.Fatalf("warnings:\n%s\nwant:\n%s", got, want)
	}
	if w := mustParse(t, fuzzTable).Warnings(); len(w) != 1 || !strings.Contains(w[0], "route 13: no usable backends") {
		t.Errorf("fuzz table warnings: %q", w)
	}
}
