package scale

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"
	"time"
)

// Upstream is one HTTP server for every endpoint of the suite: a listener
// on 0.0.0.0:port tied to the loopback interface (SO_BINDTODEVICE "lo"),
// so that it answers for every 127.x.y.z address and for nothing that
// comes from another interface. Each answer names the address the request
// came to (X-Upstream), so that the suite checks that vhost i reached
// Endpoint(i).
type Upstream struct {
	Port int
	srv  *http.Server
	ln   net.Listener
}

// StartUpstream serves on a free port; without keepAlive every answer
// closes its connection (Connection: close), as an upstream without
// keep-alive does.
func StartUpstream(keepAlive bool) (*Upstream, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptString(int(fd), syscall.SOL_SOCKET, syscall.SO_BINDTODEVICE, "lo")
		}); err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("SO_BINDTODEVICE lo: %w", serr)
		}
		return nil
	}}
	ln, err := lc.Listen(context.Background(), "tcp4", "0.0.0.0:0")
	if err != nil {
		return nil, fmt.Errorf("upstream: %w", err)
	}
	u := &Upstream{Port: ln.Addr().(*net.TCPAddr).Port, ln: ln}
	u.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			addr, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
			host := ""
			if a, ok := addr.(*net.TCPAddr); ok {
				host = a.IP.String()
			}
			w.Header().Set("X-Upstream", host)
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Content-Length", "3")
			_, _ = w.Write([]byte("ok\n"))
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute, // longer than varnishd's backend_idle_timeout
	}
	u.srv.SetKeepAlivesEnabled(keepAlive)
	go func() {
		if err := u.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			panic(err)
		}
	}()
	return u, nil
}

// Close stops the server and closes its connections.
func (u *Upstream) Close() error { return u.srv.Close() }
