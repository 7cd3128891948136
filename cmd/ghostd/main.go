// Command ghostd owns ghost's routing table: it loads ghost.json, compiles
// it, answers routing questions from the Varnish VMOD on a Unix socket and
// reloads on request, on SIGHUP and when the file changes.
//
// Usage:
//
//	ghostd [flags]                 run the daemon (ghostd -h lists the flags)
//	ghostd check [-strict] FILE    validate a configuration file
//	ghostd route [-config FILE | -socket PATH] -host H [-method M] [-H 'k: v']... URL
//	                               print the decision for one request and why
//	ghostd dump [-socket PATH | -config FILE]
//	                               print the live table as JSON
//	ghostd reload [-socket PATH]   ask a running daemon to reload
//	ghostd status [-socket PATH]   print a running daemon's status
//	ghostd version                 print the version
package main

import (
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
		case "dump":
			return cmdDump(args[1:])
		case "version":
			return cmdVersion(args[1:])
		case "help":
			printHelp()
			return 0
		}
	}
	return runDaemon(args)
}
