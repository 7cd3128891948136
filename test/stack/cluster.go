package stack

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ClusterOpts describe a cluster of ghost nodes on loopback: one varnishd
// and one ghostd per node, on 127.0.0.1 with ports of their own.
type ClusterOpts struct {
	Root   string // repository root (build/ghostd, build/libvmod_ghost.so)
	Dir    string // staging directory (0755); a sub-directory per node
	N      int    // nodes
	Config []byte // ghost.json every node loads
	// Members: the -cluster-members list each node gets: "" = every node
	// of the cluster ("-" = none: the nodes run unclustered, for a
	// baseline).
	Members string
	Secret  string   // the hop secret (written to a file); "" = a fixed test one
	Ghostd  []string // more ghostd flags (-cluster-secondary-ttl, ...)
	Params  []string // varnishd -p
	Storage string   // varnishd -s
	// GhostVCL: the ghost.vcl to stage ("" = vcl/ghost.vcl).
	GhostVCL string
	// InitArgs: more ghost.init() arguments; "" = ", timeout = 1s"
	// (a loaded test machine must not turn a slow first answer into a
	// 503).
	InitArgs string
}

// ClusterNode is one running node.
type ClusterNode struct {
	Name     string
	Dir      string
	Sock     string
	Addr     string // varnishd's listener, "127.0.0.1:port"
	Ghostd   *Proc
	Varnishd *Varnishd
	argv     []string
}

// TestSecret is the hop secret StartCluster uses by default.
const TestSecret = "ghost-cluster-test-secret-0123456789"

// ClusterPorts picks a free port for each of n nodes (FreePorts: below
// the ephemeral range, so that nothing the kernel hands out takes one
// before its node binds it).
func ClusterPorts(n int) ([]int, error) { return FreePorts(n) }

// StartCluster starts o.N nodes on the given ports (ClusterPorts), each
// ghostd told the members (every node) and itself, and waits until every
// varnishd accepts connections. On error, what was started is stopped.
func StartCluster(o ClusterOpts, ports []int) ([]*ClusterNode, error) {
	secret := o.Secret
	if secret == "" {
		secret = TestSecret
	}
	secretFile := filepath.Join(o.Dir, "hop-secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		return nil, err
	}
	addrs := make([]string, o.N)
	for i := range addrs {
		addrs[i] = fmt.Sprintf("127.0.0.1:%d", ports[i])
	}
	members := o.Members
	if members == "" {
		members = strings.Join(addrs, ",")
	}
	var nodes []*ClusterNode
	fail := func(err error) ([]*ClusterNode, error) {
		StopCluster(nodes)
		return nil, err
	}
	for i := 0; i < o.N; i++ {
		n, err := AddClusterNode(o, i, ports[i], members)
		if n != nil {
			nodes = append(nodes, n)
		}
		if err != nil {
			return fail(err)
		}
	}
	return nodes, nil
}

// AddClusterNode starts node i (0-based) of a cluster StartCluster
// started, on port, with the -cluster-members list members.
func AddClusterNode(o ClusterOpts, i, port int, members string) (*ClusterNode, error) {
	secretFile := filepath.Join(o.Dir, "hop-secret")
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	n := &ClusterNode{Name: fmt.Sprintf("node%d", i+1), Addr: addr}
	n.Dir = filepath.Join(o.Dir, n.Name)
	if err := os.MkdirAll(n.Dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.Chmod(n.Dir, 0o755); err != nil {
		return nil, err
	}
	n.Sock = filepath.Join(n.Dir, "g.sock")
	conf := filepath.Join(n.Dir, "ghost.json")
	if err := os.WriteFile(conf, o.Config, 0o644); err != nil {
		return nil, err
	}
	initArgs := o.InitArgs
	if initArgs == "" {
		initArgs = ", timeout = 1s"
	}
	vcl, err := StageVCL(o.Root, n.Dir, o.GhostVCL, n.Sock, initArgs)
	if err != nil {
		return nil, err
	}
	extra := []string{}
	if members != "-" {
		extra = append(extra, "-cluster-self", addr, "-cluster-members", members, "-cluster-secret-file", secretFile)
	}
	n.argv = GhostdArgs(o.Root, conf, n.Sock, "", "info", append(extra, o.Ghostd...)...)
	if err := n.StartGhostd(); err != nil {
		return n, err
	}
	n.Varnishd, err = StartVarnishd(VarnishdOpts{Dir: n.Dir, VCL: vcl, Listen: []string{"http"},
		Ports: []int{port}, Params: o.Params, Storage: o.Storage})
	if err != nil {
		return n, fmt.Errorf("%s: %w", n.Name, err)
	}
	return n, nil
}

// StartGhostd (re)starts the node's ghostd with the command line it was
// first started with.
func (n *ClusterNode) StartGhostd() error {
	var err error
	n.Ghostd, err = StartGhostd(n.Name+"-ghostd", filepath.Join(n.Dir, "ghostd.log"), n.Sock, Opts{}, n.argv...)
	return err
}

// SetGhostdArgs replaces flag's value in the node's ghostd command line
// (for the next StartGhostd).
func (n *ClusterNode) SetGhostdArgs(flag, value string) {
	for i := 0; i+1 < len(n.argv); i++ {
		if n.argv[i] == flag {
			n.argv[i+1] = value
			return
		}
	}
	n.argv = append(n.argv, flag, value)
}

// Stop stops the node's varnishd and ghostd.
func (n *ClusterNode) Stop() {
	if n.Varnishd != nil {
		_ = n.Varnishd.Stop(10 * time.Second)
	}
	if n.Ghostd != nil {
		_ = n.Ghostd.Stop(5 * time.Second)
	}
}

// StopCluster stops every node.
func StopCluster(nodes []*ClusterNode) {
	for _, n := range nodes {
		n.Stop()
	}
}
