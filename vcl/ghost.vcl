#
# ghost.vcl: Gateway API routing through ghostd. Include it right after
# `import ghost;` and call ghost.init() in vcl_init:
#
#     vcl 4.1;
#     import ghost;
#     include "ghost.vcl";
#     sub vcl_init { ghost.init("/run/ghostd/ghostd.sock"); }
#
# Your own code in the same subroutines runs after ghost's. See docs/vcl.md.
#
# Routing happens on the backend side (vcl_backend_fetch): cache hits never
# ask ghostd. vcl_recv only strips client-sent X-Ghost-* headers, joins
# repeated header lines and takes the route's cache decision; vcl_hash
# (for a miss, a pass and the background fetch of a stale object)
# records what the backend side needs
# (client method, listener, the client's values of the headers varnishd
# rewrites on a fetch: Accept-Encoding, conditionals, Range, ...). While
# no route reads such a header (the common case) a GET records nothing,
# so a cache hit pays for none of it.
# Piped requests (WebSocket upgrades, non-standard methods) are routed in
# vcl_recv, because a pipe has no vcl_backend_fetch.
#
# Caching: ghost.recv_action() in vcl_recv says what this request's route
# wants before the lookup (a memoised decision: a warm cache hit makes no
# round trip; none at all while no route has a cache_policy): Varnish's
# own rules (no cache_policy, ghostd -cache-default
# origin: nothing is returned and your vcl_recv and the builtin run), pass,
# or lookup under the route's cache_policy (return (hash): the policy's
# bypass_headers replace the builtin "Cookie or Authorization → pass").
# Code that must see every request goes in a vcl_recv defined BEFORE
# `include "ghost.vcl"`. PURGE and BAN from ghost_purgers invalidate
# (docs/operations.md); from anywhere else they get 403 and go nowhere.
#

# VCL needs one backend to compile; every real backend is created by the
# vmod on demand (ghost.<addr>:<port> in backend.list).
backend ghost_none none;

import xkey;

# Who may call /.varnish-ghost/reload.
acl ghost_loopback {
	"127.0.0.1";
	"::1";
}

# Who may PURGE and BAN (the varnish/gateway chaperone sends them on
# loopback).
acl ghost_purgers {
	"127.0.0.1";
	"::1";
}

# Fronts (TLS terminators) whose X-Forwarded-Proto is believed.
acl ghost_trusted_front {
	"127.0.0.1";
	"::1";
}

sub vcl_recv {
	# One call does what ghost does before the lookup (strip client
	# X-Ghost-*, join repeated header lines, note https from a trusted
	# front, the route's cache decision); 0, the common case, leaves the
	# request to your vcl_recv and the builtin (Varnish's own rules).
	# With act, the route's pass (1) and lookup under its cache_policy
	# (2: its bypass_headers replace the builtin "Cookie or
	# Authorization -> pass") return (pass) / return (hash) in the call
	# itself: every cache hit takes one call and one comparison (each
	# VCL block costs ~140 instructions, a call and a comparison ~110).
	if (ghost.recv_action(ghost_trusted_front, act = true) > 2) {
		call ghost_recv_act;
	}
}

# What ghost.recv_action() found beyond 2: 3 pipe (WebSocket upgrades
# and what the builtin pipes: routed here), 4 PURGE or BAN, 5 the reload
# URL, 6 /.varnish-ghost/healthz: clustered members' probes of this node
# (-cluster-probe-interval), answered by Varnish itself, without ghostd,
# a route or the cache (it never depends on peers); anyone may ask, it
# says only that this Varnish answers.
sub ghost_recv_act {
	if (ghost.last_action() == 6) {
		return (synth(200, "OK"));
	}
	if (ghost.last_action() == 4) {
		call ghost_invalidate;
	}
	if (ghost.last_action() == 5) {
		call ghost_reload;
	}
	call ghost_route_pipe;
}

# /.varnish-ghost/reload from ghost_loopback: ghostd reloads its file.
sub ghost_reload {
	unset req.http.X-Ghost-Reload-Error;
	if (client.ip !~ ghost_loopback) {
		return (synth(403, "Forbidden"));
	}
	if (ghost.reload()) {
		if (ghost.reload_pending()) {
			# still loading when the answer was due; goes on
			set req.http.X-Ghost-Reload-Error =
			    ghost.reload_message();
			return (synth(202, "Reload pending"));
		}
		return (synth(200, "Reloaded"));
	}
	set req.http.X-Ghost-Reload-Error = ghost.last_error();
	return (synth(500, "Reload failed"));
}

# PURGE <url> / BAN <regex> with Host: (what the varnish/gateway chaperone
# sends), PURGE with an xkey: header (tags), Soft-Purge: 1 (stale objects
# stay usable within grace). Never routed.
sub ghost_invalidate {
	unset req.http.X-Ghost-Inval;
	if (client.ip !~ ghost_purgers) {
		return (synth(403, "Forbidden"));
	}
	set req.http.X-Ghost-Inval = ghost.invalidation_error();
	if (req.http.X-Ghost-Inval != "") {
		return (synth(400, req.http.X-Ghost-Inval));
	}
	if (req.method == "BAN") {
		set req.http.X-Ghost-Inval = ghost.ban();
		if (req.http.X-Ghost-Inval != "") {
			return (synth(400, req.http.X-Ghost-Inval));
		}
		return (synth(200, "Ban added"));
	}
	if (req.http.xkey) {
		# tags: the xkey index
		if (req.http.Soft-Purge && req.http.Soft-Purge != "0") {
			set req.http.X-Ghost-Inval =
			    xkey.softpurge(ghost.purge_keys());
		} else {
			set req.http.X-Ghost-Inval =
			    xkey.purge(ghost.purge_keys());
		}
		call ghost_purged;
	}
	# A URL: looked up under the hash of its plain objects (ghost.hash()),
	# always a miss; vcl_miss purges (ghost_purge_url).
	set req.hash_always_miss = true;
	return (hash);
}

