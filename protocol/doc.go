// Package protocol implements ghostd's wire protocol (docs/protocol.md):
// length-prefixed msgpack frames over a Unix stream socket, the message
// types (hello, route, reload, status, live, error), the server side used by
// ghostd and a small Go client used by ghostd's subcommands and by tests.
//
// The server's hot path (decode a route request, decide, encode the answer)
// reuses every buffer of a connection and makes no allocation of its own:
// the strings of a decoded route.Request point into the connection's read
// buffer and are valid only while the request is being answered.
package protocol

// Version is the protocol version this package speaks.
const Version = 1

// MaxFrame is the largest frame body accepted, in bytes (1 MiB).
const MaxFrame = 1 << 20

// ServerName is what ghostd reports in hello and status answers.
const ServerName = "ghostd 0.1"

// ClientName is what the Go client reports in its hello.
const ClientName = "ghost-go 0.1"
