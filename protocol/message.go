package protocol

import (
	"fmt"
	"time"

	"github.com/varnish/ghost/route"
)

// Message types (the "t" key).
const (
	TypeHello  = "hello"
	TypeRoute  = "route"
	TypeReload = "reload"
	TypeStatus = "status"
	TypeLive   = "live"
	TypeError  = "error"
	// TypeDump and TypeExplain are operator requests (ghostd dump, ghostd
	// route -socket): the answer is a JSON document in one or more frames.
	TypeDump    = "dump"
	TypeExplain = "explain"
	// TypeRing: the consistent-hash ring a route answer names in "lb"
	// (see Ringer).
	TypeRing = "ring"
	// TypeCluster asks for the cluster a node shards its cache over
	// (docs/protocol.md "cluster").
	TypeCluster = "cluster"
)

// Error codes of an error answer. CodeType and CodeBusy keep the connection
// open; every other code is followed by a close.
const (
	CodeDecode  = "decode"
	CodeVersion = "version"
	CodeHello   = "hello"
	CodeType    = "type"
	CodeFrame   = "frame"
	// CodeBusy: a route request shed because too many expensive
	// decisions were running (see Admitter); the connection stays open.
	CodeBusy = "busy"
)

// Error is an error answer from ghostd, or a protocol violation detected by
// the client (version mismatch, unexpected answer).
type Error struct {
	Gen  uint64 // generation carried by the answer (0 when detected locally)
	Code string // one of the Code constants
	Msg  string
}

// Error returns the message as ghostd sent it.
func (e *Error) Error() string { return e.Msg }

// versionMismatch returns the exact message both sides use when the
// protocol versions differ.
func versionMismatch(server, client int64) string {
	return fmt.Sprintf("protocol version mismatch: ghostd speaks %d, client sent %d", server, client)
}

// request is a decoded request of any type. The server decodes every known
// key regardless of the type, so that a wrongly typed field is always a
// decode error. Strings point into the connection's read buffer.
type request struct {
	Type    string
	Version int64  // hello: "v"
	Client  string // hello: "client"
	Route   route.Request
	Eps     []route.Endpoint // live: "eps"
	// Probes is parallel to Eps: the probe id of each endpoint's native
	// backend (an optional third element, 0 when absent).
	Probes  []uint32
	ID      uint64        // ring: "id"
	Wait    time.Duration // reload: "wait" (ms), 0 = until done
	hasType bool
}

// reset clears r but keeps its slices' storage.
func (r *request) reset() {
	hdrs, eps, probes := r.Route.Headers[:0], r.Eps[:0], r.Probes[:0]
	*r = request{}
	r.Route.Headers, r.Eps, r.Probes = hdrs, eps, probes
}

// RingAnswer is the answer to a ring request: the ring's points as
// ring.Encode wrote them, for a ring of Members members; Points is nil
// when the current table has no ring of that ID.
type RingAnswer struct {
	Gen     uint64
	ID      uint64
	Members int
	Points  []byte
}

// ReloadResult is the answer to a reload request.
type ReloadResult struct {
	Gen uint64 // generation after the attempt (unchanged when it failed)
	OK  bool
	// Pending: the reload was still running when the request's wait
	// ran out; it goes on, and Gen is the generation still serving.
	// OK is true (nothing failed yet); ghostd status and its log give
	// the outcome.
	Pending bool
	Msg     string // on success: what was loaded (pending: what runs)
	Err     string // on failure: the validation or read error, verbatim
}

// Status is the answer to a status request.
type Status struct {
	Gen            uint64
	Vhosts         int
	Routes         int
	Endpoints      int
	Config         string // path of the configuration file
	Loaded         int64  // Unix seconds of the last successful load (0 = never)
	LastError      string // "" when the last reload worked
	Reloads        uint64 // successful reloads since start
	ReloadFailures uint64
	Uptime         int64 // seconds
	Server         string
}

// RouteAnswer is a route answer as seen by the Go client.
type RouteAnswer struct {
	Gen      uint64
	Decision route.Decision // Query is filled in from the request's URL
}

// ClusterAnswer is the answer to a cluster request (docs/protocol.md):
// Version 0 and no members when ghostd is not clustered.
type ClusterAnswer struct {
	Gen          uint64
	Version      uint64
	Self         int
	Members      []route.Endpoint
	Ring         []byte // the ring, as ring.Encode writes it
	Token        string
	SecondaryTTL int64
	DownSeconds  int64
	HopConnectMs int64
}

// LiveAnswer is the answer to a live request.
type LiveAnswer struct {
	Gen  uint64
	Dead []int // indexes into the request's endpoints
}
