package stack

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sort"
	"time"
)

// Upstreams is one build/upstream process serving loopback ports, each
// answering with the header X-Upstream: <name>.
type Upstreams struct {
	*Proc
	Ports map[string][]int // name → its ports, in order
}

// Port returns the i-th port of name.
func (u *Upstreams) Port(name string, i int) int { return u.Ports[name][i] }

// StartUpstreams starts root/build/upstream serving count[name] ports for
// every name, with its log in logDir, and waits until every port answers
// with its name. It retries with new ports when one was taken meanwhile.
func StartUpstreams(root, logDir string, count map[string]int) (*Upstreams, error) {
	names := make([]string, 0, len(count))
	total := 0
	for n, c := range count {
		names = append(names, n)
		total += c
	}
	sort.Strings(names)
	var lastErr error
	for attempt := range 3 {
		ports, err := FreePorts(total)
		if err != nil {
			return nil, err
		}
		u := &Upstreams{Ports: map[string][]int{}}
		argv := []string{filepath.Join(root, "build/upstream")}
		i := 0
		for _, n := range names {
			for range count[n] {
				u.Ports[n] = append(u.Ports[n], ports[i])
				argv = append(argv, "-listen", fmt.Sprintf("127.0.0.1:%d=%s", ports[i], n))
				i++
			}
		}
		u.Proc, err = Start(fmt.Sprintf("upstream-%d", attempt), filepath.Join(logDir, fmt.Sprintf("upstream-%d.log", attempt)), Opts{}, argv...)
		if err != nil {
			return nil, err
		}
		if lastErr = u.waitReady(5 * time.Second); lastErr == nil {
			return u, nil
		}
		_ = u.Stop(3 * time.Second)
	}
	return nil, fmt.Errorf("upstreams did not start: %w", lastErr)
}

// waitReady waits until every port answers with its name.
func (u *Upstreams) waitReady(d time.Duration) error {
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(d)
	for name, ports := range u.Ports {
		for _, p := range ports {
			for {
				if u.Exited() {
					return errors.New("upstream process exited")
				}
				resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", p))
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if got := resp.Header.Get("X-Upstream"); got != name {
						return fmt.Errorf("port %d answers as %q, want %q", p, got, name)
					}
					break
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("port %d: %w", p, err)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	return nil
}
