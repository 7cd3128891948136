package scale

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/varnish/ghost/test/stack"
)

// CLIWatch asks the child, through the manager's CLI, a cheap question
// (vcl.list; ban.list every fourth time) every Interval, on a connection
// of its own, and records how long each answer took. varnishd's manager
// kills the child when one answer takes longer than cli_timeout (60 s by
// default; its own ping every ping_interval is such a question), so the
// longest answer over a run is how close the run came to that. An answer
// also waits for any command the manager is relaying at the time (the
// manager serialises the CLI): the suite's own backend.list shows up here.
type CLIWatch struct {
	Interval time.Duration
	mu       sync.Mutex
	samples  []CLISample
	stop     chan struct{}
	done     chan struct{}
}

// CLISample is one question: when it was sent, what, how long the answer
// took, and the error (the connection broke or the answer was not 200).
type CLISample struct {
	At  time.Time
	Cmd string
	Lat time.Duration
	Err string
}

// WatchCLI starts a CLIWatch on v.
func WatchCLI(v *stack.Varnishd, interval time.Duration) *CLIWatch {
	w := &CLIWatch{Interval: interval, stop: make(chan struct{}), done: make(chan struct{})}
	go w.run(v)
	return w
}

func (w *CLIWatch) run(v *stack.Varnishd) {
	defer close(w.done)
	var c *stack.CLI
	for k := 0; ; k++ {
		select {
		case <-w.stop:
			if c != nil {
				c.Close()
			}
			return
		case <-time.After(w.Interval):
		}
		if c == nil {
			var err error
			if c, err = v.DialCLI(10 * time.Second); err != nil {
				w.add(CLISample{At: time.Now(), Cmd: "connect", Err: err.Error()})
				c = nil
				continue
			}
		}
		cmd := "vcl.list"
		if k%4 == 3 {
			cmd = "ban.list"
		}
		t := time.Now()
		st, body, err := c.Do(5*time.Minute, cmd)
		s := CLISample{At: t, Cmd: cmd, Lat: time.Since(t)}
		if err != nil {
			s.Err = err.Error()
			c.Close()
			c = nil
		} else if st != 200 {
			s.Err = fmt.Sprintf("status %d: %.100s", st, strings.TrimSpace(body))
		}
		w.add(s)
	}
}

func (w *CLIWatch) add(s CLISample) {
	w.mu.Lock()
	w.samples = append(w.samples, s)
	w.mu.Unlock()
}

// Stop ends the watch.
func (w *CLIWatch) Stop() {
	close(w.stop)
	<-w.done
}

// Window summarises the questions sent in [from, to): count, errors,
// median, 99th percentile and the longest (with when it was sent).
func (w *CLIWatch) Window(from, to time.Time) string {
	w.mu.Lock()
	var lat []time.Duration
	var worst CLISample
	errs, firstErr := 0, ""
	for _, s := range w.samples {
		if s.At.Before(from) || !s.At.Before(to) {
			continue
		}
		if s.Err != "" {
			if errs == 0 {
				firstErr = s.Cmd + ": " + s.Err
			}
			errs++
		}
		lat = append(lat, s.Lat)
		if s.Lat > worst.Lat {
			worst = s
		}
	}
	w.mu.Unlock()
	if len(lat) == 0 {
		return "no CLI question"
	}
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	out := fmt.Sprintf("%d CLI questions, p50 %v p99 %v max %v (%s at %s)", len(lat),
		q(.5).Round(time.Microsecond), q(.99).Round(time.Microsecond), worst.Lat.Round(time.Microsecond),
		worst.Cmd, worst.At.UTC().Format("15:04:05"))
	if errs > 0 {
		out += fmt.Sprintf("; %d errors, first: %s", errs, firstErr)
	}
	return out
}

// Max is the longest answer in [from, to).
func (w *CLIWatch) Max(from, to time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var m time.Duration
	for _, s := range w.samples {
		if !s.At.Before(from) && s.At.Before(to) && s.Lat > m {
			m = s.Lat
		}
	}
	return m
}

// Errors is the number of questions that got no answer or one other
// than 200, and the first of them.
func (w *CLIWatch) Errors() (int, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, first := 0, ""
	for _, s := range w.samples {
		if s.Err != "" {
			if n == 0 {
				first = s.At.UTC().Format("15:04:05.000") + " " + s.Cmd + ": " + s.Err
			}
			n++
		}
	}
	return n, first
}
