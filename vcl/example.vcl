#
# example.vcl: a complete Varnish configuration routed by ghostd.
#
# Run it (as root, with ghostd listening on /run/ghostd/ghostd.sock):
#
#     varnishd -a :80 -f /etc/varnish/example.vcl -s malloc,256m
#
# `make install` puts libvmod_ghost.so in Varnish's vmod directory and
# ghost.vcl in /etc/varnish, so the plain `import ghost;` and the relative
# include below work. See docs/vcl.md for every function and option.
#
vcl 4.1;

import ghost;
import std;

# ghost.vcl brings the placeholder backend, the reload endpoint
# (/.varnish-ghost/reload, loopback only), the X-Ghost-* hygiene and the
# routing in vcl_backend_fetch. Our own subroutines below run after its.
include "ghost.vcl";

sub vcl_init {
	# socket: ghostd's Unix socket (its state file is <socket>.state)
	# timeout: bound of one round trip to ghostd; a hung ghostd costs
	#          each request at most this long, then 503
	# memo: decisions reused without asking ghostd (0 = ask every time)
	ghost.init("/run/ghostd/ghostd.sock", timeout = 100ms, memo = 524288);
}

sub vcl_recv {
	# Our own policy, after ghost's. Do not set req.backend_hint here:
	# the backend is chosen per fetch in vcl_backend_fetch. ghost.vcl
	# answers PURGE and BAN itself (loopback only), and requests of routes
	# with a cache_policy leave vcl_recv before this runs (return (hash)
	# or (pass), as ghostd decided): code that must see every request
	# goes in a vcl_recv defined before `include "ghost.vcl"`.
	# Normalise what does not change routing (routing happens at fetch
	# time, on the request as it is now).
	unset req.http.Proxy;
}

sub vcl_backend_response {
	# ghost.response() already applied the route's response header
	# filters and merged Vary (a status the route retries never gets
	# here: ghost.vcl returned retry first). A short default TTL when the upstream
	# says nothing:
	if (!beresp.http.Cache-Control && !beresp.http.Expires) {
		set beresp.ttl = 10s;
	}
}

sub vcl_deliver {
	# Debugging aid: which native backend served a miss shows up in
	# varnishlog (BackendOpen); expose cache status here.
	if (obj.hits > 0) {
		set resp.http.X-Cache = "HIT";
	} else {
		set resp.http.X-Cache = "MISS";
	}
}

sub vcl_backend_error {
	# ghost.vcl answered its own decisions (404/500/503/redirects) and
	# retried what the route's `retry` allows before this runs. Everything
	# else is a final fetch failure (504 Gateway Timeout when the route's
	# `timeouts` ran out):
	std.log("fetch failed: " + beresp.reason);
}
