package main

// Tests of the operator surface: dump, route -socket, version, help,
// status exit codes, metrics conventions, health endpoints, log format,
// strict mode and check warnings.

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/varnish/ghost/route"
)

// runGhostd runs the binary and returns its combined output and exit code.
func runGhostd(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, err := exec.Command(ghostdBin, args...).CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

// freeAddr returns a loopback address nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// get fetches a URL and returns status and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitLog waits up to 5 s for text in the daemon's stderr, which reaches
// the test through a pipe.
func (d *daemon) waitLog(text string) bool {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if strings.Contains(d.stderr.String(), text) {
			return true
		}
	}
	return false
}

// configTwo has two vhosts, named routes and competing routes.
const configTwo = `{"version":2,"vhosts":{
 "a.test":{"routes":[
  {"route_name":"ns/short","path_match":{"type":"PathPrefix","value":"/api"},"backends":[{"address":"10.0.0.1","port":8001}]},
  {"route_name":"ns/long","path_match":{"type":"PathPrefix","value":"/api/v2"},"backends":[{"address":"10.0.0.2","port":8002}]}]},
 "b.test":{"routes":[{"route_name":"ns/b","backends":[{"address":"10.0.0.3","port":8003}]}]}}}`

func TestDumpAndLiveRoute(t *testing.T) {
	d := startDaemon(t, configTwo, "-watch=false")
	out, code := runGhostd(t, "dump", "-socket", d.sock)
	if code != 0 {
		t.Fatalf("dump: %d %s", code, out)
	}
	var dump tableDump
	if err := json.Unmarshal([]byte(out), &dump); err != nil {
		t.Fatalf("dump is not JSON: %v\n%s", err, out)
	}
	st := d.status()
	if dump.Generation != st.Gen || len(dump.SHA256) != 64 || dump.Config != d.config || dump.Vhosts != 2 || len(dump.Table) != 2 {
		t.Fatalf("dump header: %+v (status gen %d)", dump, st.Gen)
	}
	a := dump.Table[0]
	if a.Key != "a.test" || len(a.Routes) != 2 || a.Routes[0].Name != "ns/long" || a.Routes[0].Rank != 1 || a.Routes[1].Index != 0 {
		t.Fatalf("vhost a.test not in precedence order: %+v", a)
	}
	// Offline dump of the same file: same table, same hash.
	off, code := runGhostd(t, "dump", "-config", d.config)
	var dumpOff tableDump
	if code != 0 || json.Unmarshal([]byte(off), &dumpOff) != nil || dumpOff.SHA256 != dump.SHA256 || len(dumpOff.Table) != 2 {
		t.Fatalf("dump -config: %d %s", code, off)
	}

	// route -socket asks the live table and explains.
	out, code = runGhostd(t, "route", "-socket", d.sock, "-host", "a.test", "/api/v2/x")
	for _, want := range []string{
		fmt.Sprintf("table:       live, generation %d", st.Gen),
		"route:       1 (ns/long)",
		"10.0.0.2:8002",
		"vhost rule:  exact hostname match",
		"matched:     rank 1 route 1 (ns/long); rank 2 route 0 (ns/short)",
		"decided by:  longer PathPrefix value",
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("route -socket lacks %q (exit %d):\n%s", want, code, out)
		}
	}
	// Change the file without reloading: the live answer still comes
	// from the table in memory, the offline one from the file.
	writeFile(t, d.config, configA)
	if out, _ := runGhostd(t, "route", "-socket", d.sock, "-host", "a.test", "/api/v2/x"); !strings.Contains(out, "10.0.0.2:8002") {
		t.Errorf("route -socket did not use the live table:\n%s", out)
	}
	if out, _ := runGhostd(t, "route", "-config", d.config, "-host", "a.test", "/api/v2/x"); !strings.Contains(out, "10.0.0.1:8001") ||
		!strings.Contains(out, "decided by:  the only matching route") {
		t.Errorf("route -config did not read the file:\n%s", out)
	}
}

