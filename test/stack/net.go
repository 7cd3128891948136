package stack

import (
	"fmt"
	"net"
	"time"
)

// FreePorts returns n distinct loopback TCP ports that were free a moment
// ago. Another process may take one before it is used: the starters here
// retry with new ports when a listener fails.
func FreePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// WaitDial waits up to d until network/addr accepts a connection, or p
// (when not nil) exits.
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
