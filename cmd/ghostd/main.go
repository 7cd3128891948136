// Command ghostd owns ghost's routing table: it loads ghost.json, compiles
// it, answers routing questions from the Varnish VMOD on a Unix socket and
// reloads on request, on SIGHUP and when the file changes.
//
// Usage:
//
//	ghostd [flags]                 run the daemon (ghostd -h lists the flags)
//	ghostd check FILE              validate a configuration file
//	ghostd route -config FILE -host H [-method M] [-H 'k: v']... URL
//	                               print the decision for one request, offline
//	ghostd reload [-socket PATH]   ask a running daemon to reload
//	ghostd status [-socket PATH]   print a running daemon's status
package main

import (
	"fmt"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// run dispatches to a subcommand or the daemon and returns the exit code:
// 0 success, 1 failure, 2 usage error.
func run(args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "check":
			return cmdCheck(args[1:])
		case "route":
			return cmdRoute(args[1:])
		case "reload":
			return cmdReload(args[1:])
		case "status":
			return cmdStatus(args[1:])
		case "help":
			fmt.Fprint(os.Stdout, usageText)
			return 0
		}
	}
	return runDaemon(args)
}