func TestVersionHelpStatusCodes(t *testing.T) {
	re := regexp.MustCompile(`^ghostd \S+ \(revision \S+, go\S+, protocol 1\)\n$`)
	for _, args := range [][]string{{"version"}, {"-version"}} {
		if out, code := runGhostd(t, args...); code != 0 || !re.MatchString(out) {
			t.Errorf("%v: %d %q", args, code, out)
		}
	}
	if out, code := runGhostd(t, "help"); code != 0 || !strings.Contains(out, "-log-format") || !strings.Contains(out, "-strict") ||
		!strings.Contains(out, "ghostd dump") {
		t.Errorf("help does not show the daemon flags: %d\n%s", code, out)
	}

	// Status: 0 when a table is loaded and the last reload worked, 1 when
	// it failed or nothing was ever loaded.
	d := startDaemon(t, configA, "-watch=false")
	if out, code := runGhostd(t, "status", "-socket", d.sock); code != 0 {
		t.Errorf("status of a healthy daemon: %d\n%s", code, out)
	}
	writeFile(t, d.config, configBad)
	if _, code := runGhostd(t, "reload", "-socket", d.sock); code != 1 {
		t.Errorf("reload of a bad file: exit %d", code)
	}
	out, code := runGhostd(t, "status", "-socket", d.sock, "-json")
	var sj statusJSON
	if code != 1 || json.Unmarshal([]byte(out), &sj) != nil || sj.Ready || !strings.Contains(sj.LastError, d.config+": vhost") {
		t.Errorf("status after a failed reload: %d %s", code, out)
	}
	empty := startDaemon(t, "-", "-watch=false")
	if out, code := runGhostd(t, "status", "-socket", empty.sock); code != 1 || !strings.Contains(out, "loaded:          never") {
		t.Errorf("status with nothing loaded: %d\n%s", code, out)
	}
}

