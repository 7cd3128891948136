package stack

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/varnish/ghost/test/stack/procfs"
)

// MainVCL is the VCL the suites load: the staged shim and ghost.vcl from
// dir, and ghost.init on ghostd's socket, with more arguments when
// initArgs is not "" (", memo = 0").
func MainVCL(dir, sock, initArgs string) string {
	return fmt.Sprintf("vcl 4.1;\nimport ghost from %q;\ninclude %q;\nsub vcl_init {\n\tghost.init(%q%s);\n}\n",
		filepath.Join(dir, "libvmod_ghost.so"), filepath.Join(dir, "ghost.vcl"), sock, initArgs)
}

// StageVCL copies build/libvmod_ghost.so and ghostVCL (vcl/ghost.vcl when
// "") into dir, writes dir/main.vcl (MainVCL) and returns its path.
func StageVCL(root, dir, ghostVCL, sock, initArgs string) (string, error) {
	if ghostVCL == "" {
		ghostVCL = filepath.Join(root, "vcl/ghost.vcl")
	}
	for _, f := range [][2]string{
		{"libvmod_ghost.so", filepath.Join(root, "build/libvmod_ghost.so")},
		{"ghost.vcl", ghostVCL},
	} {
		if err := CopyFile(filepath.Join(dir, f[0]), f[1], 0o644); err != nil {
			return "", err
		}
	}
	main := filepath.Join(dir, "main.vcl")
	return main, os.WriteFile(main, []byte(MainVCL(dir, sock, initArgs)), 0o644)
}

// VarnishdOpts describe a varnishd to start.
type VarnishdOpts struct {
	Dir     string   // its work directory, secret, pid file and log go here
	VCL     string   // -f
	Listen  []string // listener names, optionally with ",PROXY"; the first is waited for
	Params  []string // -p name=value
	Storage string   // -s; default malloc,64m
	// Ports, when not nil, are the listeners' ports (parallel to
	// Listen), chosen by the caller (FreePorts): a cluster's members
	// must know each other's before they start.
	Ports []int
}

// Varnishd is a running varnishd (manager in the foreground, -F, in a
// process group of its own, so that Stop also ends its child).
type Varnishd struct {
	*Proc
	WorkDir string            // -n
	Admin   string            // -T address
	Secret  string            // -S file
	Listen  map[string]string // listener name → "127.0.0.1:port"
}

// StartVarnishd starts varnishd on free loopback ports and waits until
// its first listener accepts connections, retrying with new ports when
// one was taken meanwhile.
func StartVarnishd(o VarnishdOpts) (*Varnishd, error) {
	v := &Varnishd{WorkDir: filepath.Join(o.Dir, "varnish"), Secret: filepath.Join(o.Dir, "secret")}
	secret := strconv.FormatInt(time.Now().UnixNano(), 36) + "-ghost-test\n"
	if err := os.WriteFile(v.Secret, []byte(secret), 0o600); err != nil {
		return nil, err
	}
	if o.Storage == "" {
		o.Storage = "malloc,64m"
	}
	var lastErr error
	for attempt := range 3 {
		ports, err := FreePorts(len(o.Listen) + 1)
		if err != nil {
			return nil, err
		}
		if o.Ports != nil {
			copy(ports[1:], o.Ports)
		}
		v.Admin = fmt.Sprintf("127.0.0.1:%d", ports[0])
		v.Listen = map[string]string{}
		argv := []string{"varnishd", "-F", "-n", v.WorkDir, "-T", v.Admin, "-S", v.Secret,
			"-f", o.VCL, "-s", o.Storage, "-P", filepath.Join(o.Dir, "varnishd.pid")}
		first := ""
		for i, l := range o.Listen {
			name, proto, _ := strings.Cut(l, ",")
			addr := fmt.Sprintf("127.0.0.1:%d", ports[i+1])
			v.Listen[name] = addr
			a := name + "=" + addr
			if proto != "" {
				a += "," + proto
			}
			argv = append(argv, "-a", a)
			if first == "" {
				first = addr
			}
		}
		for _, p := range o.Params {
			argv = append(argv, "-p", p)
		}
		name := fmt.Sprintf("varnishd-%d", attempt)
		v.Proc, err = Start(name, filepath.Join(o.Dir, name+".log"), Opts{OwnGroup: true}, argv...)
		if err != nil {
			return nil, err
		}
		if lastErr = v.waitOwn(first, 60*time.Second); lastErr == nil {
			return v, nil
		}
		lastErr = fmt.Errorf("%w\n%s", lastErr, v.LogTail(20))
		_ = v.Stop(5 * time.Second)
	}
	return nil, fmt.Errorf("varnishd: %w", lastErr)
}

// waitOwn waits up to d until the varnishd accepts connections on addr,
// its first listener, and answers on its own CLI (its -T with its -S
// secret) that its child runs. That second part is what makes addr its:
// the manager binds every -a before it opens -T and exits when one is
// taken (Varnish 7.1 mgt_main.c: MAC_Arg, then mgt_cli_telnet), and
// varnishd binds without SO_REUSEPORT, so while it lives nothing else
// listens there. A connection alone proves nothing: a port taken
// meanwhile by another listener (another varnishd's -T: its CLI banner
// "107 59" reads as "malformed HTTP status code \"59\"") accepts too.
func (v *Varnishd) waitOwn(addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	if err := WaitDial("tcp", addr, v.Proc, d); err != nil {
		return err
	}
	for {
		if v.Exited() {
			return fmt.Errorf("%s exited before it was ready: %v", v.Name, v.Err())
		}
		out, err := v.Adm("status")
		if err == nil && strings.Contains(out, "Child in state running") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: no running child on its CLI %s after %v: %v %s", v.Name, v.Admin, d, err, strings.TrimSpace(out))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Adm runs a varnishadm command.
func (v *Varnishd) Adm(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	argv := append([]string{"-T", v.Admin, "-S", v.Secret}, args...)
	out, err := exec.CommandContext(ctx, "varnishadm", argv...).CombinedOutput()
	return string(out), err
}

// Stats returns the named counters (varnishstat -1 -f name...).
func (v *Varnishd) Stats(names ...string) map[string]int64 {
	return v.StatsWithin(10*time.Second, names...)
}

// StatsWithin is Stats with a timeout of d: varnishstat reads every VSC
// segment, one per backend (seconds at tens of thousands of backends).
func (v *Varnishd) StatsWithin(d time.Duration, names ...string) map[string]int64 {
	args := []string{"-n", v.WorkDir, "-1"}
	for _, n := range names {
		args = append(args, "-f", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	out, _ := exec.CommandContext(ctx, "varnishstat", args...).Output()
	m := map[string]int64{}
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) >= 2 {
			if n, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				m[f[0]] = n
			}
		}
	}
	return m
}

// ChildPID is the pid of the cache child (0 when there is none).
func (v *Varnishd) ChildPID() int { return procfs.ChildPID(v.Pid()) }
