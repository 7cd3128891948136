package stack

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The ports FreePorts hands out: below the kernel's ephemeral range, so
// that no bind(":0") and no connect() of any process (another
// varnishd's -T, a client's source port) is given one of them between
// the moment it is chosen and the moment its process binds it. A
// cluster's member ports are chosen before any node starts and bound
// seconds later (TestJoin's fourth node: after the whole first phase).
// 29300-29340 are test/bench/run.sh's fixed ports: kept clear.
const (
	portLo = 20000
	portHi = 29000 // exclusive
)

var ports struct {
	sync.Mutex
	given map[int]bool // never handed out twice by this process
}

// ephemeralLow is the low end of net.ipv4.ip_local_port_range (32768
// when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 32768
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return lo
}

// FreePorts returns n distinct loopback TCP ports that were free a moment
// ago, never one it returned before in this process, from 20000-28999
// (below the ephemeral range, see portLo; the kernel's choice when that
// range overlaps the ephemeral one). Another process may still bind one
// explicitly before it is used: the starters here check that what
// answers on a port is the process they started (StartVarnishd,
// StartUpstreams) and retry with new ports.
func FreePorts(n int) ([]int, error) {
	hi := min(portHi, ephemeralLow())
	if hi-portLo < 1000 {
		return kernelPorts(n)
	}
	ports.Lock()
	defer ports.Unlock()
	if ports.given == nil {
		ports.given = map[int]bool{}
	}
	out := make([]int, 0, n)
	for tries := 0; len(out) < n; tries++ {
		if tries > 20*(hi-portLo) {
			return nil, fmt.Errorf("no free port in %d-%d", portLo, hi-1)
		}
		p := portLo + rand.IntN(hi-portLo)
		if ports.given[p] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		l.Close()
		ports.given[p] = true
		out = append(out, p)
	}
	return out, nil
}

// kernelPorts is FreePorts from the kernel's own choice (bind to port 0).
func kernelPorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	out := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// WaitDial waits up to d until network/addr accepts a connection, or p
// (when not nil) exits. It proves that something listens there, not
// what: see StartVarnishd.
func WaitDial(network, addr string, p *Proc, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		if p != nil && p.Exited() {
			return fmt.Errorf("%s exited before %s was ready: %v", p.Name, addr, p.Err())
		}
		c, err := net.DialTimeout(network, addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v: %w", addr, d, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