func TestMetricsLifecycleAndHealth(t *testing.T) {
	addr := freeAddr(t)
	d := startDaemon(t, "-", "-metrics", addr, "-watch=false", "-log-format", "json")
	base := "http://" + addr
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	if code, body := get(t, base+"/readyz"); code != 503 || !strings.Contains(body, "no such file") {
		t.Errorf("/readyz with no config: %d %q", code, body)
	}
	scrape := func() string { _, b := get(t, base+"/metrics"); return b }
	if m := scrape(); !strings.Contains(m, "ghost_config_last_reload_successful 0") {
		t.Errorf("missing file is not a failed load:\n%s", m)
	}
	writeFile(t, d.config, configTwo)
	runGhostd(t, "reload", "-socket", d.sock)
	if code, body := get(t, base+"/readyz"); code != 200 || !strings.HasPrefix(body, "ok: generation") {
		t.Errorf("/readyz after a load: %d %q", code, body)
	}
	c := d.dial()
	for _, u := range []string{"/api", "/api/v2"} {
		if _, err := c.Route(&route.Request{Host: "a.test", Method: "GET", URL: u}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Route(&route.Request{Host: "b.test", Method: "GET", URL: "/"}); err != nil {
		t.Fatal(err)
	}
	m := scrape()
	for _, want := range []string{
		`ghost_decisions_total{outcome="backend",vhost="b.test"} 1`,
		`ghost_route_decisions_total{route_name="ns/long"} 1`,
		`ghost_route_decisions_total{route_name="ns/b"} 1`,
		`ghost_config_last_reload_successful 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(m, "generation=") {
		t.Errorf("a label carries the generation:\n%s", m)
	}
	// A reload that removes b.test drops its series.
	writeFile(t, d.config, configA)
	runGhostd(t, "reload", "-socket", d.sock)
	m = scrape()
	if strings.Contains(m, `vhost="b.test"`) || strings.Contains(m, `route_name="ns/b"`) || strings.Contains(m, `route_name="ns/long"`) {
		t.Errorf("series of removed vhosts and routes stay:\n%s", m)
	}
	if !strings.Contains(m, `ghost_decisions_total{outcome="backend",vhost="a.test"} 2`) {
		t.Errorf("series of a kept vhost lost")
	}
	// A failed reload sets the gauge to 0; a good one clears the error
	// and says so in the (JSON) log.
	writeFile(t, d.config, configBad)
	runGhostd(t, "reload", "-socket", d.sock)
	if m := scrape(); !strings.Contains(m, "ghost_config_last_reload_successful 0") {
		t.Errorf("failed reload not shown")
	}
	if code, _ := get(t, base+"/readyz"); code != 200 {
		t.Errorf("/readyz after a failed reload (the old table serves): %d", code)
	}
	writeFile(t, d.config, configB)
	if out, code := runGhostd(t, "reload", "-socket", d.sock); code != 0 {
		t.Fatalf("reload of a good file: %d %s", code, out)
	}
	// The log reaches us through a pipe: wait for the line a little.
	var cleared map[string]any
	for deadline := time.Now().Add(5 * time.Second); cleared == nil && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, line := range strings.Split(d.stderr.String(), "\n") {
			var rec map[string]any
			if line == "" {
				continue
			}
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("-log-format json wrote a non-JSON line: %q", line)
			}
			if rec["msg"] == "config error cleared" && strings.Contains(fmt.Sprint(rec["previous_err"]), "must start with") {
				cleared = rec
			}
		}
	}
	if cleared == nil || cleared["level"] != "INFO" {
		t.Errorf("no info line for the cleared error: %v\n%s", cleared, d.stderr.String())
	}
}

func TestStrictAndCheckWarnings(t *testing.T) {
	dir := t.TempDir()
	typo := filepath.Join(dir, "typo.json")
	writeFile(t, typo, `{"version":2,"vhosts":{"a.com":{"routes":[{"path_mach":{"type":"Exact","value":"/x"},"backends":[{"address":"10.0.0.1","port":80}]}]}}}`)
	out, code := runGhostd(t, "check", typo)
	if code != 0 || !strings.Contains(out, typo+`: unknown key .vhosts["a.com"].routes[0].path_mach (line 1 column 44)`) {
		t.Errorf("check of a typo: %d\n%s", code, out)
	}
	if out, code := runGhostd(t, "check", "-strict", typo); code != 1 || !strings.Contains(out, "(strict: unknown keys are errors)") {
		t.Errorf("check -strict of a typo: %d\n%s", code, out)
	}
	d := startDaemon(t, "-", "-watch=false", "-strict")
	writeFile(t, d.config, `{"version":2,"vhost":{}}`)
	if out, code := runGhostd(t, "reload", "-socket", d.sock); code != 1 || !strings.Contains(out, "unknown key .vhost (line 1 column 14) (strict: unknown keys are errors)") {
		t.Errorf("-strict daemon loaded a file with an unknown key: %d %s", code, out)
	}
	lax := startDaemon(t, `{"version":2,"vhost":{}}`, "-watch=false")
	if !lax.waitLog(`level=WARN msg="config has keys ghost ignores (-strict refuses them)"`) {
		t.Errorf("unknown keys not logged at warn:\n%s", lax.stderr.String())
	}
	shadow := filepath.Join(dir, "shadow.json")
	writeFile(t, shadow, `{"version":2,"vhosts":{"a.com":{"routes":[`+
		`{"path_match":{"type":"Exact","value":"/x"},"backends":[{"address":"10.0.0.1","port":80}]},`+
		`{"path_match":{"type":"Exact","value":"/x"},"backends":[{"address":"10.0.0.2","port":80}]},`+
		`{"path_match":{"type":"Exact","value":"/y"}}]}}}`)
	out, code = runGhostd(t, "check", shadow)
	for _, want := range []string{
		shadow + `: warning: vhost "a.com" route 1: never chosen: route 0 has the same matches`,
		shadow + `: warning: vhost "a.com" route 2: no usable backends`,
		shadow + ": ok: 1 vhosts, 3 routes, 2 endpoints",
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("check lacks %q (exit %d):\n%s", want, code, out)
		}
	}
}