# vcl_miss of a PURGE of a URL: first the plain objects (under the hash
# just looked up, a native purge), then the others, found by the URL's
# key in the xkey index (HEAD, https, another listener or spelling of the
# host, cache_key headers). The xkey soft purge counts only what is still
# fresh, so an object stored before 2026-12-06 (a plain one with the key
# too) is not counted twice; a hard PURGE then removes them.
sub ghost_purge_url {
	set req.http.X-Ghost-Inval = ghost.purge_plain();
	set req.http.X-Ghost-Inval = ghost.purged(
	    xkey.softpurge(ghost.purge_keys()));
	if (!req.http.Soft-Purge || req.http.Soft-Purge == "0") {
		xkey.purge(ghost.purge_keys());
	}
	call ghost_purged;
}

# The answer to a PURGE: 200 "Purged <n>", or 404 when nothing was there.
sub ghost_purged {
	if (req.http.X-Ghost-Inval == "0") {
		return (synth(404, "Not in cache"));
	}
	return (synth(200, "Purged " + req.http.X-Ghost-Inval));
}

# Piped traffic never reaches vcl_backend_fetch: route it on the client
# side. A sub of its own: vcl_recv runs for every cache hit, and every
# VCL statement costs it.
sub ghost_route_pipe {
	set req.backend_hint = ghost.route();
	if (ghost.status() != 200) {
		return (synth(ghost.status(), ghost.reason()));
	}
	return (pipe);
}

sub vcl_hash {
	# A HEAD is fetched with GET on a miss but routes as HEAD: keep the
	# two apart. Routes may also depend on the listener and on https.
	# The whole hash is ghost's (URL or the policy's cache-key URL, Host,
	# key headers): the builtin must not add the raw URL. hash() also
	# records what a fetch after the lookup needs (prepare()'s record):
	# the background fetch of a stale hit starts after vcl_hit without
	# vcl_miss, and ghost.vcl has no vcl_hit, so a hit runs no ghost
	# code there.
	ghost.hash();
	return (lookup);
}

sub vcl_miss {
	# true only for ghost_invalidate's lookup of a URL to purge; the
	# fetch's record was taken by ghost.hash()
	if (ghost.purging()) {
		call ghost_purge_url;
	}
}

# No vcl_pass: ghost.hash() (every pass runs vcl_hash first) has taken
# the record a pass needs, and ghost.prepare() would add nothing
# (docs/vcl.md, "vcl_pass").

sub vcl_pipe {
	# A pipe is a raw tunnel for the rest of the client connection: the
	# backend gets "Connection: close" (first line) and, for an upgrade,
	# Upgrade and a second "Connection: Upgrade" line; no X-Ghost-*.
	ghost.pipe();
}

sub vcl_backend_fetch {
	# A decision that is not a fetch (no route, a redirect, ghostd
	# unreachable, a CORS preflight) ends the fetch in route() itself, as
	# return (error(ghost.status(), ghost.reason())) would, and
	# vcl_backend_error answers it: no VCL `if` per fetch.
	set bereq.backend = ghost.route();
}

sub vcl_backend_response {
	# The route's retry first: a status in retry.codes, with attempts and
	# time left, is fetched again (preferably from another endpoint), and
	# the call returns (retry) itself, as `if (ghost.retry()) { return
	# (retry); }` would. Otherwise the response filters, the TTLs and the
	# invalidation tags of a stored object. One call, no VCL `if`: every
	# stored object pays for each statement.
	ghost.response(retry = true);
}

sub vcl_deliver {
	# Invalidation tags and lurker headers stay in the cache.
	ghost.deliver();
}

sub vcl_backend_error {
	# Clustered: the member that owns the key did not answer (refused,
	# reset, timeout): it is skipped for a while, and this fetch goes to
	# the origin instead.
	if (ghost.owner_failed()) {
		return (retry);
	}
	# The response of a decision that is not a fetch: status, reason,
	# Location, body, all as decided.
	if (ghost.synth()) {
		return (deliver);
	}
	# A failed fetch (connection failure, an attempt's timeout) is
	# retried as the route says; past its request timeout it is a 504.
	if (ghost.retry()) {
		return (retry);
	}
}

sub vcl_synth {
	if (req.method == "PURGE" || req.method == "BAN") {
		set resp.http.Content-Type = "text/plain";
		set resp.http.Cache-Control = "no-store";
		set resp.body = resp.reason + {"
"};
		return (deliver);
	}
	if (req.url == "/.varnish-ghost/reload" &&
	    (resp.status == 200 || resp.status == 202 ||
	    resp.status == 403 || resp.status == 500)) {
		set resp.http.Content-Type = "text/plain";
		set resp.http.Cache-Control = "no-store";
		if (resp.status == 500) {
			set resp.http.x-ghost-error = req.http.X-Ghost-Reload-Error;
			set resp.body = "reload failed: " +
			    req.http.X-Ghost-Reload-Error + {"
"};
		} elsif (resp.status == 202) {
			set resp.body = req.http.X-Ghost-Reload-Error + {"
"};
		} elsif (resp.status == 200) {
			set resp.body = {"reloaded
"};
		} else {
			set resp.body = {"forbidden
"};
		}
		return (deliver);
	}
	# routed client side (ghost.route() in vcl_recv)
	if (ghost.synth()) {
		return (deliver);
	}
}
