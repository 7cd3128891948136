// Package stack starts the parts of a ghost stack for the test suites and
// the benchmark: build/upstream servers, ghostd and varnishd (default jail,
// so its child runs as vcache) with vcl/ghost.vcl and the shim, all on
// loopback. Every process is started by this package with its output in a
// log file and is stopped by its PID (and, for varnishd, its process
// group); nothing is found or killed by name.
//
// The suites (test/e2e, test/fault) build their scenarios on it; the
// benchmark's Go parts (test/bench/sockload, the Go benchmarks) use its
// /proc readings. The pieces stand alone, so that a test can restart or
// replace one of them (a ghostd under socket activation, a second VCL).
package stack
