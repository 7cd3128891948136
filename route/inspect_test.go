package route

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestExplainNamesTheDecidingRule(t *testing.T) {
	tb := mustParse(t, `{"version":2,"vhosts":{
 "a.com":{"routes":[
  {"route_name":"prefix","path_match":{"type":"PathPrefix","value":"/api"},`+be(1)+`},
  {"route_name":"longer","path_match":{"type":"PathPrefix","value":"/api/v2"},`+be(2)+`},
  {"route_name":"exact","path_match":{"type":"Exact","value":"/api/v2/x"},`+be(3)+`},
  {"route_name":"hdr","path_match":{"type":"PathPrefix","value":"/api"},"headers":[{"name":"x-env","value":"canary"}],`+be(4)+`},
  {"route_name":"get","path_match":{"type":"PathPrefix","value":"/m"},"method":"GET",`+be(5)+`},
  {"route_name":"any","path_match":{"type":"PathPrefix","value":"/m"},`+be(6)+`},
  {"route_name":"first","path_match":{"type":"PathPrefix","value":"/d"},`+be(7)+`},
  {"route_name":"second","path_match":{"type":"PathPrefix","value":"/d"},`+be(8)+`},
  {"route_name":"lowprio","path_match":{"type":"PathPrefix","value":"/p"},"priority":1,`+be(9)+`},
  {"route_name":"highprio","path_match":{"type":"PathPrefix","value":"/p"},"priority":2,`+be(10)+`}
 ],"default_backends":[{"address":"10.0.9.9","port":80}]},
 "*.b.com":{"routes":[{"path_match":{"type":"PathPrefix","value":"/only"},`+be(11)+`}]}}}`)
	for _, c := range []struct {
		r        *Request
		vhost    string
		matched  []string // route names ("" = default_backends)
		decided  string
		rejected string // "name:condition" of one rejected route
	}{
		{req("a.com", "GET", "/api/v2/x"), "a.com", []string{"exact", "longer", "prefix"}, "path match type", "hdr:header x-env"},
		{req("a.com", "GET", "/api/v2/y"), "a.com", []string{"longer", "prefix"}, "longer PathPrefix value", "exact:path"},
		{req("a.com", "GET", "/api/z", "x-env", "canary"), "a.com", []string{"hdr", "prefix"}, "more header matches", ""},
		{req("a.com", "GET", "/m"), "a.com", []string{"get", "any"}, "a method match", ""},
		{req("a.com", "POST", "/m"), "a.com", []string{"any"}, "the only matching route", "get:method"},
		{req("a.com", "GET", "/d"), "a.com", []string{"first", "second"}, "earlier in the vhost's routes list", ""},
		{req("a.com", "GET", "/p"), "a.com", []string{"highprio", "lowprio"}, "higher priority", ""},
		{req("a.com", "GET", "/nothing"), "a.com", []string{""}, "no route matched: default_backends", ""},
		{req("x.b.com", "GET", "/no"), "*.b.com", nil, "no route matched and the vhost has no default_backends: 404", ""},
		{req("c.com", "GET", "/"), "", nil, "no vhost", ""},
	} {
		x := tb.Explain(c.r)
		var names []string
		for _, m := range x.Matched {
			names = append(names, m.Name)
		}
		// default_backends is the last matched entry whenever the vhost
		// has it; the cases list it only when nothing else matched.
		if len(names) > 1 && names[len(names)-1] == "" {
			names = names[:len(names)-1]
		}
		if x.Vhost != c.vhost || strings.Join(names, ",") != strings.Join(c.matched, ",") || !strings.HasPrefix(x.DecidedBy, c.decided) {
			t.Errorf("%s %s: vhost %q matched %q decided %q; want %q %q %q", c.r.Host, c.r.URL, x.Vhost, names, x.DecidedBy, c.vhost, c.matched, c.decided)
		}
		if c.rejected != "" {
			name, cond, _ := strings.Cut(c.rejected, ":")
			found := false
			for _, r := range x.Rejected {
				found = found || (r.Name == name && r.Failed == cond)
			}
			if !found {
				t.Errorf("%s %s: %s not rejected on %q: %+v", c.r.Host, c.r.URL, name, cond, x.Rejected)
			}
		}
	}
}

func TestDumpIsPrecedenceOrder(t *testing.T) {
	tb := mustParse(t, fuzzTable)
	d := tb.Dump()
	if len(d) != 4 || d[0].Key != "*" || d[0].Kind != "catch-all" || d[1].Kind != "wildcard" || d[2].Kind != "exact" ||
		d[3].Key != "cors.example.com" || d[3].Routes[0].CORS == nil || d[3].Routes[0].CORS.Preflight == nil {
		t.Fatalf("vhosts: %+v", d)
	}
	a := d[2]
	// Ranks follow vh.ordered, which the linear oracle proves is the
	// order Decide applies; the first ones are the Exact routes.
	vh := getHost(tb.exact, "a.example.com")
	if len(a.Routes) != len(vh.ordered) {
		t.Fatalf("%d routes dumped, %d compiled", len(a.Routes), len(vh.ordered))
	}
	for i, r := range a.Routes {
		if r.Rank != i+1 || r.Index != vh.ordered[i].index {
			t.Fatalf("route %d: rank %d index %d, want index %d", i, r.Rank, r.Index, vh.ordered[i].index)
		}
	}
	first, last := a.Routes[0], a.Routes[len(a.Routes)-1]
	if first.PathType != "Exact" || first.PathValue != "/a/b" || first.Method != "POST" || first.Outcome != "backend" ||
		len(first.Groups) != 1 || first.Groups[0].Endpoints[0] != "10.0.0.2:80" {
		t.Errorf("first route: %+v", first)
	}
	if last.Index != RouteDefault || last.PathType != "" || last.Outcome != "backend" {
		t.Errorf("last route: %+v", last)
	}
	if _, err := json.Marshal(d); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(a.Deps, ","); got != "host,path,method,query,socket,https,header x,header y" {
		t.Errorf("deps %s", got)
	}
}
