// Package fault holds ghost's fault-injection tests (issue 7): real
// varnishd, real ghostd and real upstreams on loopback, a steady load with
// every request's expected upstream known in advance, and one fault per
// scenario (ghostd killed, restarted under socket activation, hung, config
// churn, bad configs, hostile clients, socket abuse, VCL lifecycle).
//
// The tests need `make build` (build/ghostd, build/libvmod_ghost.so,
// build/upstream) and the Varnish 7.1 tools; they run as root. The short
// form runs in `make test`; GHOST_FAULT_LONG=1 (`make fault`) runs the long
// form. Figures of the last run are written to build/fault-report.md;
// docs/reliability.md explains them.
package fault
