package stack

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Proc is a child process started by Start.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	Log  string // its stdout and stderr
	done chan struct{}
	err  error
}

// Opts are the optional settings of Start.
type Opts struct {
	Env      []string   // added to the environment (or replacing it, see CleanEnv)
	CleanEnv bool       // start from the environment without LISTEN_* and NOTIFY_SOCKET
	Extra    []*os.File // inherited descriptors, fd 3 onwards
	OwnGroup bool       // a process group of its own, killed as a whole by Stop
}

// Start launches argv with its output appended to logPath. The process
// gets SIGTERM when the calling thread's process ends (Pdeathsig).
func Start(name, logPath string, o Opts, argv ...string) (*Proc, error) {
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	fmt.Fprintf(lf, "=== %s: %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(argv, " "))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = lf, lf
	base := os.Environ()
	if o.CleanEnv {
		base = base[:0:0]
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "LISTEN_") && !strings.HasPrefix(kv, "NOTIFY_SOCKET=") {
				base = append(base, kv)
			}
		}
	}
	cmd.Env = append(base, o.Env...)
	cmd.ExtraFiles = o.Extra
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: o.OwnGroup}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, Cmd: cmd, Log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process ID.
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Done is closed when the process has ended.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is the process's exit error, once it has ended.
func (p *Proc) Err() error {
	if !p.Exited() {
		return nil
	}
	return p.err
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig syscall.Signal) error { return p.Cmd.Process.Signal(sig) }

// Wait waits up to d for the process to end and SIGKILLs it after that.
func (p *Proc) Wait(d time.Duration) error {
	select {
	case <-p.done:
	case <-time.After(d):
		_ = syscall.Kill(p.Pid(), syscall.SIGKILL)
		<-p.done
	}
	return p.err
}

// Stop sends SIGTERM (and SIGCONT, in case it is stopped), waits up to
// grace, then SIGKILLs. For a process with a group of its own, whatever is
// left in the group (varnishd's child when the manager had to be killed)
// is killed too.
func (p *Proc) Stop(grace time.Duration) error {
	if p == nil || p.Cmd.Process == nil {
		return nil
	}
	pid := p.Pid()
	if !p.Exited() {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		_ = syscall.Kill(pid, syscall.SIGCONT)
	}
	err := p.Wait(grace)
	if p.Cmd.SysProcAttr != nil && p.Cmd.SysProcAttr.Setpgid {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
	return err
}

// LogTail returns the last n lines of the process's log.
func (p *Proc) LogTail(n int) string { return Tail(p.Log, n) }

// Tail returns the last n lines of a file ("" when it cannot be read).
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
