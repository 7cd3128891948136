package stack

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/varnish/ghost/protocol"
)

// GhostdArgs is the ghostd command line the suites use: the staged config
// and socket (mode 0666, so that varnishd's child, user vcache, connects),
// metrics on metrics ("" = off), the log level, then extra flags.
func GhostdArgs(root, config, sock, metrics, level string, extra ...string) []string {
	return append([]string{filepath.Join(root, "build/ghostd"), "-config", config, "-socket", sock,
		"-socket-mode", "0666", "-metrics", metrics, "-log-level", level}, extra...)
}

// Activated wraps a ghostd command line for socket activation with the
// listening socket passed as fd 3 (Opts.Extra): a shell exports its own
// pid as LISTEN_PID and execs ghostd in its place, as systemd does.
func Activated(argv []string) []string {
	return append([]string{"/bin/sh", "-c",
		`export LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=ghostd.socket; exec "$0" "$@"`}, argv...)
}

// StartGhostd starts argv (a command line from GhostdArgs, maybe wrapped
// by Activated) and waits until it serves sock. A ghostd that is not ready
// within 10 s is stopped and an error returned with its log's tail.
func StartGhostd(name, logPath, sock string, o Opts, argv ...string) (*Proc, error) {
	p, err := Start(name, logPath, o, argv...)
	if err != nil {
		return nil, err
	}
	if err := WaitGhostd(sock, p, 10*time.Second); err != nil {
		_ = p.Stop(5 * time.Second)
		return nil, fmt.Errorf("%s (pid %d) not ready: %w\n%s", name, p.Pid(), err, p.LogTail(20))
	}
	return p, nil
}

// WaitGhostd waits up to d until the ghostd p serves sock: its state file
// names p (not a ghostd it replaces) and it answers a status request.
func WaitGhostd(sock string, p *Proc, d time.Duration) error {
	deadline := time.Now().Add(d)
	var last error
	for {
		if p.Exited() {
			return fmt.Errorf("exited: %v", p.Err())
		}
		st, err := ReadState(sock + ".state")
		switch {
		case err != nil:
			last = err
		case st.PID != p.Pid():
			last = fmt.Errorf("state file names pid %d", st.PID)
		default:
			if _, err := GhostdStatus(sock, time.Second); err != nil {
				last = err
			} else {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return last
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// GhostdStatus asks the ghostd on sock for its status on a new connection.
func GhostdStatus(sock string, timeout time.Duration) (*protocol.Status, error) {
	return call(sock, timeout, (*protocol.Client).Status)
}

// GhostdReload asks the ghostd on sock to reload, on a new connection.
func GhostdReload(sock string, timeout time.Duration) (*protocol.ReloadResult, error) {
	return call(sock, timeout, (*protocol.Client).Reload)
}

// call makes one request on a new connection to the ghostd on sock.
func call[T any](sock string, timeout time.Duration, req func(*protocol.Client) (T, error)) (T, error) {
	c, err := protocol.Dial(sock, timeout)
	if err != nil {
		var zero T
		return zero, err
	}
	defer c.Close()
	return req(c)
}

// State is ghostd's state file (docs/protocol.md).
type State struct {
	Gen         uint64
	HeartbeatMS uint64
	PID         int
}

// ReadState reads a state file.
func ReadState(path string) (State, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return State{}, err
	}
	if len(b) < 32 || string(b[:8]) != "GHOSTST1" {
		return State{}, fmt.Errorf("state file %s: bad magic or size %d", path, len(b))
	}
	return State{
		Gen:         binary.LittleEndian.Uint64(b[8:]),
		HeartbeatMS: binary.LittleEndian.Uint64(b[16:]),
		PID:         int(binary.LittleEndian.Uint64(b[24:])),
	}, nil
}
