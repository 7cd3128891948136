package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/varnish/ghost/protocol"
)

// version is set at build time (make build: -ldflags "-X main.version=...",
// from git describe); "dev" otherwise.
var version = "dev"

// buildInfo describes this binary: its version, the VCS revision Go
// recorded (with "-dirty" for a modified tree) and the Go version.
type buildInfo struct {
	Version, Revision, GoVersion string
}

func readBuildInfo() buildInfo {
	b := buildInfo{Version: version, Revision: "unknown", GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		dirty := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Revision = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if dirty && b.Revision != "unknown" {
			b.Revision += "-dirty"
		}
	}
	return b
}

// String is the line ghostd version and ghostd -version print.
func (b buildInfo) String() string {
	return fmt.Sprintf("ghostd %s (revision %s, %s, protocol %d)", b.Version, b.Revision, b.GoVersion, protocol.Version)
}

func cmdVersion(args []string) int {
	fs := subFlags("version", "version\n\nPrints ghostd's version, VCS revision, Go version and protocol version.")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	fmt.Println(readBuildInfo())
	return 0
}
